package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/neoscope/neoscope/internal/fixtures"
	"github.com/neoscope/neoscope/probes/ioi"
	"github.com/neoscope/neoscope/runtime/checkpoint"
)

// copyModel copies the tiny-neo fixture's config and weights into a fresh
// directory and writes its token rows to tokens.json beside it.
func copyModel(t *testing.T) (model, tokens string) {
	t.Helper()
	ref := fixtures.Load(t, "tiny-neo")
	dir := t.TempDir()
	model = filepath.Join(dir, "m")
	fixtures.Must(t, os.Mkdir(model, 0o755))
	for _, n := range []string{"config.json", "model.safetensors"} {
		copyFile(t, filepath.Join(ref.Dir, n), filepath.Join(model, n))
	}
	tokens = filepath.Join(dir, "tokens.json")
	data, _ := json.Marshal(ref.Get(t, "tokens").Rows())
	fixtures.Must(t, os.WriteFile(tokens, data, 0o644))
	return model, tokens
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	fixtures.Must(t, err)
	defer src.Close()
	dst, err := os.Create(to)
	fixtures.Must(t, err)
	_, err = io.Copy(dst, src)
	fixtures.Must(t, err)
	fixtures.Must(t, dst.Close())
}

func fileBytes(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	fixtures.Must(t, err)
	return b
}

// TestOutputsNeverOverwrite (issue 18 item 1): run --out onto the model's
// weights or the token file is refused (exit 2) even with --force, the
// inputs unchanged; an existing file needs --force; merge refuses OUT = a shard.
func TestOutputsNeverOverwrite(t *testing.T) {
	model, tokens := copyModel(t)
	weights := filepath.Join(model, "model.safetensors")
	w0, t0 := fileBytes(t, weights), fileBytes(t, tokens)
	for _, out := range []string{weights, tokens, filepath.Join(model, "..", "m", "config.json")} {
		for _, force := range []bool{false, true} {
			args := []string{"run", "--model", model, "--backend", "cpu", "--tokens", tokens, "--out", out}
			if force {
				args = append(args, "--force")
			}
			_, stderr, code := runCLI(t, args...)
			if code != 2 || !strings.Contains(stderr, "input") {
				t.Errorf("run --out %s (force %v): exit %d, want 2 naming the input: %s", out, force, code, stderr)
			}
		}
	}
	if !bytes.Equal(fileBytes(t, weights), w0) || !bytes.Equal(fileBytes(t, tokens), t0) {
		t.Fatal("an input changed")
	}
	exists := filepath.Join(t.TempDir(), "exists.safetensors")
	fixtures.Must(t, os.WriteFile(exists, []byte("keep"), 0o644))
	_, stderr, code := runCLI(t, "run", "--model", model, "--backend", "cpu", "--tokens", tokens, "--out", exists)
	if code != 2 || !strings.Contains(stderr, "--force") || string(fileBytes(t, exists)) != "keep" {
		t.Errorf("run --out onto an existing file: exit %d, want 2 asking for --force: %s", code, stderr)
	}
	if _, stderr, code = runCLI(t, "run", "--model", model, "--backend", "cpu", "--tokens", tokens, "--out", exists, "--force"); code != 0 {
		t.Errorf("run --out existing --force: exit %d: %s", code, stderr)
	}
	if string(fileBytes(t, exists)) == "keep" {
		t.Error("--force did not replace the file")
	}
	// merge: OUT is one of the shards.
	dir := t.TempDir()
	part := filepath.Join(dir, "part.0.csv")
	if _, stderr, code = runCLI(t, "sweep", "--model", model, "--backend", "cpu", "--tokens", tokens, "--space", "singles(0.*)", "--out", part); code != 0 {
		t.Fatalf("sweep: exit %d: %s", code, stderr)
	}
	p0 := fileBytes(t, part)
	if _, stderr, code = runCLI(t, "merge", part, part, "--force"); code != 2 || !bytes.Equal(fileBytes(t, part), p0) {
		t.Errorf("merge onto its own shard: exit %d, want 2, shard unchanged: %s", code, stderr)
	}
	if _, stderr, code = runCLI(t, "merge"); code != 2 {
		t.Errorf("merge without arguments: exit %d, want 2: %s", code, stderr)
	}
}

// TestResumeIdentity (issue 18 item 2): --resume refuses a sweep file whose
// model was edited in place (same path, other weights) and accepts a
// byte-identical copy of the model elsewhere.
func TestResumeIdentity(t *testing.T) {
	t.Setenv("NEOSCOPE_CACHE", t.TempDir())
	model, tokens := copyModel(t)
	out := filepath.Join(t.TempDir(), "r.csv")
	sweep := func(m string) (string, int) {
		_, stderr, code := runCLI(t, "sweep", "--model", m, "--backend", "cpu", "--tokens", tokens, "--space", "singles(0.*)", "--out", out, "--resume")
		return stderr, code
	}
	if stderr, code := sweep(model); code != 0 {
		t.Fatalf("sweep: exit %d: %s", code, stderr)
	}
	copyDir := filepath.Join(t.TempDir(), "copy")
	fixtures.Must(t, os.Mkdir(copyDir, 0o755))
	for _, n := range []string{"config.json", "model.safetensors"} {
		copyFile(t, filepath.Join(model, n), filepath.Join(copyDir, n))
	}
	if stderr, code := sweep(copyDir); code != 0 {
		t.Fatalf("--resume with a byte-identical copy of the model elsewhere: exit %d: %s", code, stderr)
	}
	// Edit the last weight value in place (float32 1.5, little-endian).
	w := filepath.Join(model, "model.safetensors")
	f, err := os.OpenFile(w, os.O_RDWR, 0)
	fixtures.Must(t, err)
	st, _ := f.Stat()
	_, err = f.WriteAt([]byte{0, 0, 0xc0, 0x3f}, st.Size()-4)
	fixtures.Must(t, err)
	fixtures.Must(t, f.Close())
	stderr, code := sweep(model)
	if code != 2 || !strings.Contains(stderr, "content differs") {
		t.Fatalf("--resume after a weight changed in place: exit %d, want 2 saying the model's content differs: %s", code, stderr)
	}
}

// TestIOINoVerdict (issue 18 item 5): ioi on a model without the behaviour
// (random tiny-neo weights under the bundled tokenizer, ioiTestModel), whose
// clean-corrupt gap is within the noise, prints no verdict ("mostly heads")
// in the table or the JSON, and the JSON's gap agrees with ioi.GapTooSmall on
// its own per-prompt figures. TestIOIVerdict is the other side: the bundled
// model, trained for IOI, gets one.
func TestIOINoVerdict(t *testing.T) {
	res, table := ioiSummary(t, "--model", ioiTestModel(t))
	if !res.Summary.Gap.TooSmall {
		t.Fatalf("random weights show an IOI gap %+v; this test needs a model without the behaviour", res.Summary.Gap)
	}
	for _, s := range []string{res.Summary.Answer, table} {
		if strings.Contains(s, "mostly") || !strings.Contains(s, "no verdict") {
			t.Errorf("a verdict on a gap within the noise: %s", s)
		}
	}
}

// TestIOIVerdict: the bundled model prefers IO clearly (its contract,
// models/contract_test.go), so ioi prints a verdict and no "no verdict".
func TestIOIVerdict(t *testing.T) {
	res, table := ioiSummary(t)
	if res.Summary.Gap.TooSmall || res.Summary.NoVerdict {
		t.Fatalf("the bundled model's IOI gap %+v gets no verdict", res.Summary.Gap)
	}
	for _, s := range []string{res.Summary.Answer, table} {
		if strings.Contains(s, "no verdict") || !strings.Contains(s, "heads") {
			t.Errorf("no verdict on a clear gap: %s", s)
		}
	}
}

type ioiJSON struct {
	Clean   []float64 `json:"row_ld_clean"`
	Corrupt []float64 `json:"row_ld_corrupt"`
	Summary struct {
		Answer    string
		NoVerdict bool `json:"no_verdict"`
		Gap       ioi.Gap
	}
}

// ioiSummary runs ioi on 40 prompts with --json and as a table, and checks
// that the JSON's gap is ioi.GapTooSmall of its own per-prompt figures.
func ioiSummary(t *testing.T, args ...string) (ioiJSON, string) {
	t.Helper()
	args = append([]string{"ioi", "--n", "40", "--backend", "cpu", "--no-resid"}, args...)
	stdout, stderr, code := runCLI(t, append(args, "--json")...)
	if code != 0 {
		t.Fatalf("ioi: exit %d: %s", code, stderr)
	}
	var res ioiJSON
	fixtures.Must(t, json.Unmarshal([]byte(stdout), &res))
	want := ioi.GapTooSmall(res.Clean, res.Corrupt)
	if res.Summary.Gap != want || res.Summary.NoVerdict != want.TooSmall {
		t.Fatalf("gap %+v (no_verdict %v), GapTooSmall says %+v", res.Summary.Gap, res.Summary.NoVerdict, want)
	}
	table, stderr, code := runCLI(t, args...)
	if code != 0 {
		t.Fatalf("ioi: exit %d: %s", code, stderr)
	}
	return res, table
}

// TestMaxConfigs (issue 18 item 7): a space beyond --max-configs is refused
// before any work (exit 2, the count named); nothing is written.
func TestMaxConfigs(t *testing.T) {
	model, tokens := copyModel(t)
	out := filepath.Join(t.TempDir(), "huge.csv")
	start := time.Now()
	_, stderr, code := runCLI(t, "sweep", "--model", model, "--backend", "cpu", "--tokens", tokens, "--space", "subsets(heads)", "--max-configs", "1000", "--out", out)
	if code != 2 || !strings.Contains(stderr, "65536 configurations") || time.Since(start) > 10*time.Second {
		t.Fatalf("subsets of 16 heads with --max-configs 1000: exit %d after %v, want 2 at once naming 65536: %s", code, time.Since(start), stderr)
	}
	if _, err := os.Stat(out); err == nil {
		t.Fatal("an output was written")
	}
	if _, stderr, code = runCLI(t, "sweep", "--model", model, "--backend", "cpu", "--tokens", tokens, "--space", "pairs(2.1)", "--out", out); code != 2 || !strings.Contains(stderr, "no configurations") {
		t.Fatalf("pairs of one head: exit %d, want 2 saying it is empty: %s", code, stderr)
	}
}

// TestExitStatus: bad usage and bad input exit 2 (unknown command, extra
// argument, merge without arguments, an empty model directory, a truncated
// checkpoint, a config that is not JSON, a model without a tokenizer for
// tokenize), also for the commands that read config.json themselves (info,
// circuit --task induction); the message names the culprit.
func TestExitStatus(t *testing.T) {
	model, tokens := copyModel(t)
	empty := t.TempDir()
	out := filepath.Join(t.TempDir(), "o.safetensors")
	run := func(m string) []string {
		return []string{"run", "--model", m, "--backend", "cpu", "--tokens", tokens, "--out", out}
	}
	trunc := filepath.Join(t.TempDir(), "trunc")
	fixtures.Must(t, os.Mkdir(trunc, 0o755))
	copyFile(t, filepath.Join(model, "config.json"), filepath.Join(trunc, "config.json"))
	copyFile(t, filepath.Join(model, "model.safetensors"), filepath.Join(trunc, "model.safetensors"))
	fixtures.Must(t, os.Truncate(filepath.Join(trunc, "model.safetensors"), 5000))
	notJSON := filepath.Join(t.TempDir(), "nj")
	fixtures.Must(t, os.Mkdir(notJSON, 0o755))
	copyFile(t, filepath.Join(model, "model.safetensors"), filepath.Join(notJSON, "model.safetensors"))
	fixtures.Must(t, os.WriteFile(filepath.Join(notJSON, "config.json"), []byte("{not json"), 0o644))
	strType := filepath.Join(t.TempDir(), "st")
	fixtures.Must(t, os.Mkdir(strType, 0o755))
	copyFile(t, filepath.Join(model, "model.safetensors"), filepath.Join(strType, "model.safetensors"))
	cfg := strings.Replace(string(fileBytes(t, filepath.Join(model, "config.json"))), `"num_layers": 4`, `"num_layers": "four"`, 1)
	if !strings.Contains(cfg, `"four"`) {
		t.Fatal("the fixture's config.json has no \"num_layers\": 4")
	}
	fixtures.Must(t, os.WriteFile(filepath.Join(strType, "config.json"), []byte(cfg), 0o644))
	for _, c := range []struct {
		args []string
		want string
	}{
		{run(strType), `field "num_layers": got a string, want a whole number`},
		{[]string{"bogus"}, "unknown command"},
		{[]string{"tunedlens", "bogus"}, "unknown command"},
		{[]string{"run", "extra"}, "extra"},
		{[]string{"hooks", "--model", model, "extra"}, "extra"},
		{[]string{"merge"}, "merge needs OUT"},
		{run(empty), empty},
		{run(trunc), "model.safetensors"},
		{run(notJSON), "config.json"},
		// Commands that read config.json or the tokenizer themselves.
		{[]string{"info", "--model", empty}, "config.json"},
		{[]string{"info", "--model", notJSON}, "config.json"},
		{[]string{"tokenize", "--model", model, "--prompt", "hi"}, "tokenizer"},
		{[]string{"circuit", "--model", empty, "--task", "induction", "--threshold", "0.1", "--out", filepath.Join(t.TempDir(), "c")}, "config.json"},
	} {
		_, stderr, code := runCLI(t, c.args...)
		if code != 2 || !strings.Contains(stderr, c.want) || strings.Contains(stderr, "panic") || strings.Contains(stderr, "Go ") {
			t.Errorf("%v: exit %d, want 2 naming %q: %s", c.args, code, c.want, stderr)
		}
	}
}

// TestCulpritAndVersion: a missing --compare model is blamed on --compare;
// neoscope --version prints the version that sweep sidecars record.
func TestCulpritAndVersion(t *testing.T) {
	t.Setenv("HF_HOME", t.TempDir())
	t.Setenv("HF_HUB_CACHE", "")
	_, stderr, code := runCLI(t, "report", "--compare", "gpt2", "--backend", "cpu", "--out", filepath.Join(t.TempDir(), "r"))
	if code != 2 || !strings.HasPrefix(stderr, "neoscope: --compare") {
		t.Errorf("report --compare gpt2 (not downloaded): exit %d, want 2 blaming --compare: %s", code, stderr)
	}
	stdout, stderr, code := runCLI(t, "--version")
	v := strings.TrimSpace(strings.TrimPrefix(stdout, "neoscope "))
	if code != 0 || v == "" || v == strings.TrimSpace(stdout) {
		t.Fatalf("--version: exit %d, %q %s", code, stdout, stderr)
	}
	model, tokens := copyModel(t)
	out := filepath.Join(t.TempDir(), "r.csv")
	if _, stderr, code = runCLI(t, "sweep", "--model", model, "--backend", "cpu", "--tokens", tokens, "--space", "singles(0.0)", "--out", out); code != 0 {
		t.Fatalf("sweep: %d %s", code, stderr)
	}
	var meta struct {
		Version string `json:"neoscope_version"`
	}
	fixtures.Must(t, json.Unmarshal(fileBytes(t, out+".meta.json"), &meta))
	if meta.Version != v {
		t.Errorf(".meta.json records version %q, --version says %q", meta.Version, v)
	}
}

// TestNaNJSON: results that are NaN (here from NaN embeddings) are written
// as null in --json output with a warning, not a failed write.
func TestNaNJSON(t *testing.T) {
	model, tokens := copyModel(t)
	w := filepath.Join(model, "model.safetensors")
	b := fileBytes(t, w)
	// Every value after the header and the first 4 KiB of data becomes NaN.
	n := int(b[0]) | int(b[1])<<8 | int(b[2])<<16
	for i := 8 + n + 4096; i+4 <= len(b); i += 4 {
		copy(b[i:], []byte{0, 0, 0xc0, 0x7f})
	}
	fixtures.Must(t, os.WriteFile(w, b, 0o644))
	stdout, stderr, code := runCLI(t, "lens", "--model", model, "--backend", "cpu", "--tokens", tokens, "--json")
	if code != 0 || !strings.Contains(stdout, "null") || !strings.Contains(stderr, "NaN") {
		t.Fatalf("lens --json on a NaN model: exit %d, want 0 with nulls and a warning: %s\n%.300s", code, stderr, stdout)
	}
	var v any
	fixtures.Must(t, json.Unmarshal([]byte(stdout), &v))
	out := filepath.Join(t.TempDir(), "s.csv")
	_, stderr, code = runCLI(t, "sweep", "--model", model, "--backend", "cpu", "--tokens", tokens, "--space", "singles(0.*)", "--out", out)
	if code != 2 || !strings.Contains(stderr, "NaN") {
		t.Fatalf("sweep on a NaN model: exit %d, want 2 saying the baseline is NaN: %s", code, stderr)
	}
}

// TestPrependBOS: --prompt text is used as tokenized by default; with
// --prepend-bos one BOS token comes first (T + 1); with --tokens it is
// refused.
func TestPrependBOS(t *testing.T) {
	dir := t.TempDir()
	ids, _, _ := runCLI(t, "tokenize", "--prompt", "In the beginning God created", "--json")
	var tk struct{ IDs []int }
	fixtures.Must(t, json.Unmarshal([]byte(ids), &tk))
	for _, c := range []struct {
		extra []string
		T     int
	}{{nil, len(tk.IDs)}, {[]string{"--prepend-bos"}, len(tk.IDs) + 1}} {
		out := filepath.Join(dir, fmt.Sprintf("o%d.safetensors", c.T))
		_, stderr, code := runCLI(t, append([]string{"run", "--backend", "cpu", "--prompt", "In the beginning God created", "--out", out}, c.extra...)...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", c.extra, code, stderr)
		}
		es, err := checkpoint.ParseSafetensors(out, fileBytes(t, out))
		fixtures.Must(t, err)
		if es[0].Shape[1] != c.T {
			t.Errorf("%v: logits %v, want T = %d", c.extra, es[0].Shape, c.T)
		}
	}
	tok := filepath.Join(dir, "t.json")
	fixtures.Must(t, os.WriteFile(tok, []byte("[[1, 2, 3]]"), 0o644))
	if _, stderr, code := runCLI(t, "run", "--backend", "cpu", "--tokens", tok, "--prepend-bos", "--out", filepath.Join(dir, "x.safetensors")); code != 2 {
		t.Errorf("--tokens with --prepend-bos: exit %d, want 2: %s", code, stderr)
	}
}

// TestPlotNeedsForce: --plot onto an existing file is refused before any
// work without --force (exit 2, the file kept), replaced with it.
func TestPlotNeedsForce(t *testing.T) {
	model, tokens := copyModel(t)
	plot := filepath.Join(t.TempDir(), "heads.png")
	fixtures.Must(t, os.WriteFile(plot, []byte("keep"), 0o644))
	args := []string{"ablate", "--model", model, "--backend", "cpu", "--tokens", tokens, "--each", "head", "--plot", plot}
	if _, stderr, code := runCLI(t, args...); code != 2 || string(fileBytes(t, plot)) != "keep" {
		t.Fatalf("--plot onto an existing file: exit %d, want 2 and the file kept: %s", code, stderr)
	}
	if _, stderr, code := runCLI(t, append(args, "--force")...); code != 0 || string(fileBytes(t, plot)) == "keep" {
		t.Fatalf("--plot --force: exit %d: %s", code, stderr)
	}
}

// TestSweepPlotChecked: --plot with a space it cannot draw is refused
// before the sweep runs (exit 2, no result written).
func TestSweepPlotChecked(t *testing.T) {
	model, tokens := copyModel(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "p.csv")
	_, stderr, code := runCLI(t, "sweep", "--model", model, "--backend", "cpu", "--tokens", tokens, "--space", "pairs(0.*)", "--out", out, "--plot", filepath.Join(dir, "p.png"))
	if code != 2 || !strings.Contains(stderr, "--plot") {
		t.Fatalf("pairs with --plot: exit %d, want 2 blaming --plot: %s", code, stderr)
	}
	if _, err := os.Stat(out); err == nil {
		t.Fatal("the sweep ran before --plot was refused")
	}
}

// TestJSONEverywhere: hooks --json and run --json print JSON summaries.
func TestJSONEverywhere(t *testing.T) {
	stdout, stderr, code := runCLI(t, "hooks", "--json", "--backend", "cpu")
	var h struct{ Hooks []string }
	if code != 0 || json.Unmarshal([]byte(stdout), &h) != nil || len(h.Hooks) == 0 || h.Hooks[0] != "hook_embed" {
		t.Fatalf("hooks --json: exit %d: %.200s %s", code, stdout, stderr)
	}
	out := filepath.Join(t.TempDir(), "a.safetensors")
	stdout, stderr, code = runCLI(t, "run", "--json", "--backend", "cpu", "--prompt", "hello there", "--out", out)
	var r struct {
		Out     string
		B, T    int
		Tensors map[string][]int
	}
	if code != 0 || json.Unmarshal([]byte(stdout), &r) != nil || r.Out != out || len(r.Tensors["logits"]) != 3 {
		t.Fatalf("run --json: exit %d: %.300s %s", code, stdout, stderr)
	}
}

// TestGPUNoticeOnce: the CPU fallback notice appears at most once per
// command (lens --compare opens two models), and not for hooks, which runs
// nothing, nor for a command refused before any work (a missing token
// file, a missing --out: the notice used to come first there).
func TestGPUNoticeOnce(t *testing.T) {
	model, tokens := copyModel(t)
	other := fixtures.Dir(t, "tiny-gpt2")
	missing := filepath.Join(t.TempDir(), "missing.json")
	for _, c := range []struct {
		args []string
		max  int
		code int
	}{
		{[]string{"lens", "--model", model, "--compare", other, "--tokens", tokens}, 1, 0},
		{[]string{"hooks", "--model", model}, 0, 0},
		// Refused before any work (exit 2): nothing computed, no notice.
		{[]string{"sweep", "--model", model, "--tokens", missing, "--space", "singles(0.0)", "--out", filepath.Join(t.TempDir(), "r.csv")}, 0, 2},
		{[]string{"lens", "--model", model, "--tokens", missing}, 0, 2},
		{[]string{"run", "--model", model, "--tokens", tokens}, 0, 2},
	} {
		cmd := exec.Command(neoscopeBin, c.args...)
		var env []string
		for _, e := range os.Environ() {
			if !strings.HasPrefix(e, "NEOSCOPE_QUIET=") {
				env = append(env, e)
			}
		}
		cmd.Env = env
		var se bytes.Buffer
		cmd.Stderr = &se
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("%v: %v", c.args, err)
		}
		if code != c.code {
			t.Fatalf("%v: exit %d, want %d: %s", c.args, code, c.code, se.String())
		}
		if n := strings.Count(se.String(), "no usable GPU"); n > c.max {
			t.Errorf("%v: the GPU notice %d times, want at most %d: %s", c.args[0], n, c.max, se.String())
		}
	}
}
