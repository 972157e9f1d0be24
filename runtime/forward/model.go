// Package forward is the GPT-Neo / GPT-2 forward pass, written once against
// backend.Backend, with TransformerLens-named hook points.
//
// Hooks work in two phases (as ggml's eval callback does): a Hooks value
// declares up front which activations to observe (copied to the host) and
// which to replace (a function that edits the activation in place on the
// backend); the forward pass then touches only those. At a hook point the
// replacement runs first and observation second, so a cache shows what flows
// downstream.
//
// Hook names and shapes (B rows, T tokens, C d_model, NH heads, HS head size,
// F d_mlp, V vocabulary):
//
//	hook_embed, hook_pos_embed                 [B,T,C]
//	blocks.{l}.hook_resid_pre                  [B,T,C]
//	blocks.{l}.ln1.hook_normalized             [B,T,C]  (after LayerNorm weight and bias)
//	blocks.{l}.attn.hook_q / hook_k / hook_v   [B,T,NH,HS]
//	blocks.{l}.attn.hook_attn_scores           [B,NH,T,T] (scaled, masked entries -Inf)
//	blocks.{l}.attn.hook_pattern               [B,NH,T,T]
//	blocks.{l}.attn.hook_z                     [B,T,NH,HS]
//	blocks.{l}.hook_attn_out                   [B,T,C]  (z @ W_O + b_O)
//	blocks.{l}.hook_resid_mid                  [B,T,C]
//	blocks.{l}.ln2.hook_normalized             [B,T,C]
//	blocks.{l}.mlp.hook_pre, mlp.hook_post     [B,T,F]
//	blocks.{l}.hook_mlp_out                    [B,T,C]
//	blocks.{l}.hook_resid_post                 [B,T,C]
//	ln_final.hook_normalized                   [B,T,C]
//	logits                                     [B,T,V]
package forward

import (
	"fmt"

	"github.com/neoscope/neoscope/runtime/arch"
	"github.com/neoscope/neoscope/runtime/backend"
	"github.com/neoscope/neoscope/runtime/checkpoint"
)

// Wrapper is implemented by backends that can use host weights in place
// (the CPU backend over a memory-mapped checkpoint).
type Wrapper interface {
	Wrap(data []float32, shape ...int) (backend.Tensor, error)
}

// lin is a linear map y = x @ op(W) + b in the layout the checkpoint stores:
// nn.Linear [out,in] (trans) for GPT-Neo, Conv1D [in,out] for GPT-2.
type lin struct {
	W     backend.Mat
	Trans bool
	B     backend.Tensor // may be nil
}

// Out is the output width.
func (l lin) Out() int {
	if l.Trans {
		return l.W.Rows
	}
	return l.W.Cols
}

type layer struct {
	ln1W, ln1B, ln2W, ln2B backend.Tensor
	q, k, v                lin // GPT-Neo: separate; GPT-2: views into one c_attn
	qkv                    *lin
	o, fc, proj            lin
}

// Model is a loaded model on one backend.
type Model struct {
	Cfg        *arch.Config
	BE         backend.Backend
	wte, wpe   backend.Tensor
	unembed    backend.Mat // [V, C]
	lnfW, lnfB backend.Tensor
	layers     []layer
	owned      []backend.Tensor
	weights    *checkpoint.Weights
}

// New puts the weights on the backend (in place when it can Wrap them).
// The model takes ownership of w; Close releases both.
func New(be backend.Backend, cfg *arch.Config, w *checkpoint.Weights) (*Model, error) {
	m := &Model{Cfg: cfg, BE: be, weights: w}
	get := func(name string) (backend.Tensor, error) {
		t := w.Get(name)
		if t == nil {
			return nil, fmt.Errorf("weights: missing tensor %q", name)
		}
		var out backend.Tensor
		var err error
		if wr, ok := be.(Wrapper); ok {
			out, err = wr.Wrap(t.Data, t.Shape...)
		} else {
			out, err = be.Upload(t.Data, t.Shape...)
			m.owned = append(m.owned, out)
		}
		if err != nil {
			return nil, fmt.Errorf("weights: %s: %w", name, err)
		}
		return out, nil
	}
	var err error
	must := func(name string) backend.Tensor {
		if err != nil {
			return nil
		}
		var t backend.Tensor
		t, err = get(name)
		return t
	}
	m.wte = must("wte.weight")
	m.wpe = must("wpe.weight")
	m.lnfW = must("ln_f.weight")
	m.lnfB = must("ln_f.bias")
	if err != nil {
		return nil, err
	}
	m.unembed = backend.Whole(m.wte)
	if !cfg.TiedUnembed {
		u := must("lm_head.weight")
		if err != nil {
			return nil, err
		}
		m.unembed = backend.Whole(u)
	}
	C := cfg.DModel
	for l := 0; l < cfg.Layers; l++ {
		p := fmt.Sprintf("h.%d.", l)
		var ly layer
		ly.ln1W, ly.ln1B = must(p+"ln_1.weight"), must(p+"ln_1.bias")
		ly.ln2W, ly.ln2B = must(p+"ln_2.weight"), must(p+"ln_2.bias")
		switch cfg.Family {
		case arch.GPTNeo:
			a := p + "attn.attention."
			ly.q = lin{W: backend.Whole(must(a + "q_proj.weight")), Trans: true}
			ly.k = lin{W: backend.Whole(must(a + "k_proj.weight")), Trans: true}
			ly.v = lin{W: backend.Whole(must(a + "v_proj.weight")), Trans: true}
			ly.o = lin{W: backend.Whole(must(a + "out_proj.weight")), Trans: true, B: must(a + "out_proj.bias")}
			ly.fc = lin{W: backend.Whole(must(p + "mlp.c_fc.weight")), Trans: true, B: must(p + "mlp.c_fc.bias")}
			ly.proj = lin{W: backend.Whole(must(p + "mlp.c_proj.weight")), Trans: true, B: must(p + "mlp.c_proj.bias")}
		case arch.GPT2:
			w := backend.Whole(must(p + "attn.c_attn.weight")) // [C, 3C]
			ly.qkv = &lin{W: w, B: must(p + "attn.c_attn.bias")}
			ly.q = lin{W: w.ColSlice(0, C)}
			ly.k = lin{W: w.ColSlice(C, C)}
			ly.v = lin{W: w.ColSlice(2*C, C)}
			ly.o = lin{W: backend.Whole(must(p + "attn.c_proj.weight")), B: must(p + "attn.c_proj.bias")}
			ly.fc = lin{W: backend.Whole(must(p + "mlp.c_fc.weight")), B: must(p + "mlp.c_fc.bias")}
			ly.proj = lin{W: backend.Whole(must(p + "mlp.c_proj.weight")), B: must(p + "mlp.c_proj.bias")}
		}
		if err != nil {
			return nil, err
		}
		m.layers = append(m.layers, ly)
	}
	return m, nil
}

// Close frees backend copies of the weights and unmaps the checkpoint.
func (m *Model) Close() error {
	for _, t := range m.owned {
		m.BE.Free(t)
	}
	m.owned = nil
	if m.weights != nil {
		return m.weights.Close()
	}
	return nil
}

// Weights gives host access to the checkpoint (for probes that read W_E, W_O, ...).
func (m *Model) Weights() *checkpoint.Weights { return m.weights }

// WOut returns head h's rows of layer l's output projection as a host
// [HS, C] matrix in the x @ W_O layout (out_proj.weight transposed for
// GPT-Neo, attn.c_proj.weight as stored for GPT-2).
func (m *Model) WOut(l, h int) []float32 {
	C, HS := m.Cfg.DModel, m.Cfg.DHead
	out := make([]float32, HS*C)
	var name string
	if m.Cfg.Family == arch.GPTNeo {
		name = fmt.Sprintf("h.%d.attn.attention.out_proj.weight", l)
		w := m.weights.Get(name).Data // [C_out, C_in]
		for d := 0; d < HS; d++ {
			for c := 0; c < C; c++ {
				out[d*C+c] = w[c*C+h*HS+d]
			}
		}
	} else {
		name = fmt.Sprintf("h.%d.attn.c_proj.weight", l)
		w := m.weights.Get(name).Data // [C_in, C_out]
		copy(out, w[h*HS*C:(h+1)*HS*C])
	}
	return out
}

// HostWeight returns a weight tensor's host data by canonical name.
func (m *Model) HostWeight(name string) []float32 {
	t := m.weights.Get(name)
	if t == nil {
		return nil
	}
	return t.Data
}

// Unembed returns the [V, C] unembedding view (wte when tied).
func (m *Model) Unembed() backend.Mat { return m.unembed }

// LNFinal returns ln_f's weight and bias tensors.
func (m *Model) LNFinal() (w, b backend.Tensor) { return m.lnfW, m.lnfB }
