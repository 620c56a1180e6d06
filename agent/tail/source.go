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
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/outrider-dev/outrider/agent/multiline"
	"github.com/outrider-dev/outrider/agent/parse"
	"github.com/outrider-dev/outrider/agent/pipeline"
	"github.com/outrider-dev/outrider/internal/atomicfile"
	"github.com/outrider-dev/outrider/internal/confval"
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
	// DrainTimeout bounds how long Run waits for outstanding acknowledgements when
	// it stops; 0 means DefaultDrainTimeout.
	DrainTimeout time.Duration
	// SyncInterval is how often positions are saved; 0 means DefaultSyncInterval.
	SyncInterval time.Duration
}

// Source tails the files of one configured file source. Build it with New and run it
// once with Run.
type Source struct {
	cfg          Config
	log          *slog.Logger
	m            sourceMetrics
	sink         pipeline.Sink
	parser       parse.Parser
	stream       *pipeline.Stream
	posPath      string
	drainTimeout time.Duration
	syncInterval time.Duration

	// noNotify turns file system notifications off (tests of the polling fallback).
	noNotify bool

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

	readC chan struct{} // a watched file was written
	scanC chan struct{} // a watched directory changed
	ackC  chan struct{} // a batch was acknowledged
	saveC chan struct{} // an acknowledgement advanced a file's position

	mu       sync.Mutex
	tailers  []*tailer // guarded for the saver; changed only by Run's goroutine
	inflight int
	stopped  bool

	// Owned by whoever saves (the saver, then Run after it stopped).
	lastSaved   []byte
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
		if v != "" {
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
		stream:       pipeline.NewStream(labels),
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
	}
	if s.drainTimeout <= 0 {
		s.drainTimeout = DefaultDrainTimeout
	}
	if s.syncInterval <= 0 {
		s.syncInterval = DefaultSyncInterval
	}
	return s, nil
}

// Run tails until ctx is done. It then stops reading, waits up to the drain timeout
// for the acknowledgements of the batches it handed over, saves the positions, closes
// the files and returns nil. What was read but not acknowledged is read again on the
// next start. Run may be called once.
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

	s.loop(ctx)

	s.drain()
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
	s.scan(ctx)
	s.recoverRotated()
	s.firstScan = false
	s.saved, s.savedPath = nil, nil

	for ctx.Err() == nil {
		more := s.readAll(ctx)
		if ctx.Err() != nil {
			return
		}
		next := s.housekeep(ctx, time.Now())
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
			s.poll(ctx)
		case <-rescan.C:
			s.scan(ctx)
		case <-s.scanC:
			s.scan(ctx)
			s.markUnread()
		case <-s.readC:
			s.markUnread()
		case <-s.ackC:
		case <-wake.C:
		case <-again:
		}
	}
}

// drain waits, up to the drain timeout, until every batch handed over is acknowledged.
func (s *Source) drain() {
	deadline := time.NewTimer(s.drainTimeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		n := s.inflight
		s.mu.Unlock()
		if n == 0 {
			return
		}
		select {
		case <-s.ackC:
		case <-deadline.C:
			s.log.Warn("stopping with unacknowledged batches; their lines will be read again on the next start",
				"batches", n, "drain_timeout", s.drainTimeout)
			return
		}
	}
}

// shutdown closes the files and takes this source's share out of the gauges. Late
// acknowledgements still update the tailers, which are no longer saved.
func (s *Source) shutdown() {
	s.mu.Lock()
	s.stopped = true
	s.m.batchesInflight.Sub(float64(s.inflight))
	s.mu.Unlock()
	for _, t := range s.tailers {
		_ = t.f.Close()
		s.m.filesOpen.Dec()
	}
	s.m.positionLag.Sub(s.lagReported)
	s.lagReported = 0
}

// saveLoop saves positions as soon as an acknowledgement advances one (coalesced:
// acknowledgements that arrive during a save are covered by the next), and every sync
// interval, until ctx is done. Saving right after the acknowledgement bounds what a
// crash makes the next start send again to the batches in flight.
func (s *Source) saveLoop(ctx context.Context) {
	t := time.NewTicker(s.syncInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.saveC:
			s.save()
		case <-t.C:
			s.save()
		}
	}
}

// save writes the acknowledged position of every open file, if it changed, and
// updates the lag gauge.
func (s *Source) save() {
	pf := positionsFile{Version: positionsVersion, Files: []position{}}
	var lag int64
	s.mu.Lock()
	for _, t := range s.tailers {
		pf.Files = append(pf.Files, position{
			Path:             t.path,
			Dev:              t.id.dev,
			Inode:            t.id.ino,
			Offset:           t.acked,
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
	if bytes.Equal(data, s.lastSaved) {
		return
	}
	if _, err := atomicfile.Write(s.posPath, data, atomicfile.Options{Mode: 0o600}); err != nil {
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
}

// signal wakes whoever waits on c, without blocking.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
