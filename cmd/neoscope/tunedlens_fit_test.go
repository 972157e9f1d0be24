package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/neoscope/neoscope/internal/fixtures"
)

// TestTunedLensFitOutputs: fit never overwrites --out without --force, never
// writes over an input (a model file) even with --force, refuses to start
// over an interrupted fit's checkpoint without --resume or --force, and a
// --resume from a file that is not a checkpoint is bad input (exit 2).
func TestTunedLensFitOutputs(t *testing.T) {
	ref := fixtures.Load(t, "tiny-neo")
	dir := t.TempDir()
	train := writeRefTokens(t, ref, "rep_tokens", dir)
	// A private copy of the model, so that a failure cannot touch the fixture.
	model := filepath.Join(dir, "model")
	fixtures.Must(t, os.MkdirAll(model, 0o755))
	for _, f := range []string{"config.json", "model.safetensors"} {
		data, err := os.ReadFile(filepath.Join(ref.Dir, f))
		fixtures.Must(t, err)
		fixtures.Must(t, os.WriteFile(filepath.Join(model, f), data, 0o644))
	}
	fit := func(args ...string) (string, int) {
		_, stderr, code := runCLI(t, append([]string{"tunedlens", "fit", "--model", model, "--backend", "cpu", "--tokens", train, "--steps", "2"}, args...)...)
		return stderr, code
	}
	out := filepath.Join(dir, "lens.safetensors")
	if stderr, code := fit("--out", out); code != 0 {
		t.Fatalf("fit: exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(out + ".ckpt"); err == nil {
		t.Errorf("a completed fit left its checkpoint %s behind", out+".ckpt")
	}
	before, _ := os.ReadFile(out)
	if stderr, code := fit("--out", out); code != 2 || !strings.Contains(stderr, "exists") {
		t.Errorf("fit over an existing --out: exit %d (%s), want 2", code, stderr)
	}
	if after, _ := os.ReadFile(out); !bytes.Equal(before, after) {
		t.Error("existing --out changed without --force")
	}
	if stderr, code := fit("--out", out, "--force"); code != 0 {
		t.Errorf("fit --force: exit %d: %s", code, stderr)
	}
	weights := filepath.Join(model, "model.safetensors")
	w0, _ := os.ReadFile(weights)
	if stderr, code := fit("--out", weights, "--force"); code != 2 || !strings.Contains(stderr, "input") {
		t.Errorf("fit --out onto the model's weights: exit %d (%s), want 2", code, stderr)
	}
	if w1, _ := os.ReadFile(weights); !bytes.Equal(w0, w1) {
		t.Fatal("the model's weights were overwritten")
	}
	// An interrupted fit's checkpoint (here: a stray file in its place).
	out2 := filepath.Join(dir, "other.safetensors")
	fixtures.Must(t, os.WriteFile(out2+".ckpt", []byte("not gob"), 0o644))
	if stderr, code := fit("--out", out2); code != 2 || !strings.Contains(stderr, "--resume") {
		t.Errorf("fit over an interrupted fit's checkpoint: exit %d (%s), want 2", code, stderr)
	}
	if stderr, code := fit("--out", out2, "--resume"); code != 2 || !strings.Contains(stderr, "not a tuned-lens fit checkpoint") {
		t.Errorf("--resume from a non-checkpoint: exit %d (%s), want 2", code, stderr)
	}
	if stderr, code := fit("--out", filepath.Join(dir, "none.safetensors"), "--resume"); code != 2 {
		t.Errorf("--resume with no checkpoint: exit %d (%s), want 2", code, stderr)
	}
}
