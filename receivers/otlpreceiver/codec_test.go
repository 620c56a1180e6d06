package otlpreceiver

import (
	"fmt"

	"google.golang.org/grpc/mem"

	"github.com/outrider-dev/outrider/internal/confval"
)

// rawForTest sends raw bytes, to put malformed requests on the wire.
type rawForTest struct{}

func (rawForTest) Name() string { return "proto" }
func (rawForTest) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(v.([]byte))}, nil
}
func (rawForTest) Unmarshal(d mem.BufferSlice, v any) error {
	p, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("want *[]byte")
	}
	*p = d.Materialize()
	return nil
}

type problemsT struct{ ps confval.Problems }

func (p *problemsT) p() *confval.Problems { return &p.ps }
func (p *problemsT) err() error           { return p.ps.Err() }
