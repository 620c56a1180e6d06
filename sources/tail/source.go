// Package tail is the file source: it follows the files a glob matches, across
// rotation (rename and create, copytruncate) and deletion, joins multi-line records,
// parses each record and hands batches to a sink. A file's saved position advances
// only over batches the sink acknowledged, so a restart resumes where delivery
// stopped: records may be sent twice, never lost.
package tail

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/outrider-dev/outrider/internal/atomicfile"
	"github.com/outrider-dev/outrider/internal/confval"
	"github.com/outrider-dev/outrider/internal/strarena"
	"github.com/outrider-dev/outrider/pipeline"
	"github.com/outrider-dev/outrider/processors/multiline"
	"github.com/outrider-dev/outrider/processors/parse"
)

// Defaults for Settings.
const (
	DefaultDrainTimeout = 5 * time.Second
	DefaultSyncInterval = time.Second
)

const (
	readBufferSize = 64 << 10 // bytes per read(2)
	chunksPerTurn  = 16       // reads of one file before the next file gets a turn
	turnsPerLoop   = 64       // turns before file events are looked at again
	// releaseQuiet is how long a file no longer followed (renamed away, deleted)
	// must stay unchanged, read to its end, before it is closed: its writer may
	// still append until it reopens its path.
	releaseQuiet = time.Second
)

// Settings are what the agent gives a Source besides its configuration.
type Settings struct {
	// Logger receives the source's logs; nil discards them.
	Logger *slog.Logger
	// Metrics are shared by all file sources; nil creates unregistered ones.
	Metrics *Metrics
	// Sink receives the batches. Required.
	Sink pipeline.Sink
	// PositionsFile is where read positions are kept across restarts, such as
	// <data_dir>/positions-<name>.json; written atomically. Empty keeps positions in
	// memory only.
	PositionsFile string
	// StreamLabels are the agent's identity labels (service, namespace, pod,
	// container); the stream also gets "source" and the configured labels. Empty
	// values are left out.
	StreamLabels map[string]string
	// DrainTimeout bounds how long Run, once told to stop, reads the files to their
	// end and waits for the acknowledgements; 0 means DefaultDrainTimeout.
	DrainTimeout time.Duration
	// SyncInterval is how often positions are saved; 0 means DefaultSyncInterval.
	SyncInterval time.Duration
}

// Source tails the files of one configured file source. Build it with New and run it
// once with Run.
type Source struct {
	cfg     Config
	log     *slog.Logger
	m       sourceMetrics
	sink    pipeline.Sink
	parser  parse.Parser
	maxLine int // max_line_bytes
	// baseLabels are the labels of every record; path_metadata adds to them.
	baseLabels map[string]string
	// streams are the streams of a file's records, by stream index, when
	// path_metadata adds nothing.
	streams      *[numStreams]*pipeline.Stream
	posPath      string
	drainTimeout time.Duration
	syncInterval time.Duration

	// noNotify turns file system notifications off (tests of the polling fallback).
	noNotify bool
	// releaseQuiet is releaseQuiet, shorter in tests.
	releaseQuiet time.Duration

	started atomic.Bool

	// Owned by the goroutine running Run.
	byID      map[fileID]*tailer
	lastOwner map[string]*tailer // path → the tailer that last had it
	saved     map[fileID]position
	savedPath map[string]bool
	firstScan bool
	buf       []byte
	warned    map[string]bool
	watcher   *fsnotify.Watcher
	watched   map[string]bool
	scratch   []byte         // a docker message, unescaped
	lines     strarena.Arena // the strings of the lines read
	// batchesBegun counts the batches begun since the last poll tick (releaseIdle).
	batchesBegun int
	// malformedLogged is when lines not in their file's format were last logged;
	// malformedSince counts those seen since.
	malformedLogged time.Time
	malformedSince  int
	// unmatchedLogged is when a path not in the path_metadata layout was last logged.
	unmatchedLogged time.Time

	readC chan struct{} // a watched file was written
	scanC chan struct{} // a watched directory changed
	ackC  chan struct{} // a batch was acknowledged
	saveC chan struct{} // acknowledgements advanced a file's position: save it

	out *outQueue // batches handed over, waiting for the sender

	// capLines and capBytes are max_inflight_batches full batches.
	capLines, capBytes int
	// saveEvery is how many acknowledgements a position save may wait for while
	// batches are still in flight: max_inflight_batches.
	saveEvery int

	mu            sync.Mutex
	tailers       []*tailer // guarded for the saver; changed only by Run's goroutine
	inflight      int       // batches handed over and not acknowledged
	inflightLines int       // their records
	inflightBytes int       // their bytes
	stopped       bool
	free          [][]pipeline.Record // acknowledged batches, for reuse; cap bounds them
	unsavedAcks   int                 // acknowledgements since saveC was last signalled

	// Owned by whoever saves (the saver, then Run after it stopped).
	lastSaved   []byte
	lastDurable []byte // what the last fsynced save wrote
	lagReported float64
	saveFailing bool
}

var _ pipeline.Source = (*Source)(nil)

// New checks cfg (applying its defaults to a copy) and returns a Source ready to Run.
func New(cfg Config, set Settings) (*Source, error) {
	if !supported {
		return nil, errors.New("file tailing needs a Unix system (files are followed by device and inode)")
	}
	cfg.ApplyDefaults()
	p := &confval.Problems{}
	cfg.Validate(p)
	if err := p.Err(); err != nil {
		return nil, err
	}
	if set.Sink == nil {
		return nil, errors.New("tail: Settings.Sink is required")
	}
	parser, err := parse.New(cfg.Parser)
	if err != nil {
		return nil, fmt.Errorf("parser: %w", err)
	}
	if _, err := multiline.New(cfg.Multiline); err != nil {
		return nil, err
	}
	log := set.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := set.Metrics
	if m == nil {
		m = NewMetrics(nil)
	}
	labels := make(map[string]string, len(set.StreamLabels)+len(cfg.Labels)+1)
	for k, v := range set.StreamLabels {
		// The agent's identity describes the agent; with path_metadata kubernetes
		// each file's path says which pod and container it is from.
		if v != "" && cfg.PathMetadata != PathMetadataKubernetes {
			labels[k] = v
		}
	}
	for k, v := range cfg.Labels {
		if v != "" {
			labels[k] = v
		}
	}
	labels["source"] = cfg.Name
	s := &Source{
		cfg:          cfg,
		log:          log,
		m:            m.forSource(cfg.Name),
		sink:         set.Sink,
		parser:       parser,
		maxLine:      int(cfg.MaxLineBytes),
		baseLabels:   labels,
		streams:      newStreams(labels),
		posPath:      set.PositionsFile,
		drainTimeout: set.DrainTimeout,
		syncInterval: set.SyncInterval,
		byID:         map[fileID]*tailer{},
		lastOwner:    map[string]*tailer{},
		warned:       map[string]bool{},
		watched:      map[string]bool{},
		readC:        make(chan struct{}, 1),
		scanC:        make(chan struct{}, 1),
		ackC:         make(chan struct{}, 1),
		saveC:        make(chan struct{}, 1),
		out:          newOutQueue(),
		releaseQuiet: releaseQuiet,
		free:         make([][]pipeline.Record, 0, cfg.MaxInflightBatches),
		capLines:     cfg.MaxInflightBatches * cfg.BatchMaxLines,
		saveEvery:    cfg.MaxInflightBatches,
		capBytes:     cfg.MaxInflightBatches * int(cfg.BatchMaxBytes),
	}
	if s.drainTimeout <= 0 {
		s.drainTimeout = DefaultDrainTimeout
	}
	if s.syncInterval <= 0 {
		s.syncInterval = DefaultSyncInterval
	}
	return s, nil
}

// Run tails until ctx is done. It then reads every followed file to the end it had
// at that moment, hands everything over and waits for the acknowledgements, all
// within the drain timeout; what is still not acknowledged then is logged per file
// (lines and bytes) and read again on the next start. It saves the positions, closes
// the files and returns nil. Run may be called once.
func (s *Source) Run(ctx context.Context) error {
	if !s.started.CompareAndSwap(false, true) {
		return errors.New("tail: Run called twice; build a new Source")
	}
	saved, err := loadPositions(s.posPath)
	if err != nil {
		s.log.Warn("cannot use the saved positions; starting as if there were none", "error", err)
	}
	s.saved = saved
	s.savedPath = make(map[string]bool, len(saved))
	for _, p := range saved {
		s.savedPath[p.Path] = true
	}
	s.buf = make([]byte, readBufferSize)

	bg, stopBg := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	if !s.noNotify {
		s.startWatcher(bg, &wg)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.saveLoop(bg)
	}()
	sendCtx, stopSend := context.WithCancel(context.WithoutCancel(ctx))
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		s.sendLoop(sendCtx)
	}()

	s.loop(ctx)

	s.finish()
	stopSend()
	<-sent
	stopBg()
	if s.watcher != nil {
		_ = s.watcher.Close()
	}
	wg.Wait()
	s.save()
	s.shutdown()
	return nil
}

// loop reads until ctx is done.
func (s *Source) loop(ctx context.Context) {
	poll := time.NewTicker(s.cfg.PollInterval)
	defer poll.Stop()
	rescan := time.NewTicker(s.cfg.RescanInterval)
	defer rescan.Stop()
	wake := time.NewTimer(time.Hour)
	defer wake.Stop()
	ready := make(chan struct{})
	close(ready)

	s.firstScan = true
	s.scan()
	s.recoverRotated()
	s.firstScan = false
	s.saved, s.savedPath = nil, nil

	for ctx.Err() == nil {
		more := s.readAll()
		next := s.housekeep(time.Now())
		wake.Stop()
		if next > 0 {
			wake.Reset(next)
		}
		var again <-chan struct{}
		if more {
			again = ready
		}
		select {
		case <-ctx.Done():
		case <-poll.C:
			s.poll()
			s.releaseIdle()
		case <-rescan.C:
			s.scan()
		case <-s.scanC:
			s.scan()
			s.markUnread()
		case <-s.readC:
			s.markUnread()
		case <-s.ackC:
		case <-wake.C:
		case <-again:
		}
	}
}

// finish, once the source is told to stop, reads every open file up to the size it
// has now, hands over the records the joiner holds, and waits until everything handed
// over is acknowledged, or the drain timeout passes. An unfinished last line stays in
// the file for the next start.
func (s *Source) finish() {
	deadline := time.NewTimer(s.drainTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(s.cfg.PollInterval)
	defer tick.Stop()
	s.scan() // files created since the last look (a rotation just before the stop)
	for {
		for _, t := range s.tailers {
			// Files opened meanwhile (reopened after parking, a copy) count too.
			if t.f == nil || t.stopSet {
				continue
			}
			t.stopAt, t.stopSet = t.readOff, true
			if fi, err := t.f.Stat(); err == nil {
				t.stopAt = max(fi.Size(), t.readOff)
			}
			t.atEOF = false
		}
		more := s.readAll()
		s.housekeep(time.Now())
		done := true
		for _, t := range s.tailers {
			if t.parked {
				done = false
			}
			if t.f == nil {
				continue
			}
			if t.readOff < t.stopAt || len(t.held) > 0 {
				done = false
				continue
			}
			if t.joinPending() {
				s.flushJoined(t)
			}
			if len(t.batch) > 0 && !s.handOver(t, false) {
				done = false
			}
		}
		s.mu.Lock()
		inflight := s.inflight
		s.mu.Unlock()
		if done && inflight == 0 {
			s.log.Info("stopped after shipping every file to its end", "files", len(s.tailers))
			return
		}
		if more {
			select {
			case <-deadline.C:
				s.reportUnshipped()
				return
			default:
				continue
			}
		}
		select {
		case <-deadline.C:
			s.reportUnshipped()
			return
		case <-s.ackC:
		case <-tick.C:
			for _, t := range s.tailers {
				if t.f != nil && t.readOff < t.stopAt {
					t.atEOF = false
				}
			}
		}
	}
}

// maxCountBytes bounds how much of a file reportUnshipped reads to count its lines.
const maxCountBytes = 64 << 20

// reportUnshipped logs, per file, what the drain timeout left unacknowledged.
func (s *Source) reportUnshipped() {
	var files, bytesLeft int64
	for _, t := range s.tailers {
		s.mu.Lock()
		acked, path, end := t.acked, t.path, max(t.size, t.readOff, t.stopAt)
		s.mu.Unlock()
		if t.f != nil {
			if fi, err := t.f.Stat(); err == nil {
				end = max(end, fi.Size())
			}
		}
		if end <= acked {
			continue
		}
		files++
		bytesLeft += end - acked
		args := []any{"path", path, "bytes", end - acked}
		if t.f != nil {
			lines, complete := countLines(t.f, acked, end)
			args = append(args, "lines", lines)
			if !complete {
				args = append(args, "lines_counted_in_first_bytes", maxCountBytes)
			}
		}
		s.log.Warn("stopping before these lines of the file were shipped; they are read again on the next start", args...)
	}
	s.log.Warn("the drain timeout passed before everything was shipped; raise server.shutdown_timeout or check the exporter",
		"drain_timeout", s.drainTimeout, "files", files, "bytes", bytesLeft)
}

// countLines counts the line ends in [from, to) of f, reading at most maxCountBytes;
// complete is false when it stopped there.
func countLines(f io.ReaderAt, from, to int64) (lines int, complete bool) {
	buf := make([]byte, readBufferSize)
	limit := min(to, from+maxCountBytes)
	for off := from; off < limit; {
		n, err := f.ReadAt(buf[:min(int64(len(buf)), limit-off)], off)
		lines += bytes.Count(buf[:n], []byte{'\n'})
		off += int64(n)
		if err != nil || n == 0 {
			return lines, off >= to
		}
	}
	return lines, limit == to
}

// shutdown closes the files and takes this source's share out of the gauges. Late
// acknowledgements still update the tailers, which are no longer saved.
func (s *Source) shutdown() {
	s.mu.Lock()
	s.stopped = true
	s.m.batchesInflight.Sub(float64(s.inflight))
	s.mu.Unlock()
	for _, t := range s.tailers {
		s.closeFile(t)
	}
	s.m.positionLag.Sub(s.lagReported)
	s.lagReported = 0
}

// saveLoop saves positions as soon as an acknowledgement advances one (coalesced:
// acknowledgements that arrive during a save are covered by the next), and every sync
// interval, until ctx is done. Saving right after the acknowledgement bounds what a
// crash makes the next start send again; that save replaces the file atomically but
// without fsync, so that it takes microseconds (a process crash — SIGKILL, OOM —
// keeps it), and the sync interval's save, like the last one, also makes it durable
// against a power loss.
func (s *Source) saveLoop(ctx context.Context) {
	t := time.NewTicker(s.syncInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.saveC:
			s.saveFast()
		case <-t.C:
			s.save()
		}
	}
}

// saveFast is save without fsync.
func (s *Source) saveFast() { s.write(false) }

// save writes the acknowledged position of every open file, if it changed, and
// updates the lag gauge. The file is fsynced.
func (s *Source) save() { s.write(true) }

func (s *Source) write(durable bool) {
	pf := positionsFile{Version: positionsVersion, Files: []position{}}
	var lag int64
	s.mu.Lock()
	for _, t := range s.tailers {
		pf.Files = append(pf.Files, position{
			Path:             t.path,
			Dev:              t.id.dev,
			Inode:            t.id.ino,
			Offset:           t.acked,
			Shipped:          shippedMap(&t.shipped, t.acked),
			Fingerprint:      formatFingerprint(t.fp),
			FingerprintBytes: t.fpLen,
		})
		if d := t.size - t.acked; d > 0 {
			lag += d
		}
	}
	s.mu.Unlock()
	s.m.positionLag.Add(float64(lag) - s.lagReported)
	s.lagReported = float64(lag)

	if s.posPath == "" {
		return
	}
	data, err := json.MarshalIndent(pf, "", "  ")
	if err != nil {
		s.log.Error("cannot encode positions", "error", err)
		return
	}
	if bytes.Equal(data, s.lastDurable) || (!durable && bytes.Equal(data, s.lastSaved)) {
		return
	}
	if durable {
		_, err = atomicfile.Write(s.posPath, data, atomicfile.Options{Mode: 0o600})
	} else {
		err = replaceFile(s.posPath, data)
	}
	if err != nil {
		if !s.saveFailing {
			s.log.Warn("cannot save read positions; a restart would read again what was sent since the last save; check that the data directory is writable",
				"file", s.posPath, "error", err)
		}
		s.saveFailing = true
		return
	}
	if s.saveFailing {
		s.log.Info("saving read positions works again", "file", s.posPath)
	}
	s.saveFailing = false
	s.lastSaved = data
	if durable {
		s.lastDurable = data
	}
}

// replaceFile replaces path with data atomically for other processes (a temporary
// file renamed over it), without fsync: durable against a crash of this process, not
// of the machine.
func replaceFile(path string, data []byte) error {
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp-fast")
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return nil
}

// signal wakes whoever waits on c, without blocking.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// newStreams returns the streams of a file's records with the given labels: raw
// lines with them, stdout and stderr with the stream label too.
func newStreams(labels map[string]string) *[numStreams]*pipeline.Stream {
	var out [numStreams]*pipeline.Stream
	out[streamRaw] = pipeline.NewStream(labels)
	for i := streamStdout; i < numStreams; i++ {
		l := make(map[string]string, len(labels)+1)
		for k, v := range labels {
			l[k] = v
		}
		l["stream"] = streamNames[i]
		out[i] = pipeline.NewStream(l)
	}
	return &out
}

// pathLabels sets the streams and metadata path_metadata gives the file at path.
func (s *Source) pathLabels(t *tailer, path string) {
	t.labels = s.streams
	if s.cfg.PathMetadata == PathMetadataNone {
		return
	}
	m, ok := parsePodPath(s.cfg.PathMetadata, path)
	if !ok {
		s.m.pathUnmatched.Inc()
		if now := time.Now(); now.Sub(s.unmatchedLogged) >= malformedEvery {
			s.unmatchedLogged = now
			s.log.Warn("file path does not follow the path_metadata layout; reading it without the labels the layout gives",
				"path", path, "path_metadata", s.cfg.PathMetadata)
		}
		return
	}
	labels := make(map[string]string, len(s.baseLabels)+3)
	for k, v := range s.baseLabels {
		labels[k] = v
	}
	for k, v := range map[string]string{"namespace": m.namespace, "pod": m.pod, "container": m.container} {
		if v != "" {
			labels[k] = v
		}
	}
	t.labels = newStreams(labels)
	t.uid = m.uid
}
