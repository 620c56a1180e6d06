package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"golang.org/x/text/unicode/norm"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/outrider-dev/outrider/internal/backendtest"
	"github.com/outrider-dev/outrider/internal/jaegertest"
	"github.com/outrider-dev/outrider/internal/sentrytest"
	"github.com/outrider-dev/outrider/internal/vaulttest"
)

// TestNoSecretLeavesThePod registers live secrets the way production does (a KV v2
// secret in a real Vault, rendered by the agent), pushes them through every receiver
// — file tail (JSON and plain, multi-line records, a line cut at max_line_bytes),
// OTLP traces and logs over gRPC, HTTP protobuf and HTTP JSON (in attribute keys,
// values, bytes values, resources, scopes, events, links, entity references, bodies),
// and Sentry envelopes with every item type, headers and keys — in every encoding the
// scrubber covers, then reads back everything that reached the real backends (every
// Loki stream of the time range, the traces in Jaeger, the raw envelopes the strict
// Sentry receiver accepted) and searches it for the secret in every encoding: none
// may be found. It then rotates the secret twice quickly and checks that a backlog
// holding the value from two rotations ago is still scrubbed.
func TestNoSecretLeavesThePod(t *testing.T) {
	loki := sharedLoki(t)
	j := jaegertest.Shared(t)
	sentrySrv := sentrytest.Start(t, sentrytest.WithPublicKey("upstream-key"), sentrytest.WithProject(7))
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	v, err := vaulttest.Start(ctx, t.TempDir())
	if err != nil {
		t.Fatalf("real Vault is required: %v", err)
	}
	t.Cleanup(v.Stop)

	s1, s2, s3 := liveSecret(t), liveSecret(t), liveSecret(t)
	// The search must see every form in what is sent, or finding none later proves
	// nothing.
	{
		folded, exact := encodedForms(s1)
		mime, _ := mimeBlob(s1)
		sent := secretEnvelope(s1, sentForms(s1), mime)
		if got, want := len(findLeaks(sent, s1)), len(folded)+len(exact); got != want {
			t.Fatalf("the search finds %d of the %d forms in the unscrubbed envelope", got, want)
		}
	}
	putSecret := func(pw string) {
		t.Helper()
		if _, err := v.Client.KVv2("secret").Put(ctx, "app", map[string]any{"db_password": pw, "user": "shop"}); err != nil {
			t.Fatal(err)
		}
	}
	putSecret(s1)

	const service = "scrub-e2e"
	dir := t.TempDir()
	mkdirs(t, filepath.Join(dir, "logs"), filepath.Join(dir, "multi"), filepath.Join(dir, "secrets"))
	tokenFile := filepath.Join(dir, "vault-token")
	writeFile(t, tokenFile, v.RootToken)
	secretFile := filepath.Join(dir, "secrets", "app.json")
	ports, err := backendtest.FreePorts(3)
	if err != nil {
		t.Fatal(err)
	}
	otlpGRPC, otlpHTTP, sentryAddr := fmt.Sprintf("127.0.0.1:%d", ports[0]), fmt.Sprintf("127.0.0.1:%d", ports[1]), fmt.Sprintf("127.0.0.1:%d", ports[2])
	cfgPath := filepath.Join(dir, "outrider.yaml")
	writeFile(t, cfgPath, fmt.Sprintf(`data_dir: %[1]s/data
identity: {service: %[2]s, namespace: e2e, pod: %[2]s-0, container: app, environment: e2e}
server: {listen: "127.0.0.1:0", shutdown_timeout: 10s}
logs:
  sources:
    - name: app
      path: %[1]s/logs/*.log
      parser: {format: json}
      max_line_bytes: 1KiB
    - name: multi
      path: %[1]s/multi/*.log
      max_line_bytes: 1KiB
      multiline: {start: '^REC ', flush_after: 300ms}
receivers:
  otlp: {grpc: {listen: "%[3]s"}, http: {listen: "%[4]s"}}
  sentry: {listen: "%[5]s", public_key: e2e-public-key}
exporters:
  loki: {url: %[6]s, batch: {max_wait: 200ms}}
  otlp: {endpoint: "http://%[7]s", batch: {max_wait: 200ms}}
  sentry: {dsn: "%[8]s"}
secrets:
  vault:
    address: %[9]s
    auth: {method: token, token_file: %[10]s}
  poll_interval: 1s
  files:
    - path: %[11]s
      source: secret/app
      format: json
`, dir, service, otlpGRPC, otlpHTTP, sentryAddr, loki.URL, j.OTLPGRPCEndpoint(), sentrySrv.DSN("upstream-key", 7), v.Addr, tokenFile, secretFile))
	start := time.Now().Add(-time.Minute)
	agent := startAgent(t, cfgPath)
	waitLog(t, agent, "otlp receiver listening")
	waitFor(t, 30*time.Second, "the secret file rendered", func() bool {
		return renderedPassword(secretFile) == s1
	})

	// Everything the app can send, holding s1.
	traceIDs := pushEverything(t, ctx, s1, dir, otlpGRPC, otlpHTTP, sentryAddr)

	// Two quick rotations; then lines written with the value of two rotations ago —
	// a backlog read after them — must still be scrubbed.
	putSecret(s2)
	waitFor(t, 20*time.Second, "the first rotation rendered", func() bool {
		return renderedPassword(secretFile) == s2
	})
	putSecret(s3)
	waitFor(t, 20*time.Second, "the second rotation rendered", func() bool {
		return renderedPassword(secretFile) == s3
	})
	w := openAppend(t, filepath.Join(dir, "logs", "backlog.log"))
	for i, pw := range []string{s1, s2, s3} {
		w.line(`{"level":"error","msg":"backlog %d: connect with password %s"}`, i, jsonInner(pw))
	}
	w.line(`{"level":"info","msg":"backlog done"}`)
	w.flush()

	// Wait until the last of each path arrived.
	if _, err := loki.WaitCount(ctx, `{service="scrub-e2e"} |= "backlog done"`, start, 1, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := loki.WaitCount(ctx, `{service="scrub-e2e", source="multi"} |= "REC last"`, start, 1, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := loki.WaitCount(ctx, `{service="scrub-e2e", source="otlp"} |= "otlp last"`, start, 2, time.Minute); err != nil {
		t.Fatal(err)
	}
	for _, id := range traceIDs {
		if _, err := j.WaitForTrace(ctx, id, 1); err != nil {
			t.Fatalf("trace %s: %v", id, err)
		}
	}
	waitFor(t, time.Minute, "the envelopes at the Sentry receiver", func() bool {
		n := 0
		for _, r := range sentrySrv.Requests() {
			if r.Envelope != nil && r.Status == http.StatusOK {
				for _, it := range r.Envelope.Items {
					if it.Type == "attachment" || it.Type == "transaction" {
						n++
					}
				}
			}
		}
		return n >= 2
	})
	time.Sleep(2 * time.Second) // anything still in flight

	// Everything that reached the backends.
	end := time.Now().Add(time.Minute)
	var lokiDump bytes.Buffer
	entries, err := loki.Query(ctx, `{service=~".+"}`, start, end)
	if err != nil {
		t.Fatal(err)
	}
	redacted := 0
	for _, e := range entries {
		fmt.Fprintf(&lokiDump, "%s %v %v\n", e.Line, e.Labels, e.Metadata)
		redacted += strings.Count(e.Line, "[REDACTED]")
	}
	var jaegerDump bytes.Buffer
	for _, id := range traceIDs {
		td, err := j.GetTraceData(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		var m ptrace.JSONMarshaler
		raw, _ := m.MarshalTraces(td)
		jaegerDump.Write(raw)
	}
	jaegerDump.Write(jaegerSearchAll(t, ctx, j, start, end))
	var sentryDump bytes.Buffer
	for _, r := range sentrySrv.Requests() {
		if r.Envelope != nil {
			sentryDump.Write(r.Envelope.Marshal())
		}
	}
	for name, dump := range map[string][]byte{"Loki": lokiDump.Bytes(), "Jaeger": jaegerDump.Bytes(), "Sentry": sentryDump.Bytes()} {
		if len(dump) == 0 {
			t.Errorf("nothing read back from %s", name)
		}
		for i, pw := range []string{s1, s2, s3} {
			for _, leak := range findLeaks(dump, pw) {
				t.Errorf("%s holds secret %d %s", name, i+1, leak)
			}
		}
	}
	if redacted < 20 {
		t.Errorf("only %d markers in Loki: the pushes did not arrive as expected", redacted)
	}
	t.Logf("searched %d Loki entries (%d B), %d B of Jaeger traces, %d B of Sentry envelopes", len(entries), lokiDump.Len(), jaegerDump.Len(), sentryDump.Len())
	if err := agent.stop(30 * time.Second); err != nil {
		t.Errorf("agent exit after SIGTERM: %v", err)
	}
}

// liveSecret returns a fresh secret value that exercises every encoding: random hex
// at both ends (so a fragment is recognisable), HTML and URL special characters, a
// character that changes under Unicode normalisation.
func liveSecret(t *testing.T) string {
	t.Helper()
	b := make([]byte, 10)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	h := hex.EncodeToString(b)
	return h[:12] + "&Pw/é<" + h[12:] + "+@x"
}

// renderedPassword returns db_password from the JSON secret file the agent renders
// ("" until it exists); the renderer need not escape as encoding/json does.
func renderedPassword(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	var v struct {
		Password string `json:"db_password"`
	}
	if json.Unmarshal(data, &v) != nil {
		return ""
	}
	return v.Password
}

// jsonInner returns s JSON-escaped without the quotes.
func jsonInner(s string) string {
	b, _ := json.Marshal(s)
	return string(b[1 : len(b)-1])
}

// wrapLines breaks s into lines of width joined by nl.
func wrapLines(s string, width int, nl string) string {
	var b strings.Builder
	for len(s) > width {
		b.WriteString(s[:width] + nl)
		s = s[width:]
	}
	b.WriteString(s)
	return b.String()
}

// mimeBlob returns a document holding pw base64-encoded and MIME-wrapped at 76
// characters with CRLF, laid out so that pw's characters straddle a line break, and
// the characters of the encoding that depend on pw alone.
func mimeBlob(pw string) (wrapped, core string) {
	doc := strings.Repeat("x", 41) + "\npassword=" + pw + "\n" + strings.Repeat("y", 40)
	enc := base64.StdEncoding.EncodeToString([]byte(doc))
	at := strings.Index(doc, pw)
	first, last := (8*at+5)/6, 8*(at+len(pw))/6
	return wrapLines(enc, 76, "\r\n"), enc[first:last]
}

// encodedForms returns pw in every encoding the scrubber covers, by name: folded
// forms are searched without regard to ASCII case. Each is written by the standard
// library where it has an encoder, not by the agent's code.
func encodedForms(pw string) (folded, exact map[string]string) {
	hx := hex.EncodeToString([]byte(pw))
	sep := func(s string) string {
		var parts []string
		for i := 0; i < len(hx); i += 2 {
			parts = append(parts, hx[i:i+2])
		}
		return strings.Join(parts, s)
	}
	var dec, hexRef strings.Builder
	for _, r := range pw {
		fmt.Fprintf(&dec, "&#%d;", r)
		fmt.Fprintf(&hexRef, "&#x%x;", r)
	}
	ascii, _ := json.Marshal(pw)
	py := strings.ReplaceAll(string(ascii[1:len(ascii)-1]), "é", `\u00e9`)
	folded = map[string]string{
		"as is":             pw,
		"JSON":              jsonInner(pw),
		"JSON, \\u escapes": py,
		"URL query":         url.QueryEscape(pw),
		"URL path":          url.PathEscape(pw),
		"hex":               hx,
		"hex with colons":   sep(":"),
		"hex with dashes":   sep("-"),
		"hex with spaces":   sep(" "),
		"HTML":              html.EscapeString(pw),
		"HTML decimal":      dec.String(),
		"HTML hex":          hexRef.String(),
		"base32":            base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString([]byte(pw)),
		"base32 hex":        base32.HexEncoding.WithPadding(base32.NoPadding).EncodeToString([]byte(pw)),
		"NFD":               norm.NFD.String(pw),
		"NFKC":              norm.NFKC.String(pw),
		"upper case":        strings.ToUpper(pw),
		"start (cut)":       pw[:10],
	}
	basic := base64.StdEncoding.EncodeToString([]byte("app:" + pw))
	_, mimeCore := mimeBlob(pw)
	exact = map[string]string{
		"base64":            base64.RawStdEncoding.EncodeToString([]byte(pw)),
		"base64 URL":        base64.RawURLEncoding.EncodeToString([]byte(pw)),
		"basic auth":        basic[(8*4+5)/6 : 8*(4+len(pw))/6],
		"MIME-wrapped core": mimeCore,
	}
	return folded, exact
}

// findLeaks searches dump, as is and with every line break (raw or JSON-escaped)
// removed, for pw in every encoding.
func findLeaks(dump []byte, pw string) []string {
	flat := strings.NewReplacer("\r", "", "\n", "", `\r`, "", `\n`, "").Replace(string(dump))
	hay := []string{string(dump), flat}
	folded, exact := encodedForms(pw)
	var leaks []string
	for name, f := range folded {
		for _, h := range hay {
			if strings.Contains(strings.ToLower(h), strings.ToLower(f)) {
				leaks = append(leaks, fmt.Sprintf("%s (%q)", name, f))
				break
			}
		}
	}
	for name, f := range exact {
		for _, h := range hay {
			if strings.Contains(h, f) {
				leaks = append(leaks, fmt.Sprintf("%s (%q)", name, f))
				break
			}
		}
	}
	return leaks
}

// pushEverything sends pw through every receiver in every encoding and returns the
// trace IDs of the spans sent.
func pushEverything(t *testing.T, ctx context.Context, pw, dir, otlpGRPC, otlpHTTP, sentryAddr string) []string {
	t.Helper()
	forms := sentForms(pw)
	mime, _ := mimeBlob(pw)

	// Files: JSON lines (the JSON source), plain and multi-line records, a cut line.
	w := openAppend(t, filepath.Join(dir, "logs", "app.log"))
	for name, f := range forms {
		// As the application wrote the form, inside a JSON string (every form is
		// valid there as it is).
		w.line(`{"level":"error","msg":"form %s: %s","password":"%s"}`, name, f, f)
	}
	w.line(`{"level":"error","msg":"cut","pad":"%s","password":"%s`, strings.Repeat("p", 1024-60), pw+strings.Repeat("z", 200))
	w.flush()
	m := openAppend(t, filepath.Join(dir, "multi", "app.log"))
	for name, f := range forms {
		m.line("REC plain %s: %s", name, f)
	}
	m.line("REC split over two lines %s", pw[:11])
	m.line("%s end", pw[11:])
	m.line("REC split over CRLF lines %s\r", pw[:5])
	m.line("%s end", pw[5:])
	m.line("REC mime\r\n%s", mime)
	m.line("REC cut %s%s", strings.Repeat("q", 1024-len("REC cut ")-14), pw)
	m.line("REC last")
	m.flush()

	// OTLP traces: gRPC, HTTP protobuf, HTTP JSON.
	var ids []string
	traces := func(seq byte) (ptrace.Traces, []byte, string) {
		td := secretSpans(pw, forms, seq)
		var pm ptrace.ProtoMarshaler
		raw, err := pm.MarshalTraces(td)
		if err != nil {
			t.Fatal(err)
		}
		raw = addEntityRef(raw, "entity."+pw)
		return td, raw, td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).TraceID().String()
	}
	_, raw, id := traces(1)
	req := ptraceotlp.NewExportRequest()
	if err := req.UnmarshalProto(raw); err != nil {
		t.Fatal(err)
	}
	cc := dial(t, otlpGRPC)
	if _, err := ptraceotlp.NewGRPCClient(cc).Export(ctx, req); err != nil {
		t.Fatalf("OTLP gRPC traces: %v", err)
	}
	ids = append(ids, id)
	_, raw, id = traces(2)
	if resp, body := postOTLP(t, "http://"+otlpHTTP+"/v1/traces", raw); resp.StatusCode != http.StatusOK {
		t.Fatalf("OTLP HTTP traces: %s %s", resp.Status, body)
	}
	ids = append(ids, id)
	td, _, id := traces(3)
	jsonBody, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post("http://"+otlpHTTP+"/v1/traces", "application/json", bytes.NewReader(jsonBody))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("OTLP HTTP JSON traces: %s %s", resp.Status, body)
	}
	ids = append(ids, id)

	// OTLP logs: gRPC and HTTP protobuf.
	ld := secretLogs(pw, forms, mime, "grpc")
	if _, err := plogotlp.NewGRPCClient(cc).Export(ctx, plogotlp.NewExportRequestFromLogs(ld)); err != nil {
		t.Fatalf("OTLP gRPC logs: %v", err)
	}
	var lm plog.ProtoMarshaler
	lraw, err := lm.MarshalLogs(secretLogs(pw, forms, mime, "http"))
	if err != nil {
		t.Fatal(err)
	}
	if resp, body := postOTLP(t, "http://"+otlpHTTP+"/v1/logs", lraw); resp.StatusCode != http.StatusOK {
		t.Fatalf("OTLP HTTP logs: %s %s", resp.Status, body)
	}

	// Sentry: an envelope with every item type, the secret in headers and keys too.
	env := secretEnvelope(pw, forms, mime)
	sreq, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+sentryAddr+"/api/1/envelope/?sentry_key=e2e-public-key", bytes.NewReader(env))
	if err != nil {
		t.Fatal(err)
	}
	sreq.Header.Set("Content-Type", "application/x-sentry-envelope")
	sresp, err := http.DefaultClient.Do(sreq)
	if err != nil {
		t.Fatal(err)
	}
	sbody, _ := io.ReadAll(sresp.Body)
	sresp.Body.Close()
	if sresp.StatusCode != http.StatusOK {
		t.Fatalf("Sentry envelope: %s %s", sresp.Status, sbody)
	}
	return ids
}

// sentForms returns what the application sends: pw in every encoding (the searched
// forms, with whole base64 strings instead of their cores).
func sentForms(pw string) map[string]string {
	folded, exact := encodedForms(pw)
	forms := map[string]string{}
	for k, v := range folded {
		if k != "start (cut)" {
			forms[k] = v
		}
	}
	for k, v := range exact {
		forms[k] = v
	}
	forms["base64 of the value"] = base64.StdEncoding.EncodeToString([]byte(pw))
	forms["basic auth header"] = "Basic " + base64.StdEncoding.EncodeToString([]byte("app:"+pw))
	return forms
}

// fillAttrs puts pw into m in every form as values, in keys, as a bytes value and
// nested.
func fillAttrs(m pcommon.Map, pw string, forms map[string]string) {
	for name, f := range forms {
		m.PutStr("form."+name, f)
	}
	m.PutStr("key."+pw, "value")
	m.PutStr(strings.ToUpper(pw), "upper-case key")
	m.PutStr(base64.StdEncoding.EncodeToString([]byte(pw)), "base64 key")
	m.PutEmptyBytes("bytes").FromRaw([]byte("raw:" + pw))
	m.PutEmptyBytes("bytes.alone").FromRaw([]byte(pw))
	nested := m.PutEmptyMap("nested")
	nested.PutStr("deep."+pw, pw)
	nested.PutEmptySlice("list").AppendEmpty().SetEmptyBytes().FromRaw([]byte(pw))
}

// secretSpans returns one span holding pw in every place a span can.
func secretSpans(pw string, forms map[string]string, seq byte) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "scrub-e2e-app")
	fillAttrs(rs.Resource().Attributes(), pw, forms)
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("scope " + pw)
	fillAttrs(ss.Scope().Attributes(), pw, forms)
	sp := ss.Spans().AppendEmpty()
	sp.SetTraceID(pcommon.TraceID{0x5c, 0x2b, seq, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	sp.SetSpanID(pcommon.SpanID{0x5c, seq, 3, 4, 5, 6, 7, 8})
	now := time.Now()
	sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now))
	sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now.Add(time.Millisecond)))
	sp.SetName("ALTER USER app WITH PASSWORD '" + pw + "'")
	fillAttrs(sp.Attributes(), pw, forms)
	sp.Attributes().PutStr("db.statement", "ALTER USER app WITH PASSWORD '"+pw+"'")
	ev := sp.Events().AppendEmpty()
	ev.SetName("login " + pw)
	fillAttrs(ev.Attributes(), pw, forms)
	l := sp.Links().AppendEmpty()
	l.SetTraceID(pcommon.TraceID{0x5c, 0x2c, seq, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	l.SetSpanID(pcommon.SpanID{0x5d, seq, 3, 4, 5, 6, 7, 8})
	fillAttrs(l.Attributes(), pw, forms)
	return td
}

// secretLogs returns OTLP log records holding pw in bodies, attributes and resources.
func secretLogs(pw string, forms map[string]string, mime, via string) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "scrub-e2e")
	fillAttrs(rl.Resource().Attributes(), pw, forms)
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName("scope " + pw)
	now := pcommon.NewTimestampFromTime(time.Now())
	add := func(body string) plog.LogRecord {
		lr := sl.LogRecords().AppendEmpty()
		lr.SetTimestamp(now)
		lr.SetSeverityNumber(plog.SeverityNumberInfo)
		lr.Body().SetStr(body)
		return lr
	}
	for name, f := range forms {
		fillAttrs(add("otlp "+via+" "+name+": "+f).Attributes(), pw, forms)
	}
	add("mime:\r\n" + mime)
	add("split " + pw[:9] + "\n" + pw[9:])
	lr := sl.LogRecords().AppendEmpty()
	lr.SetTimestamp(now)
	lr.Body().SetEmptyMap().PutStr("password", pw)
	lr.Attributes().PutEmptyBytes("raw").FromRaw([]byte(pw))
	add("otlp last " + via)
	return ld
}

// addEntityRef adds an entity reference whose strings are all s to every resource of
// an ExportTraceServiceRequest: pdata has no API to set one.
func addEntityRef(req []byte, s string) []byte {
	var ref []byte
	for num := protowire.Number(1); num <= 4; num++ {
		ref = protowire.AppendTag(ref, num, protowire.BytesType)
		ref = protowire.AppendString(ref, s)
	}
	var out []byte
	for len(req) > 0 {
		num, typ, n := protowire.ConsumeTag(req)
		m := protowire.ConsumeFieldValue(num, typ, req[n:])
		if num != 1 || typ != protowire.BytesType {
			out = append(out, req[:n+m]...)
			req = req[n+m:]
			continue
		}
		rs, _ := protowire.ConsumeBytes(req[n:])
		var nrs []byte
		for len(rs) > 0 {
			rn, rt, k := protowire.ConsumeTag(rs)
			rm := protowire.ConsumeFieldValue(rn, rt, rs[k:])
			if rn == 1 && rt == protowire.BytesType {
				res, _ := protowire.ConsumeBytes(rs[k:])
				res = append(append([]byte(nil), res...), protowire.AppendTag(nil, 3, protowire.BytesType)...)
				res = protowire.AppendBytes(res, ref)
				nrs = protowire.AppendTag(nrs, 1, protowire.BytesType)
				nrs = protowire.AppendBytes(nrs, res)
			} else {
				nrs = append(nrs, rs[:k+rm]...)
			}
			rs = rs[k+rm:]
		}
		out = protowire.AppendTag(out, 1, protowire.BytesType)
		out = protowire.AppendBytes(out, nrs)
		req = req[n+m:]
	}
	return out
}

// secretEnvelope returns a Sentry envelope holding pw in its header, in item headers
// and keys, and in every item type an SDK sends.
func secretEnvelope(pw string, forms map[string]string, mime string) []byte {
	js := jsonInner(pw)
	formJSON, _ := json.Marshal(forms)
	var b bytes.Buffer
	eventID := "5c2b00000000400080000000000000aa"
	fmt.Fprintf(&b, `{"event_id":%q,"sent_at":%q,"trace":{"trace_id":"5c2b0000000000000000000000000001","public_key":"e2e-public-key","%s":"%s"}}`+"\n",
		eventID, time.Now().UTC().Format(time.RFC3339), js, js)
	item := func(typ, header, payload string) {
		h := `{"type":"` + typ + `","length":` + fmt.Sprint(len(payload))
		if header != "" {
			h += "," + header
		}
		b.WriteString(h + "}\n" + payload + "\n")
	}
	now := time.Now().UTC().Format(time.RFC3339)
	item("event", "", fmt.Sprintf(`{"event_id":%q,"timestamp":%q,"platform":"go","level":"error","message":"login failed for %s","extra":{"forms":%s,"%s":"key"},"request":{"headers":{"Authorization":%q}}}`,
		eventID, now, js, formJSON, js, forms["basic auth header"]))
	item("transaction", "", fmt.Sprintf(`{"type":"transaction","transaction":"rotate","start_timestamp":%q,"timestamp":%q,"contexts":{"trace":{"trace_id":"5c2b0000000000000000000000000001","span_id":"5c2b000000000001","data":{"db.statement":"ALTER USER app WITH PASSWORD '%s'","%s":1}}},"spans":[{"span_id":"5c2b000000000002","trace_id":"5c2b0000000000000000000000000001","description":"ALTER USER app WITH PASSWORD '%s'","data":{"db.statement":"ALTER USER app WITH PASSWORD '%s'","forms":%s}}]}`,
		now, now, js, js, js, js, formJSON))
	item("log", `"item_count":1,"content_type":"application/vnd.sentry.items.log+json"`, fmt.Sprintf(`{"items":[{"timestamp":1.0,"level":"info","body":"connected with %s","attributes":{"db.password":{"value":"%s","type":"string"},"%s":{"value":"x","type":"string"},"auth":{"value":%q,"type":"string"}}}]}`,
		js, js, js, forms["basic auth header"]))
	attachment := "password=" + pw + "\n" + mime + "\n"
	for name, f := range forms {
		attachment += name + "=" + f + "\n"
	}
	item("attachment", fmt.Sprintf(`"filename":"dump-%s.txt","content_type":"text/plain"`, js), attachment)
	item("session", "", fmt.Sprintf(`{"sid":"5c2b0000000040008000000000000001","status":"ok","started":%q,"attrs":{"release":"app@%s","environment":"e2e"}}`, now, js))
	item("sessions", "", fmt.Sprintf(`{"aggregates":[{"started":%q,"exited":1}],"attrs":{"release":"app@%s"}}`, now, js))
	item("user_report", "", fmt.Sprintf(`{"event_id":%q,"name":"user","email":"u@example.com","comments":"my password %s leaked"}`, eventID, js))
	item("check_in", "", fmt.Sprintf(`{"check_in_id":"5c2b0000000040008000000000000002","monitor_slug":"rotate-%s","status":"ok"}`, js))
	item("profile", "", fmt.Sprintf(`{"platform":"go","transaction":{"name":"rotate %s"},"%s":1}`, js, js))
	item("client_report", "", fmt.Sprintf(`{"timestamp":%q,"discarded_events":[{"reason":"%s","category":"error","quantity":1}]}`, now, js))
	return b.Bytes()
}

// jaegerSearchAll returns the raw answers of Jaeger's api_v3 for every trace of
// every service stored between start and end.
func jaegerSearchAll(t *testing.T, ctx context.Context, j *jaegertest.Jaeger, start, end time.Time) []byte {
	t.Helper()
	get := func(u string) []byte {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("jaeger query: %v", err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNotFound {
			t.Fatalf("jaeger query %s: %s %s", u, resp.Status, body)
		}
		return body
	}
	var services struct{ Services []string }
	if err := json.Unmarshal(get(j.QueryURL()+"/api/v3/services"), &services); err != nil || len(services.Services) == 0 {
		t.Fatalf("jaeger services: %v (%v)", err, services.Services)
	}
	var all []byte
	for _, s := range services.Services {
		q := url.Values{}
		q.Set("query.service_name", s)
		q.Set("query.start_time_min", start.UTC().Format(time.RFC3339Nano))
		q.Set("query.start_time_max", end.UTC().Format(time.RFC3339Nano))
		q.Set("query.num_traces", "1000")
		all = append(all, get(j.QueryURL()+"/api/v3/traces?"+q.Encode())...)
	}
	return all
}
