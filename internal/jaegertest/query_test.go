package jaegertest

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseTraceResponse(t *testing.T) {
	fixture, err := os.ReadFile(filepath.Join("testdata", "v3_trace.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := Span{
		TraceID:       "0102030405060708090a0b0c0d0e0f10",
		SpanID:        "0102030405060708",
		ParentSpanID:  "1112131415161718",
		Name:          "op",
		Kind:          "Server",
		Service:       "svc",
		Resource:      map[string]string{"service.name": "svc", "k8s.pod.name": "p"},
		Scope:         "lib",
		Attributes:    map[string]string{"http.method": "GET", "n": "3"},
		Start:         time.Unix(1700000000, 0).UTC(),
		End:           time.Unix(1700000001, 0).UTC(),
		StatusCode:    "Error",
		StatusMessage: "boom",
	}
	tests := []struct {
		name      string
		body      string
		wantSpans int
		wantErr   string
	}{
		{name: "one result", body: string(fixture), wantSpans: 1},
		{name: "streamed chunks", body: string(fixture) + "\n" + string(fixture), wantSpans: 2},
		{name: "empty result", body: `{"result":{}}`, wantSpans: 0},
		{name: "error", body: `{"error":{"httpCode":404,"message":"No traces found"}}`, wantErr: "404: No traces found"},
		{name: "neither", body: `{}`, wantErr: "neither result nor error"},
		{name: "not json", body: `<html>`, wantErr: "decode jaeger api_v3 answer"},
		{name: "bad otlp", body: `{"result":{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz"}]}]}]}}`, wantErr: "decode jaeger api_v3 result"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			td, err := ParseTraceResponse([]byte(tt.body))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			spans := Spans(td)
			if len(spans) != tt.wantSpans {
				t.Fatalf("%d spans, want %d", len(spans), tt.wantSpans)
			}
			for _, s := range spans {
				s.Start, s.End = s.Start.UTC(), s.End.UTC()
				if !reflect.DeepEqual(s, want) {
					t.Errorf("span\n got %+v\nwant %+v", s, want)
				}
			}
		})
	}
}

func FuzzParseTraceResponse(f *testing.F) {
	fixture, err := os.ReadFile(filepath.Join("testdata", "v3_trace.json"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(fixture)
	f.Add([]byte(`{"result":{}}`))
	f.Add([]byte(`{"error":{"httpCode":404,"message":"No traces found"}}`))
	f.Add([]byte(`{"result":{"resourceSpans":[{}]}} {"result":{}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		td, err := ParseTraceResponse(body)
		if err != nil {
			if td.SpanCount() != 0 {
				t.Fatalf("error %v with %d spans", err, td.SpanCount())
			}
			return
		}
		if got := len(Spans(td)); got != td.SpanCount() {
			t.Fatalf("Spans gave %d of %d spans", got, td.SpanCount())
		}
	})
}
