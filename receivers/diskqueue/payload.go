package diskqueue

import (
	"math/bits"
	"sync"
	"unsafe"
)

// Payload buffers are reused. Every entry Next hands out is read into a buffer of
// its own, which the consumer keeps until its exporter has delivered it; allocating
// each one afresh makes the garbage collector run, and the runtime return and fault
// in again pages, for every few entries a busy queue reads. A consumer that is done
// with an entry's payload — nothing reads it any more — hands it back with Release,
// and a later Next reads into it.
//
// Buffers come in size classes, four per doubling from minPooled to maxPooled (so a
// payload wastes at most a quarter of its size); a payload outside that range is
// allocated and left to the garbage collector. The pools are sync.Pools, which the
// collector empties when they go unused, so an idle agent does not hold a burst's
// buffers.

const (
	minPooledShift  = 12 // 4 KiB
	maxPooledShift  = 23 // 8 MiB
	classesPerShift = 4
	numClasses      = (maxPooledShift-minPooledShift)*classesPerShift + 1
)

// payloadPools holds, per size class, pointers to the first byte of free buffers
// whose capacity is exactly the class size (a pointer is stored as it is in an
// interface, so putting one allocates nothing).
var payloadPools [numClasses]sync.Pool

// classOf returns the smallest class holding n bytes and its size, or -1 when n is
// outside the pooled range.
func classOf(n int) (class, size int) {
	if n > 1<<maxPooledShift {
		return -1, 0
	}
	if n <= 1<<minPooledShift {
		return 0, 1 << minPooledShift
	}
	shift := bits.Len(uint(n-1)) - 1 // 2^shift < n <= 2^(shift+1)
	step := 1 << (shift - 2)         // a quarter of 2^shift
	k := (n - (1 << shift) + step - 1) / step
	return (shift-minPooledShift)*classesPerShift + k, (1 << shift) + k*step
}

// payloadBuffer returns a buffer of n bytes, from the pool when one is free. Its
// contents are undefined; the reader overwrites them.
func payloadBuffer(n int) []byte {
	c, size := classOf(n)
	if c < 0 {
		return make([]byte, n)
	}
	if p, ok := payloadPools[c].Get().(*byte); ok {
		return unsafe.Slice(p, size)[:n]
	}
	return make([]byte, n, size)
}

// Release hands back the payload of an entry that Next returned, for a later Next to
// read into. The caller must not use payload, nor any slice of it, afterwards, and
// must release it at most once. Releasing is optional: a payload never released is
// collected as garbage. Slices that did not come from Next are ignored unless their
// capacity happens to be a pooled size, in which case they are reused like any other
// buffer (still, only hand back memory that nothing else uses).
func Release(payload []byte) {
	c, size := classOf(cap(payload))
	if c < 0 || size != cap(payload) {
		return
	}
	payloadPools[c].Put(unsafe.SliceData(payload[:1]))
}
