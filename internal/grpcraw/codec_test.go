package grpcraw

import (
	"testing"

	"google.golang.org/grpc/mem"
)

func TestCodecPassesBytesThrough(t *testing.T) {
	var c Codec
	for _, in := range []any{[]byte("abc"), &[]byte{'a', 'b', 'c'}} {
		bs, err := c.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(bs.Materialize()); got != "abc" {
			t.Errorf("Marshal(%T) = %q", in, got)
		}
	}
	buf := make([]byte, 0, 1)
	if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer("hello"), mem.SliceBuffer(" world")}, &buf); err != nil {
		t.Fatal(err)
	}
	if string(buf) != "hello world" {
		t.Errorf("Unmarshal = %q", buf)
	}
	reuse := make([]byte, 0, 64)
	_ = c.Unmarshal(mem.BufferSlice{mem.SliceBuffer("x")}, &reuse)
	if cap(reuse) != 64 || string(reuse) != "x" {
		t.Errorf("Unmarshal did not reuse the buffer: cap %d %q", cap(reuse), reuse)
	}
	if _, err := c.Marshal("a string"); err == nil {
		t.Error("Marshal accepted a string")
	}
	var s string
	if err := c.Unmarshal(nil, &s); err == nil {
		t.Error("Unmarshal accepted *string")
	}
	if c.Name() != "proto" {
		t.Errorf("Name = %q", c.Name())
	}
}
