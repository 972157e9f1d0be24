package sweep_test

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/neoscope/neoscope/cpu"
	"github.com/neoscope/neoscope/internal/fixtures"
	"github.com/neoscope/neoscope/runtime/checkpoint"
	"github.com/neoscope/neoscope/runtime/forward"
	"github.com/neoscope/neoscope/runtime/graph"
	"github.com/neoscope/neoscope/runtime/sweep"
)

// patchFixtures are the fixtures whose circuits.json the patching engine is
// checked against: one per family (tiny-neox: parallel residual, rotary).
var patchFixtures = []string{"tiny-neo", "tiny-gpt2", "tiny-neox"}

// circuits is the part of a fixture's circuits.json these tests read.
type circuits struct {
	Edges        []string             `json:"edges"`
	LDClean      float64              `json:"ld_clean"`
	LDCorrupt    float64              `json:"ld_corrupt"`
	EdgeLD       []float64            `json:"edge_patch_ld"`
	EdgeKL       []float64            `json:"edge_patch_kl"`
	NoiseHead    [][]float64          `json:"noise_head_z_ld"`
	NoiseMLP     []float64            `json:"noise_mlp_out_ld"`
	Floor        map[string]float64   `json:"float32_torch_max_abs_dev"`
	headPos      []float64            // patch_head_z_pos [L,H,T], circuits.safetensors
	headPosShape []int                //
	_            map[string]*struct{} //
}

// tol is 10x the recorded float32 floor of a tensor, at least 1e-5.
func (c *circuits) tol(t *testing.T, key string) float64 {
	f, ok := c.Floor[key]
	if !ok {
		t.Fatalf("circuits.json: no float32_torch_max_abs_dev for %s", key)
	}
	return math.Max(10*f, 1e-5)
}

func loadCircuits(t *testing.T, dir string) *circuits {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "circuits.json"))
	if err != nil {
		t.Fatalf("patching ground truth missing: %v", err)
	}
	var c circuits
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatalf("circuits.json: %v", err)
	}
	if len(c.Edges) == 0 || len(c.EdgeLD) != len(c.Edges) || len(c.EdgeKL) != len(c.Edges) || len(c.NoiseHead) == 0 || len(c.NoiseMLP) == 0 {
		t.Fatalf("%s/circuits.json: edges or patching tables missing", dir)
	}
	st, err := os.ReadFile(filepath.Join(dir, "circuits.safetensors"))
	if err != nil {
		t.Fatalf("patching ground truth missing: %v", err)
	}
	entries, err := checkpoint.ParseSafetensors("circuits.safetensors", st)
	fixtures.Must(t, err)
	for _, e := range entries {
		if e.Name != "patch_head_z_pos" {
			continue
		}
		if e.DType != "F32" {
			t.Fatalf("circuits.safetensors: patch_head_z_pos is %s, want F32", e.DType)
		}
		c.headPosShape = e.Shape
		for i := 0; i+4 <= len(e.Data); i += 4 {
			c.headPos = append(c.headPos, float64(math.Float32frombits(binary.LittleEndian.Uint32(e.Data[i:]))))
		}
	}
	if c.headPos == nil {
		t.Fatalf("%s/circuits.safetensors: no patch_head_z_pos", dir)
	}
	return &c
}

type patchFixture struct {
	ref  *fixtures.Ref
	circ *circuits
	m    *forward.Model
	task sweep.Task
	dims sweep.Dims
}

func openPatch(t *testing.T, name string) *patchFixture {
	ref := fixtures.Load(t, name)
	circ := loadCircuits(t, ref.Dir)
	m, err := forward.Open(cpu.New(), ref.Dir)
	fixtures.Must(t, err)
	t.Cleanup(func() { m.Close() })
	clean, corrupt := ref.Get(t, "ioi_clean"), ref.Get(t, "ioi_corrupt")
	B, T := clean.Shape[0], clean.Shape[1]
	task := sweep.Task{Tokens: clean.Ints(), Corrupt: corrupt.Ints(), B: B, T: T, Metric: sweep.LD, Pos: T - 1,
		A: ref.Get(t, "ioi_io").Ints(), C: ref.Get(t, "ioi_s").Ints()}
	dims := sweep.DimsOf(m.Cfg)
	dims.T = T
	return &patchFixture{ref, circ, m, task, dims}
}

// run evaluates a space with the given metric and mode through Plan and
// Eval (chunk configurations per pass; 0: default) and returns the
// configurations, their values and the engine.
func (f *patchFixture) run(t *testing.T, metric sweep.Metric, mode sweep.Mode, chunk int, space string) ([]sweep.Config, []float64, *sweep.Engine) {
	t.Helper()
	cfgs, err := sweep.Parse(space, f.dims)
	fixtures.Must(t, err)
	task := f.task
	task.Metric = metric
	e, err := sweep.New(f.m, task, sweep.Options{Mode: mode, Chunk: chunk})
	fixtures.Must(t, err)
	t.Cleanup(e.Close)
	vals, err := e.EvalCircuits(cfgs)
	fixtures.Must(t, err)
	return cfgs, vals, e
}

func TestPatchGolden(t *testing.T) {
	for _, name := range patchFixtures {
		t.Run(name, func(t *testing.T) {
			f := openPatch(t, name)
			c := f.circ
			L, H := f.m.Cfg.Layers, f.m.Cfg.Heads
			for _, chunk := range []int{0, 7} {
				// Edges, ld and kl, in canonical order with the fixture's names.
				cfgs, got, e := f.run(t, sweep.LD, sweep.Noise, chunk, "edges")
				if len(cfgs) != len(c.Edges) {
					t.Fatalf("edges: %d configurations, circuits.json has %d edges", len(cfgs), len(c.Edges))
				}
				for i, cf := range cfgs {
					if cf.String() != c.Edges[i] {
						t.Fatalf("edge %d is %s, circuits.json says %s", i, cf, c.Edges[i])
					}
				}
				fixtures.Close(t, "edge_patch_ld", got, c.EdgeLD, c.tol(t, "edge_patch_ld"))
				gap, _ := e.Gap()
				fixtures.Close(t, "ld_clean, ld_corrupt", []float64{e.Baseline, gap.Clean, gap.Corrupt}, []float64{c.LDClean, c.LDClean, c.LDCorrupt}, c.tol(t, "ld_corrupt"))
				_, got, _ = f.run(t, sweep.KL, sweep.Noise, chunk, "edges")
				fixtures.Close(t, "edge_patch_kl", got, c.EdgeKL, c.tol(t, "edge_patch_kl"))
				// Node noising.
				_, got, _ = f.run(t, sweep.LD, sweep.Noise, chunk, "singles(heads)")
				var want []float64
				for l := 0; l < L; l++ {
					want = append(want, c.NoiseHead[l]...)
				}
				fixtures.Close(t, "noise_head_z_ld", got, want, c.tol(t, "noise_head_z_ld"))
				_, got, _ = f.run(t, sweep.LD, sweep.Noise, chunk, "singles(mlp)")
				fixtures.Close(t, "noise_mlp_out_ld", got, c.NoiseMLP, c.tol(t, "noise_mlp_out_ld"))
				// Head x position denoising, normalised as the fixture.
				cfgs, got, e = f.run(t, sweep.LD, sweep.Denoise, chunk, "heads@*")
				if len(c.headPosShape) != 3 || c.headPosShape[0] != L || c.headPosShape[1] != H || len(cfgs) != len(c.headPos) {
					t.Fatalf("heads@*: %d configurations, patch_head_z_pos has shape %v", len(cfgs), c.headPosShape)
				}
				fixtures.Close(t, "denoise baseline = ld_corrupt", []float64{e.Baseline}, []float64{c.LDCorrupt}, c.tol(t, "ld_corrupt"))
				for i := range got {
					got[i] = (got[i] - c.LDCorrupt) / (c.LDClean - c.LDCorrupt)
				}
				fixtures.Close(t, "patch_head_z_pos", got, c.headPos, c.tol(t, "patch_head_z_pos"))
			}
		})
	}
}

// allEdges is a file(...)-style configuration of every edge matching keep.
func allEdges(g *graph.Graph, keep func(graph.Edge) bool) []graph.Edge {
	var out []graph.Edge
	for _, e := range g.Edges {
		if keep(e) {
			out = append(out, e)
		}
	}
	return out
}

func TestPatchIdentities(t *testing.T) {
	for _, name := range patchFixtures {
		t.Run(name, func(t *testing.T) {
			f := openPatch(t, name)
			c := f.circ
			L, H := f.m.Cfg.Layers, f.m.Cfg.Heads
			g := graph.New(L, H, f.m.Cfg.ParallelAt)
			tol := c.tol(t, "edge_patch_ld")
			out := func(s ...string) func(graph.Edge) bool {
				return func(e graph.Edge) bool {
					for _, x := range s {
						if e.S.String() == x {
							return true
						}
					}
					return false
				}
			}
			circuits := []sweep.Config{
				{}, // nothing removed: ld_clean
				sweep.EdgeConfig(L, allEdges(g, func(e graph.Edge) bool { return e.R.Kind == graph.Logits })),
				sweep.EdgeConfig(L, g.Edges),
				// Every edge out of a sender = that node noised (also where a
				// later removed edge reads a sender whose input was patched).
				sweep.EdgeConfig(L, allEdges(g, out("mlp.0"))),
				sweep.EdgeConfig(L, allEdges(g, out("1.2"))),
				sweep.EdgeConfig(L, allEdges(g, out("0.1", "mlp.1", "2.3"))),
				sweep.EdgeConfig(L, allEdges(g, out("embed"))),
			}
			nodes := []string{"", "", "", "mlp.0", "1.2", "0.1+mlp.1+2.3"}
			e, err := sweep.New(f.m, f.task, sweep.Options{Mode: sweep.Noise, Chunk: 3})
			fixtures.Must(t, err)
			defer e.Close()
			got, err := e.EvalCircuits(circuits)
			fixtures.Must(t, err)
			fixtures.Close(t, "none, all into logits, all edges", got[:3], []float64{c.LDClean, c.LDCorrupt, c.LDCorrupt}, c.tol(t, "ld_corrupt")+tol)
			// Removing every edge out of embed is running the corrupt prompts' embedding everywhere: ld_corrupt as well.
			fixtures.Close(t, "all edges out of embed", got[6:7], []float64{c.LDCorrupt}, tol)
			var nodeCfgs []sweep.Config
			for _, n := range nodes[3:] {
				nc, err := sweep.ParseConfig(n, f.dims)
				fixtures.Must(t, err)
				nodeCfgs = append(nodeCfgs, nc)
			}
			nodeVals, err := e.EvalCircuits(nodeCfgs)
			fixtures.Must(t, err)
			fixtures.Close(t, "edge circuits vs node noising", got[3:6], nodeVals, 2e-5)
			// Denoising: removing every edge of the corrupt run gives the clean run.
			d, err := sweep.New(f.m, f.task, sweep.Options{Mode: sweep.Denoise})
			fixtures.Must(t, err)
			defer d.Close()
			dv, err := d.EvalCircuits([]sweep.Config{circuits[2], {}, circuits[1]})
			fixtures.Must(t, err)
			fixtures.Close(t, "denoise: all edges, none, all into logits", dv, []float64{c.LDClean, c.LDCorrupt, c.LDClean}, c.tol(t, "ld_corrupt")+tol)
			// A budget that fits one configuration per pass: the same numbers.
			tiny, err := sweep.New(f.m, f.task, sweep.Options{Mode: sweep.Noise, MaxMemory: e.ConfigBytes()})
			fixtures.Must(t, err)
			defer tiny.Close()
			if n := len(tiny.Plan(circuits)); n != len(circuits) {
				t.Errorf("one-configuration budget: %d passes for %d circuits", n, len(circuits))
			}
			tv, err := tiny.EvalCircuits(circuits)
			fixtures.Must(t, err)
			fixtures.Close(t, "one circuit per pass (memory budget)", tv, got, 2e-5)
			// The same circuits one per pass, unbatched: the same numbers.
			for i, cf := range circuits {
				one, err := e.EvalCircuits([]sweep.Config{cf})
				fixtures.Must(t, err)
				fixtures.Close(t, "batched vs alone: "+strings.Split(cf.String()+"+", "+")[0], one, got[i:i+1], 2e-5)
			}
		})
	}
}

// TestPatchSpace checks the patching words of the space language and the
// canonical order of multi-edge configurations.
func TestPatchSpace(t *testing.T) {
	d := sweep.Dims{Layers: 4, Heads: 4, T: 3}
	g := graph.New(4, 4, nil)
	for _, c := range []struct {
		space string
		n     int
		first string
		last  string
	}{
		{"edges", len(g.Edges), "embed>0.0.q", "mlp.3>logits"},
		{"heads@*", 4 * 4 * 3, "0.0@0", "3.3@2"},
		{"resid.*@*", 4 * 3, "resid.0@0", "resid.3@2"},
		{"edges(1.2.k)", 1 + 4 + 1, "embed>1.2.k", "mlp.0>1.2.k"},
		{"edges(logits)", 1 + 4*5, "embed>logits", "mlp.3>logits"},
		{"mlp.0>1.2.v + 0.1.k>x", 0, "", ""},
		{"mlp.0>1.2.v+embed>1.2.q+0.3>1.2.k+0.1>mlp.0+2.2@1", 1, "0.1>mlp.0+embed>1.2.q+0.3>1.2.k+mlp.0>1.2.v+2.2@1", ""},
		{"singles(heads) | 1.1@2 | edges", 16 + 1 + len(g.Edges), "0.0", "mlp.3>logits"},
	} {
		cfgs, err := sweep.Parse(c.space, d)
		if c.n == 0 {
			if err == nil {
				t.Errorf("%q: no error", c.space)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%q: %v", c.space, err)
		}
		if len(cfgs) != c.n || cfgs[0].String() != c.first || c.last != "" && cfgs[len(cfgs)-1].String() != c.last {
			t.Errorf("%q: %d configurations %s .. %s, want %d %s .. %s", c.space, len(cfgs), cfgs[0], cfgs[len(cfgs)-1], c.n, c.first, c.last)
		}
	}
	if _, err := sweep.Parse("heads@*", sweep.Dims{Layers: 4, Heads: 4}); err == nil || !strings.Contains(err.Error(), "@*") {
		t.Errorf("heads@* without T: %v", err)
	}
	if _, err := sweep.Parse("1.1@3", d); err == nil {
		t.Errorf("1.1@3 beyond T=3: no error")
	}
}

// TestPatchParallelEdges checks that on a parallel-residual model (tiny-neox)
// the edges follow its graph: a head does not feed its own layer's MLP, so
// such an edge is refused by the space language and by the engine, and the
// MLP's input edges are those of resid_pre.
func TestPatchParallelEdges(t *testing.T) {
	f := openPatch(t, "tiny-neox")
	if !f.m.Cfg.ParallelAt(0) {
		t.Fatal("tiny-neox: use_parallel_residual expected")
	}
	if _, err := sweep.ParseConfig("1.2>mlp.1", f.dims); err == nil {
		t.Error("1.2>mlp.1 on a parallel-residual model: no error")
	}
	cfgs, err := sweep.Parse("edges(mlp.1)", f.dims)
	fixtures.Must(t, err)
	if n := 1 + f.m.Cfg.Heads + 1; len(cfgs) != n { // embed, layer 0's heads, mlp.0
		t.Errorf("edges(mlp.1): %d edges, want %d", len(cfgs), n)
	}
	seq := graph.New(f.m.Cfg.Layers, f.m.Cfg.Heads, nil)
	var own []graph.Edge
	for _, e := range seq.Edges {
		if e.R.Kind == graph.MLP && e.S.Kind == graph.Head && e.S.Layer == e.R.Layer {
			own = append(own, e)
		}
	}
	e, err := sweep.New(f.m, f.task, sweep.Options{Mode: sweep.Noise})
	fixtures.Must(t, err)
	defer e.Close()
	if _, err := e.EvalCircuits([]sweep.Config{sweep.EdgeConfig(f.m.Cfg.Layers, own[:1])}); err == nil || !strings.Contains(err.Error(), "not an edge") {
		t.Errorf("%s on a parallel-residual model: %v, want a refusal", own[0], err)
	}
}
