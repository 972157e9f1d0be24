package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// TestTokenizeCLI: a folder with only config.json and the tokenizer files is
// enough, and a file's bytes are encoded as they are (trailing newline kept).
func TestTokenizeCLI(t *testing.T) {
	src := filepath.Join("..", "..", "models", "neo-tiny")
	dir := t.TempDir()
	for _, f := range []string{"config.json", "vocab.json", "merges.txt"} {
		data, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Skipf("bundled model files absent: %v", err)
		}
		os.WriteFile(filepath.Join(dir, f), data, 0o644)
	}
	ids := func(args ...string) []int {
		out, stderr, code := runCLI(t, append([]string{"tokenize", "--model", dir, "--json"}, args...)...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, stderr)
		}
		var r struct{ IDs []int }
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatal(err)
		}
		return r.IDs
	}
	a := ids("--prompt", "Hello world")
	textFile := filepath.Join(t.TempDir(), "t.txt")
	os.WriteFile(textFile, []byte("Hello world\n"), 0o644)
	b := ids("--text", textFile)
	if len(b) != len(a)+1 || b[len(b)-1] == a[len(a)-1] && len(b) == len(a) {
		t.Fatalf("file with trailing newline gave %v, prompt gave %v: the newline must be encoded", b, a)
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("prefix differs: %v vs %v", a, b)
		}
	}
	if e := ids("--prompt", ""); len(e) != 0 {
		t.Fatalf("empty prompt gave %v", e)
	}
	if _, _, code := runCLI(t, "tokenize", "--model", dir); code != 2 {
		t.Fatalf("no input: exit %d, want 2", code)
	}
}
