package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/neoscope/neoscope/internal/fixtures"
	"github.com/neoscope/neoscope/runtime/sweep"
)

// patchCLIFixtures: one fixture per family (tiny-neox: GPT-NeoX, parallel
// residual and rotary).
var patchCLIFixtures = []string{"tiny-neo", "tiny-gpt2", "tiny-neox"}

type patchCLI struct {
	ref                *fixtures.Ref
	clean, corrupt     string
	io, s              string
	edges              []string
	edgeLD, edgeKL     []float64
	ldClean, ldCorrupt float64
	floor              map[string]float64
}

func newPatchCLI(t *testing.T, name string) *patchCLI {
	ref := fixtures.Load(t, name)
	dir := t.TempDir()
	p := &patchCLI{ref: ref, clean: filepath.Join(dir, "clean.json"), corrupt: filepath.Join(dir, "corrupt.json")}
	writeTokens(t, ref, "ioi_clean", p.clean)
	writeTokens(t, ref, "ioi_corrupt", p.corrupt)
	p.io, p.s = joinIDs(ref.Get(t, "ioi_io").Ints()), joinIDs(ref.Get(t, "ioi_s").Ints())
	data, err := os.ReadFile(filepath.Join(ref.Dir, "circuits.json"))
	if err != nil {
		t.Fatalf("patching ground truth missing: %v", err)
	}
	var c struct {
		Edges     []string           `json:"edges"`
		LD        []float64          `json:"edge_patch_ld"`
		KL        []float64          `json:"edge_patch_kl"`
		LDClean   float64            `json:"ld_clean"`
		LDCorrupt float64            `json:"ld_corrupt"`
		Floor     map[string]float64 `json:"float32_torch_max_abs_dev"`
	}
	fixtures.Must(t, json.Unmarshal(data, &c))
	if len(c.Edges) == 0 || len(c.LD) != len(c.Edges) || len(c.KL) != len(c.Edges) {
		t.Fatalf("%s/circuits.json: no edge tables", ref.Dir)
	}
	p.edges, p.edgeLD, p.edgeKL, p.ldClean, p.ldCorrupt, p.floor = c.Edges, c.LD, c.KL, c.LDClean, c.LDCorrupt, c.Floor
	return p
}

func (p *patchCLI) tol(key string) float64 { return math.Max(10*p.floor[key], 1e-5) }

func (p *patchCLI) args(out string, extra ...string) []string {
	return append([]string{"sweep", "--model", p.ref.Dir, "--backend", "cpu", "--threads", "1", "--task", "patch",
		"--clean", p.clean, "--corrupt", p.corrupt, "--io", p.io, "--s", p.s, "--out", out}, extra...)
}

func (p *patchCLI) run(t *testing.T, out string, extra ...string) string {
	t.Helper()
	stdout, stderr, code := runCLI(t, p.args(out, extra...)...)
	if code != 0 {
		t.Fatalf("neoscope %v: exit %d: %s", extra, code, stderr)
	}
	return stdout
}

// TestSweepPatchCLI: every edge (ld and kl) against circuits.json, the
// unpatched rows, the CSV columns, --json's gap fields.
func TestSweepPatchCLI(t *testing.T) {
	for _, name := range patchCLIFixtures {
		t.Run(name, func(t *testing.T) {
			p := newPatchCLI(t, name)
			dir := t.TempDir()
			for _, c := range []struct {
				metric string
				want   []float64
				key    string
			}{{"ld", p.edgeLD, "edge_patch_ld"}, {"kl", p.edgeKL, "edge_patch_kl"}} {
				out := filepath.Join(dir, c.metric+".csv")
				p.run(t, out, "--mode", "noise", "--metric", c.metric, "--space", "edges | none")
				res := readResult(t, out, c.metric)
				fixtureSweepTol(t, res, c.want, p.edges, c.key, p.tol(c.key))
				head, err := os.ReadFile(out)
				fixtures.Must(t, err)
				if !strings.HasPrefix(string(head), "config,n_ablated,"+c.metric+",delta,") {
					t.Errorf("CSV header %q", strings.SplitN(string(head), "\n", 2)[0])
				}
				if c.metric == "ld" {
					fixtureSweepTol(t, res, []float64{p.ldClean}, []string{""}, "unpatched row (noise) = ld_clean", p.tol("ld_clean"))
					// The normalised column against the reference's own normalisation.
					var got, want []float64
					for i, e := range p.edges {
						got = append(got, res[e].Norm)
						want = append(want, (p.edgeLD[i]-p.ldCorrupt)/(p.ldClean-p.ldCorrupt))
					}
					fixtures.Close(t, "normalised column", got, want, 3*p.tol("edge_patch_ld")/math.Abs(p.ldClean-p.ldCorrupt)) // value, clean and corrupt errors over the gap
				}
			}
			out := filepath.Join(dir, "d.csv")
			stdout := p.run(t, out, "--mode", "denoise", "--metric", "ld", "--space", "none | 1.1@3 | resid.2@5", "--json")
			fixtureSweepTol(t, readResult(t, out, "ld"), []float64{p.ldCorrupt}, []string{""}, "unpatched row (denoise) = ld_corrupt", p.tol("ld_corrupt"))
			var js struct {
				Clean   float64 `json:"clean"`
				Corrupt float64 `json:"corrupt"`
				SE      float64 `json:"gap_se"`
				Noise   *bool   `json:"gap_is_noise"`
			}
			fixtures.Must(t, json.Unmarshal([]byte(stdout), &js))
			if js.Noise == nil || *js.Noise != (math.Abs(js.Clean-js.Corrupt) < 2*js.SE) || js.SE <= 0 {
				t.Errorf("--json gap fields: %+v", js)
			}
		})
	}
}

func fixtureSweepTol(t *testing.T, res map[string]sweep.Row, want []float64, names []string, what string, tol float64) {
	t.Helper()
	got := make([]float64, len(names))
	for i, n := range names {
		r, ok := res[n]
		if !ok {
			t.Fatalf("%s: no row for configuration %q", what, n)
		}
		got[i] = r.Value
	}
	fixtures.Close(t, what, got, want, tol)
}

// TestSweepPatchShardsResume: Parquet shards merge to the unsharded result;
// a finished sweep resumes to itself; resuming with other corrupt prompts,
// another mode or metric is refused.
func TestSweepPatchShardsResume(t *testing.T) {
	p := newPatchCLI(t, "tiny-neo")
	dir := t.TempDir()
	space := []string{"--mode", "noise", "--metric", "ld", "--space", "edges(mlp.2) | edges(logits) | singles(heads)"}
	whole := filepath.Join(dir, "whole.csv")
	p.run(t, whole, space...)
	var parts []string
	for i := 0; i < 2; i++ {
		part := filepath.Join(dir, fmt.Sprintf("part.%d.parquet", i))
		parts = append(parts, part)
		p.run(t, part, append(space, "--shard", fmt.Sprintf("%d/2", i))...)
	}
	merged := filepath.Join(dir, "merged.csv")
	if _, stderr, code := runCLI(t, append([]string{"merge", merged}, parts...)...); code != 0 {
		t.Fatal(stderr)
	}
	a, b := readResult(t, whole, "ld"), readResult(t, merged, "ld")
	if len(a) != 15+21+16 || len(b) != len(a) {
		t.Fatalf("%d rows unsharded, %d merged", len(a), len(b))
	}
	var got, want []float64
	for k, r := range a {
		got, want = append(got, b[k].Value), append(want, r.Value)
	}
	fixtures.Close(t, "merged shards vs unsharded", got, want, 2e-5)
	before, err := os.ReadFile(whole)
	fixtures.Must(t, err)
	p.run(t, whole, append(space, "--resume")...)
	after, err := os.ReadFile(whole)
	fixtures.Must(t, err)
	if string(before) != string(after) {
		t.Error("resuming a finished sweep changed its file")
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--corrupt", p.clean}, "inputs_sha256"},
		{[]string{"--mode", "denoise"}, "mode"},
		{[]string{"--metric", "kl"}, "metric"},
	} {
		args := append(p.args(whole, space...), "--resume")
		args = append(args, c.args...)
		if _, stderr, code := runCLI(t, args...); code != 2 || !strings.Contains(stderr, "different sweep") || !strings.Contains(stderr, c.want) {
			t.Errorf("resume with %v: exit %d, %q", c.args, code, stderr)
		}
	}
}

func TestSweepPatchBadInput(t *testing.T) {
	p := newPatchCLI(t, "tiny-neo")
	dir := t.TempDir()
	tok := filepath.Join(dir, "tok.json")
	writeTokens(t, p.ref, "tokens", tok)
	out := filepath.Join(dir, "r.csv")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--mode", "zero", "--space", "edges"}, "--task patch takes --mode noise or denoise"},
		{[]string{"--mode", "noise", "--space", "edges", "--corrupt", tok}, "equal shapes"},
		{[]string{"--mode", "noise", "--space", "mlp.3>mlp.1"}, "does not feed"},
		{[]string{"--mode", "noise", "--space", "1.1@12"}, "position 12 outside"},
		{[]string{"--mode", "noise", "--space", "edges(mlp.9)"}, "unknown receiver"},
		{[]string{"--mode", "noise", "--space", "edges", "--metric", "loss"}, "ld or kl"},
		{[]string{"--mode", "noise", "--space", "edges", "--pos", "12"}, "--pos"},
		{[]string{"--mode", "noise", "--space", "edges", "--plot", filepath.Join(dir, "p.svg")}, "--plot"},
	} {
		stdout, stderr, code := runCLI(t, p.args(out, c.args...)...)
		if code != 2 || !strings.Contains(stderr, c.want) || stdout != "" {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 naming %q", c.args, code, stderr, c.want)
		}
	}
	// Positions and edges are refused in knock-out sweeps.
	args := []string{"sweep", "--model", p.ref.Dir, "--backend", "cpu", "--tokens", tok, "--out", out, "--space", "1.1@3"}
	if _, stderr, code := runCLI(t, args...); code != 2 || !strings.Contains(stderr, "patching") {
		t.Errorf("knock-out sweep of 1.1@3: exit %d, %q", code, stderr)
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("bad input left %s behind", out)
	}
}

// TestSweepPatchParallelEdge: on a parallel-residual model a head does not
// feed its own layer's MLP; naming that edge is a usage error (exit 2) that
// says why, and writes nothing.
func TestSweepPatchParallelEdge(t *testing.T) {
	p := newPatchCLI(t, "tiny-neox")
	out := filepath.Join(t.TempDir(), "x.csv")
	_, stderr, code := runCLI(t, p.args(out, "--mode", "noise", "--metric", "ld", "--space", "1.2>mlp.1")...)
	if code != 2 || !strings.Contains(stderr, "1.2>mlp.1") || !strings.Contains(stderr, "parallel-residual") {
		t.Errorf("1.2>mlp.1 on tiny-neox: exit %d, stderr %q", code, stderr)
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("%s written by a refused sweep", out)
	}
}
