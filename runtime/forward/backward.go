package forward

import (
	"fmt"
	"path"
	"strings"

	"github.com/neoscope/neoscope/runtime/arch"
	"github.com/neoscope/neoscope/runtime/backend"
	"github.com/neoscope/neoscope/runtime/graph"
)

// Reverse-mode differentiation of the forward pass (issue 13).
//
// Memory: Record keeps the residual stream at the input of every block
// (L+1 tensors of [B*T, C]) and the ln_final output. When every block's
// activations (15 B*T*C floats a block for d_mlp = 4C) fit in half the
// weights' size, it keeps those too (at 8 x 20 tokens on GPT-Neo-125M: 88 MB
// against 500 MB); otherwise Backward recomputes one block's activations at
// a time from its saved input (activation checkpointing per block; at 8 x
// 128 tokens, 566 MB would not fit). Either way the peak stays under twice
// the forward pass's (weights plus one block's buffers): besides the
// weights, kept activations (<= half the weights) or one block's, plus one
// block's gradients and the L+1 saved residuals. Parameter gradients, when
// asked for, add one copy of the weights.
//
// The block recipe below (recompute / blockGrad) mirrors block() in run.go
// and reads the same description (arch.Config): GPT-Neo's unscaled scores
// and local windows, GPT-2's and GPT-NeoX's 1/sqrt(HS) scale, the tanh or
// the exact (erf) GELU, and for GPT-NeoX:
//   - rotary q and k: attention's backward runs on the rotated q, k (the
//     kept or recomputed activations hold them) and gives d rot_q, d rot_k;
//     rotating those back (the transpose of a rotation is the rotation by
//     the negated angle: the same kernel, Backend.Rotary, with the sines
//     negated) gives d q, d k before the projections' backward;
//   - the parallel residual resid_post = resid_pre + attn(ln1(resid_pre)) +
//     mlp(ln2(resid_pre)): d attn_out = d mlp_out = d resid_post, ln_2's
//     backward adds into d resid_pre beside ln_1's, and the mlp receiver's
//     input is the block input (graph.New with cfg.ParallelAt);
//   - the fused per-head query_key_value: the forward pass reorders it at
//     load into q-block | k-block | v-block (perHeadQKV); its gradient is
//     accumulated in that order and put back into the per-head [q_h|k_h|v_h]
//     order of the checkpoint when it is downloaded.
// Parameter gradients are named by the family's description (cfg.Spec:
// canonical names, prefix dropped): the untied unembedding's under
// Names.Unembed (embed_out.weight for GPT-NeoX), a tied one adds into
// Names.Embed.

// Tape is a recorded forward pass ready for Backward.
type Tape struct {
	m      *Model
	B, T   int
	Tokens []int32
	resid  []backend.Tensor // [L+1] of [B*T, C]: hook_resid_pre of each block, then the final residual
	final  backend.Tensor   // ln_final output [B*T, C]
	kept   []*blockActs     // [L] when activations are kept, else nil (recomputed)
}

// blockActs are one block's activations as Backward needs them.
type blockActs struct {
	x1, qkv, z, mid, x2, hpre, hpost backend.Tensor // [R,C] [R,3C] (q, k after rotary) [R,C] [R,C] (nil when parallel) [R,C] [R,F] [R,F]
}

func (a *blockActs) tensors() []backend.Tensor {
	return []backend.Tensor{a.x1, a.qkv, a.z, a.mid, a.x2, a.hpre, a.hpost}
}

// KeepLimit caps the bytes of block activations Record keeps, as a fraction
// of the weights' bytes; above it Backward recomputes them block by block.
var KeepLimit = 0.5

// Close frees the tape's tensors.
func (tp *Tape) Close() {
	for _, t := range tp.resid {
		tp.m.BE.Free(t)
	}
	for _, a := range tp.kept {
		for _, t := range a.tensors() {
			if t != nil {
				tp.m.BE.Free(t)
			}
		}
	}
	tp.kept = nil
	if tp.final != nil {
		tp.m.BE.Free(tp.final)
	}
	tp.resid, tp.final = nil, nil
}

// Record runs the forward pass on a validated [B*T] batch and keeps what
// Backward needs. h may observe activations (its Cache fills as in Run) but
// not replace them: the backward pass differentiates the unedited model.
func (m *Model) Record(tokens []int32, B, T int, h *Hooks) (*Tape, error) {
	if _, ok := m.BE.(backend.Grad); !ok {
		return nil, fmt.Errorf("backend %s has no backward pass (backend.Grad); use --backend cpu", m.BE.Name())
	}
	if h != nil && len(h.replace) > 0 {
		return nil, fmt.Errorf("grad: a recorded pass observes activations but cannot replace them")
	}
	if err := h.Validate(m); err != nil {
		return nil, err
	}
	s, err := m.Start(tokens, B, T, h)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	tp := &Tape{m: m, B: B, T: T, Tokens: tokens}
	C := m.Cfg.DModel
	hb := h
	if m.keepActs(B * T) {
		if hb, err = tp.keepHooks(h); err != nil {
			tp.Close()
			return nil, err
		}
	}
	save := func() (backend.Tensor, error) {
		t, err := m.BE.New(B*T, C)
		if err != nil {
			return nil, err
		}
		return t, m.BE.Copy(backend.Whole(t), s.mat(s.Resid, C))
	}
	for l := 0; l <= m.Cfg.Layers; l++ {
		t, err := save()
		if err != nil {
			tp.Close()
			return nil, err
		}
		tp.resid = append(tp.resid, t)
		if l < m.Cfg.Layers {
			if err := m.Blocks(s, l, l+1, hb); err != nil {
				tp.Close()
				return nil, err
			}
		}
	}
	if err := m.FinalNorm(s, hb); err != nil {
		tp.Close()
		return nil, err
	}
	if hb != h && h != nil {
		h.Cache = hb.Cache
	}
	if tp.final, err = m.BE.New(B*T, C); err != nil {
		tp.Close()
		return nil, err
	}
	if err := m.BE.Copy(backend.Whole(tp.final), s.mat(s.Final, C)); err != nil {
		tp.Close()
		return nil, err
	}
	return tp, nil
}

// keepActs says whether R rows of every block's activations fit KeepLimit.
func (m *Model) keepActs(R int) bool {
	cfg := m.Cfg
	acts := float64(cfg.Layers) * float64(R) * float64(7*cfg.DModel+2*cfg.DMLP) * 4
	var weights float64
	for _, t := range m.weights.Tensors {
		weights += 4 * float64(len(t.Data))
	}
	return acts <= KeepLimit*weights
}

// keepHooks allocates the kept activations and returns hooks that copy
// them out of the forward pass at their hook points, besides observing what
// h observes.
func (tp *Tape) keepHooks(h *Hooks) (*Hooks, error) {
	m, be := tp.m, tp.m.BE
	R, C, F := tp.B*tp.T, m.Cfg.DModel, m.Cfg.DMLP
	hb := &Hooks{}
	if h != nil {
		hb.observe = append(hb.observe, h.observe...)
	}
	// q and k as attention reads them: after rotary where the family has it.
	hq, hk := "attn.hook_q", "attn.hook_k"
	if m.Cfg.Pos == arch.PosRotary {
		hq, hk = "attn.hook_rot_q", "attn.hook_rot_k"
	}
	for l := 0; l < m.Cfg.Layers; l++ {
		a := &blockActs{}
		tp.kept = append(tp.kept, a)
		var err error
		bufs := []struct {
			t    *backend.Tensor
			cols int
		}{{&a.x1, C}, {&a.qkv, 3 * C}, {&a.z, C}, {&a.x2, C}, {&a.hpre, F}, {&a.hpost, F}}
		if !m.Cfg.Parallel {
			bufs = append(bufs, struct {
				t    *backend.Tensor
				cols int
			}{&a.mid, C})
		}
		for _, p := range bufs {
			if *p.t, err = be.New(R, p.cols); err != nil {
				return nil, err
			}
		}
		qkv := backend.Whole(a.qkv)
		type capture struct {
			hook string
			dst  backend.Mat
		}
		caps := []capture{
			{"ln1.hook_normalized", backend.Whole(a.x1)},
			{hq, qkv.ColSlice(0, C)}, {hk, qkv.ColSlice(C, C)}, {"attn.hook_v", qkv.ColSlice(2*C, C)},
			{"attn.hook_z", backend.Whole(a.z)},
			{"ln2.hook_normalized", backend.Whole(a.x2)}, {"mlp.hook_pre", backend.Whole(a.hpre)}, {"mlp.hook_post", backend.Whole(a.hpost)},
		}
		if !m.Cfg.Parallel {
			caps = append(caps, capture{"hook_resid_mid", backend.Whole(a.mid)})
		}
		for _, c := range caps {
			dst := c.dst
			hb.Replace(fmt.Sprintf("blocks.%d.%s", l, c.hook), func(x *Act) error { return be.Copy(dst, x.M) })
		}
	}
	return hb, nil
}

// State returns a forward state over the tape's final residual and
// ln_final output, for the metrics (LogitDiffs, MeanLoss); it shares the
// tape's tensors: do not Close it.
func (tp *Tape) State() *State {
	return &State{B: tp.B, T: tp.T, Tokens: tp.Tokens, capB: tp.B, allTokens: tp.Tokens,
		Resid: tp.resid[len(tp.resid)-1], Final: tp.final, m: tp.m}
}

// Objective is the scalar M that Backward differentiates.
type Objective struct {
	kind string
	pos  int
	a, c []int32
	from int
}

// LogitDiff is M = mean over rows b of logits[b,pos,a[b]] - logits[b,pos,c[b]].
func LogitDiff(pos int, a, c []int32) Objective {
	return Objective{kind: "ld", pos: pos, a: a, c: c}
}

// NextTokenLoss is M = the mean next-token cross-entropy over positions
// from..T-2 of every row (MeanLoss).
func NextTokenLoss(from int) Objective { return Objective{kind: "loss", from: from} }

// BackwardOptions says which gradients Backward produces.
type BackwardOptions struct {
	// Hooks observes (or edits) gradients at hook points: the gradient of M
	// with respect to the activation named as in the forward pass (total
	// derivative, through every path). Gradients at hook_attn_scores,
	// hook_pattern and logits are not available.
	Hooks *Hooks
	// Receiver, when set, is called with dM/d(input of r) [B*T, C] for every
	// receiver r of the edge graph (CIRCUITS.md): the gradient reaching r's
	// own input only (one head's q, k or v path through ln_1; the MLP's path
	// through ln_2; the final residual through ln_f). g is valid during the
	// call only. Calls come in reverse layer order: logits first.
	Receiver func(r graph.Node, g backend.Mat) error
	// ReceiverDst, when set with Receiver, gives the [B*T, C] view each
	// receiver's gradient is written into (saving a copy when the caller
	// gathers them); Receiver is then called with that view.
	ReceiverDst func(r graph.Node) (backend.Mat, error)
	// Params asks for dM/d(every parameter) under canonical checkpoint names.
	Params bool
}

// dst is where receiver r's gradient goes: ReceiverDst's view or def.
func (o BackwardOptions) dst(r graph.Node, def backend.Mat) (backend.Mat, error) {
	if o.Receiver == nil || o.ReceiverDst == nil {
		return def, nil
	}
	m, err := o.ReceiverDst(r)
	if err == nil && (m.Rows != def.Rows || m.Cols != def.Cols) {
		err = fmt.Errorf("grad: ReceiverDst for %s is %dx%d, want %dx%d", r, m.Rows, m.Cols, def.Rows, def.Cols)
	}
	return m, err
}

// Gradients is what Backward returns.
type Gradients struct {
	Value  float64                // M on the recorded pass
	Params map[string]*HostTensor // by canonical name (no "transformer." prefix), checkpoint shape
}

// unsupportedGrad lists hook points whose gradient Backward does not produce.
var unsupportedGrad = []string{"attn.hook_attn_scores", "attn.hook_pattern",
	"ln1.hook_scale", "ln2.hook_scale", "ln_final.hook_scale", "attn.hook_result"}

// ValidateGrad checks gradient hook patterns: each must match a hook point,
// and none may match only points without a gradient.
func (h *Hooks) ValidateGrad(m *Model) error {
	if err := h.Validate(m); err != nil {
		return err
	}
	for _, p := range h.observe {
		ok := false
		for _, n := range m.HookNames() {
			if match, _ := path.Match(p, n); match && gradAvailable(n) {
				ok = true
				break
			}
		}
		if !ok {
			return fmt.Errorf("gradient pattern %q: no gradient at the points it names (none at hook_attn_scores, hook_pattern, hook_scale, hook_result, logits)", p)
		}
	}
	return nil
}

func gradAvailable(n string) bool {
	if n == "logits" {
		return false
	}
	for _, s := range unsupportedGrad {
		if strings.HasSuffix(n, s) {
			return false
		}
	}
	return true
}

// blockBufs are one block's recomputed activations and their gradients.
type blockBufs struct {
	x1, qkv, z, mid, x2, hpre, hpost backend.Tensor // activations
	dr, dx, dqkv, dz, dh, tmp, tmpX  backend.Tensor // gradients
	dpar                             backend.Tensor // parallel residual: ln_2's part of d resid_pre, held while attention's backward reads d resid_post
	rotInv                           backend.Tensor // rotary: the angle table with the sines negated (the inverse rotation)
}

func (b *blockBufs) free(be backend.Backend) {
	for _, t := range []backend.Tensor{b.x1, b.qkv, b.z, b.mid, b.x2, b.hpre, b.hpost, b.dr, b.dx, b.dqkv, b.dz, b.dh, b.tmp, b.tmpX, b.dpar, b.rotInv} {
		if t != nil {
			be.Free(t)
		}
	}
}

// paramGrads holds parameter gradient tensors on the backend, by canonical
// name. A fused per-head qkv weight's and bias's gradients are held in the
// block order the forward pass uses (perHeadQKV) until host() puts them back.
type paramGrads struct {
	m       *Model
	t       map[string]backend.Tensor
	written map[string]bool // by a product that overwrote it (first)
}

// first says whether a matrix product writing the gradient of name is its
// first (and marks it written): that one overwrites (beta = 0) instead of
// adding into the zeros, so BLAS never reads the fresh buffer, which halves
// the page faults of first touching the weights' worth of gradients.
func (p *paramGrads) first(name string) bool {
	if p.written[name] {
		return false
	}
	if p.written == nil {
		p.written = map[string]bool{}
	}
	p.written[name] = true
	return true
}

// host downloads the gradient of name in the checkpoint's layout (takes
// it without a copy where the backend is a backend.Taker: t is empty then).
func (p *paramGrads) host(name string, t backend.Tensor) ([]float32, error) {
	var data []float32
	if tk, ok := p.m.BE.(backend.Taker); ok {
		data = tk.Take(t)
	} else {
		data = make([]float32, t.Len())
		if err := p.m.BE.Download(data, t); err != nil {
			return nil, err
		}
	}
	cfg := p.m.Cfg
	spec := cfg.Spec
	if spec.QKV != arch.QKVFusedPerHead {
		return data, nil
	}
	for l := 0; l < cfg.Layers; l++ {
		w, b := spec.LayerName(l, spec.Names.QKV), spec.LayerName(l, spec.Names.QKVBias)
		if name != w && name != b {
			continue
		}
		C, HS := cfg.DModel, cfg.DHead
		out := make([]float32, len(data))
		for o := 0; o < 3*C; o++ {
			so := perHeadOut(o, C, HS)
			switch {
			case name == b:
				out[so] = data[o]
			case spec.Storage == arch.LinearOutIn: // [3C, C]: rows are outputs
				copy(out[so*C:(so+1)*C], data[o*C:(o+1)*C])
			default: // [C, 3C]: columns are outputs
				for i := 0; i < C; i++ {
					out[i*3*C+so] = data[i*3*C+o]
				}
			}
		}
		return out, nil
	}
	return data, nil
}

func (p *paramGrads) get(name string) (backend.Tensor, error) {
	if p == nil {
		return nil, nil
	}
	if t, ok := p.t[name]; ok {
		return t, nil
	}
	w := p.m.weights.Get(name)
	if w == nil {
		return nil, fmt.Errorf("grad: no parameter %q", name)
	}
	t, err := p.m.BE.New(w.Shape...)
	if err != nil {
		return nil, err
	}
	p.t[name] = t
	return t, nil
}

// Backward differentiates obj on the recorded pass.
func (tp *Tape) Backward(obj Objective, opt BackwardOptions) (*Gradients, error) {
	m, be := tp.m, tp.m.BE
	gb, ok := be.(backend.Grad)
	if !ok {
		return nil, fmt.Errorf("backend %s has no backward pass (backend.Grad)", be.Name())
	}
	if opt.Hooks != nil {
		if err := opt.Hooks.ValidateGrad(m); err != nil {
			return nil, err
		}
	}
	cfg := m.Cfg
	B, T, C, F := tp.B, tp.T, cfg.DModel, cfg.DMLP
	R := B * T
	var pg *paramGrads
	if opt.Params {
		pg = &paramGrads{m: m, t: map[string]backend.Tensor{}}
		defer func() {
			for _, t := range pg.t {
				be.Free(t)
			}
		}()
	}
	bb := &blockBufs{}
	defer bb.free(be)
	var err error
	alloc := func(p *backend.Tensor, rows, cols int) {
		if err == nil {
			*p, err = be.New(rows, cols)
		}
	}
	alloc(&bb.x1, R, C)
	alloc(&bb.qkv, R, 3*C)
	alloc(&bb.z, R, C)
	if !cfg.Parallel {
		alloc(&bb.mid, R, C)
	}
	alloc(&bb.x2, R, C)
	alloc(&bb.hpre, R, F)
	alloc(&bb.hpost, R, F)
	alloc(&bb.dr, R, C)
	alloc(&bb.dx, R, C)
	alloc(&bb.dqkv, R, 3*C)
	alloc(&bb.dz, R, C)
	alloc(&bb.dh, R, F)
	alloc(&bb.tmp, R, C)
	alloc(&bb.tmpX, R, C)
	if cfg.Parallel {
		alloc(&bb.dpar, R, C)
	}
	if err != nil {
		return nil, err
	}
	if m.rot != nil {
		tab := RotaryTable(cfg)
		for t := 0; t < cfg.Context; t++ { // row t: cos | sin; the inverse rotation negates the sines
			for i := cfg.RotaryDims / 2; i < cfg.RotaryDims; i++ {
				tab[t*cfg.RotaryDims+i] = -tab[t*cfg.RotaryDims+i]
			}
		}
		if bb.rotInv, err = be.Upload(tab, cfg.Context, cfg.RotaryDims); err != nil {
			return nil, err
		}
	}
	names := cfg.Spec.Names
	g := &Gradients{}
	st := tp.State()
	// 1. The metric: dM/d ln_final output into dx, and the unembedding's gradient.
	unembedName := names.Embed
	if !cfg.TiedUnembed {
		unembedName = names.Unembed
	}
	dU, err := pg.get(unembedName)
	if err != nil {
		return nil, err
	}
	dUacc := dU != nil && !pg.first(unembedName)
	dFinal := backend.Whole(bb.dx)
	final := backend.Whole(tp.final)
	switch obj.kind {
	case "ld":
		ld, err := m.LogitDiffs(st, obj.pos, obj.a, obj.c)
		if err != nil {
			return nil, err
		}
		g.Value = Mean(ld)
		rows := func(x backend.Mat) backend.Mat {
			return backend.Mat{T: x.T, Off: obj.pos * C, Rows: B, Cols: C, Stride: T * C}
		}
		if dU == nil { // the two answers' unembedding rows, not the [B, V] logits
			if err := m.logitDiffBackward(rows(dFinal), obj.a, obj.c); err != nil {
				return nil, err
			}
			break
		}
		// dlogits [B, V] = (onehot(a) - onehot(c)) / B at row b*T+pos.
		V := cfg.Vocab
		dl := make([]float32, B*V)
		for b := 0; b < B; b++ {
			dl[b*V+int(obj.a[b])] += 1 / float32(B)
			dl[b*V+int(obj.c[b])] -= 1 / float32(B)
		}
		dlt, err := be.Upload(dl, B, V)
		if err != nil {
			return nil, err
		}
		defer be.Free(dlt)
		if err := be.MatMul(rows(dFinal), backend.Whole(dlt), m.unembed, false, nil, false); err != nil {
			return nil, err
		}
		if err := gb.MatMulTN(backend.Whole(dU), backend.Whole(dlt), rows(final), dUacc); err != nil {
			return nil, err
		}
	case "loss":
		if obj.from < 0 || obj.from > T-2 {
			_, err := m.MeanLoss(st, obj.from) // its error names the range
			return nil, err
		}
		var v float64
		var ok bool
		if v, ok, err = tp.lossBackward(gb, obj.from, dFinal, dU, dUacc); err != nil {
			return nil, err
		}
		if !ok { // the backend gives no losses with the gradient
			if v, err = m.MeanLoss(st, obj.from); err != nil {
				return nil, err
			}
		}
		g.Value = v
	default:
		return nil, fmt.Errorf("grad: no objective")
	}
	h := opt.Hooks
	act := func(name string, mat backend.Mat, shape ...int) *Act {
		return &Act{Name: name, M: mat, Shape: shape, B: B, T: T, BE: be}
	}
	if err := h.at(act("ln_final.hook_normalized", dFinal, B, T, C)); err != nil {
		return nil, err
	}
	// 2. ln_final.
	dR := backend.Whole(bb.dr)
	dw, err := pg.get(names.FinalLNW)
	if err != nil {
		return nil, err
	}
	db, err := pg.get(names.FinalLNB)
	if err != nil {
		return nil, err
	}
	if err := gb.LayerNormBackward(dR, dFinal, backend.Whole(tp.resid[cfg.Layers]), m.lnfW, float32(cfg.LNEps), dw, db, false); err != nil {
		return nil, err
	}
	if opt.Receiver != nil {
		r := graph.Node{Kind: graph.Logits}
		dst, err := opt.dst(r, dR)
		if err != nil {
			return nil, err
		}
		if dst != dR {
			if err := be.Copy(dst, dR); err != nil {
				return nil, err
			}
		}
		if err := opt.Receiver(r, dst); err != nil {
			return nil, err
		}
	}
	// 3. Blocks in reverse.
	for l := cfg.Layers - 1; l >= 0; l-- {
		if err := h.at(act(fmt.Sprintf("blocks.%d.hook_resid_post", l), dR, B, T, C)); err != nil {
			return nil, err
		}
		if err := tp.blockBackward(gb, l, bb, pg, opt); err != nil {
			return nil, err
		}
		if err := h.at(act(fmt.Sprintf("blocks.%d.hook_resid_pre", l), dR, B, T, C)); err != nil {
			return nil, err
		}
	}
	// 4. Embeddings (hook_embed, and hook_pos_embed where the family has one).
	for _, n := range cfg.TopHooks() {
		if err := h.at(act(n, dR, B, T, C)); err != nil {
			return nil, err
		}
	}
	if pg != nil {
		dwte, err := pg.get(names.Embed)
		if err != nil {
			return nil, err
		}
		var dwpe backend.Mat // none without a learned position embedding
		if cfg.Pos == arch.PosLearned {
			t, err := pg.get(names.PosEmbed)
			if err != nil {
				return nil, err
			}
			dwpe = backend.Whole(t)
		}
		if err := gb.EmbedBackward(backend.Whole(dwte), dwpe, dR, tp.Tokens, B, T); err != nil {
			return nil, err
		}
		g.Params = map[string]*HostTensor{}
		for name, t := range pg.t {
			data, err := pg.host(name, t)
			if err != nil {
				return nil, err
			}
			g.Params[name] = &HostTensor{Shape: append([]int(nil), t.Shape()...), Data: data}
		}
	}
	return g, nil
}

// lossBackward writes dM/d ln_final output for the mean next-token loss
// into dFinal and writes (adds, when acc) the unembedding's gradient into
// dU (when not nil), a chunk of logits at a time. Where the backend is a
// backend.XentLoss it also returns the mean loss (ok), from the same logits.
func (tp *Tape) lossBackward(gb backend.Grad, from int, dFinal backend.Mat, dU backend.Tensor, acc bool) (mean float64, ok bool, err error) {
	m, be := tp.m, tp.m.BE
	B, T, V := tp.B, tp.T, m.Cfg.Vocab
	R := B * T
	n := B * (T - 1 - from)
	targets := make([]int32, R)
	for i := range targets {
		t := i % T
		targets[i] = -1
		if t >= from && t < T-1 {
			targets[i] = tp.Tokens[i+1]
		}
	}
	// At most 8M logits (32 MB) at a time: each chunk reads and writes the
	// whole [V, C] unembedding gradient once, so fewer, larger chunks.
	chunk := max(1, min(R, (1<<23)/V))
	xl, ok := be.(backend.XentLoss)
	var losses []float64
	if ok {
		losses = make([]float64, chunk)
	}
	buf, err := be.New(chunk, V)
	if err != nil {
		return 0, false, err
	}
	defer be.Free(buf)
	final := backend.Whole(tp.final)
	for r0 := 0; r0 < R; r0 += chunk {
		rows := min(chunk, R-r0)
		lg := backend.Mat{T: buf, Rows: rows, Cols: V, Stride: V}
		fin := final.RowSlice(r0, rows)
		if err := be.MatMul(lg, fin, m.unembed, true, nil, false); err != nil {
			return 0, false, err
		}
		if ok {
			err = xl.SoftmaxXentBackwardLoss(lg, targets[r0:r0+rows], 1/float32(n), losses[:rows])
			for i, l := range losses[:rows] {
				if targets[r0+i] >= 0 {
					mean += l
				}
			}
		} else {
			err = gb.SoftmaxXentBackward(lg, targets[r0:r0+rows], 1/float32(n))
		}
		if err != nil {
			return 0, false, err
		}
		if err := be.MatMul(dFinal.RowSlice(r0, rows), lg, m.unembed, false, nil, false); err != nil {
			return 0, false, err
		}
		if dU != nil {
			if err := gb.MatMulTN(backend.Whole(dU), lg, fin, acc || r0 > 0); err != nil {
				return 0, false, err
			}
		}
	}
	return mean / float64(n), ok, nil
}

// linGrad adds the gradients of y = x @ op(W) + b for dy into the named
// parameters (W in the checkpoint layout: [out,in] when l.Trans).
func linGrad(gb backend.Grad, pg *paramGrads, l lin, wName, bName string, x, dy backend.Mat) error {
	if pg == nil {
		return nil
	}
	dw, err := pg.get(wName)
	if err != nil {
		return err
	}
	acc := !pg.first(wName)
	if l.Trans { // dW [out,in] = dy^T x
		err = gb.MatMulTN(backend.Whole(dw), dy, x, acc)
	} else { // dW [in,out] = x^T dy
		err = gb.MatMulTN(backend.Whole(dw), x, dy, acc)
	}
	if err != nil || bName == "" {
		return err
	}
	db, err := pg.get(bName)
	if err != nil {
		return err
	}
	return gb.ColSum(db, dy, !pg.first(bName))
}

// linBack: dx (+)= dy @ op(W)^T.
func (m *Model) linBack(dx, dy backend.Mat, l lin, accumulate bool) error {
	return m.BE.MatMul(dx, dy, l.W, !l.Trans, nil, accumulate)
}

// headLin restricts a q/k/v projection to head h's HS outputs (block order:
// for GPT-NeoX, the rows perHeadQKV put in place).
func headLin(l lin, h, HS int) lin {
	if l.Trans {
		return lin{W: l.W.RowSlice(h*HS, HS), Trans: true}
	}
	return lin{W: l.W.ColSlice(h*HS, HS)}
}

// blockBackward takes block l's kept activations, or recomputes them from
// its saved input, and turns bb.dr = dM/d resid_post into dM/d resid_pre,
// emitting hook gradients, receiver gradients and parameter gradients on
// the way.
func (tp *Tape) blockBackward(gb backend.Grad, l int, bb *blockBufs, pg *paramGrads, opt BackwardOptions) error {
	W := func(t backend.Tensor) backend.Mat {
		if t == nil { // mid of a parallel block
			return backend.Mat{}
		}
		return backend.Whole(t)
	}
	in := W(tp.resid[l])
	acts := &blockActs{bb.x1, bb.qkv, bb.z, bb.mid, bb.x2, bb.hpre, bb.hpost}
	if tp.kept != nil {
		acts = tp.kept[l]
	}
	X1, QKV, Z, Mid, X2, Hpre, Hpost := W(acts.x1), W(acts.qkv), W(acts.z), W(acts.mid), W(acts.x2), W(acts.hpre), W(acts.hpost)
	if tp.kept == nil {
		if err := tp.recompute(l, in, X1, QKV, Z, Mid, X2, Hpre, Hpost); err != nil {
			return err
		}
	}
	return tp.blockGrad(gb, l, in, X1, QKV, Z, Mid, X2, Hpre, Hpost, bb, pg, opt)
}

// recompute is block() of run.go without hooks, keeping the activations
// (q and k after rotary; Mid unused by a parallel block).
func (tp *Tape) recompute(l int, in, X1, QKV, Z, Mid, X2, Hpre, Hpost backend.Mat) error {
	m, be, cfg := tp.m, tp.m.BE, tp.m.Cfg
	B, T, C, NH, HS := tp.B, tp.T, cfg.DModel, cfg.Heads, cfg.DHead
	ly := &m.layers[l]
	eps := float32(cfg.LNEps)
	Q, K, V := QKV.ColSlice(0, C), QKV.ColSlice(C, C), QKV.ColSlice(2*C, C)
	ap := backend.AttnParams{B: B, T: T, NH: NH, HS: HS, Window: cfg.LayerWindow(l), Scale: float32(cfg.AttnScale)}
	if err := be.LayerNorm(X1, in, ly.ln1W, ly.ln1B, eps); err != nil {
		return err
	}
	if ly.qkv != nil {
		if err := m.linear(QKV, X1, *ly.qkv); err != nil {
			return err
		}
	} else {
		for _, p := range []struct {
			out backend.Mat
			w   lin
		}{{Q, ly.q}, {K, ly.k}, {V, ly.v}} {
			if err := m.linear(p.out, X1, p.w); err != nil {
				return err
			}
		}
	}
	if m.rot != nil {
		rp := backend.RotaryParams{B: B, T: T, NH: NH, HS: HS, Dims: cfg.RotaryDims}
		for _, x := range []backend.Mat{Q, K} {
			if err := be.Rotary(x, m.rot, rp); err != nil {
				return err
			}
		}
	}
	if err := be.Attention(Z, Q, K, V, ap, nil, nil); err != nil {
		return err
	}
	ln2In := in
	if !cfg.Parallel {
		if err := m.linear(Mid, Z, ly.o); err != nil {
			return err
		}
		if err := be.Add(Mid, Mid, in); err != nil {
			return err
		}
		ln2In = Mid
	}
	if err := be.LayerNorm(X2, ln2In, ly.ln2W, ly.ln2B, eps); err != nil {
		return err
	}
	if err := m.linear(Hpre, X2, ly.fc); err != nil {
		return err
	}
	if err := be.Copy(Hpost, Hpre); err != nil {
		return err
	}
	if cfg.Act == arch.GELUErf {
		return be.GELUErf(Hpost)
	}
	return be.GELUNew(Hpost)
}

// blockGrad turns bb.dr = dM/d resid_post of block l into dM/d resid_pre
// given the block's activations.
func (tp *Tape) blockGrad(gb backend.Grad, l int, in, X1, QKV, Z, Mid, X2, Hpre, Hpost backend.Mat, bb *blockBufs, pg *paramGrads, opt BackwardOptions) error {
	m, be, cfg := tp.m, tp.m.BE, tp.m.Cfg
	B, T, C, NH, HS, F := tp.B, tp.T, cfg.DModel, cfg.Heads, cfg.DHead, cfg.DMLP
	ly := &m.layers[l]
	eps := float32(cfg.LNEps)
	W := backend.Whole
	Q, K, V := QKV.ColSlice(0, C), QKV.ColSlice(C, C), QKV.ColSlice(2*C, C)
	dR, dX, dQKV, dZ, dH, tmp, tmpX := W(bb.dr), W(bb.dx), W(bb.dqkv), W(bb.dz), W(bb.dh), W(bb.tmp), W(bb.tmpX)
	dQ, dK, dV := dQKV.ColSlice(0, C), dQKV.ColSlice(C, C), dQKV.ColSlice(2*C, C)
	ap := backend.AttnParams{B: B, T: T, NH: NH, HS: HS, Window: cfg.LayerWindow(l), Scale: float32(cfg.AttnScale)}
	name := func(s string) string { return fmt.Sprintf("blocks.%d.%s", l, s) }
	spec := cfg.Spec
	n := spec.Names
	pn := func(role string) string { return spec.LayerName(l, role) }
	h := opt.Hooks
	at := func(n string, mat backend.Mat, shape ...int) error {
		return h.at(&Act{Name: name(n), M: mat, Shape: shape, B: B, T: T, BE: be})
	}

	// MLP backward. dR = dM/d resid_post = dM/d mlp_out.
	if err := at("hook_mlp_out", dR, B, T, C); err != nil {
		return err
	}
	if err := linGrad(gb, pg, ly.proj, pn(n.Proj), pn(n.ProjBias), Hpost, dR); err != nil {
		return err
	}
	if err := m.linBack(dH, dR, ly.proj, false); err != nil {
		return err
	}
	if err := at("mlp.hook_post", dH, B, T, F); err != nil {
		return err
	}
	var err error
	if cfg.Act == arch.GELUErf {
		err = gb.GELUErfBackward(dH, dH, Hpre)
	} else {
		err = gb.GELUNewBackward(dH, dH, Hpre)
	}
	if err != nil {
		return err
	}
	if err := at("mlp.hook_pre", dH, B, T, F); err != nil {
		return err
	}
	if err := linGrad(gb, pg, ly.fc, pn(n.FC), pn(n.FCBias), X2, dH); err != nil {
		return err
	}
	if err := m.linBack(dX, dH, ly.fc, false); err != nil {
		return err
	}
	if err := at("ln2.hook_normalized", dX, B, T, C); err != nil {
		return err
	}
	dw, err := pg.get(pn(n.LN2W))
	if err != nil {
		return err
	}
	db, err := pg.get(pn(n.LN2B))
	if err != nil {
		return err
	}
	dst, err := opt.dst(graph.Node{Kind: graph.MLP, Layer: l}, tmp)
	if err != nil {
		return err
	}
	ln2In := Mid // the MLP reads the residual after attention, or (parallel) the block input
	if cfg.Parallel {
		ln2In = in
	}
	if err := gb.LayerNormBackward(dst, dX, ln2In, ly.ln2W, eps, dw, db, false); err != nil {
		return err
	}
	if opt.Receiver != nil {
		if err := opt.Receiver(graph.Node{Kind: graph.MLP, Layer: l}, dst); err != nil {
			return err
		}
	}
	if cfg.Parallel {
		// d attn_out is d resid_post itself; ln_2's part of d resid_pre
		// waits in dpar until attention's backward is done with dR.
		if err := be.Copy(W(bb.dpar), dst); err != nil {
			return err
		}
	} else {
		if err := be.Add(dR, dR, dst); err != nil {
			return err
		}
		if err := at("hook_resid_mid", dR, B, T, C); err != nil {
			return err
		}
	}
	if err := at("hook_attn_out", dR, B, T, C); err != nil {
		return err
	}

	// Attention backward.
	if err := linGrad(gb, pg, ly.o, pn(n.O), pn(n.OBias), Z, dR); err != nil {
		return err
	}
	if err := m.linBack(dZ, dR, ly.o, false); err != nil {
		return err
	}
	if err := at("attn.hook_z", dZ, B, T, NH, HS); err != nil {
		return err
	}
	if err := gb.AttentionBackward(dQ, dK, dV, dZ, Q, K, V, ap); err != nil {
		return err
	}
	if cfg.Pos == arch.PosRotary {
		// dQ, dK are gradients of the rotated q, k; the inverse rotation
		// gives those of q, k before it.
		rp := backend.RotaryParams{B: B, T: T, NH: NH, HS: HS, Dims: cfg.RotaryDims}
		for _, p := range []struct {
			n string
			m backend.Mat
		}{{"attn.hook_rot_q", dQ}, {"attn.hook_rot_k", dK}} {
			if err := at(p.n, p.m, B, T, NH, HS); err != nil {
				return err
			}
			if bb.rotInv != nil {
				if err := be.Rotary(p.m, bb.rotInv, rp); err != nil {
					return err
				}
			}
		}
	}
	for _, p := range []struct {
		n string
		m backend.Mat
	}{{"attn.hook_q", dQ}, {"attn.hook_k", dK}, {"attn.hook_v", dV}} {
		if err := at(p.n, p.m, B, T, NH, HS); err != nil {
			return err
		}
	}
	projs := []struct {
		d backend.Mat
		w lin
		n string
		c byte
	}{{dQ, ly.q, n.Q, 'q'}, {dK, ly.k, n.K, 'k'}, {dV, ly.v, n.V, 'v'}}
	if ly.qkv != nil { // fused (block order; see paramGrads.host for the per-head layout)
		if err := linGrad(gb, pg, *ly.qkv, pn(n.QKV), pn(n.QKVBias), X1, dQKV); err != nil {
			return err
		}
	} else {
		for _, p := range projs {
			if err := linGrad(gb, pg, p.w, pn(p.n), "", X1, p.d); err != nil {
				return err
			}
		}
	}
	// dX = dM/d ln_1 output, the sum over q, k, v of dP @ W_P^T: the
	// receivers' products are its 3*NH parts (head h's columns of dP times
	// its rows of W_P^T), so where they are made anyway and the backend sums
	// them as it goes (backend.LNStats), they give dX without the three
	// products of the whole (7 GFLOP of EAP's 100 on GPT-Neo-125M at 8 x 20).
	summed := false
	if opt.Receiver != nil {
		// 3*NH backward passes through ln_1 of the same input: its row
		// statistics once where the backend can keep them (backend.LNStats).
		lnBack := func(dst, d backend.Mat, first bool) error {
			return gb.LayerNormBackward(dst, d, in, ly.ln1W, eps, nil, nil, false)
		}
		ls, ok := be.(backend.LNStats)
		if ok {
			st, err := ls.LayerNormRowStats(in, eps)
			if err != nil {
				return err
			}
			defer be.Free(st)
			lnBack = func(dst, d backend.Mat, first bool) error {
				sum := dX // the first product is written into dX itself
				if first {
					sum = backend.Mat{}
				}
				return ls.LayerNormBackwardStats(dst, d, in, st, ly.ln1W, false, sum)
			}
			summed = true
		}
		for hd := 0; hd < NH; hd++ {
			for i, p := range projs {
				first := hd == 0 && i == 0
				prod := tmpX
				if summed && first {
					prod = dX
				}
				if err := m.linBack(prod, p.d.ColSlice(hd*HS, HS), headLin(p.w, hd, HS), false); err != nil {
					return err
				}
				r := graph.Node{Kind: graph.Head, Layer: l, Head: hd, Input: p.c}
				dst, err := opt.dst(r, tmp)
				if err != nil {
					return err
				}
				if err := lnBack(dst, prod, first); err != nil {
					return err
				}
				if err := opt.Receiver(r, dst); err != nil {
					return err
				}
			}
		}
	}
	if !summed {
		for i, p := range projs {
			if err := m.linBack(dX, p.d, p.w, i > 0); err != nil {
				return err
			}
		}
	}
	if err := at("ln1.hook_normalized", dX, B, T, C); err != nil {
		return err
	}
	if cfg.Parallel {
		if err := be.Add(dR, dR, W(bb.dpar)); err != nil {
			return err
		}
	}
	if dw, err = pg.get(pn(n.LN1W)); err != nil {
		return err
	}
	if db, err = pg.get(pn(n.LN1B)); err != nil {
		return err
	}
	return gb.LayerNormBackward(dR, dX, in, ly.ln1W, eps, dw, db, true)
}
