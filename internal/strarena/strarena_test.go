package strarena

import (
	"strings"
	"testing"
)

// TestStringsKeepTheirBytes checks that the strings handed out keep their bytes
// while the arena goes on, in one block and across blocks, and that long strings
// get allocations of their own.
func TestStringsKeepTheirBytes(t *testing.T) {
	for _, size := range []int{0, 4 << 10} {
		a := Arena{BlockSize: size}
		block := size
		if block == 0 {
			block = DefaultBlockSize
		}
		buf := make([]byte, block)
		var got, want []string
		for i := range 3000 {
			n := (i * 37) % (block/8 + 40)
			if i%500 == 0 {
				n = block
			}
			for j := range n {
				buf[j] = byte('a' + (i+j)%26)
			}
			got, want = append(got, a.Str(buf[:n])), append(want, string(buf[:n]))
			clear(buf[:n]) // the caller's buffer is reused
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("block %d: string %d changed after it was handed out", size, i)
			}
		}
	}
}

// TestMake checks that Make hands out disjoint bytes, from one block while they
// fit, and a string of its own for more than an eighth of a block.
func TestMake(t *testing.T) {
	a := Arena{BlockSize: 1024}
	x, y := a.Make(100), a.Make(28)
	if len(x) != 100 || len(y) != 28 || cap(x) != 100 || cap(y) != 28 {
		t.Fatalf("lengths %d/%d, capacities %d/%d: want 100/28 each", len(x), len(y), cap(x), cap(y))
	}
	if &x[0] != &a.block[0] || &y[0] != &a.block[100] {
		t.Fatal("the two requests are not consecutive in one block")
	}
	copy(x, strings.Repeat("x", 100))
	copy(y, strings.Repeat("y", 28))
	sx, sy := String(x), String(y)
	big := a.Make(129)
	if &big[0] == &a.block[:cap(a.block)][128] {
		t.Fatal("a request over an eighth of a block came from the block")
	}
	if len(a.block) != 128 {
		t.Fatalf("the block holds %d bytes after a request of its own: want 128", len(a.block))
	}
	if sx != strings.Repeat("x", 100) || sy != strings.Repeat("y", 28) {
		t.Fatalf("strings changed: %q %q", sx, sy)
	}
	if got := testing.AllocsPerRun(160, func() { a.Make(64) }); got >= 1 {
		t.Fatalf("Make of 64 bytes from 1 KiB blocks: %.0f allocations per call, want one per 16 calls", got)
	}
}
