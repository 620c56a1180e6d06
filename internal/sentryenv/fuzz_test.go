package sentryenv

import (
	"bytes"
	"runtime"
	"testing"
)

// FuzzParse checks that Parse never panics, allocates in proportion to its input, and
// that what it accepts survives Marshal: Parse(Marshal(Parse(x))) is Parse(x), and
// Marshal is stable.
func FuzzParse(f *testing.F) {
	for _, data := range sentryGoEnvelopes(f) {
		f.Add(data)
	}
	for _, s := range []string{
		"", "{}", "{}\n", "{}\n\n", "\n", "{}\n{\"type\":\"event\"}", "{}\n{\"type\":\"event\"}\n",
		"{}\n{\"type\":\"event\"}\n{}\n", "{}\n{\"type\":\"event\",\"length\":2}\n{}",
		"{}\n{\"type\":\"attachment\",\"length\":0}\n\n", "{}\n{\"type\":\"attachment\",\"length\":5}\na\nb\n\n",
		"{}\n{\"type\":\"session\"}\n\n{\"type\":\"event\",\"length\":2}\n{}\n",
		"{\"event_id\":\"9ec79c33ec9942ab8353589fcb2e04dc\",\"n\":1e400}\n",
		"{\"a\":\"\xff\"}\n{\"type\":\"\xfe\",\"x\":-0.0}\n\xff\n",
		"{}\n{\"type\":\"event\",\"length\":99999999999999999999}\n",
		"{}\n{\"type\":\"event\",\"length\":1}\n{}\n", "[]", "{} {}",
	} {
		f.Add([]byte(s))
	}
	lim := Limits{MaxEnvelopeBytes: 1 << 20, MaxItems: 100, MaxItemBytes: 1 << 16}
	f.Fuzz(func(t *testing.T, data []byte) {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		env, err := Parse(data, lim)
		runtime.ReadMemStats(&after)
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > uint64(64*len(data)+64<<10) {
			t.Fatalf("Parse of %d bytes allocated %d bytes", len(data), alloc)
		}
		if err != nil {
			if _, ok := err.(*ParseError); !ok {
				t.Fatalf("error %T is not a *ParseError: %v", err, err)
			}
			return
		}
		if len(env.Items) > lim.MaxItems {
			t.Fatalf("%d items over the limit", len(env.Items))
		}
		out := env.Marshal()
		again, err := Parse(out, Limits{})
		if err != nil {
			t.Fatalf("Marshal output does not parse: %v\n%q", err, out)
		}
		if !sameEnvelope(env, again) {
			t.Fatalf("round trip changed the envelope:\n%q\n%q", data, out)
		}
		if out2 := again.Marshal(); !bytes.Equal(out, out2) {
			t.Fatalf("Marshal is not stable:\n%q\n%q", out, out2)
		}
	})
}
