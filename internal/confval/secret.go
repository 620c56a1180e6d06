package confval

import "log/slog"

// Secret is a configuration string that must never be printed: passwords, tokens.
// Its String, text, JSON and slog forms are redacted; use Reveal to get the value.
type Secret string

const redacted = "[redacted]"

// Reveal returns the secret's value. Call it only where the value is sent to the
// system it is meant for.
func (s Secret) Reveal() string { return string(s) }

// String implements fmt.Stringer without revealing the value.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString implements fmt.GoStringer, so %#v does not reveal the value either.
func (s Secret) GoString() string { return `confval.Secret("` + s.String() + `")` }

// MarshalText implements encoding.TextMarshaler without revealing the value.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// LogValue implements slog.LogValuer without revealing the value.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }
