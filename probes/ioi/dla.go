package ioi

import (
	"fmt"
	"math"

	"github.com/neoscope/neoscope/runtime/forward"
)

// DLA is direct logit attribution of the logit difference at the read
// position on the clean run, with the final LayerNorm's scale frozen at its
// value for the full residual (TransformerLens' convention): for a residual
// component c, sum_d ((c_d - mean(c)) / scale * w_d) * (U[io,d] - U[s,d]),
// U the unembedding rows, w and beta ln_f's weight and bias. The components
// are the embedding (token + position), every head's z @ W_O rows (no b_O),
// every b_O, every MLP output (bias included); with the ln_f bias term they
// sum to the logit difference. Means over rows; computed on the host in
// float64 from the float32 activations.
type DLA struct {
	Head     [][]float64 `json:"dla_head"`      // [L][NH]
	MLP      []float64   `json:"dla_mlp"`       // [L]
	AttnBias []float64   `json:"dla_attn_bias"` // [L]
	Embed    float64     `json:"dla_embed"`
	LNBias   float64     `json:"dla_ln_bias"`
	// Sum is the sum of every term above; it equals ioi_ld_clean up to the
	// float32 rounding of the forward pass.
	Sum float64 `json:"dla_sum"`
}

func newDLA(L, NH int) DLA {
	return DLA{Head: zeros2(L, NH), MLP: make([]float64, L), AttnBias: make([]float64, L)}
}

func (d *DLA) scale(k float64) {
	for _, r := range d.Head {
		for i := range r {
			r[i] *= k
		}
	}
	for i := range d.MLP {
		d.MLP[i] *= k
		d.AttnBias[i] *= k
	}
	d.Embed *= k
	d.LNBias *= k
	d.Sum = d.Embed + d.LNBias + layerTerms(d)
}

// layerTerms sums the per-layer terms (heads, b_O, MLPs).
func layerTerms(d *DLA) float64 {
	var s float64
	for l := range d.MLP {
		s += d.MLP[l] + d.AttnBias[l]
		for _, v := range d.Head[l] {
			s += v
		}
	}
	return s
}

// weight passes a host weight through, or an error naming it when absent.
func weight(w []float32, name string) ([]float32, error) {
	if w == nil {
		return nil, fmt.Errorf("ioi: direct logit attribution needs weight %q, which the checkpoint lacks", name)
	}
	return w, nil
}

// addDLA adds the row sums of bt's clean-run attributions to d. s is the
// finished clean state (s.Resid = final residual), cache holds hook_z and
// hook_mlp_out of every layer.
func addDLA(m *forward.Model, bt *Batch, s *forward.State, cache map[string]*forward.HostTensor, d *DLA) error {
	cfg := m.Cfg
	L, NH, HS, C, T, pos := cfg.Layers, cfg.Heads, cfg.DHead, cfg.DModel, bt.T, bt.Pos
	U, err := weight(m.WU(), "W_U (the unembedding)")
	if err != nil {
		return err
	}
	wte, err := weight(m.WE(), "W_E (the token embedding)")
	if err != nil {
		return err
	}
	wpe := m.WPos() // nil: no position embedding
	lnwH, lnbH := m.LNFinalHost()
	lnw, err := weight(lnwH, "ln_final weight")
	if err != nil {
		return err
	}
	lnb, err := weight(lnbH, "ln_final bias")
	if err != nil {
		return err
	}
	bO := make([][]float32, L)
	for l := range bO {
		if bO[l], err = weight(m.BOut(l), fmt.Sprintf("layer %d's attention output bias b_O", l)); err != nil {
			return err
		}
	}
	wO := make([][][]float32, L) // [L][NH] -> [HS*C]
	for l := range wO {
		wO[l] = make([][]float32, NH)
		for h := range wO[l] {
			wO[l][h] = m.WOut(l, h)
		}
	}
	resid := make([]float32, bt.B*T*C)
	if err := m.BE.Download(resid, s.Resid); err != nil {
		return err
	}
	get := func(name string) ([]float32, error) {
		t := cache[name]
		if t == nil {
			return nil, fmt.Errorf("ioi: clean activation %s was not observed", name)
		}
		return t.Data, nil
	}
	u := make([]float64, C)
	c := make([]float64, C)
	var sumU float64
	// proj is sum_d (c_d - mean(c)) u_d = c.u - mean(c) sum(u).
	proj := func(c []float64) float64 {
		var dot, mean float64
		for i, v := range c {
			dot += v * u[i]
			mean += v
		}
		return dot - mean/float64(C)*sumU
	}
	for b := 0; b < bt.B; b++ {
		row := b*T + pos
		x := resid[row*C : (row+1)*C]
		var mu, vr float64
		for _, v := range x {
			mu += float64(v)
		}
		mu /= float64(C)
		for _, v := range x {
			vr += (float64(v) - mu) * (float64(v) - mu)
		}
		scale := math.Sqrt(vr/float64(C) + cfg.LNEps)
		io, sid := int(bt.IO[b]), int(bt.S[b])
		sumU = 0
		for i := 0; i < C; i++ {
			diff := float64(U[io*C+i]) - float64(U[sid*C+i])
			u[i] = diff * float64(lnw[i]) / scale
			sumU += u[i]
			d.LNBias += float64(lnb[i]) * diff
		}
		tok := int(bt.Clean[row])
		for i := 0; i < C; i++ {
			c[i] = float64(wte[tok*C+i])
			if wpe != nil {
				c[i] += float64(wpe[pos*C+i])
			}
		}
		d.Embed += proj(c)
		for l := 0; l < L; l++ {
			z, err := get(fmt.Sprintf("blocks.%d.attn.hook_z", l))
			if err != nil {
				return err
			}
			for h := 0; h < NH; h++ {
				clear(c)
				zh := z[row*NH*HS+h*HS:][:HS]
				w := wO[l][h]
				for k, zv := range zh {
					wr := w[k*C : (k+1)*C]
					for i := range c {
						c[i] += float64(zv) * float64(wr[i])
					}
				}
				d.Head[l][h] += proj(c)
			}
			for i := range c {
				c[i] = float64(bO[l][i])
			}
			d.AttnBias[l] += proj(c)
			mo, err := get(fmt.Sprintf("blocks.%d.hook_mlp_out", l))
			if err != nil {
				return err
			}
			for i := range c {
				c[i] = float64(mo[row*C+i])
			}
			d.MLP[l] += proj(c)
		}
	}
	return nil
}
