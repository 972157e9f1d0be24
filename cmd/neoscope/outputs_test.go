package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/neoscope/neoscope/internal/fixtures"
)

// TestTunedLensEvalPlot (issue 18, outputs): tunedlens eval --plot is checked
// before the work and never replaces a file without --force, like every
// chart; evaluating a lens fitted on another model is its own switch
// (--any-model), no longer folded into --force.
func TestTunedLensEvalPlot(t *testing.T) {
	ref := fixtures.Load(t, "tiny-neo")
	dir := t.TempDir()
	tok := writeRefTokens(t, ref, "tokens", dir)
	lensFile := filepath.Join(dir, "lens.safetensors")
	if _, stderr, code := runCLI(t, "tunedlens", "fit", "--model", ref.Dir, "--backend", "cpu", "--tokens", tok, "--out", lensFile, "--steps", "0"); code != 0 {
		t.Fatalf("fit: exit %d: %s", code, stderr)
	}
	chart := filepath.Join(dir, "kl.png")
	fixtures.Must(t, os.WriteFile(chart, []byte("keep"), 0o644))
	args := []string{"tunedlens", "eval", "--model", ref.Dir, "--backend", "cpu", "--lens", lensFile, "--tokens", tok, "--plot", chart}
	if stdout, stderr, code := runCLI(t, args...); code != 2 || stdout != "" || string(fileBytes(t, chart)) != "keep" || !strings.Contains(stderr, "--force") {
		t.Errorf("--plot onto an existing file: exit %d, want 2 before the work and the file kept: %s", code, stderr)
	}
	if _, stderr, code := runCLI(t, append(args, "--force")...); code != 0 || string(fileBytes(t, chart)) == "keep" {
		t.Errorf("--plot --force: exit %d: %s", code, stderr)
	}
	checkChart(t, chart)
	other := []string{"tunedlens", "eval", "--model", fixtures.Dir(t, "tiny-gpt2"), "--backend", "cpu", "--lens", lensFile, "--tokens", tok}
	if _, stderr, code := runCLI(t, append(other, "--force")...); code != 2 || !strings.Contains(stderr, "--any-model") {
		t.Errorf("a lens of another model with --force: exit %d, want 2 pointing to --any-model: %s", code, stderr)
	}
}

// TestCircuitOutputs (issue 18, outputs): circuit --out DIR never replaces
// the files it writes there (a foreign circuit.svg, a finished run's
// circuit.json) without --force, checked before the work; --force starts
// over, also from an earlier run's journal.
func TestCircuitOutputs(t *testing.T) {
	ref := fixtures.Dir(t, "tiny-neo")
	out := filepath.Join(t.TempDir(), "circ")
	fixtures.Must(t, os.MkdirAll(out, 0o755))
	mine := filepath.Join(out, "circuit.svg")
	fixtures.Must(t, os.WriteFile(mine, []byte("mine"), 0o644))
	args := []string{"circuit", "--model", ref, "--backend", "cpu", "--task", "induction", "--batch", "2", "--period", "5",
		"--metric", "kl", "--threshold", "0.1", "--out", out}
	if _, stderr, code := runCLI(t, args...); code != 2 || string(fileBytes(t, mine)) != "mine" || !strings.Contains(stderr, "circuit.svg") {
		t.Fatalf("a foreign circuit.svg in --out: exit %d, want 2 naming it and the file kept: %s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(out, "journal.jsonl")); err == nil {
		t.Error("the refused run started a journal")
	}
	if _, stderr, code := runCLI(t, append(args, "--force")...); code != 0 || string(fileBytes(t, mine)) == "mine" {
		t.Fatalf("--force: exit %d: %s", code, stderr)
	}
	// A finished run is there now: refused again, --force starts over.
	if _, stderr, code := runCLI(t, args...); code != 2 || !strings.Contains(stderr, "--force") {
		t.Errorf("rerun into a finished run's folder: exit %d, want 2 offering --force: %s", code, stderr)
	}
	if _, stderr, code := runCLI(t, append(args, "--force")...); code != 0 {
		t.Errorf("--force over a finished run: exit %d: %s", code, stderr)
	}
	if _, stderr, code := runCLI(t, append(args, "--force", "--resume")...); code != 2 {
		t.Errorf("--force --resume: exit %d, want 2: %s", code, stderr)
	}
}

// TestMissingFolderSaid (issue 18, outputs): an output whose folder does not
// exist is written there, and stderr says the folder is being created.
func TestMissingFolderSaid(t *testing.T) {
	model, tokens := copyModel(t)
	out := filepath.Join(t.TempDir(), "new", "sub", "acts.safetensors")
	_, stderr, code := runCLI(t, "run", "--model", model, "--backend", "cpu", "--tokens", tokens, "--out", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, filepath.Dir(out)+" does not exist and will be created") {
		t.Errorf("the missing folder was created silently: %q", stderr)
	}
	if _, err := os.Stat(out); err != nil {
		t.Error(err)
	}
}

// TestSafetensorsOutName: run and grad always write safetensors, so an --out
// with another extension (acts.json) is refused with exit 2 before any work,
// not written as a safetensors file under a misleading name.
func TestSafetensorsOutName(t *testing.T) {
	model, tokens := copyModel(t)
	for _, cmd := range []string{"run", "grad"} {
		out := filepath.Join(t.TempDir(), "acts.json")
		expectUsage(t, "name the file *.safetensors", cmd, "--model", model, "--backend", "cpu", "--tokens", tokens, "--out", out)
		if _, err := os.Stat(out); err == nil {
			t.Errorf("%s: wrote %s", cmd, out)
		}
	}
	// Any case of the extension is a safetensors name.
	out := filepath.Join(t.TempDir(), "acts.SafeTensors")
	if _, stderr, code := runCLI(t, "run", "--model", model, "--backend", "cpu", "--tokens", tokens, "--out", out); code != 0 {
		t.Errorf("--out %s: exit %d: %s", out, code, stderr)
	}
}
