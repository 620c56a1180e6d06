package lokiexporter

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/outrider-dev/outrider/pipeline"
)

func TestSanitizeLabelName(t *testing.T) {
	cases := map[string]string{
		"app":                    "app",
		"_x9":                    "_x9",
		"app.kubernetes.io/name": "app_kubernetes_io_name",
		"9lives":                 "_9lives",
		"":                       "_",
		"naïve":                  "na_ve",
		"a-b c":                  "a_b_c",
	}
	for in, want := range cases {
		if got := sanitizeLabelName(in); got != want {
			t.Errorf("sanitizeLabelName(%q) = %q, want %q", in, got, want)
		}
		if !validLabelName(sanitizeLabelName(in)) {
			t.Errorf("sanitizeLabelName(%q) is not valid", in)
		}
	}
}

func TestBuildLabels(t *testing.T) {
	cases := []struct {
		name    string
		sources [][]label
		want    string
	}{
		{"sorted and quoted", [][]label{{{"service", "api"}, {"app", `say "hi"\n`}}},
			`{app="say \"hi\"\\n", service="api"}`},
		{"earlier source wins", [][]label{{{"env", "stream"}}, {{"level", "info"}}, {{"env", "config"}, {"cluster", "c1"}}},
			`{cluster="c1", env="stream", level="info"}`},
		{"sanitised names clash", [][]label{{{"a.b", "1"}, {"a_b", "2"}}}, `{a_b="1"}`},
		{"empty values dropped", [][]label{{{"a", ""}, {"b", "x"}}}, `{b="x"}`},
		{"no labels", nil, `{service_name="unknown_service"}`},
		{"newline and unicode", [][]label{{{"v", "ü\n\t"}}}, `{v="ü\n\t"}`},
		{"invalid utf8 replaced", [][]label{{{"v", "a\xffb"}}}, `{v="a?b"}`},
		{"U+FFFD replaced: Loki's parser refuses it", [][]label{{{"v", "a\uFFFDb\xc3\x28"}}}, `{v="a?b?("}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := buildLabels(tc.sources...); got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestLabelCache(t *testing.T) {
	c := newLabelCache(map[string]string{"cluster": "c1", "service": "from-config"}, nil)
	s := pipeline.NewStream(map[string]string{"service": "api", "pod": "p-1"})
	cases := []struct {
		level pipeline.Level
		want  string
	}{
		{pipeline.LevelInfo, `{cluster="c1", level="info", pod="p-1", service="api"}`},
		{pipeline.LevelUnknown, `{cluster="c1", pod="p-1", service="api"}`},
	}
	for _, tc := range cases {
		for range 2 { // computed, then cached
			if got := c.get(streamKey{s, tc.level}); got != tc.want {
				t.Fatalf("level %q: %s, want %s", tc.level, got, tc.want)
			}
		}
	}
	// The cache is bounded.
	for range maxCachedStreams + 10 {
		c.get(streamKey{pipeline.NewStream(map[string]string{"a": "b"}), pipeline.LevelInfo})
	}
	if n := c.n.Load(); n > maxCachedStreams {
		t.Fatalf("cache holds %d entries, bound %d", n, maxCachedStreams)
	}
}

// FuzzLabelString checks that whatever names and values streams carry, the label
// string is well formed and parses back to the sanitised names and the values.
func FuzzLabelString(f *testing.F) {
	f.Add("service", "api", "level", "info")
	f.Add("app.kubernetes.io/name", `quote " and \ backslash`, "9x", "line\nbreak")
	f.Add("", "", "__name__", "\x00\xff")
	f.Add("ü", "日本語", "a b", "}{=,\"")
	f.Fuzz(func(t *testing.T, n1, v1, n2, v2 string) {
		s := buildLabels([]label{{n1, v1}, {n2, v2}})
		ls, err := parseLabelString(s)
		if err != nil {
			t.Fatalf("%q does not parse: %v", s, err)
		}
		want := map[string]string{}
		for _, l := range []label{{n1, v1}, {n2, v2}} {
			if l.value == "" {
				continue
			}
			name := sanitizeLabelName(l.name)
			if _, ok := want[name]; !ok {
				want[name] = strings.ReplaceAll(strings.ToValidUTF8(l.value, "\uFFFD"), "\uFFFD", "?")
			}
		}
		if len(want) == 0 {
			want[fallbackLabel.name] = fallbackLabel.value
		}
		if len(ls) != len(want) {
			t.Fatalf("%q parsed to %v, want %v", s, ls, want)
		}
		for i, l := range ls {
			if i > 0 && ls[i-1].name >= l.name {
				t.Fatalf("%q: names not sorted and unique", s)
			}
			if want[l.name] != l.value {
				t.Fatalf("%q: %s=%q, want %q", s, l.name, l.value, want[l.name])
			}
			if !utf8.ValidString(l.value) || strings.ContainsRune(l.value, utf8.RuneError) {
				t.Fatalf("%q: value %q not valid UTF-8", s, l.value)
			}
		}
	})
}
