package e2e

import (
	"bufio"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// logrotateBin returns the path of the real logrotate, failing (never skipping) when
// it is not installed.
func logrotateBin(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("logrotate"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/logrotate"); err == nil {
		return "/usr/sbin/logrotate"
	}
	t.Fatal("the real logrotate is required: apt-get install -y --no-install-recommends logrotate (.ci/run does)")
	return ""
}

// appWriter is the application: it appends numbered lines to path at a steady rate,
// and reopens path when told (what a postrotate signal makes an app do).
type appWriter struct {
	path   string
	reopen chan struct{}
	done   chan struct{}
	n      int // lines written, valid after done
	err    error
}

func startAppWriter(path string, perSecond int, d time.Duration) *appWriter {
	w := &appWriter{path: path, reopen: make(chan struct{}, 1), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		open := func() (*os.File, *bufio.Writer, error) {
			f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
			if err != nil {
				return nil, nil, err
			}
			return f, bufio.NewWriterSize(f, 64<<10), nil
		}
		f, bw, err := open()
		if err != nil {
			w.err = err
			return
		}
		defer func() { _ = f.Close() }()
		const tick = 5 * time.Millisecond
		per := max(perSecond*int(tick)/int(time.Second), 1)
		tk := time.NewTicker(tick)
		defer tk.Stop()
		end := time.Now().Add(d)
		for time.Now().Before(end) {
			select {
			case <-w.reopen:
				_ = bw.Flush()
				_ = f.Close()
				if f, bw, err = open(); err != nil {
					w.err = err
					return
				}
			case <-tk.C:
				for range per {
					bw.WriteString(seqLine(w.n))
					bw.WriteByte('\n')
					w.n++
				}
				if err := bw.Flush(); err != nil {
					w.err = err
					return
				}
			}
		}
	}()
	return w
}

// seqsOnDisk returns the line numbers present in the files of dir, gzip ones included.
func seqsOnDisk(t *testing.T, dir string, n int) []bool {
	t.Helper()
	seen := make([]bool, n)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || !strings.HasPrefix(e.Name(), "app.log") {
			continue
		}
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		var r io.Reader = f
		if strings.HasSuffix(e.Name(), ".gz") {
			zr, err := gzip.NewReader(f)
			if err != nil {
				t.Fatalf("%s: %v", e.Name(), err)
			}
			r = zr
		}
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			l := sc.Text()
			var seq int
			if i := strings.Index(l, "seq="); i >= 0 {
				if _, err := fmt.Sscanf(l[i+4:], "%d", &seq); err == nil && seq >= 0 && seq < n && l == seqLine(seq) {
					seen[seq] = true
				}
			}
		}
		if err := sc.Err(); err != nil {
			t.Fatalf("reading %s back: %v", e.Name(), err)
		}
		f.Close()
	}
	return seen
}

// metricValue returns the value of the sample of name whose labels contain labels
// (e.g. `reason="truncated"`), or 0.
func metricValue(body, name, labels string) float64 {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `\{([^}]*)\} (\S+)$`)
	for _, m := range re.FindAllStringSubmatch(body, -1) {
		if strings.Contains(m[1], labels) {
			v, _ := strconv.ParseFloat(m[2], 64)
			return v
		}
	}
	return 0
}

// TestLogrotateModes runs the real logrotate once a second over a file written at a
// steady rate, in each of its modes, while a slow Loki (a delaying proxy in front of a
// real one) holds the reader back, and counts the numbered lines back from Loki.
// Nothing may be lost but what copytruncate itself destroys: the lines written
// between its copy and its truncation, which are in no file on disk.
func TestLogrotateModes(t *testing.T) {
	bin := logrotateBin(t)
	loki := sharedLoki(t)
	modes := []struct {
		name       string
		directives string
		reopen     bool // create: the app reopens its file after each rotation
		copies     bool // copytruncate: the reader must have read from copies
	}{
		{"create", "create 0644", true, false},
		{"copytruncate", "copytruncate", false, true},
		{"dateext", "copytruncate\n    dateext\n    dateformat -%Y%m%d-%H%M%S", false, true},
		{"compress-delaycompress", "copytruncate\n    compress\n    delaycompress", false, true},
		{"create-compress-delaycompress", "create 0644\n    compress\n    delaycompress", true, false},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			proxy := startDelayProxy(t, loki.URL)
			proxy.delay.Store(int64(700 * time.Millisecond))
			dir := t.TempDir()
			logs := filepath.Join(dir, "logs")
			mkdirs(t, logs)
			service := "e2e-logrotate-" + m.name
			cfgPath := filepath.Join(dir, "outrider.yaml")
			// Small in-flight limits against a slow Loki: the reader falls seconds behind.
			writeFile(t, cfgPath, fileAgentConfig(dir, service, proxy.URL, "20s",
				"      batch_max_lines: 250\n      max_inflight_batches: 2"))
			rotConf := filepath.Join(dir, "logrotate.conf")
			writeFile(t, rotConf, fmt.Sprintf("%s/app.log {\n    rotate 1000\n    missingok\n    nomail\n    %s\n}\n", logs, m.directives))
			start := time.Now().Add(-time.Minute)
			agent := startAgent(t, cfgPath)
			addr := waitListen(t, agent)

			// At most 500 lines in flight, each acknowledged 1.7 s or more after it was read
			// (max_wait and the proxy): under 300 lines/s, well below what is written.
			const rate, writeFor = 800, 6 * time.Second
			w := startAppWriter(filepath.Join(logs, "app.log"), rate, writeFor)
			var rotations int
			var rotErr error
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				tk := time.NewTicker(time.Second)
				defer tk.Stop()
				for {
					select {
					case <-w.done:
						return
					case <-tk.C:
					}
					out, err := exec.Command(bin, "-f", "-s", filepath.Join(dir, "logrotate.state"), rotConf).CombinedOutput()
					if err != nil {
						rotErr = fmt.Errorf("logrotate: %v: %s", err, out)
						return
					}
					rotations++
					if m.reopen {
						select {
						case w.reopen <- struct{}{}:
						default:
						}
					}
				}
			}()
			<-w.done
			wg.Wait()
			if w.err != nil {
				t.Fatal(w.err)
			}
			if rotErr != nil {
				t.Fatal(rotErr)
			}
			n := w.n
			onDisk := seqsOnDisk(t, logs, n)
			window := 0
			for _, ok := range onDisk {
				if !ok {
					window++
				}
			}
			if _, err := loki.WaitCount(context.Background(), fmt.Sprintf(`{service=%q}`, service), start, n-window, 120*time.Second); err != nil {
				t.Logf("waiting for the lines on disk: %v", err)
			}
			time.Sleep(2 * time.Second) // let any duplicate arrive before counting
			entries, err := loki.Query(context.Background(), fmt.Sprintf(`{service=%q}`, service), start, time.Now().Add(time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			inLoki := make([]int, n)
			altered := 0
			for _, e := range entries {
				var seq int
				i := strings.Index(e.Line, "seq=")
				if i < 0 {
					altered++
					continue
				}
				if _, err := fmt.Sscanf(e.Line[i+4:], "%d", &seq); err != nil || seq < 0 || seq >= n || e.Line != seqLine(seq) {
					altered++
					if altered <= 3 {
						t.Errorf("entry is not a line the app wrote (cut or altered): %q", e.Line)
					}
					continue
				}
				inLoki[seq]++
			}
			lost, lostOnDisk, dups := 0, 0, 0
			for seq, c := range inLoki {
				switch {
				case c == 0 && onDisk[seq]:
					lostOnDisk++
					lost++
					if lostOnDisk <= 5 {
						t.Errorf("line %d is on disk but not in Loki", seq)
					}
				case c == 0:
					lost++
				case c > 1:
					dups += c - 1
				}
			}

			metrics := httpGet(t, "http://"+addr+"/metrics")
			lostBytes := metricValue(metrics, "outrider_tail_lost_bytes_total", `reason="truncated"`)
			cut := metricValue(metrics, "outrider_tail_cut_lines_dropped_total", `source="app"`)
			copies := metricValue(metrics, "outrider_tail_truncation_copies_total", `source="app"`)
			truncs := metricValue(metrics, "outrider_tail_truncations_total", `source="app"`)
			renames := metricValue(metrics, "outrider_tail_rotations_total", `source="app"`)
			behind := 0
			for _, r := range agentLogRecords(t, agent) {
				if r["msg"] == "file copied and truncated (copytruncate); reading the rest from the copy" {
					if off, size := r["offset"].(float64), r["copy_size"].(float64); off < size {
						behind++
					}
				}
			}
			t.Logf("%s: %d lines at %d/s, %d logrotate runs; lost %d (in no file on disk: %d, the copy-to-truncate windows), duplicated %d, altered %d",
				m.name, n, rate, rotations, lost, window, dups, altered)
			t.Logf("%s: agent reported: truncations %v, read from a copy %v (reader behind at %d of them), lost bytes seen in windows %v (%.0f lines), cut lines dropped %v, renames %v",
				m.name, truncs, copies, behind, lostBytes, lostBytes/float64(len(seqLine(0))+1), cut, renames)

			if err := agent.stop(30 * time.Second); err != nil {
				t.Errorf("agent exit after SIGTERM: %v", err)
			}
			if lostOnDisk != 0 || dups != 0 || altered != 0 {
				t.Fatalf("%d lines lost that were on disk, %d duplicated, %d altered; want 0", lostOnDisk, dups, altered)
			}
			if lost > window {
				t.Fatalf("lost %d lines; more than the %d of copytruncate's windows", lost, window)
			}
			if !m.copies && window != 0 {
				t.Fatalf("%d lines in no file on disk in %s mode; the writer or logrotate lost them", window, m.name)
			}
			if rotations < 4 {
				t.Fatalf("logrotate ran %d times in %s; want about one a second", rotations, writeFor)
			}
			if m.copies && behind == 0 {
				t.Fatalf("the reader was never behind at a truncation: the slow Loki did not hold it back, so reading from copies went untested")
			}
			if !m.copies && renames == 0 {
				t.Fatalf("no rotation by rename noticed")
			}
		})
	}
}

// TestRotationStormBoundsOpenFiles renames the file away 20 times a second for 5 s
// while a slow Loki holds the reader back: the agent keeps at most max_rotated_files
// rotated files open (the others are reopened by inode later), and every line still
// arrives exactly once.
func TestRotationStormBoundsOpenFiles(t *testing.T) {
	loki := sharedLoki(t)
	proxy := startDelayProxy(t, loki.URL)
	proxy.delay.Store(int64(500 * time.Millisecond))
	dir := t.TempDir()
	logs := filepath.Join(dir, "logs")
	mkdirs(t, logs)
	cfgPath := filepath.Join(dir, "outrider.yaml")
	const maxRotated = 8
	writeFile(t, cfgPath, fileAgentConfig(dir, "e2e-rotation-storm", proxy.URL, "20s",
		fmt.Sprintf("      batch_max_lines: 500\n      max_inflight_batches: 2\n      max_rotated_files: %d", maxRotated)))
	start := time.Now().Add(-time.Minute)
	agent := startAgent(t, cfgPath)
	waitListen(t, agent)
	fdDir := fmt.Sprintf("/proc/%d/fd", agent.cmd.Process.Pid)
	countFDs := func() int {
		e, _ := os.ReadDir(fdDir)
		return len(e)
	}
	base := countFDs()

	path := filepath.Join(logs, "app.log")
	w := startAppWriter(path, 2000, 5*time.Second)
	peak, renamed := 0, 0
	tk := time.NewTicker(50 * time.Millisecond)
loop:
	for {
		select {
		case <-w.done:
			break loop
		case <-tk.C:
		}
		if err := os.Rename(path, filepath.Join(logs, fmt.Sprintf("app.log.%04d", renamed))); err == nil {
			renamed++
			w.reopen <- struct{}{}
		}
		peak = max(peak, countFDs())
	}
	tk.Stop()
	if w.err != nil {
		t.Fatal(w.err)
	}
	for range 20 { // while the backlog drains
		peak = max(peak, countFDs())
		time.Sleep(100 * time.Millisecond)
	}
	n := w.n
	if _, err := loki.WaitCount(context.Background(), `{service="e2e-rotation-storm"}`, start, n, 120*time.Second); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	entries, err := loki.Query(context.Background(), `{service="e2e-rotation-storm"}`, start, time.Now().Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, e := range entries {
		lines = append(lines, e.Line)
	}
	t.Logf("%d files renamed away, %d lines: %d descriptors at start, %d at the peak (max_rotated_files %d)", renamed, n, base, peak, maxRotated)
	// The followed file, the rotated ones, one new file being opened, and up to four
	// more connections to Loki than at the start (concurrency 2, and idle ones).
	if limit := base + 1 + maxRotated + 1 + 4; peak > limit {
		t.Fatalf("%d descriptors at the peak; want at most %d", peak, limit)
	}
	checkExactlyOnce(t, lines, n)
	if err := agent.stop(30 * time.Second); err != nil {
		t.Errorf("agent exit after SIGTERM: %v", err)
	}
}
