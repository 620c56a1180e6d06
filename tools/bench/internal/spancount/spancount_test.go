package spancount

import (
	"errors"
	"testing"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// request returns a serialized request of resources x spans spans, each span with
// attrs attributes.
func request(t testing.TB, resources, spans, attrs int) []byte {
	t.Helper()
	td := ptrace.NewTraces()
	for range resources {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", "svc")
		ss := rs.ScopeSpans().AppendEmpty()
		ss.Scope().SetName("scope")
		for i := range spans {
			sp := ss.Spans().AppendEmpty()
			sp.SetName("op")
			sp.SetTraceID([16]byte{1, byte(i)})
			sp.SetSpanID([8]byte{2, byte(i)})
			for a := range attrs {
				sp.Attributes().PutInt(string(rune('a'+a)), int64(a))
			}
		}
	}
	data, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestCount(t *testing.T) {
	good := request(t, 2, 50, 10)
	fewer := request(t, 1, 3, 9)
	tests := []struct {
		name               string
		req                []byte
		wantAttrs          int
		wantSpans, wantBad int64
		wantErr            bool
	}{
		{name: "two resources", req: good, wantAttrs: 10, wantSpans: 100},
		{name: "requests concatenate", req: append(append([]byte{}, good...), good...), wantAttrs: 10, wantSpans: 200},
		{name: "empty", req: nil, wantAttrs: 10},
		{name: "other attribute count", req: fewer, wantAttrs: 10, wantSpans: 3, wantBad: 3},
		{name: "attributes not checked", req: fewer, wantSpans: 3},
		{name: "truncated", req: good[:len(good)-3], wantAttrs: 10, wantErr: true},
		{name: "garbage", req: []byte{0xff, 0xff, 0xff}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spans, bad, err := Count(tt.req, tt.wantAttrs)
			if (err != nil) != tt.wantErr || (err != nil && !errors.Is(err, ErrMalformed)) {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if spans != tt.wantSpans || bad != tt.wantBad {
				t.Errorf("Count = %d spans, %d with other attribute counts; want %d, %d", spans, bad, tt.wantSpans, tt.wantBad)
			}
		})
	}
}

func FuzzCount(f *testing.F) {
	f.Add(request(f, 2, 2, 10))
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0x02, 0x12, 0x00})
	f.Fuzz(func(t *testing.T, data []byte) {
		spans, _, err := Count(data, 10)
		if err != nil {
			return
		}
		// Where both decode the request, they must agree. (pdata tolerates some
		// malformed input, such as unterminated groups, that Count refuses.)
		req := ptraceotlp.NewExportRequest()
		if req.UnmarshalProto(data) == nil {
			if want := int64(req.Traces().SpanCount()); spans != want {
				t.Fatalf("Count = %d, pdata counts %d", spans, want)
			}
		}
	})
}

func BenchmarkCount(b *testing.B) {
	req := request(b, 2, 50, 10)
	b.ReportAllocs()
	b.SetBytes(int64(len(req)))
	for b.Loop() {
		if _, _, err := Count(req, 10); err != nil {
			b.Fatal(err)
		}
	}
}
