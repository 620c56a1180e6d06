package monitoring

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// TestDocumentedMetricsExist checks that every outrider_ metric the documentation
// names (a family written outrider_queue_* needs one metric of that prefix) (docs/*.md, README.md, deploy/README.md) is one the code registers: a metric
// renamed in the code but not in the runbook sends an operator looking for nothing.
func TestDocumentedMetricsExist(t *testing.T) {
	root := Root()
	nameRE := regexp.MustCompile(`outrider_[a-z0-9_]*[a-z0-9](_\*)?`)
	registered := map[string]bool{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range regexp.MustCompile(`"(outrider_[a-z0-9_]+)"`).FindAllStringSubmatch(string(data), -1) {
			registered[m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(registered) < 50 {
		t.Fatalf("found %d metric names in the code; the walk missed them", len(registered))
	}
	docs, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	docs = append(docs, filepath.Join(root, "README.md"), filepath.Join(root, "deploy", "README.md"))
	for _, f := range docs {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, n := range nameRE.FindAllString(string(data), -1) {
			if prefix, ok := strings.CutSuffix(n, "*"); ok {
				// outrider_queue_*: some metric of that family.
				for r := range registered {
					if strings.HasPrefix(r, prefix) {
						n = r
						break
					}
				}
			}
			if seen[n] || registered[n] || registered[strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(n, "_bucket"), "_sum"), "_count")] {
				continue
			}
			seen[n] = true
		}
		var missing []string
		for n := range seen {
			missing = append(missing, n)
		}
		sort.Strings(missing)
		rel, _ := filepath.Rel(root, f)
		for _, n := range missing {
			t.Errorf("%s names %s, which no code registers", rel, n)
		}
	}
}
