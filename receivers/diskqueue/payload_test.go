package diskqueue

import (
	"context"
	"testing"
)

func TestClassOf(t *testing.T) {
	prev := 0
	for n := 1; n <= 1<<maxPooledShift; n += 1 + n/97 {
		c, size := classOf(n)
		if c < 0 || c >= numClasses {
			t.Fatalf("classOf(%d) = class %d, out of range", n, c)
		}
		if size < n || (n > 1<<minPooledShift && size > n+n/4) {
			t.Fatalf("classOf(%d) = size %d: too small or wastes more than a quarter", n, size)
		}
		if c2, size2 := classOf(size); c2 != c || size2 != size {
			t.Fatalf("classOf(%d) = %d, %d but classOf(%d) = %d, %d", n, c, size, size, c2, size2)
		}
		if size < prev {
			t.Fatalf("classOf(%d) = size %d, smaller than for a smaller n (%d)", n, size, prev)
		}
		prev = size
	}
	if c, _ := classOf(1<<maxPooledShift + 1); c != -1 {
		t.Fatalf("a payload over the largest class got class %d", c)
	}
}

func TestPayloadBufferReuse(t *testing.T) {
	b := payloadBuffer(50_000)
	if len(b) != 50_000 {
		t.Fatalf("len %d", len(b))
	}
	if _, size := classOf(50_000); cap(b) != size {
		t.Fatalf("cap %d, want the class size %d", cap(b), size)
	}
	Release(b)
	Release(make([]byte, 10, 12345)) // not a class size: ignored
	Release(nil)
	big := payloadBuffer(1<<maxPooledShift + 1)
	Release(big) // outside the classes: ignored
	if got := payloadBuffer(49_000); len(got) != 49_000 {
		t.Fatalf("len %d", len(got))
	}
}

// TestReleasedPayloadsReadBack checks that entries read into reused buffers hold their
// own bytes, whatever the buffers held before.
func TestReleasedPayloadsReadBack(t *testing.T) {
	q := openQueue(t, t.TempDir(), Config{})
	ctx := context.Background()
	for round := range 3 {
		var want [][]byte
		for i := range 20 {
			p := make([]byte, 3000+i*4999+round)
			for j := range p {
				p[j] = byte(i*7 + j + round)
			}
			want = append(want, p)
			if err := q.Append(ctx, p); err != nil {
				t.Fatal(err)
			}
		}
		for i, w := range want {
			e, err := q.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if string(e.Payload) != string(w) {
				t.Fatalf("round %d entry %d: payload differs", round, i)
			}
			q.Ack(e.ID)
			Release(e.Payload)
		}
	}
}
