package main

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strings"
)

const (
	alnum     = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	printable = alnum + "!#$%&*+-./:;<=>?@^_~\"\\"
)

// secretKinds are the shapes of the generated secrets, in rotation: what a Vault
// syncer registers in practice.
var secretKinds = []func(r *rand.Rand) string{
	// A database password from Vault's default password policy.
	func(r *rand.Rand) string { return "A1a-" + pick(r, alnum, 16) },
	// An API key of 32 hex digits.
	func(r *rand.Rand) string {
		var b [16]byte
		fill(r, b[:])
		return hex.EncodeToString(b[:])
	},
	// A Vault service token.
	func(r *rand.Rand) string { return "hvs." + pick(r, alnum, 24) },
	// A human password, 8 to 16 characters with symbols.
	func(r *rand.Rand) string { return pick(r, printable, 8+r.IntN(9)) },
	// A 256-bit key in base64.
	func(r *rand.Rand) string {
		var b [32]byte
		fill(r, b[:])
		return base64.StdEncoding.EncodeToString(b[:])
	},
	// A signed JWT.
	func(r *rand.Rand) string {
		var b [96]byte
		fill(r, b[:])
		enc := base64.RawURLEncoding
		return "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9." + enc.EncodeToString(b[:64]) + "." + enc.EncodeToString(b[64:])
	},
}

// secrets returns n distinct secret values, the same for the same seed.
func secrets(n int, seed uint64) []string {
	r := rand.New(rand.NewPCG(seed, 0x5ec2e7))
	out := make([]string, 0, n)
	seen := make(map[string]bool, n)
	for i := 0; len(out) < n; i++ {
		v := secretKinds[i%len(secretKinds)](r)
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

func pick(r *rand.Rand, alphabet string, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	return string(b)
}

func fill(r *rand.Rand, b []byte) {
	for i := range b {
		b[i] = byte(r.Uint32())
	}
}

// leakForms are the ways a secret v gets into a JSON log line: the JSON field that
// is appended before the line's closing brace, and the strings of v the field
// contains (what must not reach the backend).
var leakForms = []func(v string) (field string, forms []string){
	func(v string) (string, []string) {
		j := jsonString(v)
		return `,"password":` + j, []string{j[1 : len(j)-1]}
	},
	func(v string) (string, []string) {
		const user = "app:"
		enc := base64.StdEncoding.EncodeToString([]byte(user + v))
		// The characters that encode v's bits alone.
		core := enc[(8*len(user)+5)/6 : 8*(len(user)+len(v))/6]
		return `,"authorization":"Basic ` + enc + `"`, []string{core}
	},
	func(v string) (string, []string) {
		q := url.QueryEscape(v)
		return `,"url":"https://db.internal/connect?user=app&password=` + q + `&sslmode=require"`, []string{q}
	},
	func(v string) (string, []string) {
		e := base64.StdEncoding.EncodeToString([]byte(v))
		return `,"token_b64":"` + e + `"`, []string{e}
	},
}

// jsonString returns v as a JSON string literal, quotes included.
func jsonString(v string) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("marshal a string: %v", err))
	}
	return string(b)
}

// insertField returns line (a JSON object, with or without its final newline) with
// field added before the closing brace.
func insertField(line []byte, field string) []byte {
	end := len(line)
	for end > 0 && (line[end-1] == '\n' || line[end-1] == '\r') {
		end--
	}
	if end == 0 || line[end-1] != '}' {
		return line
	}
	tail := strings.Clone(string(line[end-1:]))
	out := append(line[:end-1], field...)
	return append(out, tail...)
}
