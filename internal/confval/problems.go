package confval

import (
	"errors"
	"fmt"
	"strings"
)

// Problems collects configuration problems, each with the field path it concerns, so
// that validation reports everything wrong at once. The zero value is ready to use.
type Problems struct {
	prefix string
	list   *[]string
}

// At returns a Problems that adds to the same list with path prefixed by p's prefix:
// p.At("logs").At("sources[1]").Addf("path", "...") records "logs.sources[1].path: ...".
func (p *Problems) At(path string) *Problems {
	if p.list == nil {
		p.list = new([]string)
	}
	return &Problems{prefix: join(p.prefix, path), list: p.list}
}

// Addf records a problem with field (relative to p's prefix; "" for p's own path).
func (p *Problems) Addf(field, format string, args ...any) {
	if p.list == nil {
		p.list = new([]string)
	}
	path := join(p.prefix, field)
	msg := fmt.Sprintf(format, args...)
	if path != "" {
		msg = path + ": " + msg
	}
	*p.list = append(*p.list, msg)
}

// Len returns how many problems were recorded.
func (p *Problems) Len() int {
	if p.list == nil {
		return 0
	}
	return len(*p.list)
}

// Err returns nil when no problem was recorded, else an error listing them one per line.
func (p *Problems) Err() error {
	if p.Len() == 0 {
		return nil
	}
	return &Error{Problems: append([]string(nil), *p.list...)}
}

// Error is a configuration error with every problem found.
type Error struct {
	Problems []string
}

func (e *Error) Error() string {
	if len(e.Problems) == 1 {
		return e.Problems[0]
	}
	return fmt.Sprintf("%d problems:\n  %s", len(e.Problems), strings.Join(e.Problems, "\n  "))
}

// IsConfigError reports whether err is (or wraps) a configuration *Error.
func IsConfigError(err error) bool {
	var e *Error
	return errors.As(err, &e)
}

func join(prefix, field string) string {
	switch {
	case prefix == "":
		return field
	case field == "":
		return prefix
	case strings.HasPrefix(field, "["):
		return prefix + field
	default:
		return prefix + "." + field
	}
}
