// Package forward is the forward pass of every supported family, written
// once against backend.Backend, with TransformerLens-named hook points. It
// reads the family's description (runtime/arch) for which weight plays which
// role and for the block recipe; it never asks which family it runs. Errors
// name the layer and the op ("forward: layer 3: attention: ...").
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
//	blocks.{l}.ln1.hook_scale                  [B,T,1]  (sqrt(var+eps) of ln1's input; observe only)
//	blocks.{l}.ln1.hook_normalized             [B,T,C]  (after LayerNorm weight and bias)
//	blocks.{l}.attn.hook_q / hook_k / hook_v   [B,T,NH,HS]
//	blocks.{l}.attn.hook_attn_scores           [B,NH,T,T] (scaled, masked entries -Inf)
//	blocks.{l}.attn.hook_pattern               [B,NH,T,T]
//	blocks.{l}.attn.hook_z                     [B,T,NH,HS]
//	blocks.{l}.attn.hook_result                [B,T,NH,C] (z_h @ W_O[h], no b_O; only when wanted)
//	blocks.{l}.hook_attn_out                   [B,T,C]  (z @ W_O + b_O)
//	blocks.{l}.hook_resid_mid                  [B,T,C]
//	blocks.{l}.ln2.hook_scale                  [B,T,1]
//	blocks.{l}.ln2.hook_normalized             [B,T,C]
//	blocks.{l}.mlp.hook_pre, mlp.hook_post     [B,T,F]
//	blocks.{l}.hook_mlp_out                    [B,T,C]
//	blocks.{l}.hook_resid_post                 [B,T,C]
//	ln_final.hook_scale                        [B,T,1]
//	ln_final.hook_normalized                   [B,T,C]
//	logits                                     [B,T,V]
//
// The hook_scale points and attn.hook_result (TransformerLens's) cost nothing
// unless wanted; tlhooks.go says how they are computed and which can be
// replaced. Replacing attn.hook_attn_scores is refused (replace the pattern).
package forward

import (
	"fmt"
	"math"

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
// nn.Linear [out,in] (trans) or Conv1D [in,out] (arch.Storage).
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
	q, k, v                lin  // arch.QKVSeparate; views of qkv's weight (without bias) when fused
	qkv                    *lin // fused: outputs q-block | k-block | v-block (GPT-NeoX's per-head rows reordered on load)
	o, fc, proj            lin
}

// Model is a loaded model on one backend.
type Model struct {
	Cfg        *arch.Config
	BE         backend.Backend
	wte, wpe   backend.Tensor // wpe nil without learned positions
	unembed    backend.Mat    // [V, C]
	lnfW, lnfB backend.Tensor
	layers     []layer
	owned      []backend.Tensor
	weights    *checkpoint.Weights
	rot        backend.Tensor // rotary [n_ctx, RotaryDims] cos|sin table (rotary models)
}

// New puts the weights on the backend (in place when it can Wrap them),
// following the family's description (cfg.Spec): which tensor plays which
// role and how it is stored. The model takes ownership of w; Close releases
// both.
func New(be backend.Backend, cfg *arch.Config, w *checkpoint.Weights) (*Model, error) {
	m := &Model{Cfg: cfg, BE: be, weights: w}
	put := func(name string, data []float32, shape []int) (backend.Tensor, error) {
		var out backend.Tensor
		var err error
		if wr, ok := be.(Wrapper); ok {
			out, err = wr.Wrap(data, shape...)
		} else {
			out, err = be.Upload(data, shape...)
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
		t := w.Get(name)
		if t == nil {
			err = fmt.Errorf("weights: missing tensor %q", name)
			return nil
		}
		var out backend.Tensor
		out, err = put(name, t.Data, t.Shape)
		return out
	}
	spec, n := cfg.Spec, cfg.Spec.Names
	m.wte = must(n.Embed)
	if cfg.Pos == arch.PosLearned {
		m.wpe = must(n.PosEmbed)
	}
	m.lnfW = must(n.FinalLNW)
	m.lnfB = must(n.FinalLNB)
	if err != nil {
		return nil, err
	}
	m.unembed = backend.Whole(m.wte)
	if !cfg.TiedUnembed {
		u := must(n.Unembed)
		if err != nil {
			return nil, err
		}
		m.unembed = backend.Whole(u)
	}
	trans := spec.Storage == arch.LinearOutIn
	mat := func(l int, role, bias string) lin {
		x := lin{W: backend.Whole(must(spec.LayerName(l, role))), Trans: trans}
		if bias != "" {
			x.B = must(spec.LayerName(l, bias))
		}
		return x
	}
	for l := 0; l < cfg.Layers; l++ {
		p := func(role string) string { return spec.LayerName(l, role) }
		var ly layer
		ly.ln1W, ly.ln1B = must(p(n.LN1W)), must(p(n.LN1B))
		ly.ln2W, ly.ln2B = must(p(n.LN2W)), must(p(n.LN2B))
		switch spec.QKV {
		case arch.QKVSeparate:
			ly.q, ly.k, ly.v = mat(l, n.Q, ""), mat(l, n.K, ""), mat(l, n.V, "")
		case arch.QKVFusedBlocks:
			f := mat(l, n.QKV, n.QKVBias)
			ly.qkv = &f
		case arch.QKVFusedPerHead:
			// Rows (or columns, for Conv1D storage) grouped per head as
			// [q_h | k_h | v_h] are put into q-block | k-block | v-block order
			// once, so that q, k and v are column views of one product.
			if err == nil {
				ly.qkv, err = m.perHeadQKV(l, put)
			}
		}
		if ly.qkv != nil {
			// q, k and v also as views of the fused weight (no bias: the
			// fused bias stays with qkv), for code that needs one projection
			// or one head's columns (receiver inputs, the backward pass).
			f := *ly.qkv
			for i, p := range []*lin{&ly.q, &ly.k, &ly.v} {
				if f.Trans {
					*p = lin{W: f.W.RowSlice(i*cfg.DModel, cfg.DModel), Trans: true}
				} else {
					*p = lin{W: f.W.ColSlice(i*cfg.DModel, cfg.DModel)}
				}
			}
		}
		ly.o = mat(l, n.O, n.OBias)
		ly.fc = mat(l, n.FC, n.FCBias)
		ly.proj = mat(l, n.Proj, n.ProjBias)
		if err != nil {
			return nil, err
		}
		m.layers = append(m.layers, ly)
	}
	if cfg.Pos == arch.PosRotary && cfg.RotaryDims > 0 {
		if m.rot, err = be.Upload(RotaryTable(cfg), cfg.Context, cfg.RotaryDims); err != nil {
			return nil, fmt.Errorf("weights: rotary table: %w", err)
		}
	}
	return m, nil
}

// RotaryTable is the angle table of backend.RotaryParams for every position
// of the context: [n_ctx, RotaryDims], row t = cos(t f_i) (i < Dims/2) then
// sin(t f_i), f_i = base^(-2i/Dims). Angles are computed in float64 and
// rounded once (Hugging Face computes them in float32: differences of order
// 1e-6, see ../shared/fixtures/tiny-neox/README.md).
func RotaryTable(cfg *arch.Config) []float32 {
	D := cfg.RotaryDims
	half := D / 2
	tab := make([]float32, cfg.Context*D)
	for t := 0; t < cfg.Context; t++ {
		for i := 0; i < half; i++ {
			a := float64(t) * math.Pow(cfg.RotaryBase, -2*float64(i)/float64(D))
			tab[t*D+i] = float32(math.Cos(a))
			tab[t*D+half+i] = float32(math.Sin(a))
		}
	}
	return tab
}

// perHeadQKV reorders layer l's fused per-head qkv weight and bias
// (GPT-NeoX: output o = h*3*HS + part*HS + d) into block order
// (part*C + h*HS + d) on the host and puts the copies on the backend.
func (m *Model) perHeadQKV(l int, put func(string, []float32, []int) (backend.Tensor, error)) (*lin, error) {
	cfg, spec := m.Cfg, m.Cfg.Spec
	C, HS := cfg.DModel, cfg.DHead
	wn, bn := spec.LayerName(l, spec.Names.QKV), spec.LayerName(l, spec.Names.QKVBias)
	w, b := m.weights.Get(wn), m.weights.Get(bn)
	if w == nil || b == nil {
		return nil, fmt.Errorf("weights: missing tensor %q or %q", wn, bn)
	}
	src := func(o int) int { return perHeadOut(o, C, HS) }
	W := make([]float32, len(w.Data))
	B := make([]float32, len(b.Data))
	for o := 0; o < 3*C; o++ {
		so := src(o)
		B[o] = b.Data[so]
		if spec.Storage == arch.LinearOutIn { // [3C, C]: rows are outputs
			copy(W[o*C:(o+1)*C], w.Data[so*C:(so+1)*C])
		} else { // [C, 3C]: columns are outputs
			for i := 0; i < C; i++ {
				W[i*3*C+o] = w.Data[i*3*C+so]
			}
		}
	}
	wt, err := put(wn, W, w.Shape)
	if err != nil {
		return nil, err
	}
	bt, err := put(bn, B, b.Shape)
	if err != nil {
		return nil, err
	}
	return &lin{W: backend.Whole(wt), Trans: spec.Storage == arch.LinearOutIn, B: bt}, nil
}

// perHeadOut maps output o of the block order (part*C + h*HS + d, part 0, 1,
// 2 for q, k, v) to its place in GPT-NeoX's per-head order
// (h*3*HS + part*HS + d).
func perHeadOut(o, C, HS int) int {
	part, h, d := o/C, (o%C)/HS, o%HS
	return h*3*HS + part*HS + d
}

// Close frees backend copies of the weights and unmaps the checkpoint.
func (m *Model) Close() error {
	for _, t := range m.owned {
		m.BE.Free(t)
	}
	m.owned = nil
	if m.rot != nil {
		m.BE.Free(m.rot)
		m.rot = nil
	}
	if m.weights != nil {
		return m.weights.Close()
	}
	return nil
}

// Weights gives host access to the checkpoint (for probes that read W_E, W_O, ...).
func (m *Model) Weights() *checkpoint.Weights { return m.weights }

// WOut returns head h's rows of layer l's output projection as a host
// [HS, C] matrix in the x @ W_O layout (an nn.Linear weight transposed, a
// Conv1D weight as stored).
func (m *Model) WOut(l, h int) []float32 {
	C, HS := m.Cfg.DModel, m.Cfg.DHead
	out := make([]float32, HS*C)
	spec := m.Cfg.Spec
	w := m.weights.Get(spec.LayerName(l, spec.Names.O)).Data
	if spec.Storage == arch.LinearOutIn { // [C_out, C_in]
		for d := 0; d < HS; d++ {
			for c := 0; c < C; c++ {
				out[d*C+c] = w[c*C+h*HS+d]
			}
		}
	} else { // [C_in, C_out]
		copy(out, w[h*HS*C:(h+1)*HS*C])
	}
	return out
}

// BOut returns layer l's attention output bias b_O [C] (host).
func (m *Model) BOut(l int) []float32 {
	return m.HostWeight(m.Cfg.Spec.LayerName(l, m.Cfg.Spec.Names.OBias))
}

// WE returns the token embedding W_E [V, C] (host, rows = tokens).
func (m *Model) WE() []float32 { return m.HostWeight(m.Cfg.Spec.Names.Embed) }

// WPos returns the learned position embedding [n_ctx, C] (host), nil when
// the model has none (rotary or no positions).
func (m *Model) WPos() []float32 {
	if m.Cfg.Pos != arch.PosLearned {
		return nil
	}
	return m.HostWeight(m.Cfg.Spec.Names.PosEmbed)
}

// WU returns the unembedding W_U as [V, C] host rows (logits = x @ W_U^T):
// W_E when tied, else the family's unembedding tensor.
func (m *Model) WU() []float32 {
	if m.Cfg.TiedUnembed {
		return m.WE()
	}
	return m.HostWeight(m.Cfg.Spec.Names.Unembed)
}

// LNFinalHost returns ln_final's weight and bias (host).
func (m *Model) LNFinalHost() (w, b []float32) {
	n := m.Cfg.Spec.Names
	return m.HostWeight(n.FinalLNW), m.HostWeight(n.FinalLNB)
}

// HostWeight returns a weight tensor's host data by canonical name.
func (m *Model) HostWeight(name string) []float32 {
	t := m.weights.Get(name)
	if t == nil {
		return nil
	}
	return t.Data
}

// Embed returns the [V, C] token-embedding view W_E: the model's own
// tensor, the host rows of WE on a backend that wraps them, so a probe that
// multiplies by W_E needs no copy of it.
func (m *Model) Embed() backend.Mat { return backend.Whole(m.wte) }

// Unembed returns the [V, C] unembedding view (wte when tied).
func (m *Model) Unembed() backend.Mat { return m.unembed }

// LNFinal returns ln_f's weight and bias tensors.
func (m *Model) LNFinal() (w, b backend.Tensor) { return m.lnfW, m.lnfB }
