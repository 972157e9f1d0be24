package circuit

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/neoscope/neoscope/cpu"
	"github.com/neoscope/neoscope/internal/fixtures"
	"github.com/neoscope/neoscope/runtime/forward"
	"github.com/neoscope/neoscope/runtime/graph"
)

// circuitFixtures are the fixtures whose circuits.json and acdc.json the
// evaluators and ACDC are checked against: one per family (tiny-neox:
// GPT-NeoX, parallel residual and rotary).
var circuitFixtures = []string{"tiny-neo", "tiny-gpt2", "tiny-neox"}

// fixture is one model of ../shared/fixtures with its IOI-style case,
// circuits.json and acdc.json.
type fixture struct {
	name string
	m    *forward.Model
	g    *graph.Graph
	task Task
	circ struct {
		Edges       []string           `json:"edges"`
		EdgePatchKL []float64          `json:"edge_patch_kl"`
		EdgePatchLD []float64          `json:"edge_patch_ld"`
		LDClean     float64            `json:"ld_clean"`
		LDCorrupt   float64            `json:"ld_corrupt"`
		Dev         map[string]float64 `json:"float32_torch_max_abs_dev"`
	}
	acdc struct {
		Metric        string   `json:"metric"`
		Threshold     float64  `json:"threshold"`
		Edges         []string `json:"edges"`
		CircuitMetric float64  `json:"circuit_metric"`
		CircuitLD     float64  `json:"circuit_ld"`
		Evaluations   int      `json:"evaluations"`
	}
}

// load fails (never skips) when the fixture is missing: it is this
// package's ground truth.
func load(t *testing.T, name string, metric Metric) *fixture {
	t.Helper()
	root := fixtures.Root()
	if root == "" {
		t.Fatal("reference fixtures not found (../shared/fixtures; set NEOSCOPE_FIXTURES): the ACDC tests need tiny-neo, tiny-gpt2 and tiny-neox")
	}
	dir := filepath.Join(root, name)
	f := &fixture{name: name}
	readJSON := func(file string, v any) {
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s/%s: %v", dir, file, err)
		}
	}
	var cases struct {
		Clean   [][]int32 `json:"ioi_clean"`
		Corrupt [][]int32 `json:"ioi_corrupt"`
		IO      []int32   `json:"ioi_io"`
		S       []int32   `json:"ioi_s"`
	}
	readJSON("cases.json", &cases)
	readJSON("circuits.json", &f.circ)
	readJSON("acdc.json", &f.acdc)
	m, err := forward.Open(cpu.New(), dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	f.m = m
	f.g = graph.New(m.Cfg.Layers, m.Cfg.Heads, m.Cfg.ParallelAt)
	cf, B, T, err := m.CheckTokens(cases.Clean)
	if err != nil {
		t.Fatal(err)
	}
	kf, _, _, err := m.CheckTokens(cases.Corrupt)
	if err != nil {
		t.Fatal(err)
	}
	f.task = Task{Clean: cf, Corrupt: kf, B: B, T: T, IO: cases.IO, S: cases.S, Metric: metric}
	if len(f.circ.Edges) != len(f.g.Edges) {
		t.Fatalf("%s: circuits.json has %d edges, the graph %d", name, len(f.circ.Edges), len(f.g.Edges))
	}
	return f
}

func (f *fixture) evaluator(t *testing.T, batch int) *HookEvaluator {
	t.Helper()
	ev, err := NewHookEvaluator(f.m, f.g, f.task, batch)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func tol(dev float64) float64 { return math.Max(10*dev, 1e-5) }

// The hook evaluator, one edge removed at a time, reproduces the fixture's
// edge patching (KL and LD) on every edge.
func TestHookEvaluatorSingleEdges(t *testing.T) {
	for _, name := range circuitFixtures {
		for _, metric := range []Metric{KL, LD} {
			f := load(t, name, metric)
			ev := f.evaluator(t, 16)
			E := len(f.g.Edges)
			cs := make([][]bool, E)
			for e := range cs {
				cs[e] = make([]bool, E)
				cs[e][e] = true
			}
			got, err := ev.Eval(cs)
			if err != nil {
				t.Fatal(err)
			}
			want, key := f.circ.EdgePatchKL, "edge_patch_kl"
			if metric == LD {
				want, key = f.circ.EdgePatchLD, "edge_patch_ld"
			}
			fixtures.Close(t, name+" "+key, got, want, tol(f.circ.Dev[key]))
		}
	}
}

// ACDC at the fixture's threshold keeps the float64 oracle's edges and
// reports its circuit's KL.
func TestACDCMatchesFixture(t *testing.T) {
	for _, name := range circuitFixtures {
		f := load(t, name, KL)
		res, err := Run(f.g, f.evaluator(t, 8), Options{Metric: KL, Threshold: f.acdc.Threshold})
		if err != nil {
			t.Fatal(err)
		}
		got := res.Kept(f.g)
		j := jaccard(got, f.acdc.Edges)
		t.Logf("%s: kept %d edges (oracle %d), Jaccard %.3f; KL %.6g (oracle %.6g); %d evaluations in %d passes, %d edges tried",
			name, len(got), len(f.acdc.Edges), j, res.Metric, f.acdc.CircuitMetric, res.Evaluations, res.Passes, res.Tried)
		if j < 0.95 {
			t.Errorf("%s: kept %v, oracle %v (Jaccard %.3f < 0.95)", name, got, f.acdc.Edges, j)
		}
		if j == 1 {
			if d := math.Abs(res.Metric - f.acdc.CircuitMetric); d > math.Max(1e-6, 1e-3*f.acdc.CircuitMetric) {
				t.Errorf("%s: circuit KL %.7g, oracle %.7g", name, res.Metric, f.acdc.CircuitMetric)
			}
		}
		// The oracle counts the full circuit as an evaluation.
		if res.Tried+1 != f.acdc.Evaluations && j == 1 {
			t.Errorf("%s: %d edges tried, the oracle made %d evaluations (1 + edges tried)", name, res.Tried, f.acdc.Evaluations)
		}
		// The reported metric is that of the returned circuit, evaluated at
		// once by a separate evaluator, one circuit per pass.
		v, err := f.evaluator(t, 1).Eval([][]bool{res.Removed})
		if err != nil {
			t.Fatal(err)
		}
		if d := math.Abs(v[0] - res.Metric); d > math.Max(1e-6, 1e-4*math.Abs(v[0])) {
			t.Errorf("%s: reported metric %.7g, independent evaluation %.7g", name, res.Metric, v[0])
		}
	}
}

// The speculative batched run equals the plain sequential one, edge for
// edge, on every fixture at two thresholds (KL at the fixture's TAU and at a
// quarter of it, LD at 0.05).
func TestBatchedEqualsSequential(t *testing.T) {
	for _, name := range circuitFixtures {
		for _, c := range []struct {
			metric Metric
			scale  float64
			tau    float64
		}{{KL, 1, 0}, {KL, 0.25, 0}, {LD, 0, 0.05}} {
			f := load(t, name, c.metric)
			tau := c.tau + c.scale*f.acdc.Threshold
			seq, err := Run(f.g, f.evaluator(t, 1), Options{Metric: c.metric, Threshold: tau, Batch: 1})
			if err != nil {
				t.Fatal(err)
			}
			bat, err := Run(f.g, f.evaluator(t, 12), Options{Metric: c.metric, Threshold: tau})
			if err != nil {
				t.Fatal(err)
			}
			for e := range seq.Removed {
				if seq.Removed[e] != bat.Removed[e] {
					t.Errorf("%s %s tau %g: edge %s removed %v sequentially, %v batched", name, c.metric, tau, f.g.Edges[e], seq.Removed[e], bat.Removed[e])
				}
			}
			if seq.Tried != bat.Tried {
				t.Errorf("%s %s tau %g: %d edges tried sequentially, %d batched", name, c.metric, tau, seq.Tried, bat.Tried)
			}
			if bat.Passes >= seq.Passes {
				t.Errorf("%s %s tau %g: batched run took %d passes, sequential %d", name, c.metric, tau, bat.Passes, seq.Passes)
			}
			t.Logf("%s %s tau %g: %d edges kept; sequential %d passes, batched %d passes (%d evaluations)",
				name, c.metric, tau, len(seq.Kept(f.g)), seq.Passes, bat.Passes, bat.Evaluations)
		}
	}
}

// TAU = 0 keeps every edge whose removal alone changes the KL; a huge TAU
// keeps none and reports the empty circuit's metric.
func TestThresholdExtremes(t *testing.T) {
	for _, name := range circuitFixtures {
		f := load(t, name, KL)
		ev := f.evaluator(t, 16)
		res, err := Run(f.g, ev, Options{Metric: KL, Threshold: 0})
		if err != nil {
			t.Fatal(err)
		}
		for e, v := range f.circ.EdgePatchKL {
			if v > 1e-6 && res.Removed[e] {
				t.Errorf("%s: TAU=0 removed %s, whose removal alone gives KL %.3g", name, f.g.Edges[e], v)
			}
		}
		if res.Metric > 1e-6 {
			t.Errorf("%s: TAU=0 circuit KL %.3g, want ~0", name, res.Metric)
		}
		res, err = Run(f.g, ev, Options{Metric: KL, Threshold: 1e9})
		if err != nil {
			t.Fatal(err)
		}
		if k := res.Kept(f.g); len(k) != 0 {
			t.Errorf("%s: huge TAU kept %v", name, k)
		}
		if res.Metric != res.MetricEmpty || res.MetricEmpty <= 0 {
			t.Errorf("%s: huge TAU: metric %.6g, empty circuit %.6g", name, res.Metric, res.MetricEmpty)
		}
	}
}

func jaccard(a, b []string) float64 {
	sa := map[string]bool{}
	for _, x := range a {
		sa[x] = true
	}
	inter, union := 0, len(sa)
	for _, x := range b {
		if sa[x] {
			inter++
		} else {
			union++
		}
	}
	if union == 0 {
		return 1
	}
	return float64(inter) / float64(union)
}
