package forward

import (
	"fmt"
	"math"
	"path"
	"strings"

	"github.com/neoscope/neoscope/runtime/backend"
)

// TransformerLens's extra hook points, computed only when a Hooks value
// wants them (nothing is computed, allocated or copied otherwise):
//
//	blocks.{l}.ln1.hook_scale, ln2.hook_scale, ln_final.hook_scale  [B,T,1]
//	    sqrt(var + eps) of the LayerNorm's input row (biased variance, the
//	    model's eps): what the centred input was divided by before the
//	    weight and bias. The backend's LayerNorm is fused and does not return
//	    it, so it is recomputed on the host, in float64 from the same float32
//	    input and rounded to float32. Observe only: Hooks.Validate refuses a
//	    Replace on it (replace ln1/ln2/ln_final.hook_normalized instead).
//	blocks.{l}.attn.hook_result  [B,T,NH,C]
//	    each head's output z_h @ W_O[h] (z_h = z[..., h, :], W_O[h] the
//	    head's HS rows of the output projection [C,C] as x @ W_O uses it),
//	    before the sum over heads and without b_O: hook_attn_out = sum_h
//	    hook_result[..., h, :] + b_O. NH products of [B*T,HS] x [HS,C] (the
//	    flops of the output projection again) into a [B*T, NH*C] buffer.
//	    Replaceable: when a function replaces it, hook_attn_out becomes the
//	    sum over heads of the replaced result plus b_O (float32 adds in head
//	    order) instead of the fused product z @ W_O + b_O.
//
// Replacing attn.hook_attn_scores is refused as well: the pass does not feed
// edited scores back (replace attn.hook_pattern instead).
var observeOnly = []struct{ suffix, instead string }{
	{".hook_scale", "replace the LayerNorm's hook_normalized instead"},
	{"attn.hook_attn_scores", "replace attn.hook_pattern instead"},
}

// checkReplaceable refuses a Replace pattern that matches an observe-only
// hook point of names.
func checkReplaceable(pattern string, names []string) error {
	for _, n := range names {
		if ok, _ := path.Match(pattern, n); !ok {
			continue
		}
		for _, o := range observeOnly {
			if strings.HasSuffix(n, o.suffix) {
				return fmt.Errorf("hook pattern %q: %s can only be observed, not replaced (%s)", pattern, n, o.instead)
			}
		}
	}
	return nil
}

// observeOnlyAt refuses replacements at an observe-only point for passes
// that skip Validate (Blocks called directly).
func observeOnlyAt(h *Hooks, name string) error {
	if len(h.plan(name).fns) > 0 {
		return checkReplaceable(name, []string{name})
	}
	return nil
}

// observeScale delivers name ([B,T,1], see above) for the LayerNorm input x
// ([B*T, C]) when h wants it.
func (m *Model) observeScale(h *Hooks, name string, x backend.Mat, B, T int) error {
	if !h.wants(name) {
		return nil
	}
	if err := observeOnlyAt(h, name); err != nil {
		return err
	}
	be := m.BE
	data := make([]float32, x.Rows*x.Cols)
	if err := be.DownloadMat(data, x); err != nil {
		return fmt.Errorf("hook %s: %w", name, err)
	}
	eps := float64(float32(m.Cfg.LNEps)) // the eps the backend's LayerNorm adds
	scale := make([]float32, x.Rows)
	for r := range scale {
		row := data[r*x.Cols : (r+1)*x.Cols]
		mean := 0.0
		for _, v := range row {
			mean += float64(v)
		}
		mean /= float64(len(row))
		vr := 0.0
		for _, v := range row {
			d := float64(v) - mean
			vr += d * d
		}
		scale[r] = float32(math.Sqrt(vr/float64(len(row)) + eps))
	}
	t, err := be.Upload(scale, x.Rows, 1)
	if err != nil {
		return fmt.Errorf("hook %s: %w", name, err)
	}
	defer be.Free(t)
	return h.at(&Act{Name: name, M: backend.Whole(t), Shape: []int{B, T, 1}, B: B, T: T, BE: be})
}

// attnOut computes hook_attn_out AO [B*T, C] from z [B*T, NH*HS] for layer
// l (T positions per row, the first being from: see BlockOpts.From): the
// fused z @ W_O + b_O, or, when h wants attn.hook_result, the per-head
// products first (into s.result) and, if a function replaced them, AO = sum
// over heads + b_O.
func (m *Model) attnOut(s *State, l int, h *Hooks, AO, Z backend.Mat, B, T, from int) error {
	be, cfg := m.BE, m.Cfg
	C, NH, HS := cfg.DModel, cfg.Heads, cfg.DHead
	o := m.layers[l].o
	name := fmt.Sprintf("blocks.%d.attn.hook_result", l)
	fail := func(op string, err error) error { return fmt.Errorf("forward: layer %d: %s: %w", l, op, err) }
	if !h.wants(name) {
		if err := m.linear(AO, Z, o); err != nil {
			return fail("attention output projection", err)
		}
		return nil
	}
	rt, err := s.buf(&s.result, s.capB*s.T, NH*C)
	if err != nil {
		return fail("allocate hook_result", err)
	}
	res := backend.Mat{T: rt, Rows: B * T, Cols: NH * C, Stride: NH * C} // head hd at columns hd*C..
	for hd := 0; hd < NH; hd++ {
		// W_O[hd]: rows hd*HS.. of op(W) ([C,C] as x @ op(W) uses it).
		w := o.W.RowSlice(hd*HS, HS)
		if o.Trans {
			w = o.W.ColSlice(hd*HS, HS)
		}
		if err := be.MatMul(res.ColSlice(hd*C, C), Z.ColSlice(hd*HS, HS), w, o.Trans, nil, false); err != nil {
			return fail("per-head output (hook_result)", err)
		}
	}
	if err := h.at(&Act{Name: name, M: res, Shape: []int{B, T, NH, C}, B: B, T: T, From: from, BE: be}); err != nil {
		return err
	}
	if len(h.plan(name).fns) == 0 {
		if err := m.linear(AO, Z, o); err != nil {
			return fail("attention output projection", err)
		}
		return nil
	}
	// Replaced: hook_attn_out = sum over heads + b_O.
	if err := be.Copy(AO, res.ColSlice(0, C)); err != nil {
		return fail("sum of hook_result", err)
	}
	for hd := 1; hd < NH; hd++ {
		if err := be.Add(AO, AO, res.ColSlice(hd*C, C)); err != nil {
			return fail("sum of hook_result", err)
		}
	}
	if o.B == nil {
		return nil
	}
	// + b_O on every row, as the rank-1 product ones [B*T,1] @ b_O [1,C].
	ones := make([]float32, AO.Rows)
	for i := range ones {
		ones[i] = 1
	}
	ot, err := be.Upload(ones, AO.Rows, 1)
	if err != nil {
		return fail("output bias", err)
	}
	defer be.Free(ot)
	bias := backend.Mat{T: o.B, Rows: 1, Cols: C, Stride: C}
	if err := be.MatMul(AO, backend.Whole(ot), bias, false, nil, true); err != nil {
		return fail("output bias", err)
	}
	return nil
}
