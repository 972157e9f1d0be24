package circuit

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/neoscope/neoscope/cpu"
	"github.com/neoscope/neoscope/internal/fixtures"
	"github.com/neoscope/neoscope/runtime/forward"
	"github.com/neoscope/neoscope/runtime/graph"
)

// TestEngineEqualsHooks: ACDC through the batched patching engine (what
// `neoscope circuit` uses) makes the same decisions as through the plain
// hook evaluator, on every fixture, for KL at the fixture's threshold and
// LD at 0.05, one circuit a pass and speculative batches of 8.
func TestEngineEqualsHooks(t *testing.T) {
	for _, name := range circuitFixtures {
		for _, c := range []struct {
			metric Metric
			tau    float64
		}{{KL, -1}, {LD, 0.05}} {
			f := load(t, name, c.metric)
			tau := c.tau
			if tau < 0 {
				tau = f.acdc.Threshold
			}
			ref, err := Run(f.g, f.evaluator(t, 1), Options{Metric: c.metric, Threshold: tau, Batch: 1})
			if err != nil {
				t.Fatal(err)
			}
			for _, per := range []int{1, 8} {
				ev, err := NewEngineEvaluator(f.m, f.g, f.task, per)
				if err != nil {
					t.Fatal(err)
				}
				got, err := Run(f.g, ev, Options{Metric: c.metric, Threshold: tau})
				ev.Close()
				if err != nil {
					t.Fatal(err)
				}
				for e := range ref.Removed {
					if ref.Removed[e] != got.Removed[e] {
						t.Errorf("%s %s tau %g, %d a pass: edge %s removed %v by the hook evaluator, %v by the engine",
							name, c.metric, tau, per, f.g.Edges[e], ref.Removed[e], got.Removed[e])
					}
				}
				// Both are float32 passes of the same circuit, summed in
				// different orders: the edge-patching floor (tol).
				if d := math.Abs(got.Metric - ref.Metric); d > tol(f.circ.Dev["edge_patch_"+string(c.metric)]) {
					t.Errorf("%s %s: circuit metric %.7g through the engine, %.7g through hooks", name, c.metric, got.Metric, ref.Metric)
				}
			}
		}
	}
}

// A graph of another residual layout than the model's is refused by both
// evaluators (its MLP edges would read the wrong residual).
func TestLayoutMismatch(t *testing.T) {
	f := load(t, "tiny-neox", KL)
	seq := graph.New(f.m.Cfg.Layers, f.m.Cfg.Heads, nil)
	if _, err := NewHookEvaluator(f.m, seq, f.task, 1); err == nil || !strings.Contains(err.Error(), "parallel-residual") {
		t.Errorf("hook evaluator, sequential graph on tiny-neox: %v", err)
	}
	if ev, err := NewEngineEvaluator(f.m, seq, f.task, 1); err == nil || !strings.Contains(err.Error(), "parallel-residual") {
		if ev != nil {
			ev.Close()
		}
		t.Errorf("engine evaluator, sequential graph on tiny-neox: %v", err)
	}
}

// GPT-NeoX with use_parallel_residual false (tiny-neox's weights, the flag
// flipped in a copy of its config): a sequential block with rotary
// attention. Every single edge through the engine equals the hook
// evaluator (checked against circuits.json on the three fixtures), LD and
// KL. (make_circuits.py's float64 oracle, run by hand on this variant,
// agreed with the engine within its floors: README, batched patching.)
func TestSequentialNeoX(t *testing.T) {
	f := load(t, "tiny-neox", LD) // its floors and its ground-truth checks
	src := filepath.Join(fixtures.Root(), "tiny-neox")
	dir := t.TempDir()
	raw, err := os.ReadFile(filepath.Join(src, "config.json"))
	fixtures.Must(t, err)
	var cfg map[string]any
	fixtures.Must(t, json.Unmarshal(raw, &cfg))
	cfg["use_parallel_residual"] = false
	raw, err = json.Marshal(cfg)
	fixtures.Must(t, err)
	fixtures.Must(t, os.WriteFile(filepath.Join(dir, "config.json"), raw, 0o644))
	fixtures.Must(t, os.Symlink(filepath.Join(src, "model.safetensors"), filepath.Join(dir, "model.safetensors")))
	m, err := forward.Open(cpu.New(), dir)
	fixtures.Must(t, err)
	defer m.Close()
	if m.Cfg.ParallelAt(0) {
		t.Fatal("use_parallel_residual false was not read")
	}
	var cases struct {
		Clean   [][]int32 `json:"ioi_clean"`
		Corrupt [][]int32 `json:"ioi_corrupt"`
		IO      []int32   `json:"ioi_io"`
		S       []int32   `json:"ioi_s"`
	}
	raw, err = os.ReadFile(filepath.Join(src, "cases.json"))
	fixtures.Must(t, err)
	fixtures.Must(t, json.Unmarshal(raw, &cases))
	cf, B, T, err := m.CheckTokens(cases.Clean)
	fixtures.Must(t, err)
	kf, _, _, err := m.CheckTokens(cases.Corrupt)
	fixtures.Must(t, err)
	g := graph.New(m.Cfg.Layers, m.Cfg.Heads, m.Cfg.ParallelAt)
	if len(g.Edges) != 479 { // the sequential graph of 4 layers x 4 heads
		t.Fatalf("%d edges, want 479", len(g.Edges))
	}
	E := len(g.Edges)
	cs := make([][]bool, E)
	for e := range cs {
		cs[e] = make([]bool, E)
		cs[e][e] = true
	}
	for _, met := range []Metric{LD, KL} {
		task := Task{Clean: cf, Corrupt: kf, B: B, T: T, IO: cases.IO, S: cases.S, Metric: met}
		hk, err := NewHookEvaluator(m, g, task, 16)
		fixtures.Must(t, err)
		want, err := hk.Eval(cs)
		fixtures.Must(t, err)
		en, err := NewEngineEvaluator(m, g, task, 0)
		fixtures.Must(t, err)
		got, err := en.Eval(cs)
		en.Close()
		fixtures.Must(t, err)
		// tiny-neox's edge-patching floors (the parallel variant's): two
		// float32 evaluations of the same patched pass.
		fixtures.Close(t, "sequential GPT-NeoX, engine vs hooks, "+string(met), got, want, tol(f.circ.Dev["edge_patch_"+string(met)]))
		moved := 0
		for i := range want {
			if math.Abs(want[i]-want[0]) > 1e-4 {
				moved++
			}
		}
		if moved < E/4 {
			t.Errorf("%s: only %d of %d edges change the metric: the test would not see a misplaced edge", met, moved, E)
		}
	}
}
