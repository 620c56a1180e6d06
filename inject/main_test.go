package inject

import (
	"flag"
	"testing"

	"go.uber.org/goleak"
)

// update rewrites the golden files under testdata/ and docs/annotations.md.
var update = flag.Bool("update", false, "rewrite golden files and docs/annotations.md")

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
