package sentryexporter

import (
	"bytes"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/outrider-dev/outrider/internal/sentryenv"
	"github.com/outrider-dev/outrider/pipeline"
)

// envelope is one pipeline.Envelope as the exporter keeps it: its bytes, what is
// needed to send them (the header to rewrite, the items after it) and the rate-limit
// categories of its items.
type envelope struct {
	data    []byte         // as exported
	items   []byte         // data after the header line: the items, sent as they are
	header  map[string]any // the envelope header, dsn (and a matching trace public_key) rewritten
	eventID string         // for messages; may be ""
	cats    []string       // data categories of the items, sorted, unique
	key     string         // cats joined, the limitQueue's lane
	err     error          // set when data is not an envelope: dropped as ReasonInvalidEnvelope
	// upstreamTrace: the trace header's public_key is upstream's key (it was the
	// application's), so it follows the DSN when dsn_file changes before sending.
	upstreamTrace bool

	// Guarded by the limitQueue's mutex.
	seq    uint64 // arrival order
	active bool   // holds one of the queue's slots
}

func envelopeSize(e **envelope) int { return len((*e).data) }

func oneEnvelope(**envelope) int { return 1 }

// newEnvelope parses data and prepares it for upstream: the header's "dsn" becomes
// upstream's DSN, and the trace header's "public_key", when it is the key of the DSN
// the application used, upstream's key (a public_key of another project, propagated
// from the head of a distributed trace, is kept). Data that is not a valid envelope
// gives an envelope with err set, which push drops.
func newEnvelope(data []byte, upstream *upstreamIDs) *envelope {
	env := &envelope{data: data}
	parsed, err := sentryenv.Parse(data, sentryenv.Limits{})
	if err != nil {
		env.err = pipeline.Permanent(ReasonInvalidEnvelope,
			fmt.Errorf("cannot forward an invalid envelope (%d bytes): %w", len(data), err))
		return env
	}
	env.eventID = parsed.EventID()
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		env.items = data[i+1:]
	}
	for _, it := range parsed.Items {
		if c := sentryenv.Category(it.Type); !slices.Contains(env.cats, c) {
			env.cats = append(env.cats, c)
		}
	}
	slices.Sort(env.cats)
	env.key = strings.Join(env.cats, ";")
	env.header = parsed.Header
	if old, ok := env.header["dsn"]; ok {
		appKey := ""
		if s, ok := old.(string); ok {
			appKey = dsnKey(s)
		}
		env.header["dsn"] = upstream.dsn
		if trace, ok := env.header["trace"].(map[string]any); ok && appKey != "" {
			if pk, ok := trace["public_key"].(string); ok && pk == appKey {
				trace["public_key"] = upstream.key
				env.upstreamTrace = true
			}
		}
	}
	return env
}

// upstreamIDs are what envelope headers get of the upstream DSN.
type upstreamIDs struct {
	dsn string // the public DSN, for the header's "dsn"
	key string // the public key, for the trace header's "public_key"
}

// dsnKey returns the public key of a DSN (the user name before '@'), or "". It does
// not check the rest of the DSN: it only has to recognise the key in a trace header.
func dsnKey(s string) string {
	key, _, _ := strings.Cut(userinfo(s), ":")
	if k, err := url.PathUnescape(key); err == nil {
		return k
	}
	return key
}

// appendHeader appends the envelope's header line as sent at now to upstream, newline
// included, with "sent_at" set to now: Sentry corrects clock drift with it, so it is
// the time of this attempt, not of the first. The DSN (and the trace's public_key
// newEnvelope rewrote) are upstream's, which differ from newEnvelope's after the
// DSN in dsn_file changed. The items follow it unchanged.
func (e *envelope) appendHeader(dst []byte, now time.Time, upstream *upstreamIDs) []byte {
	e.header["sent_at"] = now.UTC().Format(time.RFC3339Nano)
	if _, ok := e.header["dsn"]; ok {
		e.header["dsn"] = upstream.dsn
	}
	if trace, ok := e.header["trace"].(map[string]any); ok && e.upstreamTrace {
		trace["public_key"] = upstream.key
	}
	h := sentryenv.Envelope{Header: e.header}
	return h.AppendMarshal(dst)
}
