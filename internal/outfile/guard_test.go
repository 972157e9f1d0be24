package outfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheck: an output never lands on an input (same path, symlink, hard
// link, a file of an input directory), even with force; an existing file
// needs force; a missing file is fine.
func TestCheck(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(dir, "model")
	if err := os.Mkdir(model, 0o755); err != nil {
		t.Fatal(err)
	}
	weights := filepath.Join(model, "model.safetensors")
	tokens := filepath.Join(dir, "tokens.json")
	other := filepath.Join(dir, "other.bin")
	for _, p := range []string{weights, tokens, other} {
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	link := filepath.Join(dir, "link.safetensors")
	if err := os.Symlink(weights, link); err != nil {
		t.Fatal(err)
	}
	hard := filepath.Join(dir, "hard.json")
	if err := os.Link(tokens, hard); err != nil {
		t.Fatal(err)
	}
	inputs := []string{model, tokens}
	for _, c := range []struct {
		path  string
		force bool
		want  string // "" for allowed
	}{
		{weights, true, "input"},
		{filepath.Join(model, "..", "model", "model.safetensors"), true, "input"},
		{link, true, "input"},
		{hard, true, "same file"},
		{tokens, true, "input"},
		{other, false, "pass --force"},
		{other, true, ""},
		{filepath.Join(dir, "new.safetensors"), false, ""},
		{model, true, "input"},
		{filepath.Join(dir), true, "directory"},
	} {
		err := Check("--out", c.path, c.force, inputs...)
		var re *RefusedError
		switch {
		case c.want == "" && err != nil:
			t.Errorf("Check(%s, force=%v): %v, want allowed", c.path, c.force, err)
		case c.want != "" && (err == nil || !errors.As(err, &re) || !strings.Contains(err.Error(), c.want)):
			t.Errorf("Check(%s, force=%v) = %v, want a refusal saying %q", c.path, c.force, err, c.want)
		}
	}
	if b, _ := os.ReadFile(weights); string(b) != "x" {
		t.Fatal("Check changed an input")
	}
}

// TestWriteErrorNamesTarget: a failed write names the file asked for, not
// a temporary file beside it (here its "directory" is a regular file).
func TestWriteErrorNamesTarget(t *testing.T) {
	file := filepath.Join(t.TempDir(), "plain")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(file, "out.safetensors")
	err := Write(target, func(io.Writer) error { return nil })
	if err == nil || !strings.HasPrefix(err.Error(), target+":") || strings.Contains(err.Error(), ".tmp") {
		t.Fatalf("Write under a regular file: %v", err)
	}
	if err := Check("--out", target, false); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Fatalf("Check under a regular file: %v", err)
	}
}

// TestWriteErrorsNameTheTarget (issue 18: unwritable outputs named a
// temporary file): a failed write or rename names the file asked for, never
// the temporary ".NAME.tmp..." beside it.
func TestWriteErrorsNameTheTarget(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "out.csv")
	err := Write(target, func(w io.Writer) error {
		w.(*os.File).Close()
		_, err := w.Write([]byte("x"))
		return err
	})
	if err == nil || strings.Contains(err.Error(), ".tmp") || !strings.Contains(err.Error(), target) {
		t.Errorf("a failed write: %v, want it to name %s and no temporary file", err, target)
	}
	busy := filepath.Join(dir, "busy")
	if err := os.MkdirAll(filepath.Join(busy, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	err = Write(busy, func(w io.Writer) error { _, err := w.Write([]byte("x")); return err })
	if err == nil || strings.Contains(err.Error(), ".tmp") || !strings.Contains(err.Error(), busy) {
		t.Errorf("a failed rename: %v, want it to name %s and no temporary file", err, busy)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("temporary files left behind: %v", ents)
	}
}
