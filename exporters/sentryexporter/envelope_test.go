package sentryexporter

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/outrider-dev/outrider/internal/sentryenv"
	"github.com/outrider-dev/outrider/pipeline"
)

var testUpstream = &upstreamIDs{dsn: "https://" + upstreamKey + "@o1.ingest.sentry.io/9", key: upstreamKey}

func TestNewEnvelope(t *testing.T) {
	item := func(typ string) sentryenv.Item { return sentryenv.Item{Type: typ, Payload: []byte(`{}`)} }
	tests := []struct {
		name      string
		header    map[string]any
		items     []sentryenv.Item
		cats      []string
		dsn       any // the header's dsn after; nil: absent
		publicKey any // the trace header's public_key after; nil: absent
	}{
		{
			name:   "event with the application's dsn and trace key",
			header: map[string]any{"event_id": eventID(1), "dsn": appDSN, "trace": map[string]any{"public_key": appKey}},
			items:  []sentryenv.Item{item("event"), item("attachment"), item("attachment")},
			cats:   []string{"attachment", "error"}, dsn: testUpstream.dsn, publicKey: upstreamKey,
		},
		{
			name:   "trace key of another project kept",
			header: map[string]any{"dsn": appDSN, "trace": map[string]any{"public_key": "other"}},
			items:  []sentryenv.Item{item("transaction"), item("profile")},
			cats:   []string{"profile", "transaction"}, dsn: testUpstream.dsn, publicKey: "other",
		},
		{
			name:   "no dsn: header left alone",
			header: map[string]any{"event_id": eventID(2), "trace": map[string]any{"public_key": appKey}},
			items:  []sentryenv.Item{item("check_in")},
			cats:   []string{"monitor"}, publicKey: appKey,
		},
		{
			name:   "a dsn that is not a string is replaced",
			header: map[string]any{"dsn": json.Number("7")},
			items:  []sentryenv.Item{item("client_report"), item("mystery")},
			cats:   []string{"default", "internal"}, dsn: testUpstream.dsn,
		},
		{
			name:   "no items",
			header: map[string]any{"dsn": appDSN},
			dsn:    testUpstream.dsn,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := (&sentryenv.Envelope{Header: tt.header, Items: tt.items}).Marshal()
			env := newEnvelope(data, testUpstream)
			if env.err != nil {
				t.Fatal(env.err)
			}
			if !reflect.DeepEqual(env.cats, tt.cats) {
				t.Errorf("categories %v, want %v", env.cats, tt.cats)
			}
			if got := env.header["dsn"]; got != tt.dsn {
				t.Errorf("dsn %v, want %v", got, tt.dsn)
			}
			var pk any
			if trace, ok := env.header["trace"].(map[string]any); ok {
				pk = trace["public_key"]
			}
			if pk != tt.publicKey {
				t.Errorf("trace public_key %v, want %v", pk, tt.publicKey)
			}
			if !bytes.Equal(env.items, itemsOf(data)) {
				t.Errorf("items %q, want %q", env.items, itemsOf(data))
			}

			// On the wire: a valid envelope with sent_at and the same items.
			now := time.Date(2026, 5, 1, 12, 0, 0, 123456789, time.FixedZone("x", 3600))
			wire := append(env.appendHeader(nil, now, testUpstream), env.items...)
			parsed, err := sentryenv.Parse(wire, sentryenv.Limits{})
			if err != nil {
				t.Fatalf("sent envelope does not parse: %v\n%s", err, wire)
			}
			if got := parsed.Header["sent_at"]; got != "2026-05-01T11:00:00.123456789Z" {
				t.Errorf("sent_at %v", got)
			}
			if len(parsed.Items) != len(tt.items) {
				t.Errorf("%d items sent, want %d", len(parsed.Items), len(tt.items))
			}
		})
	}
}

func TestNewEnvelopeInvalid(t *testing.T) {
	for _, data := range [][]byte{nil, []byte("[]\n"), []byte("{}\n{\"length\":3}\nabc\n"), []byte("{}\n{\"type\":\"event\",\"length\":99}\n{}\n")} {
		env := newEnvelope(data, testUpstream)
		if reason, ok := pipeline.IsPermanent(env.err); !ok || reason != ReasonInvalidEnvelope {
			t.Errorf("%q: err %v, want permanent %s", data, env.err, ReasonInvalidEnvelope)
		}
	}
}

func TestDSNKey(t *testing.T) {
	for in, want := range map[string]string{
		appDSN: appKey, "https://pub:secret@h/1": "pub", "https://p%41b@h/1": "pAb", "no dsn": "", "https://h/1": "",
	} {
		if got := dsnKey(in); got != want {
			t.Errorf("dsnKey(%q) = %q, want %q", in, got, want)
		}
	}
}
