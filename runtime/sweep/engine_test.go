package sweep_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/neoscope/neoscope/cpu"
	"github.com/neoscope/neoscope/internal/fixtures"
	"github.com/neoscope/neoscope/runtime/forward"
	"github.com/neoscope/neoscope/runtime/sweep"
)

// tolSelf bounds batched-and-shared against one-configuration-per-pass
// results: the same float32 arithmetic on differently sized matrices; sums
// may be blocked differently, so not bit-identical, but within float32
// rounding of losses ~6 (6 * 2^-23 * a few hundred accumulations).
const tolSelf = 2e-5

// sweepAll evaluates space through the engine in chunks of k and returns
// the values in space order.
func sweepAll(t *testing.T, m *forward.Model, task sweep.Task, opt sweep.Options, space string) ([]sweep.Config, []float64, *sweep.Engine) {
	t.Helper()
	cfgs, err := sweep.Parse(space, sweep.Dims{Layers: m.Cfg.Layers, Heads: m.Cfg.Heads})
	fixtures.Must(t, err)
	e, err := sweep.New(m, task, opt)
	fixtures.Must(t, err)
	t.Cleanup(e.Close)
	out := make([]float64, len(cfgs))
	chunks := e.Plan(cfgs)
	if opt.Chunk > 0 && len(cfgs) > opt.Chunk && len(chunks) < 2 {
		t.Fatalf("%s: %d chunks for %d configurations of at most %d", space, len(chunks), len(cfgs), opt.Chunk)
	}
	for _, ch := range chunks {
		sub := make([]sweep.Config, len(ch))
		for j, i := range ch {
			sub[j] = cfgs[i]
		}
		v, err := e.Eval(sub)
		fixtures.Must(t, err)
		for j, i := range ch {
			out[i] = v[j]
		}
	}
	return cfgs, out, e
}

func subsetSpace(t *testing.T, ref *fixtures.Ref) string {
	sh := ref.Get(t, "subset_heads").Ints()
	var parts []string
	for i := 0; i < len(sh); i += 2 {
		parts = append(parts, fmt.Sprintf("%d.%d", sh[i], sh[i+1]))
	}
	return "subsets(" + strings.Join(parts, ",") + ")"
}

func TestGoldenSweeps(t *testing.T) {
	for _, name := range fixtures.Names {
		t.Run(name, func(t *testing.T) {
			ref := fixtures.Load(t, name)
			m, err := forward.Open(cpu.New(), ref.Dir)
			fixtures.Must(t, err)
			defer m.Close()
			tok := ref.Get(t, "tokens")
			task := sweep.Task{Tokens: tok.Ints(), B: tok.Shape[0], T: tok.Shape[1]}
			rep := ref.Get(t, "rep_tokens")
			P := rep.Shape[1] / 2
			repTask := sweep.Task{Tokens: rep.Ints(), B: rep.Shape[0], T: rep.Shape[1], LossFrom: P}
			// Chunks of 3 cut groups of heads of one layer apart and mix
			// configurations whose first ablated layers differ.
			small := sweep.Options{Chunk: 3}
			for _, c := range []struct {
				task  sweep.Task
				opt   sweep.Options
				space string
				want  string
			}{
				{task, small, subsetSpace(t, ref), "subset_ablation_loss"},
				{task, small, "singles(heads)", "head_ablation_loss"},
				{task, small, "singles(mlp)", "mlp_ablation_loss"},
				{task, small, "singles(attn)", "attn_layer_ablation_loss"},
				{repTask, small, subsetSpace(t, ref), "rep_subset_ablation_loss"},
				{repTask, small, "singles(heads)", "rep_head_ablation_loss"},
				{task, sweep.Options{Chunk: 3, Mode: sweep.Mean}, "singles(heads)", "head_mean_ablation_loss"},
				{task, sweep.Options{Chunk: 2, Mode: sweep.Mean}, "singles(mlp)", "mlp_mean_ablation_loss"},
				{task, sweep.Options{Chunk: 2, Mode: sweep.Mean}, "singles(attn)", "attn_layer_mean_ablation_loss"},
				// The whole union in one go, default chunking: one pass.
				{task, sweep.Options{}, "singles(heads) | none", "head_ablation_loss"},
			} {
				cfgs, got, e := sweepAll(t, m, c.task, c.opt, c.space)
				want := ref.Get(t, c.want).F
				if strings.HasSuffix(c.space, "| none") {
					ref.CheckAgainst(t, "baseline", []float64{got[len(got)-1], e.Baseline}, []float64{ref.Get(t, "loss").F[0], ref.Get(t, "loss").F[0]}, "loss")
					got = got[:len(got)-1]
				}
				if len(cfgs) != len(want) && !strings.HasSuffix(c.space, "| none") {
					t.Fatalf("%s: %d configurations, reference %s has %d", c.space, len(cfgs), c.want, len(want))
				}
				ref.CheckAgainst(t, c.want+" via "+c.space+" "+c.opt.Mode.String(), got, want, c.want)
			}
		})
	}
}

// TestSharedMatchesUnshared checks the prefix tree on configurations that
// touch several layers (the fixtures only have single-layer ones): pairs and
// triples with attention layers and MLPs, batched and shared in chunks of 7,
// against one configuration per pass from the embedding.
func TestSharedMatchesUnshared(t *testing.T) {
	ref := fixtures.Load(t, "tiny-neo")
	m, err := forward.Open(cpu.New(), ref.Dir)
	fixtures.Must(t, err)
	defer m.Close()
	tok := ref.Get(t, "tokens")
	task := sweep.Task{Tokens: tok.Ints(), B: tok.Shape[0], T: tok.Shape[1], LossFrom: 3}
	space := "pairs(0.1, 1.*, 2.2, 3.*) | k(3, 0.1, attn.1, 2.2, mlp.2, 3.3) | given(mlp.0; singles(attn)) | none"
	for _, mode := range []sweep.Mode{sweep.Zero, sweep.Mean} {
		cfgs, shared, _ := sweepAll(t, m, task, sweep.Options{Chunk: 7, Mode: mode}, space)
		_, single, _ := sweepAll(t, m, task, sweep.Options{Chunk: 1, NoShare: true, Mode: mode}, space)
		if len(cfgs) != 45+10+4+1 {
			t.Fatalf("%d configurations", len(cfgs))
		}
		fixtures.Close(t, "shared vs one per pass ("+mode.String()+")", shared, single, tolSelf)
		if mode == sweep.Zero {
			// Chunks of 40: passes grow in place through padded ladder sizes.
			_, big, _ := sweepAll(t, m, task, sweep.Options{Chunk: 40, Mode: mode}, space)
			fixtures.Close(t, "chunks of 40 vs one per pass", big, single, tolSelf)
		}
	}
}

// ioiTask opens fixture name and makes the logit-difference task of its IOI
// clean prompts (IO against S), read back positions from the end.
func ioiTask(t *testing.T, name string, back int) (*fixtures.Ref, *forward.Model, sweep.Task) {
	t.Helper()
	ref := fixtures.Load(t, name)
	m, err := forward.Open(cpu.New(), ref.Dir)
	fixtures.Must(t, err)
	clean := ref.Get(t, "ioi_clean")
	B, T := clean.Shape[0], clean.Shape[1]
	return ref, m, sweep.Task{Tokens: clean.Ints(), B: B, T: T, Metric: sweep.LogitDiff, Pos: T - back,
		A: ref.Get(t, "ioi_io").Ints(), C: ref.Get(t, "ioi_s").Ints()}
}

func TestLogitDiffBaseline(t *testing.T) {
	for _, name := range fixtures.Names {
		t.Run(name, func(t *testing.T) {
			ref, m, task := ioiTask(t, name, 1)
			defer m.Close()
			e, err := sweep.New(m, task, sweep.Options{})
			fixtures.Must(t, err)
			defer e.Close()
			// At the fixture's tolerance for ioi_ld_clean.
			ref.Check(t, "ioi_ld_clean", []float64{e.Baseline}, "ioi_ld_clean")
		})
	}
}

// TestSharedLogitDiff: the logit-difference metric reads one position, so
// the last block runs there only (forward.BlockOpts.From = Pos); batched and
// shared against one configuration per pass on every fixture family, in both
// ablation modes.
func TestSharedLogitDiff(t *testing.T) {
	for _, name := range fixtures.Names {
		t.Run(name, func(t *testing.T) {
			_, m, task := ioiTask(t, name, 2)
			defer m.Close()
			space := "singles(heads) | pairs(0.1, 1.*, 3.*, attn.3, mlp.3) | given(mlp.0; singles(attn)) | none"
			for _, mode := range []sweep.Mode{sweep.Zero, sweep.Mean} {
				_, shared, _ := sweepAll(t, m, task, sweep.Options{Chunk: 9, Mode: mode}, space)
				_, single, _ := sweepAll(t, m, task, sweep.Options{Chunk: 1, NoShare: true, Mode: mode}, space)
				fixtures.Close(t, "logit difference, shared vs one per pass ("+mode.String()+")", shared, single, tolSelf)
			}
		})
	}
}
