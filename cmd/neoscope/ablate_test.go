package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/neoscope/neoscope/internal/fixtures"
)

// probeTokens writes a fixture's int tensor as a --tokens JSON file.
func probeTokens(t *testing.T, ref *fixtures.Ref, name string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name+".json")
	data, err := json.Marshal(ref.Get(t, name).Rows())
	fixtures.Must(t, err)
	fixtures.Must(t, os.WriteFile(p, data, 0o644))
	return p
}

// probeJSON runs the CLI, expects exit 0, and decodes stdout.
func probeJSON(t *testing.T, out any, args ...string) {
	t.Helper()
	stdout, stderr, code := runCLI(t, args...)
	if code != 0 {
		t.Fatalf("neoscope %s: exit %d: %s", strings.Join(args, " "), code, stderr)
	}
	if err := json.Unmarshal([]byte(stdout), out); err != nil {
		t.Fatalf("neoscope %s: bad JSON: %v\n%s", strings.Join(args, " "), err, stdout)
	}
}

// expectUsage runs the CLI and expects exit 2, no stdout, and stderr
// containing want.
func expectUsage(t *testing.T, want string, args ...string) {
	t.Helper()
	stdout, stderr, code := runCLI(t, args...)
	if code != 2 || stdout != "" || !strings.Contains(stderr, want) {
		t.Errorf("neoscope %s: exit %d, stdout %q, stderr %q; want exit 2 and a message containing %q",
			strings.Join(args, " "), code, stdout, stderr, want)
	}
}

func flat2(x [][]float64) []float64 {
	var out []float64
	for _, r := range x {
		out = append(out, r...)
	}
	return out
}

// TestAblateCLI: `neoscope ablate --json` in zero and mean mode gives the
// fixture's tables (at the fixture's tolerances; the probe package tests
// the same numbers on both fixtures, this checks the command's plumbing).
func TestAblateCLI(t *testing.T) {
	ref := fixtures.Load(t, "tiny-gpt2")
	tok := probeTokens(t, ref, "tokens")
	var z, mn struct {
		Mode     string      `json:"mode"`
		Baseline float64     `json:"baseline_loss"`
		Head     [][]float64 `json:"head_ablation_loss"`
		Attn     []float64   `json:"attn_layer_ablation_loss"`
		MLP      []float64   `json:"mlp_ablation_loss"`
		SetLoss  float64     `json:"set_ablation_loss"`
	}
	probeJSON(t, &z, "ablate", "--model", ref.Dir, "--backend", "cpu", "--tokens", tok, "--json", "--set", "0.1,1.3,2.0,3.2")
	ref.Check(t, "baseline_loss", []float64{z.Baseline}, "loss")
	ref.Check(t, "head_ablation_loss", flat2(z.Head), "head_ablation_loss")
	ref.Check(t, "attn_layer_ablation_loss", z.Attn, "attn_layer_ablation_loss")
	ref.Check(t, "mlp_ablation_loss", z.MLP, "mlp_ablation_loss")
	// tiny-gpt2's subset_heads are 0.1, 1.3, 2.0, 3.2; all four = subset 15.
	ref.CheckAgainst(t, "set = subset_ablation_loss[15]", []float64{z.SetLoss}, ref.Get(t, "subset_ablation_loss").F[15:], "subset_ablation_loss")

	probeJSON(t, &mn, "ablate", "--model", ref.Dir, "--backend", "cpu", "--tokens", tok, "--json", "--mode", "mean", "--each", "mlp,attn")
	if mn.Mode != "mean" || mn.Head != nil {
		t.Errorf("mean run: mode %q, head table %v (not asked for)", mn.Mode, mn.Head)
	}
	ref.Check(t, "attn_layer_mean_ablation_loss", mn.Attn, "attn_layer_mean_ablation_loss")
	ref.Check(t, "mlp_mean_ablation_loss", mn.MLP, "mlp_mean_ablation_loss")

	// The table and the heatmap.
	png := filepath.Join(t.TempDir(), "heads.png")
	stdout, stderr, code := runCLI(t, "ablate", "--model", ref.Dir, "--backend", "cpu", "--tokens", tok, "--each", "head", "--plot", png)
	if code != 0 || !strings.Contains(stdout, "baseline loss") || !strings.Contains(stdout, "largest increases") {
		t.Errorf("table: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if st, err := os.Stat(png); err != nil || st.Size() == 0 {
		t.Errorf("heatmap not written: %v", err)
	}
}

func TestAblateCLIErrors(t *testing.T) {
	ref := fixtures.Load(t, "tiny-neo")
	tok := probeTokens(t, ref, "tokens")
	base := []string{"ablate", "--model", ref.Dir, "--backend", "cpu", "--tokens", tok}
	expectUsage(t, "--each", append(base, "--each", "heads,foo")...)
	expectUsage(t, "--mode", append(base, "--mode", "median")...)
	expectUsage(t, "--loss-from 23", append(base, "--loss-from", "23")...)
	expectUsage(t, "head 4.0", append(base, "--set", "4.0")...)
	expectUsage(t, "layer.head", append(base, "--set", "2")...)
	expectUsage(t, ".png or .svg", append(base, "--plot", "x.jpg")...)
}
