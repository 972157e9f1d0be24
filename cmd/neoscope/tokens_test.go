package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/neoscope/neoscope/internal/fixtures"
)

// TestParseTokenRows (issue 18 item 3): null, fractions (2.0), exponents,
// strings and negative ids are refused naming row and position, in JSON's
// words (no Go type names); tokenize --json output is accepted.
func TestParseTokenRows(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`[[1, 2, 3], [4, 5, 6]]`, "[[1 2 3] [4 5 6]]"},
		{`{"ids": [7, 8]}`, "[[7 8]]"},
		{"{\"ids\": [7, 8]}\n{\"ids\": [9, 10]}\n", "[[7 8] [9 10]]"},
		{`[[1, null, 3]]`, "row 0 position 1: null is not a token id"},
		{`[[1, 2], [3, 2.0]]`, "row 1 position 1: 2.0 is not a token id"},
		{`[[1e2]]`, "row 0 position 0: 1e2 is not a token id"},
		{`[[1, "2"]]`, `row 0 position 1: the string "2" is not a token id`},
		{`[[true]]`, "row 0 position 0: true is not a token id"},
		{`[[-1]]`, "row 0 position 0: token id -1 out of range"},
		{`[[99999999999]]`, "token id 99999999999 out of range"},
		{`[1, 2, 3]`, "row 0 is a number"},
		{`{"id": [1]}`, `without "ids"`},
		{`[[1, 2]`, "not valid JSON"},
		{``, "empty file"},
	} {
		rows, err := parseTokenRows([]byte(c.in))
		got := fmt.Sprint(rows)
		if err != nil {
			got = err.Error()
			for _, goName := range []string{"int64", "Go value", "[]interface", "json.Number", "float64"} {
				if strings.Contains(got, goName) {
					t.Errorf("%s: message names a Go type: %s", c.in, got)
				}
			}
		}
		if !strings.Contains(got, c.want) {
			t.Errorf("%s: got %q, want %q", c.in, got, c.want)
		}
	}
}

// TestNullTokenCLI: run exits 2 on [[1, null, 3]]; tokenize --json output
// feeds --tokens.
func TestNullTokenCLI(t *testing.T) {
	model, _ := copyModel(t)
	dir := t.TempDir()
	bad := filepath.Join(dir, "null.json")
	fixtures.Must(t, os.WriteFile(bad, []byte("[[1, null, 3]]\n"), 0o644))
	_, stderr, code := runCLI(t, "run", "--model", model, "--backend", "cpu", "--tokens", bad, "--out", filepath.Join(dir, "o.safetensors"))
	if code != 2 || !strings.Contains(stderr, "row 0 position 1: null") {
		t.Fatalf("[[1, null, 3]]: exit %d, want 2 naming row 0 position 1: %s", code, stderr)
	}
	ids, stderr, code := runCLI(t, "tokenize", "--prompt", "In the beginning", "--json")
	if code != 0 {
		t.Fatalf("tokenize: exit %d: %s", code, stderr)
	}
	good := filepath.Join(dir, "ids.json")
	fixtures.Must(t, os.WriteFile(good, []byte(ids), 0o644))
	if _, stderr, code = runCLI(t, "run", "--tokens", good, "--backend", "cpu", "--out", filepath.Join(dir, "ok.safetensors")); code != 0 {
		t.Fatalf("--tokens with tokenize --json output: exit %d: %s", code, stderr)
	}
}
