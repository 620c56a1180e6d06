package tail

import (
	"strings"
	"testing"
	"time"

	"github.com/outrider-dev/outrider/internal/confval"
)

func TestConfigDefaults(t *testing.T) {
	var c Config
	c.Path = "/var/log/app/*.log"
	c.ApplyDefaults()
	if c.Name != "file" || c.StartAt != StartAtBeginning || c.PollInterval != 250*time.Millisecond ||
		c.RescanInterval != 5*time.Second || c.MaxLineBytes != 256<<10 || c.BatchMaxLines != 1000 ||
		c.MaxInflightBatches != DefaultMaxInflightBatches || c.Multiline.StackTraces == nil || !*c.Multiline.StackTraces ||
		c.Multiline.FlushAfter != 300*time.Millisecond || c.Parser.Format == "" {
		t.Fatalf("defaults not applied: %+v", c)
	}
	p := &confval.Problems{}
	c.Validate(p)
	if err := p.Err(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(c *Config)
		want   []string
	}{
		{"valid", func(*Config) {}, nil},
		{"path required", func(c *Config) { c.Path = "" }, []string{"src.path: required"}},
		{"path relative", func(c *Config) { c.Path = "logs/*.log" }, []string{"src.path: \"logs/*.log\" must be absolute"}},
		{"path bad glob", func(c *Config) { c.Path = "/var/log/[" }, []string{"src.path: \"/var/log/[\" is not a valid glob"}},
		{"exclude bad glob", func(c *Config) { c.Exclude = []string{"*.gz", "["} }, []string{"src.exclude[1]: \"[\" is not a valid glob"}},
		{"start_at", func(c *Config) { c.StartAt = "middle" }, []string{"src.start_at: must be beginning or end"}},
		{"durations", func(c *Config) { c.PollInterval = -1; c.RescanInterval = -time.Second }, []string{"src.poll_interval: must be a positive", "src.rescan_interval: must be a positive"}},
		{"sizes", func(c *Config) { c.MaxLineBytes = -1; c.BatchMaxLines = -1; c.MaxInflightBatches = -2 },
			[]string{"src.max_line_bytes: must be between", "src.batch_max_lines: must be positive", "src.max_inflight_batches: must be positive"}},
		{"max_rotated_files", func(c *Config) { c.MaxRotatedFiles = 5000 }, []string{"src.max_rotated_files: must be between 1 and 1024; got 5000"}},
		{"multiline regex", func(c *Config) { c.Multiline.Start = "(" }, []string{"src.multiline.start: invalid regular expression"}},
		{"parser", func(c *Config) { c.Parser.Format = "xml" }, []string{"src.parser.format: unknown format"}},
		{"name", func(c *Config) { c.Name = "a/b" }, []string{"src.name: \"a/b\" is not a valid name"}},
		{"labels", func(c *Config) { c.Labels = map[string]string{"source": "x", "9x": "y", "ok": "z"} },
			[]string{"src.labels: \"9x\" is not a valid label name", "src.labels.source: the source label is set from name"}},
		{"format", func(c *Config) { c.Format = "json" }, []string{"src.format: must be raw, cri, docker or auto; got \"json\""}},
		{"format cri", func(c *Config) { c.Format = FormatCRI }, nil},
		{"stream label with cri", func(c *Config) { c.Format = FormatAuto; c.Labels = map[string]string{"stream": "x"} },
			[]string{"src.labels.stream: with format auto the stream label is stdout or stderr"}},
		{"stream label raw", func(c *Config) { c.Labels = map[string]string{"stream": "x"} }, nil},
		{"path_metadata", func(c *Config) { c.PathMetadata = "k8s" }, []string{"src.path_metadata: must be none, kubernetes or kubernetes_container"}},
		{"kubernetes node glob", func(c *Config) { c.PathMetadata = PathMetadataKubernetes; c.Path = "/var/log/pods/*/*/*.log" }, nil},
		{"kubernetes one pod", func(c *Config) {
			c.PathMetadata = PathMetadataKubernetes
			c.Path = "/var/log/pods/default_web-0_0b9c1f7e-0000-4000-8000-000000000001/*/*.log"
		}, nil},
		{"kubernetes layout impossible", func(c *Config) { c.PathMetadata = PathMetadataKubernetes },
			[]string{"src.path: \"/var/log/app/*.log\": the pod directory \"log\" is not <namespace>_<pod>_<uid>"}},
		{"kubernetes too short", func(c *Config) { c.PathMetadata = PathMetadataKubernetes; c.Path = "/pods/*.log" },
			[]string{"src.path: \"/pods/*.log\" cannot match the kubernetes layout"}},
		{"kubernetes bad container dir", func(c *Config) { c.PathMetadata = PathMetadataKubernetesContainer; c.Path = "/var/log/App_1/*.log" },
			[]string{"src.path: \"/var/log/App_1/*.log\": the container directory \"App_1\" is not a container name"}},
		{"kubernetes_container", func(c *Config) { c.PathMetadata = PathMetadataKubernetesContainer; c.Path = "/var/log/pod/*/*.log" }, nil},
		{"kubernetes labels clash", func(c *Config) {
			c.PathMetadata = PathMetadataKubernetes
			c.Path = "/var/log/pods/*/*/*.log"
			c.Labels = map[string]string{"pod": "x", "cluster": "prod"}
		}, []string{"src.labels.pod: with path_metadata kubernetes the pod label comes from each file's path"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Config{Path: "/var/log/app/*.log"}
			c.ApplyDefaults()
			tt.modify(&c)
			p := &confval.Problems{}
			c.Validate(p.At("src"))
			err := p.Err()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate found nothing; want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if p.Len() != len(tt.want) {
				t.Errorf("got %d problems, want %d: %v", p.Len(), len(tt.want), err)
			}
		})
	}
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	if _, err := New(Config{Path: "relative/*.log"}, Settings{Sink: newSink(true)}); !confval.IsConfigError(err) {
		t.Fatalf("New with a relative path: %v; want a configuration error", err)
	}
	if _, err := New(Config{Path: "/tmp/*.log"}, Settings{}); err == nil {
		t.Fatal("New without a sink succeeded")
	}
}

func TestBatchMaxBytesDefault(t *testing.T) {
	var c Config
	c.ApplyDefaults()
	if c.BatchMaxBytes != DefaultBatchMaxBytes {
		t.Errorf("batch_max_bytes default %s, want %s", c.BatchMaxBytes, confval.ByteSize(DefaultBatchMaxBytes))
	}
}

func TestParsePodPath(t *testing.T) {
	tests := []struct {
		mode, path string
		want       pathMeta
		ok         bool
	}{
		{PathMetadataKubernetes, "/var/log/pods/default_web-0_0b9c1f7e-0000-4000-8000-000000000001/app/0.log",
			pathMeta{"default", "web-0", "0b9c1f7e-0000-4000-8000-000000000001", "app"}, true},
		{PathMetadataKubernetes, "/var/log/pods/kube-system_kube-apiserver-node1_9f3f9c1f0e5c4e2b9c0c6e6b7e9c6f8a/kube-apiserver/3.log.20261206-114401",
			pathMeta{"kube-system", "kube-apiserver-node1", "9f3f9c1f0e5c4e2b9c0c6e6b7e9c6f8a", "kube-apiserver"}, true},
		{PathMetadataKubernetes, "/var/log/pods/default_web-0/app/0.log", pathMeta{}, false},
		{PathMetadataKubernetes, "/var/log/pods/default_web_0_uid/app/0.log", pathMeta{}, false},
		{PathMetadataKubernetes, "/0.log", pathMeta{}, false},
		{PathMetadataKubernetesContainer, "/var/log/pod/sidecar/1.log", pathMeta{container: "sidecar"}, true},
		{PathMetadataKubernetesContainer, "/var/log/pod/Side_Car/1.log", pathMeta{}, false},
	}
	for _, tt := range tests {
		got, ok := parsePodPath(tt.mode, tt.path)
		if ok != tt.ok || got != tt.want {
			t.Errorf("parsePodPath(%s, %s) = %+v, %v; want %+v, %v", tt.mode, tt.path, got, ok, tt.want, tt.ok)
		}
	}
}
