package identity

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func write(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestModel: a byte-identical copy elsewhere has the same identity; a weight
// edited in place (same size, mtime set back) has another; tokenizer files
// do not count; the cache is used and invalidated.
func TestModel(t *testing.T) {
	t.Setenv("NEOSCOPE_CACHE", t.TempDir())
	a, b := t.TempDir(), t.TempDir()
	for _, d := range []string{a, b} {
		write(t, filepath.Join(d, "config.json"), `{"n_layer": 2}`)
		write(t, filepath.Join(d, "model.safetensors"), "header+data 0123456789")
	}
	write(t, filepath.Join(b, "vocab.json"), "{}")
	ida, err := Model(a)
	if err != nil {
		t.Fatal(err)
	}
	idb, err := Model(b)
	if err != nil {
		t.Fatal(err)
	}
	if ida != idb || len(ida) != 64 {
		t.Fatalf("copies: %s vs %s", ida, idb)
	}
	if ents, _ := os.ReadDir(CacheDir()); len(ents) != 4 {
		t.Fatalf("cache holds %d entries, want 4 (two files in each of two directories)", len(ents))
	}
	if again, _ := Model(a); again != ida {
		t.Fatal("second call (from the cache) differs")
	}
	w := filepath.Join(a, "model.safetensors")
	st, _ := os.Stat(w)
	time.Sleep(10 * time.Millisecond)
	write(t, w, "header+data 0123456780") // same size, one byte changed
	if err := os.Chtimes(w, st.ModTime(), st.ModTime()); err != nil {
		t.Fatal(err)
	}
	idc, err := Model(a)
	if err != nil {
		t.Fatal(err)
	}
	if idc == ida {
		t.Fatal("a weight edited in place (mtime restored) kept the identity")
	}
	write(t, filepath.Join(b, "config.json"), `{"n_layer": 3}`)
	if idd, _ := Model(b); idd == idb {
		t.Fatal("a changed config.json kept the identity")
	}
	if _, err := Model(t.TempDir()); err == nil {
		t.Fatal("an empty directory has an identity")
	}
}
