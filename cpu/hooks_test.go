package cpu_test

import (
	"fmt"
	"math"
	"testing"

	"github.com/neoscope/neoscope/cpu"
	"github.com/neoscope/neoscope/internal/fixtures"
	"github.com/neoscope/neoscope/runtime/forward"
)

// TestEveryHook observes every hook point and checks shapes and the
// identities that tie them together (resid_mid = resid_pre + attn_out, ...),
// that the softmax of hook_attn_scores is hook_pattern, and that replacing
// the pattern with itself (the AttnApply path) leaves the logits unchanged.
func TestEveryHook(t *testing.T) {
	for _, name := range fixtures.Names {
		t.Run(name, func(t *testing.T) {
			ref := fixtures.Load(t, name)
			m, err := forward.Open(cpu.New(), ref.Dir)
			fixtures.Must(t, err)
			defer m.Close()
			tok := ref.Get(t, "tokens")
			B, T := tok.Shape[0], tok.Shape[1]
			h := (&forward.Hooks{}).Observe("*")
			s, logits, err := m.Run(tok.Ints(), B, T, h, true)
			fixtures.Must(t, err)
			s.Close()
			cfg := m.Cfg
			C, NH, HS, F := cfg.DModel, cfg.Heads, cfg.DHead, cfg.DMLP
			for _, n := range m.HookNames() {
				if h.Cache[n] == nil {
					t.Fatalf("hook %s not observed", n)
				}
			}
			shape := map[string][]int{
				"hook_embed": {B, T, C}, "blocks.0.attn.hook_q": {B, T, NH, HS}, "blocks.1.attn.hook_pattern": {B, NH, T, T},
				"blocks.1.attn.hook_attn_scores": {B, NH, T, T}, "blocks.2.mlp.hook_post": {B, T, F}, "logits": {B, T, cfg.Vocab},
				"ln_final.hook_normalized": {B, T, C},
			}
			for n, want := range shape {
				if got := h.Cache[n].Shape; fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("%s shape %v, want %v", n, got, want)
				}
			}
			sum := func(a, b string) []float64 {
				x, y := h.Cache[a].Data, h.Cache[b].Data
				out := make([]float64, len(x))
				for i := range x {
					out[i] = float64(x[i]) + float64(y[i])
				}
				return out
			}
			// Exact float32 identities are compared with a float32-rounding tolerance.
			const tol = 1e-5
			fixtures.Close(t, "embed+pos", sum("hook_embed", "hook_pos_embed"), fixtures.F32(h.Cache["blocks.0.hook_resid_pre"].Data), tol)
			for l := 0; l < cfg.Layers; l++ {
				p := fmt.Sprintf("blocks.%d.", l)
				fixtures.Close(t, p+"resid_mid", sum(p+"hook_resid_pre", p+"hook_attn_out"), fixtures.F32(h.Cache[p+"hook_resid_mid"].Data), tol)
				fixtures.Close(t, p+"resid_post", sum(p+"hook_resid_mid", p+"hook_mlp_out"), fixtures.F32(h.Cache[p+"hook_resid_post"].Data), tol)
				// softmax(scores) == pattern, masked scores are -Inf.
				sc, pat := h.Cache[p+"attn.hook_attn_scores"].Data, h.Cache[p+"attn.hook_pattern"].Data
				got := make([]float64, len(sc))
				for r := 0; r < len(sc)/T; r++ {
					row := sc[r*T : (r+1)*T]
					lse := fixtures.LogSumExp(row)
					for j, v := range row {
						got[r*T+j] = math.Exp(float64(v) - lse)
					}
				}
				fixtures.Close(t, p+"softmax(scores)", got, fixtures.F32(pat), 1e-6)
			}
			// Replacing every pattern by itself goes through AttnApply.
			h2 := (&forward.Hooks{}).Replace("blocks.*.attn.hook_pattern", forward.EditHost(func(a *forward.Act, d []float32) error { return nil }))
			s2, logits2, err := m.Run(tok.Ints(), B, T, h2, true)
			fixtures.Must(t, err)
			s2.Close()
			fixtures.Close(t, "logits via AttnApply", fixtures.F32(logits2), fixtures.F32(logits), 1e-4)
		})
	}
}
