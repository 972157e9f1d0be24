package ablate_test

import (
	"testing"

	"github.com/neoscope/neoscope/cpu"
	"github.com/neoscope/neoscope/internal/fixtures"
	"github.com/neoscope/neoscope/probes/ablate"
	"github.com/neoscope/neoscope/runtime/forward"
)

func open(t *testing.T, name string) (*fixtures.Ref, *forward.Model) {
	t.Helper()
	ref := fixtures.Load(t, name)
	m, err := forward.Open(cpu.New(), ref.Dir)
	fixtures.Must(t, err)
	t.Cleanup(func() { m.Close() })
	return ref, m
}

func flat(x [][]float64) []float64 {
	var out []float64
	for _, r := range x {
		out = append(out, r...)
	}
	return out
}

func subsetHeads(t *testing.T, ref *fixtures.Ref) []ablate.Head {
	sh := ref.Get(t, "subset_heads").Ints()
	var heads []ablate.Head
	for i := 0; i+1 < len(sh); i += 2 {
		heads = append(heads, ablate.Head{Layer: int(sh[i]), Head: int(sh[i+1])})
	}
	return heads
}

// TestGoldenAblation: zero and mean ablation tables and the head-subset
// losses on `tokens` (loss over every prediction) match the fixtures.
func TestGoldenAblation(t *testing.T) {
	for _, name := range fixtures.Names {
		t.Run(name, func(t *testing.T) {
			ref, m := open(t, name)
			tok := ref.Get(t, "tokens")
			r, err := ablate.NewRunner(m, tok.Ints(), tok.Shape[0], tok.Shape[1], 0)
			fixtures.Must(t, err)
			defer r.Close()
			all := ablate.Each{Heads: true, Attn: true, MLP: true}

			z, err := r.Run(all, ablate.Zero, nil)
			fixtures.Must(t, err)
			ref.Check(t, "baseline_loss", []float64{z.Baseline}, "loss")
			ref.Check(t, "head_ablation_loss", flat(z.Head), "head_ablation_loss")
			ref.Check(t, "attn_layer_ablation_loss", z.Attn, "attn_layer_ablation_loss")
			ref.Check(t, "mlp_ablation_loss", z.MLP, "mlp_ablation_loss")

			mn, err := r.Run(all, ablate.Mean, nil)
			fixtures.Must(t, err)
			ref.Check(t, "head_mean_ablation_loss", flat(mn.Head), "head_mean_ablation_loss")
			ref.Check(t, "attn_layer_mean_ablation_loss", mn.Attn, "attn_layer_mean_ablation_loss")
			ref.Check(t, "mlp_mean_ablation_loss", mn.MLP, "mlp_mean_ablation_loss")

			sub, err := r.Subsets(subsetHeads(t, ref), ablate.Zero)
			fixtures.Must(t, err)
			ref.Check(t, "subset_ablation_loss", sub, "subset_ablation_loss")
		})
	}
}

// TestRepSubsets: the same subsets on rep_tokens, loss over the second half
// (predictions at positions P..2P-2).
func TestRepSubsets(t *testing.T) {
	for _, name := range fixtures.Names {
		t.Run(name, func(t *testing.T) {
			ref, m := open(t, name)
			tok := ref.Get(t, "rep_tokens")
			B, T := tok.Shape[0], tok.Shape[1]
			r, err := ablate.NewRunner(m, tok.Ints(), B, T, T/2)
			fixtures.Must(t, err)
			defer r.Close()
			sub, err := r.Subsets(subsetHeads(t, ref), ablate.Zero)
			fixtures.Must(t, err)
			ref.Check(t, "rep_subset_ablation_loss", sub, "rep_subset_ablation_loss")
		})
	}
}

// TestErrors: bad heads, layers and loss ranges are errors, not panics.
func TestErrors(t *testing.T) {
	_, m := open(t, "tiny-neo")
	if _, err := ablate.NewRunner(m, []int32{1, 2, 3}, 1, 3, 2); err == nil {
		t.Error("loss-from 2 on 3 tokens: no error")
	}
	if _, err := ablate.NewRunner(m, []int32{1, 2, 600}, 1, 3, 0); err == nil {
		t.Error("id 600 in a 512 vocabulary: no error")
	}
	r, err := ablate.NewRunner(m, []int32{1, 2, 3, 4}, 1, 4, 0)
	fixtures.Must(t, err)
	if _, err := r.HeadsLoss([]ablate.Head{{Layer: 4, Head: 0}}, ablate.Zero); err == nil {
		t.Error("head 4.0 on a 4-layer model: no error")
	}
	if _, err := r.MLPLoss(-1, ablate.Zero); err == nil {
		t.Error("layer -1: no error")
	}
	for _, s := range []string{"6", "a.b", "-1.2", "1.2.3"} {
		if _, err := ablate.ParseHead(s); err == nil {
			t.Errorf("ParseHead(%q): no error", s)
		}
	}
	if h, err := ablate.ParseHead("6.1"); err != nil || h != (ablate.Head{Layer: 6, Head: 1}) {
		t.Errorf("ParseHead(6.1) = %v, %v", h, err)
	}
	if _, err := ablate.ParseEach("head,foo"); err == nil {
		t.Error("ParseEach(head,foo): no error")
	}
	if _, err := ablate.ParseMode("median"); err == nil {
		t.Error("ParseMode(median): no error")
	}
}
