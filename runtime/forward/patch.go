package forward

import (
	"fmt"

	"github.com/neoscope/neoscope/runtime/backend"
)

// HeadInput recomputes one head's query, key or value from another input,
// as edge patching needs (an edge into `l.h.q` changes that head's query
// only): ln = ln_1(x) of layer l, then out = ln @ W_which[columns of head h]
// (+ that head's slice of the bias). x and ln are [R, C]; out is [R, HS]
// (typically the head's columns of the pass's hook_q/k/v view). which is
// 'q', 'k' or 'v'. The result equals, for those rows, what the block would
// compute had x been the residual before ln_1: the un-rotated q or k of a
// rotary family (hook_q / hook_k; the block rotates them afterwards, so a
// value written into the pass's hook_q/k view is rotated like the others).
func (m *Model) HeadInput(l, h int, which byte, x, ln, out backend.Mat) error {
	cfg := m.Cfg
	if l < 0 || l >= cfg.Layers || h < 0 || h >= cfg.Heads {
		return fmt.Errorf("forward: head %d.%d outside the model", l, h)
	}
	ly := &m.layers[l]
	var w lin
	off := 0
	switch which {
	case 'q':
		w = ly.q
	case 'k':
		w, off = ly.k, cfg.DModel
	case 'v':
		w, off = ly.v, 2*cfg.DModel
	default:
		return fmt.Errorf("forward: head input %q: want q, k or v", which)
	}
	HS := cfg.DHead
	if err := m.BE.LayerNorm(ln, x, ly.ln1W, ly.ln1B, float32(cfg.LNEps)); err != nil {
		return err
	}
	W := w.W.ColSlice(h*HS, HS) // [C_in, C_out] layout: the head's output columns
	if w.Trans {
		W = w.W.RowSlice(h*HS, HS) // [C_out, C_in]: the head's output rows
	}
	if err := m.BE.MatMul(out, ln, W, w.Trans, nil, false); err != nil {
		return err
	}
	bias, boff := w.B, h*HS
	if bias == nil && ly.qkv != nil && ly.qkv.B != nil {
		bias, boff = ly.qkv.B, off+h*HS
	}
	if bias == nil {
		return nil
	}
	// out += ones[R,1] @ bias[1, HS]: adds the head's bias slice to every row.
	ones := make([]float32, out.Rows)
	for i := range ones {
		ones[i] = 1
	}
	o, err := m.BE.Upload(ones, out.Rows, 1)
	if err != nil {
		return err
	}
	defer m.BE.Free(o)
	b := backend.Mat{T: bias, Off: boff, Rows: 1, Cols: HS, Stride: bias.Len()}
	return m.BE.MatMul(out, backend.Whole(o), b, false, nil, true)
}

// MLPInput recomputes layer l's MLP input from another residual, as an
// edge into `mlp.l` needs: out = ln_2(x), what the block's
// ln2.hook_normalized holds had x been the residual the MLP reads (the
// residual after attention in a sequential block, the block input in a
// parallel-residual one: arch.Config.ParallelAt). x and out are [R, C].
func (m *Model) MLPInput(l int, x, out backend.Mat) error {
	if l < 0 || l >= m.Cfg.Layers {
		return fmt.Errorf("forward: layer %d outside 0..%d", l, m.Cfg.Layers-1)
	}
	ly := &m.layers[l]
	return m.BE.LayerNorm(out, x, ly.ln2W, ly.ln2B, float32(m.Cfg.LNEps))
}
