package forward

import (
	"fmt"

	"github.com/neoscope/neoscope/runtime/arch"
	"github.com/neoscope/neoscope/runtime/backend"
)

// State is a forward pass in progress over B rows of T tokens: the residual
// stream [B*T, C] and the scratch buffers the blocks reuse.
type State struct {
	B, T                                   int
	Tokens                                 []int32 // [B*T]
	capB                                   int     // rows the buffers hold: B at Start (see Narrow)
	allTokens                              []int32
	Resid                                  backend.Tensor
	Final                                  backend.Tensor // ln_final output [B*T, C], after FinalNorm
	m                                      *Model
	x, q, k, v, qkv, z, attnOut, mlpOut, h backend.Tensor
	result                                 backend.Tensor // attn.hook_result [B*T, NH*C], only when wanted
	pattern, scores                        backend.Tensor
}

// Close frees the state's buffers.
func (s *State) Close() {
	for _, t := range []backend.Tensor{s.Resid, s.Final, s.x, s.q, s.k, s.v, s.qkv, s.z, s.attnOut, s.mlpOut, s.h, s.pattern, s.scores, s.result} {
		if t != nil {
			s.m.BE.Free(t)
		}
	}
	*s = State{m: s.m}
}

// CheckTokens validates a [B,T] batch against the model: equal lengths,
// T within the context, ids within the vocabulary.
func (m *Model) CheckTokens(rows [][]int32) (flat []int32, B, T int, err error) {
	B = len(rows)
	if B == 0 {
		return nil, 0, 0, fmt.Errorf("tokens: empty batch")
	}
	T = len(rows[0])
	if T == 0 {
		return nil, 0, 0, fmt.Errorf("tokens: row 0 is empty")
	}
	if T > m.Cfg.Context {
		return nil, 0, 0, fmt.Errorf("tokens: sequences of %d tokens exceed the model's context of %d", T, m.Cfg.Context)
	}
	flat = make([]int32, 0, B*T)
	for b, r := range rows {
		if len(r) != T {
			return nil, 0, 0, fmt.Errorf("tokens: row %d has %d tokens, row 0 has %d (rows must have equal length)", b, len(r), T)
		}
		for t, id := range r {
			if id < 0 || int(id) >= m.Cfg.Vocab {
				return nil, 0, 0, fmt.Errorf("tokens: row %d position %d: id %d is outside the vocabulary [0, %d)", b, t, id, m.Cfg.Vocab)
			}
		}
		flat = append(flat, r...)
	}
	return flat, B, T, nil
}

// Start embeds a validated [B*T] batch (hook_embed, hook_pos_embed) and
// returns the state at the input of block 0.
func (m *Model) Start(tokens []int32, B, T int, h *Hooks) (*State, error) {
	if len(tokens) != B*T || T > m.Cfg.Context || T < 1 {
		return nil, fmt.Errorf("tokens: %d ids for B=%d T=%d (context %d)", len(tokens), B, T, m.Cfg.Context)
	}
	for i, id := range tokens {
		if id < 0 || int(id) >= m.Cfg.Vocab {
			return nil, fmt.Errorf("tokens: row %d position %d: id %d is outside the vocabulary [0, %d)", i/T, i%T, id, m.Cfg.Vocab)
		}
	}
	be, C := m.BE, m.Cfg.DModel
	s := &State{B: B, T: T, Tokens: tokens, capB: B, allTokens: tokens, m: m}
	var err error
	if s.Resid, err = be.New(B*T, C); err != nil {
		return nil, fmt.Errorf("forward: allocate the residual stream: %w", err)
	}
	wte, wpe := backend.Whole(m.wte), backend.Mat{} // an empty wpe view: no position embedding
	if m.wpe != nil {
		wpe = backend.Whole(m.wpe)
	}
	if !h.wants("hook_embed") && !h.wants("hook_pos_embed") || m.wpe == nil {
		if err := be.Embed(s.Resid, wte, wpe, tokens, B, T); err != nil {
			s.Close()
			return nil, fmt.Errorf("forward: embed: %w", err)
		}
		if m.wpe == nil {
			if err := h.at(&Act{Name: "hook_embed", M: backend.Whole(s.Resid), Shape: []int{B, T, C}, B: B, T: T, BE: be}); err != nil {
				s.Close()
				return nil, err
			}
		}
		return s, nil
	}
	// Hooked: embed and positions separately, then sum.
	pos := make([]int32, B*T)
	for i := range pos {
		pos[i] = int32(i % T)
	}
	e, err := be.New(B*T, C)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("forward: embed: %w", err)
	}
	defer be.Free(e)
	if err := be.Embed(e, wte, backend.Mat{}, tokens, B, T); err != nil {
		s.Close()
		return nil, fmt.Errorf("forward: embed: %w", err)
	}
	if err := be.Embed(s.Resid, wpe, backend.Mat{}, pos, B, T); err != nil {
		s.Close()
		return nil, fmt.Errorf("forward: position embedding: %w", err)
	}
	for _, a := range []*Act{
		{Name: "hook_embed", M: backend.Whole(e), Shape: []int{B, T, C}, B: B, T: T, BE: be},
		{Name: "hook_pos_embed", M: backend.Whole(s.Resid), Shape: []int{B, T, C}, B: B, T: T, BE: be},
	} {
		if err := h.at(a); err != nil {
			s.Close()
			return nil, err
		}
	}
	if err := be.Add(backend.Whole(s.Resid), backend.Whole(s.Resid), backend.Whole(e)); err != nil {
		s.Close()
		return nil, fmt.Errorf("forward: embed: add positions: %w", err)
	}
	return s, nil
}

// Narrow makes the blocks, FinalNorm, the logits and the metrics that follow
// work on the first b rows of the batch only (1 <= b <= the batch Start was
// given); the other rows keep what they hold until a later Narrow widens
// the state again. The sweep engine sizes a state for more configurations
// than some passes use and skips the unused rows this way. Hook points see
// the narrowed rows.
func (s *State) Narrow(b int) error {
	if b < 1 || b > s.capB {
		return fmt.Errorf("forward: narrow to %d rows of a state started with %d", b, s.capB)
	}
	s.B, s.Tokens = b, s.allTokens[:b*s.T]
	return nil
}

// mat views the first B*T rows of a state buffer of cols columns.
func (s *State) mat(t backend.Tensor, cols int) backend.Mat {
	return backend.Mat{T: t, Rows: s.B * s.T, Cols: cols, Stride: cols}
}

// exact is buf for buffers the backend wants whole (attention patterns,
// [B,NH,T,T]): one of another size, from before a Narrow, is replaced.
func (s *State) exact(p *backend.Tensor, shape ...int) (backend.Tensor, error) {
	n := 1
	for _, d := range shape {
		n *= d
	}
	if *p != nil && (*p).Len() != n {
		s.m.BE.Free(*p)
		*p = nil
	}
	return s.buf(p, shape...)
}

// buf returns the state's buffer *p, allocating it with shape on first use
// (shapes are given for the full batch, capB rows).
func (s *State) buf(p *backend.Tensor, shape ...int) (backend.Tensor, error) {
	if *p == nil {
		t, err := s.m.BE.New(shape...)
		if err != nil {
			return nil, err
		}
		*p = t
	}
	return *p, nil
}

func (m *Model) linear(out backend.Mat, x backend.Mat, l lin) error {
	return m.BE.MatMul(out, x, l.W, l.Trans, l.B, false)
}

// Blocks runs blocks [from, to) on the state's residual stream.
func (m *Model) Blocks(s *State, from, to int, h *Hooks) error {
	if from < 0 || to > m.Cfg.Layers || from > to {
		return fmt.Errorf("forward: blocks [%d,%d) outside 0..%d", from, to, m.Cfg.Layers)
	}
	for l := from; l < to; l++ {
		if err := m.block(s, l, h, BlockOpts{}); err != nil {
			return err
		}
	}
	return nil
}

// BlockOpts runs one block with what its caller knows and the recipe does
// not (the sweep engine, runtime/sweep); the zero value is the plain block.
type BlockOpts struct {
	// AttnOut, when set, computes the block's attention output for every
	// row of the state into ao [s.B*s.T, C] instead of the recipe: ln1, q,
	// k, v, the attention and W_O are skipped and their hook points (ln1.*
	// to attn.hook_result) do not fire. hook_attn_out then runs on ao.
	AttnOut func(ao backend.Mat) error
	// From > 0 computes the block's output at positions From..T-1 of each
	// row only: keys and values are still computed at every position, and
	// everything after hook_z (W_O, the residual adds, ln2, the MLP) at
	// those T-From positions, on compact copies. What a metric that reads
	// only those positions needs from the last block. Hook points from
	// attn.hook_result on see [B, T-From, ...] (Act.From says so); at
	// positions < From the residual stream keeps the block's input.
	From int
}

// Block runs block l on the state with o (see BlockOpts).
func (m *Model) Block(s *State, l int, h *Hooks, o BlockOpts) error {
	if l < 0 || l >= m.Cfg.Layers {
		return fmt.Errorf("forward: block %d outside 0..%d", l, m.Cfg.Layers-1)
	}
	if o.From < 0 || o.From >= s.T {
		return fmt.Errorf("forward: layer %d: output from position %d of %d", l, o.From, s.T)
	}
	return m.block(s, l, h, o)
}

// Attention runs block l's attention on the state up to hook_attn_out (ln1,
// q, k, v, the attention, W_O, with their hooks) and leaves the residual
// stream as it was. z (hook_z) and ao (hook_attn_out), [s.B*s.T, C], view
// state buffers that the next block run on s overwrites.
func (m *Model) Attention(s *State, l int, h *Hooks) (z, ao backend.Mat, err error) {
	if l < 0 || l >= m.Cfg.Layers {
		return z, ao, fmt.Errorf("forward: block %d outside 0..%d", l, m.Cfg.Layers-1)
	}
	if z, err = m.attention(s, l, h); err != nil {
		return z, ao, err
	}
	aot, err := s.buf(&s.attnOut, s.capB*s.T, m.Cfg.DModel)
	if err != nil {
		return z, ao, fmt.Errorf("forward: layer %d: allocate buffers: %w", l, err)
	}
	ao = s.mat(aot, m.Cfg.DModel)
	if err := m.attnOut(s, l, h, ao, z, s.B, s.T, 0); err != nil {
		return z, ao, err
	}
	return z, ao, h.at(&Act{Name: fmt.Sprintf("blocks.%d.hook_attn_out", l), M: ao, Shape: []int{s.B, s.T, m.Cfg.DModel}, B: s.B, T: s.T, BE: m.BE})
}

// tailOf views positions from..T-1 of each of the B rows of x [B*T, cols]
// (rows contiguous) as one [B, (T-from)*cols] matrix, for copies and adds.
func tailOf(x backend.Mat, B, T, from int) backend.Mat {
	return backend.Mat{T: x.T, Off: x.Off + from*x.Stride, Rows: B, Cols: (T - from) * x.Cols, Stride: T * x.Stride}
}

// block runs block l following the recipe in m.Cfg (arch): attention with
// the family's scale and window (and rotary q, k where the family has it),
// then the MLP with the family's GELU, on a sequential residual
// (x + attn(ln1(x)), then + mlp(ln2(.))) or a parallel one
// (x + attn(ln1(x)) + mlp(ln2(x))). Errors name the layer and the op.
func (m *Model) block(s *State, l int, h *Hooks, o BlockOpts) error {
	be, cfg := m.BE, m.Cfg
	B, T, C, F := s.B, s.T, cfg.DModel, cfg.DMLP
	R := s.capB * T // buffer rows; views cover the first B*T
	ly := &m.layers[l]
	name := func(suffix string) string { return fmt.Sprintf("blocks.%d.%s", l, suffix) }
	fail := func(op string, err error) error { return fmt.Errorf("forward: layer %d: %s: %w", l, op, err) }
	var err error
	var x, z, ao, mo, hh backend.Tensor
	for _, b := range []struct {
		p    *backend.Tensor
		t    *backend.Tensor
		cols int
	}{{&s.x, &x, C}, {&s.z, &z, C}, {&s.attnOut, &ao, C}, {&s.mlpOut, &mo, C}, {&s.h, &hh, F}} {
		if *b.t, err = s.buf(b.p, R, b.cols); err != nil {
			return fail("allocate buffers", err)
		}
	}
	resid := s.mat(s.Resid, C)
	if err := h.at(&Act{Name: name("hook_resid_pre"), M: resid, Shape: []int{B, T, C}, B: B, T: T, BE: be}); err != nil {
		return err
	}
	var Z backend.Mat // attn.hook_z, [B*T, C]
	AO := s.mat(ao, C)
	if o.AttnOut == nil {
		if Z, err = m.attention(s, l, h); err != nil {
			return err
		}
	} else if err := o.AttnOut(AO); err != nil {
		return fail("given attention output", err)
	}
	// From here on the block runs on positions From..T-1 of each row: all
	// of them in the state's buffers, or (From > 0) compact copies of the
	// tails of z or the attention output and of the residual stream.
	Tn := T - o.From
	act := func(n string, mat backend.Mat, shape ...int) *Act {
		return &Act{Name: name(n), M: mat, Shape: shape, B: B, T: Tn, From: o.From, BE: be}
	}
	res := resid
	if o.From > 0 {
		compact := func(t backend.Tensor) backend.Mat { return s.mat(t, C).RowSlice(0, B*Tn) }
		tail := func(m backend.Mat, T int) backend.Mat { return tailOf(m, B, T, T-Tn) }
		if o.AttnOut == nil {
			// z's tail goes to x (read by q, k, v only; ln2 overwrites it
			// once W_O has read z), the residual's to z.
			zc := compact(x)
			if err := be.Copy(tail(zc, Tn), tail(Z, T)); err != nil {
				return fail("positions from "+fmt.Sprint(o.From), err)
			}
			Z, AO, res = zc, compact(ao), compact(z)
		} else {
			// The attention output's tail goes to z (unused: no attention
			// ran), the residual's to the attention output's buffer.
			aoc := compact(z)
			if err := be.Copy(tail(aoc, Tn), tail(AO, T)); err != nil {
				return fail("positions from "+fmt.Sprint(o.From), err)
			}
			AO, res = aoc, compact(ao)
		}
		if err := be.Copy(tail(res, Tn), tail(resid, T)); err != nil {
			return fail("positions from "+fmt.Sprint(o.From), err)
		}
	}
	if o.AttnOut == nil {
		if err := m.attnOut(s, l, h, AO, Z, B, Tn, o.From); err != nil { // attn.hook_result when wanted
			return err
		}
	}
	if err := h.at(act("hook_attn_out", AO, B, Tn, C)); err != nil {
		return err
	}
	if !cfg.Parallel {
		if err := be.Add(res, res, AO); err != nil {
			return fail("residual add (attention)", err)
		}
		if err := h.at(act("hook_resid_mid", res, B, Tn, C)); err != nil {
			return err
		}
	}
	// MLP: on the residual after attention, or (parallel) on the block input.
	X := s.mat(x, C).RowSlice(0, B*Tn)
	if err := be.LayerNorm(X, res, ly.ln2W, ly.ln2B, float32(cfg.LNEps)); err != nil {
		return fail("ln2", err)
	}
	if err := m.observeScale(h, name("ln2.hook_scale"), res, B, Tn); err != nil {
		return err
	}
	if err := h.at(act("ln2.hook_normalized", X, B, Tn, C)); err != nil {
		return err
	}
	H := s.mat(hh, F).RowSlice(0, B*Tn)
	if err := m.linear(H, X, ly.fc); err != nil {
		return fail("mlp input projection", err)
	}
	if err := h.at(act("mlp.hook_pre", H, B, Tn, F)); err != nil {
		return err
	}
	if cfg.Act == arch.GELUErf {
		err = be.GELUErf(H)
	} else {
		err = be.GELUNew(H)
	}
	if err != nil {
		return fail("mlp activation", err)
	}
	if err := h.at(act("mlp.hook_post", H, B, Tn, F)); err != nil {
		return err
	}
	MO := s.mat(mo, C).RowSlice(0, B*Tn)
	if err := m.linear(MO, H, ly.proj); err != nil {
		return fail("mlp output projection", err)
	}
	if err := h.at(act("hook_mlp_out", MO, B, Tn, C)); err != nil {
		return err
	}
	if cfg.Parallel {
		if err := be.Add(res, res, AO); err != nil {
			return fail("residual add (attention)", err)
		}
	}
	if err := be.Add(res, res, MO); err != nil {
		return fail("residual add (mlp)", err)
	}
	if err := h.at(act("hook_resid_post", res, B, Tn, C)); err != nil {
		return err
	}
	if o.From > 0 {
		if err := be.Copy(tailOf(resid, B, T, o.From), tailOf(res, B, Tn, 0)); err != nil {
			return fail("positions from "+fmt.Sprint(o.From), err)
		}
	}
	return nil
}

// attention runs block l from ln1 to hook_z on every row of the state and
// returns z [B*T, C] (a view of s.z).
func (m *Model) attention(s *State, l int, h *Hooks) (backend.Mat, error) {
	be, cfg := m.BE, m.Cfg
	B, T, C, NH, HS := s.B, s.T, cfg.DModel, cfg.Heads, cfg.DHead
	R := s.capB * T
	ly := &m.layers[l]
	name := func(suffix string) string { return fmt.Sprintf("blocks.%d.%s", l, suffix) }
	act := func(n string, mat backend.Mat, shape ...int) *Act {
		return &Act{Name: name(n), M: mat, Shape: shape, B: B, T: T, BE: be}
	}
	fail := func(op string, err error) error { return fmt.Errorf("forward: layer %d: %s: %w", l, op, err) }
	x, err := s.buf(&s.x, R, C)
	if err != nil {
		return backend.Mat{}, fail("allocate buffers", err)
	}
	z, err := s.buf(&s.z, R, C)
	if err != nil {
		return backend.Mat{}, fail("allocate buffers", err)
	}
	resid := s.mat(s.Resid, C)
	X := s.mat(x, C)
	if err := be.LayerNorm(X, resid, ly.ln1W, ly.ln1B, float32(cfg.LNEps)); err != nil {
		return backend.Mat{}, fail("ln1", err)
	}
	if err := m.observeScale(h, name("ln1.hook_scale"), resid, B, T); err != nil {
		return backend.Mat{}, err
	}
	if err := h.at(act("ln1.hook_normalized", X, B, T, C)); err != nil {
		return backend.Mat{}, err
	}
	var Q, K, V backend.Mat
	if ly.qkv != nil { // fused: one [R, 3C] product, q|k|v views
		qkv, err := s.buf(&s.qkv, R, 3*C)
		if err != nil {
			return backend.Mat{}, fail("allocate qkv", err)
		}
		all := s.mat(qkv, 3*C)
		if err := m.linear(all, X, *ly.qkv); err != nil {
			return backend.Mat{}, fail("qkv projection", err)
		}
		Q, K, V = all.ColSlice(0, C), all.ColSlice(C, C), all.ColSlice(2*C, C)
	} else {
		var q, k, v backend.Tensor
		for _, b := range []struct{ p, t *backend.Tensor }{{&s.q, &q}, {&s.k, &k}, {&s.v, &v}} {
			if *b.t, err = s.buf(b.p, R, C); err != nil {
				return backend.Mat{}, fail("allocate q/k/v", err)
			}
		}
		Q, K, V = s.mat(q, C), s.mat(k, C), s.mat(v, C)
		for _, p := range []struct {
			op  string
			out backend.Mat
			w   lin
		}{{"q projection", Q, ly.q}, {"k projection", K, ly.k}, {"v projection", V, ly.v}} {
			if err := m.linear(p.out, X, p.w); err != nil {
				return backend.Mat{}, fail(p.op, err)
			}
		}
	}
	for _, p := range []struct {
		n string
		m backend.Mat
	}{{"attn.hook_q", Q}, {"attn.hook_k", K}, {"attn.hook_v", V}} {
		if err := h.at(act(p.n, p.m, B, T, NH, HS)); err != nil {
			return backend.Mat{}, err
		}
	}
	if cfg.Pos == arch.PosRotary {
		rp := backend.RotaryParams{B: B, T: T, NH: NH, HS: HS, Dims: cfg.RotaryDims}
		for _, p := range []struct {
			n string
			m backend.Mat
		}{{"attn.hook_rot_q", Q}, {"attn.hook_rot_k", K}} {
			if err := be.Rotary(p.m, m.rot, rp); err != nil {
				return backend.Mat{}, fail("rotary embedding", err)
			}
			if err := h.at(act(p.n, p.m, B, T, NH, HS)); err != nil {
				return backend.Mat{}, err
			}
		}
	}
	ap := backend.AttnParams{B: B, T: T, NH: NH, HS: HS, Window: cfg.LayerWindow(l), Scale: float32(cfg.AttnScale)}
	Z := s.mat(z, C)
	wantScores, wantPattern := h.wants(name("attn.hook_attn_scores")), h.wants(name("attn.hook_pattern"))
	if wantScores || wantPattern {
		pat, err := s.exact(&s.pattern, B, NH, T, T)
		if err != nil {
			return backend.Mat{}, fail("allocate pattern", err)
		}
		var sc backend.Tensor
		if wantScores {
			if sc, err = s.exact(&s.scores, B, NH, T, T); err != nil {
				return backend.Mat{}, fail("allocate scores", err)
			}
		}
		if err := be.Attention(Z, Q, K, V, ap, pat, sc); err != nil {
			return backend.Mat{}, fail("attention", err)
		}
		if wantScores {
			a := act("attn.hook_attn_scores", backend.Mat{T: sc, Rows: B * NH * T, Cols: T, Stride: T}, B, NH, T, T)
			a.Tensor = sc
			// Edited scores are not fed back: replacing them is refused (replace the pattern).
			if err := observeOnlyAt(h, a.Name); err != nil {
				return backend.Mat{}, err
			}
			if err := h.at(a); err != nil {
				return backend.Mat{}, err
			}
		}
		a := act("attn.hook_pattern", backend.Mat{T: pat, Rows: B * NH * T, Cols: T, Stride: T}, B, NH, T, T)
		a.Tensor = pat
		if err := h.at(a); err != nil {
			return backend.Mat{}, err
		}
		if len(h.plan(name("attn.hook_pattern")).fns) > 0 {
			if err := be.AttnApply(Z, pat, V, ap); err != nil {
				return backend.Mat{}, fail("attention with the replaced pattern", err)
			}
		}
	} else if err := be.Attention(Z, Q, K, V, ap, nil, nil); err != nil {
		return backend.Mat{}, fail("attention", err)
	}
	if err := h.at(act("attn.hook_z", Z, B, T, NH, HS)); err != nil {
		return backend.Mat{}, err
	}
	return Z, nil
}

// FinalNorm applies ln_final to the residual stream into s.Final
// (ln_final.hook_normalized).
func (m *Model) FinalNorm(s *State, h *Hooks) error {
	C := m.Cfg.DModel
	F, err := s.buf(&s.Final, s.capB*s.T, C)
	if err != nil {
		return fmt.Errorf("forward: ln_final: %w", err)
	}
	if err := m.BE.LayerNorm(s.mat(F, C), s.mat(s.Resid, C), m.lnfW, m.lnfB, float32(m.Cfg.LNEps)); err != nil {
		return fmt.Errorf("forward: ln_final: %w", err)
	}
	if err := m.observeScale(h, "ln_final.hook_scale", s.mat(s.Resid, C), s.B, s.T); err != nil {
		return err
	}
	return h.at(&Act{Name: "ln_final.hook_normalized", M: s.mat(F, C), Shape: []int{s.B, s.T, m.Cfg.DModel}, B: s.B, T: s.T, BE: m.BE})
}

// LogitsTensor computes all logits [B*T, V] from s.Final on the backend (the
// `logits` hook point); the caller frees the tensor.
func (m *Model) LogitsTensor(s *State, h *Hooks) (backend.Tensor, error) {
	if s.Final == nil {
		return nil, fmt.Errorf("forward: logits before FinalNorm")
	}
	R, V := s.B*s.T, m.Cfg.Vocab
	newT := m.BE.New
	if u, ok := m.BE.(backend.Unzeroed); ok { // the product below writes every logit
		newT = u.NewUnzeroed
	}
	lt, err := newT(R, V)
	if err != nil {
		return nil, fmt.Errorf("forward: logits: %w", err)
	}
	L := backend.Whole(lt)
	if err := m.BE.MatMul(L, s.mat(s.Final, m.Cfg.DModel), m.unembed, true, nil, false); err != nil {
		m.BE.Free(lt)
		return nil, fmt.Errorf("forward: logits (unembedding): %w", err)
	}
	if err := h.at(&Act{Name: "logits", M: L, Shape: []int{s.B, s.T, V}, B: s.B, T: s.T, BE: m.BE}); err != nil {
		m.BE.Free(lt)
		return nil, err
	}
	return lt, nil
}

// Logits computes all logits [B,T,V] from s.Final and returns them on the host.
func (m *Model) Logits(s *State, h *Hooks) ([]float32, error) {
	lt, err := m.LogitsTensor(s, h)
	if err != nil {
		return nil, err
	}
	defer m.BE.Free(lt)
	out := make([]float32, lt.Len())
	if err := m.BE.Download(out, lt); err != nil {
		return nil, fmt.Errorf("forward: logits: download: %w", err)
	}
	return out, nil
}

// Run is the whole pass: embed, every block, ln_final, and (when withLogits)
// the logits [B,T,V] on the host. The returned state holds the final
// residual and s.Final; the caller closes it.
func (m *Model) Run(tokens []int32, B, T int, h *Hooks, withLogits bool) (*State, []float32, error) {
	if err := h.Validate(m); err != nil {
		return nil, nil, err
	}
	s, err := m.Start(tokens, B, T, h)
	if err != nil {
		return nil, nil, err
	}
	if err := m.Blocks(s, 0, m.Cfg.Layers, h); err != nil {
		s.Close()
		return nil, nil, err
	}
	if err := m.FinalNorm(s, h); err != nil {
		s.Close()
		return nil, nil, err
	}
	if !withLogits && !h.wants("logits") {
		return s, nil, nil
	}
	lg, err := m.Logits(s, h)
	if err != nil {
		s.Close()
		return nil, nil, err
	}
	return s, lg, nil
}
