package tail

import (
	"fmt"
	"path/filepath"
	"sort"
	"time"

	"github.com/outrider-dev/outrider/internal/confval"
	"github.com/outrider-dev/outrider/processors/multiline"
	"github.com/outrider-dev/outrider/processors/parse"
)

// Defaults applied by Config.ApplyDefaults.
const (
	DefaultName               = "file"
	DefaultStartAt            = StartAtBeginning
	DefaultPollInterval       = 250 * time.Millisecond
	DefaultRescanInterval     = 5 * time.Second
	DefaultMaxLineBytes       = 256 << 10
	DefaultBatchMaxLines      = 1000
	DefaultBatchMaxBytes      = 1 << 20
	DefaultMaxInflightBatches = 6
	DefaultMaxRotatedFiles    = 16
	DefaultFormat             = FormatRaw
	DefaultPathMetadata       = PathMetadataNone
)

// Values of Config.StartAt.
const (
	StartAtBeginning = "beginning"
	StartAtEnd       = "end"
)

// maxMaxLineBytes bounds max_line_bytes: a line is held in memory whole.
const maxMaxLineBytes = 64 << 20

// maxMaxRotatedFiles bounds max_rotated_files: each is an open file descriptor.
const maxMaxRotatedFiles = 1024

// Config configures one file source.
type Config struct {
	// Name names the source: the "source" label of its records and metrics, and the
	// name of its positions file. Default "file".
	Name string `yaml:"name"`
	// Path is an absolute glob (filepath.Match syntax) of the files to tail.
	Path string `yaml:"path"`
	// Exclude lists globs matched against the full path or the base name of each
	// file Path matches; a file matching any is not tailed.
	Exclude []string `yaml:"exclude"`
	// StartAt is "beginning" or "end": where to start reading files that have no
	// saved position when the source starts. Files that appear later are always
	// read from the beginning.
	StartAt string `yaml:"start_at"`
	// PollInterval is how often open files are checked for growth, truncation and
	// rotation, in case file system notifications are missing or unavailable.
	PollInterval time.Duration `yaml:"poll_interval"`
	// RescanInterval is how often Path is expanded again to find new files (a
	// notification on their directory finds them at once).
	RescanInterval time.Duration `yaml:"rescan_interval"`
	// Format is how the files are written: "raw" (default) takes each line as it
	// is; "cri" and "docker" read container runtime logs (the kubelet's
	// /var/log/pods, Docker's json-file), joining the lines the runtime split and
	// taking the runtime's time and stream (the "stream" label: stdout or stderr);
	// "auto" picks one of the three for each file from its first line.
	Format string `yaml:"format"`
	// PathMetadata takes labels from each file's path: "none" (default),
	// "kubernetes" (namespace, pod and container from /var/log/pods/<namespace>_
	// <pod>_<uid>/<container>/<n>.log, the pod uid as metadata), or
	// "kubernetes_container" (container from <container>/<n>.log in one pod's
	// directory).
	PathMetadata string `yaml:"path_metadata"`
	// MaxLineBytes caps a line (with cri and docker, a line the application wrote,
	// however many parts the runtime split it in); the rest of a longer line is
	// dropped and counted.
	MaxLineBytes confval.ByteSize `yaml:"max_line_bytes"`
	// BatchMaxLines caps the records of one batch handed to the sink. A batch is
	// also handed over as soon as the reader reaches the end of the file.
	BatchMaxLines int `yaml:"batch_max_lines"`
	// BatchMaxBytes caps the bytes of one batch (as pipeline.Record.Size counts
	// them), so a batch of long lines or stack traces never outgrows an exporter's
	// pending budget and waits for it forever.
	BatchMaxBytes confval.ByteSize `yaml:"batch_max_bytes"`
	// MaxInflightBatches caps what is handed over and not yet acknowledged, in full
	// batches: at most MaxInflightBatches × BatchMaxLines records and
	// MaxInflightBatches × BatchMaxBytes bytes. A batch handed over at the end of a
	// file counts for its records and bytes, not as a whole batch, so small batches
	// never hold reading up while the exporter waits to fill its requests. A full
	// batch waits at the cap, which bounds memory; the file is the buffer.
	MaxInflightBatches int `yaml:"max_inflight_batches"`
	// MaxRotatedFiles caps the files kept open that are no longer matched by Path
	// (renamed away by rotation, deleted, or the copy of a copytruncate) while their
	// rest is read. Beyond it, the newest of them are closed and reopened by device
	// and inode, in their directory, when their turn comes; one deleted meanwhile is
	// lost, counted and logged.
	MaxRotatedFiles int `yaml:"max_rotated_files"`
	// Multiline joins stack traces and multi-line records.
	Multiline multiline.Config `yaml:"multiline"`
	// Parser extracts level, time and correlation ids from each record.
	Parser parse.Config `yaml:"parser"`
	// Labels are static labels added to the source's stream.
	Labels map[string]string `yaml:"labels"`
}

// ApplyDefaults fills zero-valued fields with their defaults.
func (c *Config) ApplyDefaults() {
	if c.Name == "" {
		c.Name = DefaultName
	}
	if c.StartAt == "" {
		c.StartAt = DefaultStartAt
	}
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.RescanInterval == 0 {
		c.RescanInterval = DefaultRescanInterval
	}
	if c.MaxLineBytes == 0 {
		c.MaxLineBytes = DefaultMaxLineBytes
	}
	if c.BatchMaxLines == 0 {
		c.BatchMaxLines = DefaultBatchMaxLines
	}
	if c.BatchMaxBytes == 0 {
		c.BatchMaxBytes = DefaultBatchMaxBytes
	}
	if c.MaxInflightBatches == 0 {
		c.MaxInflightBatches = DefaultMaxInflightBatches
	}
	if c.MaxRotatedFiles == 0 {
		c.MaxRotatedFiles = DefaultMaxRotatedFiles
	}
	if c.Format == "" {
		c.Format = DefaultFormat
	}
	if c.PathMetadata == "" {
		c.PathMetadata = DefaultPathMetadata
	}
	c.Multiline.ApplyDefaults()
	c.Parser.ApplyDefaults()
}

// Validate records every problem of c in p, with field paths relative to the source.
// Call it after ApplyDefaults.
func (c *Config) Validate(p *confval.Problems) {
	if !validName(c.Name) {
		p.Addf("name", "%q is not a valid name; use letters, digits, '_', '-' and '.' (it names the positions file)", c.Name)
	}
	switch {
	case c.Path == "":
		p.Addf("path", "required: an absolute glob such as /var/log/app/*.log")
	case !filepath.IsAbs(c.Path):
		p.Addf("path", "%q must be absolute, such as /var/log/app/*.log", c.Path)
	default:
		if _, err := filepath.Match(c.Path, ""); err != nil {
			p.Addf("path", "%q is not a valid glob: %v", c.Path, err)
		}
	}
	for i, e := range c.Exclude {
		if e == "" {
			p.Addf(fmt.Sprintf("exclude[%d]", i), "empty pattern; remove it or write a glob such as \"*.gz\"")
		} else if _, err := filepath.Match(e, ""); err != nil {
			p.Addf(fmt.Sprintf("exclude[%d]", i), "%q is not a valid glob: %v", e, err)
		}
	}
	switch c.StartAt {
	case StartAtBeginning, StartAtEnd:
	default:
		p.Addf("start_at", "must be beginning or end; got %q", c.StartAt)
	}
	if c.PollInterval <= 0 {
		p.Addf("poll_interval", "must be a positive duration such as \"250ms\"; got %s", c.PollInterval)
	}
	if c.RescanInterval <= 0 {
		p.Addf("rescan_interval", "must be a positive duration such as \"5s\"; got %s", c.RescanInterval)
	}
	if c.MaxLineBytes <= 0 || c.MaxLineBytes > maxMaxLineBytes {
		p.Addf("max_line_bytes", "must be between 1B and %s; got %s", confval.ByteSize(maxMaxLineBytes), c.MaxLineBytes)
	}
	if c.BatchMaxLines <= 0 {
		p.Addf("batch_max_lines", "must be positive; got %d", c.BatchMaxLines)
	}
	if c.BatchMaxBytes <= 0 {
		p.Addf("batch_max_bytes", "must be positive; got %s", c.BatchMaxBytes)
	}
	if c.MaxInflightBatches <= 0 {
		p.Addf("max_inflight_batches", "must be positive; got %d", c.MaxInflightBatches)
	}
	if c.MaxRotatedFiles <= 0 || c.MaxRotatedFiles > maxMaxRotatedFiles {
		p.Addf("max_rotated_files", "must be between 1 and %d; got %d", maxMaxRotatedFiles, c.MaxRotatedFiles)
	}
	switch c.Format {
	case FormatRaw, FormatCRI, FormatDocker, FormatAuto:
	default:
		p.Addf("format", "must be raw, cri, docker or auto; got %q", c.Format)
	}
	switch c.PathMetadata {
	case PathMetadataNone:
	case PathMetadataKubernetes, PathMetadataKubernetesContainer:
		if c.Path != "" && filepath.IsAbs(c.Path) {
			validatePathLayout(p, c.PathMetadata, c.Path)
		}
	default:
		p.Addf("path_metadata", "must be none, kubernetes or kubernetes_container; got %q", c.PathMetadata)
	}
	c.Multiline.Validate(p.At("multiline"))
	c.Parser.Validate(p.At("parser"))
	names := make([]string, 0, len(c.Labels))
	for k := range c.Labels {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		switch {
		case !validLabelName(k):
			p.Addf("labels", "%q is not a valid label name; use [a-zA-Z_][a-zA-Z0-9_]*, not starting with __", k)
		case k == "source":
			p.Addf("labels.source", "the source label is set from name; set name instead")
		case k == "stream" && c.Format != FormatRaw:
			p.Addf("labels.stream", "with format %s the stream label is stdout or stderr, from the runtime; remove it", c.Format)
		case (k == "namespace" || k == "pod" || k == "container") && c.PathMetadata == PathMetadataKubernetes,
			k == "container" && c.PathMetadata == PathMetadataKubernetesContainer:
			p.Addf("labels."+k, "with path_metadata %s the %s label comes from each file's path; remove it", c.PathMetadata, k)
		}
	}
}

func validName(s string) bool {
	if s == "" || s == "." || s == ".." {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '-', c == '.':
		default:
			return false
		}
	}
	return true
}

func validLabelName(s string) bool {
	if s == "" || (len(s) >= 2 && s[0] == '_' && s[1] == '_') {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', c == '_':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
