package inject

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strconv"
	"strings"
	"testing"
)

const (
	docsFile   = "../docs/annotations.md"
	docsBegin  = "<!-- BEGIN ANNOTATIONS: generated from inject/annotations.go by go test ./inject -run TestAnnotationsDoc -update -->"
	docsEnd    = "<!-- END ANNOTATIONS -->"
	secretName = "<name>"
)

// TestAnnotationsDoc checks that the table of annotations in docs/annotations.md is
// the one generated from the doc comments of the Annotation constants; -update
// rewrites it.
func TestAnnotationsDoc(t *testing.T) {
	table := annotationsTable(t)
	doc, err := os.ReadFile(docsFile)
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	begin, end := strings.Index(text, docsBegin), strings.Index(text, docsEnd)
	if begin < 0 || end < begin {
		t.Fatalf("%s lacks the markers %q and %q", docsFile, docsBegin, docsEnd)
	}
	want := text[:begin] + docsBegin + "\n\n" + table + "\n" + text[end:]
	if want == text {
		return
	}
	if *update {
		if err := os.WriteFile(docsFile, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("%s is out of date with inject/annotations.go; run go test ./inject -run TestAnnotationsDoc -update", docsFile)
}

// annotationsTable renders the Annotation constants as a Markdown table: key,
// default (the comment's "Default:" sentence) and meaning (the rest).
func annotationsTable(t *testing.T) string {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "annotations.go", nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("| annotation | default | meaning |\n|---|---|---|\n")
	n := 0
	for _, decl := range f.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			name := vs.Names[0].Name
			if !strings.HasPrefix(name, "Annotation") || len(vs.Values) != 1 {
				continue
			}
			value, err := strconv.Unquote(vs.Values[0].(*ast.BasicLit).Value)
			if err != nil {
				t.Fatal(err)
			}
			key := value
			switch {
			case strings.HasSuffix(name, "Prefix"):
				key = value + secretName
			case strings.HasSuffix(name, "Suffix"):
				key = AnnotationSecretPrefix + secretName + value
			}
			if vs.Doc == nil {
				t.Errorf("%s has no doc comment", name)
				continue
			}
			text := strings.Join(strings.Fields(vs.Doc.Text()), " ")
			meaning, def, ok := strings.Cut(text, " Default: ")
			if !ok {
				t.Errorf("%s: the doc comment does not end with a \"Default: …\" sentence", name)
			}
			meaning = strings.TrimPrefix(strings.TrimPrefix(meaning, name+" "), "is ")
			b.WriteString("| `" + key + "` | " + markdown(strings.TrimSuffix(def, ".")) + " | " + markdown(meaning) + " |\n")
			n++
		}
	}
	if n < 30 {
		t.Errorf("found %d annotation constants, want at least 30", n)
	}
	return b.String()
}

// markdown escapes text for a table cell: '|' always, '<' and '>' outside code
// spans.
func markdown(s string) string {
	var b strings.Builder
	code := false
	for _, r := range s {
		switch {
		case r == '`':
			code = !code
			b.WriteRune(r)
		case r == '|':
			b.WriteString(`\|`)
		case r == '<' && !code:
			b.WriteString("&lt;")
		case r == '>' && !code:
			b.WriteString("&gt;")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
