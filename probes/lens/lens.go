package lens

import (
	"fmt"
	"math"
	"sort"

	"github.com/neoscope/neoscope/probes/embed"
	"github.com/neoscope/neoscope/runtime/backend"
	"github.com/neoscope/neoscope/runtime/forward"
)

// Options select the optional parts of Run.
type Options struct {
	// Positions (t, negative counts from the end: -1 = T-1) at which to report
	// the top-K lens predictions of every row and layer.
	Positions []int
	TopK      int
	// FinalBlock and Centered compute the two variants.
	FinalBlock, Centered bool
	// Progress, when set, is called with (done, total) steps.
	Progress func(done, total int)
}

// Pred is one predicted token and its lens probability.
type Pred struct {
	ID   int32   `json:"id"`
	Prob float64 `json:"prob"`
}

// TopK is the top predictions of every layer (0..L) at one row and position.
type TopK struct {
	Row, Pos int
	Layers   [][]Pred // [L+1][K]
}

// Result of Run. Slices indexed by layer; nil when not asked for.
type Result struct {
	Layers         int
	Loss           []float64 // [L+1] logit_lens_loss
	KL             []float64 // [L+1] logit_lens_kl
	FinalBlockLoss []float64 // [L]   logit_lens_final_block_loss
	LossCentered   []float64 // [L+1] logit_lens_loss_centered
	TopK           []TopK
}

// Capture is one forward pass with every layer's residual stream kept on the
// backend: Resid[l] = resid[l] [B*T,C], l = 0..L (Resid[L] is the state's own
// final residual). Close frees it.
type Capture struct {
	M      *forward.Model
	S      *forward.State
	Resid  []backend.Tensor
	Tokens []int32
	B, T   int
}

// Close frees the copies and the state.
func (c *Capture) Close() {
	for l, t := range c.Resid {
		if l < len(c.Resid)-1 && t != nil {
			c.M.BE.Free(t)
		}
	}
	if c.S != nil {
		c.S.Close()
	}
}

// NewCapture runs tokens [B*T] through m, keeping resid[0..L] on the backend.
func NewCapture(m *forward.Model, tokens []int32, B, T int) (*Capture, error) {
	L, C := m.Cfg.Layers, m.Cfg.DModel
	c := &Capture{M: m, Resid: make([]backend.Tensor, L+1), Tokens: tokens, B: B, T: T}
	h := (&forward.Hooks{}).Replace("blocks.*.hook_resid_pre", func(a *forward.Act) error {
		l := a.Layer()
		t, err := a.BE.New(B*T, C)
		if err != nil {
			return err
		}
		c.Resid[l] = t
		return a.BE.Copy(backend.Whole(t), a.M)
	})
	s, _, err := m.Run(tokens, B, T, h, false)
	if err != nil {
		c.Close()
		return nil, err
	}
	c.S = s
	c.Resid[L] = s.Resid
	return c, nil
}

// Host downloads resid[l] ([B*T*C]).
func (c *Capture) Host(l int) ([]float32, error) {
	out := make([]float32, c.Resid[l].Len())
	return out, c.M.BE.Download(out, c.Resid[l])
}

// nextRows are the rows and target ids of every next-token prediction.
func nextRows(tokens []int32, B, T int) (rows, idx []int32) {
	for b := 0; b < B; b++ {
		for t := 0; t < T-1; t++ {
			rows = append(rows, int32(b*T+t))
			idx = append(idx, tokens[b*T+t+1])
		}
	}
	return rows, idx
}

// lossOf is the mean next-token loss of logits x @ W_U^T, x [B*T,C] after ln_f.
func lossOf(m *forward.Model, x backend.Mat, rows, idx []int32) (float64, error) {
	lse := make([]float32, len(rows))
	g := make([]float32, len(rows))
	if err := m.BE.LogitStats(x, m.Unembed(), rows, idx, lse, g); err != nil {
		return 0, err
	}
	var s float64
	for i := range lse {
		s += float64(lse[i]) - float64(g[i])
	}
	return s / float64(len(rows)), nil
}

// maxChunkFloats bounds a [rows,V] logits chunk: 4M floats = 16 MB.
const maxChunkFloats = 1 << 22

// Scorer scores lens inputs (pre-ln_f residuals [B*T,C]) of one capture:
// the loss through LogitStats, the KL to the model's final distribution
// through chunked logits.
type Scorer struct {
	c         *Capture
	rows, idx []int32
	scratch   backend.Tensor // [B*T,C] LN_f output when the caller keeps none
	logits    backend.Tensor // [R,V] chunk
	R         int
}

// NewScorer allocates the scratch buffers for c.
func NewScorer(c *Capture) (*Scorer, error) {
	m := c.M
	N, C, V := c.B*c.T, m.Cfg.DModel, m.Cfg.Vocab
	sc := &Scorer{c: c}
	sc.rows, sc.idx = nextRows(c.Tokens, c.B, c.T)
	if len(sc.rows) == 0 {
		return nil, fmt.Errorf("lens: sequences of %d token have no next-token prediction (need T >= 2)", c.T)
	}
	sc.R = max(1, min(N, maxChunkFloats/V))
	var err error
	if sc.scratch, err = m.BE.New(N, C); err != nil {
		return nil, err
	}
	if sc.logits, err = m.BE.New(sc.R, V); err != nil {
		m.BE.Free(sc.scratch)
		return nil, err
	}
	return sc, nil
}

// Close frees the scratch buffers.
func (sc *Scorer) Close() {
	sc.c.M.BE.Free(sc.scratch)
	sc.c.M.BE.Free(sc.logits)
}

// chunkLogits computes logits of rows [r0, r0+r) of x (after ln_f) to the host.
func (sc *Scorer) chunkLogits(x backend.Mat, r0, r int, host []float32) error {
	m := sc.c.M
	lm := backend.Whole(sc.logits).RowSlice(0, r)
	if err := m.BE.MatMul(lm, x.RowSlice(r0, r), m.Unembed(), true, nil, false); err != nil {
		return err
	}
	return m.BE.DownloadMat(host[:r*m.Cfg.Vocab], lm)
}

// logSumExp of a float32 row in float64.
func logSumExp(row []float32) float64 {
	mx := math.Inf(-1)
	for _, z := range row {
		mx = math.Max(mx, float64(z))
	}
	var s float64
	for _, z := range row {
		s += math.Exp(float64(z) - mx)
	}
	return mx + math.Log(s)
}

// Lens applies ln_f (statistics from x itself) to x, a pre-ln_f residual
// [B*T,C], into dst ([B*T,C]; the scorer's scratch when nil) and returns
// the mean next-token loss of its logits.
func (sc *Scorer) Lens(dst backend.Tensor, x backend.Mat) (float64, error) {
	m := sc.c.M
	if dst == nil {
		dst = sc.scratch
	}
	w, b := m.LNFinal()
	nm := backend.Whole(dst)
	if err := m.BE.LayerNorm(nm, x, w, b, float32(m.Cfg.LNEps)); err != nil {
		return 0, err
	}
	return lossOf(m, nm, sc.rows, sc.idx)
}

// KLs returns, for each lens output normed[i] (after ln_f, [B*T,C]), the
// mean over all B*T positions of KL(p_final || p_lens), natural log. One
// pass over chunks of rows: a chunk's final distribution is computed once
// (float64, host) and compared with every lens, so host memory stays at a
// chunk's [R,V].
func (sc *Scorer) KLs(normed []backend.Mat) ([]float64, error) {
	m := sc.c.M
	if sc.c.S.Final == nil {
		return nil, fmt.Errorf("lens: capture has no final LayerNorm output")
	}
	N, V := sc.c.B*sc.c.T, m.Cfg.Vocab
	host := make([]float32, sc.R*V)
	logp := make([]float64, sc.R*V)
	p := make([]float64, sc.R*V)
	sums := make([]float64, len(normed))
	for r0 := 0; r0 < N; r0 += sc.R {
		r := min(sc.R, N-r0)
		if err := sc.chunkLogits(backend.Whole(sc.c.S.Final), r0, r, host); err != nil {
			return nil, err
		}
		for i := 0; i < r; i++ {
			row := host[i*V : (i+1)*V]
			lse := logSumExp(row)
			for v, z := range row {
				logp[i*V+v] = float64(z) - lse
				p[i*V+v] = math.Exp(logp[i*V+v])
			}
		}
		for k, nm := range normed {
			if err := sc.chunkLogits(nm, r0, r, host); err != nil {
				return nil, err
			}
			for i := 0; i < r; i++ {
				row := host[i*V : (i+1)*V]
				lse := logSumExp(row)
				var s float64
				for v, z := range row {
					s += p[i*V+v] * (logp[i*V+v] - (float64(z) - lse))
				}
				sums[k] += s
			}
		}
	}
	for k := range sums {
		sums[k] /= float64(N)
	}
	return sums, nil
}

// topK returns the k most probable tokens of the lens output x (after ln_f) at row i.
func (sc *Scorer) topK(x backend.Mat, i, k int) ([]Pred, error) {
	m := sc.c.M
	V := m.Cfg.Vocab
	host := make([]float32, V)
	if err := sc.chunkLogits(x, i, 1, host); err != nil {
		return nil, err
	}
	lse := logSumExp(host)
	ids := make([]int, V)
	for v := range ids {
		ids[v] = v
	}
	sort.SliceStable(ids, func(a, b int) bool { return host[ids[a]] > host[ids[b]] })
	k = min(k, V)
	out := make([]Pred, k)
	for j := 0; j < k; j++ {
		out[j] = Pred{ID: int32(ids[j]), Prob: math.Exp(float64(host[ids[j]]) - lse)}
	}
	return out, nil
}

// Run computes the logit lens of m on tokens [B*T] (and the variants asked for).
func Run(m *forward.Model, tokens []int32, B, T int, opt Options) (*Result, error) {
	L := m.Cfg.Layers
	if T < 2 {
		return nil, fmt.Errorf("lens: sequences of %d token have no next-token prediction (need T >= 2)", T)
	}
	pos := make([]int, len(opt.Positions))
	for i, p := range opt.Positions {
		q := p
		if q < 0 {
			q += T
		}
		if q < 0 || q >= T {
			return nil, fmt.Errorf("lens: position %d outside 0..%d (or -%d..-1)", p, T-1, T)
		}
		pos[i] = q
	}
	if len(pos) > 0 && opt.TopK <= 0 {
		return nil, fmt.Errorf("lens: --topk must be positive, got %d", opt.TopK)
	}
	steps := L + 2
	if opt.FinalBlock {
		steps += L
	}
	if opt.Centered {
		steps += L + 1
	}
	done := 0
	step := func() {
		done++
		if opt.Progress != nil {
			opt.Progress(done, steps)
		}
	}
	c, err := NewCapture(m, tokens, B, T)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	sc, err := NewScorer(c)
	if err != nil {
		return nil, err
	}
	defer sc.Close()
	res := &Result{Layers: L, Loss: make([]float64, L+1)}
	for _, p := range pos {
		for b := 0; b < B; b++ {
			res.TopK = append(res.TopK, TopK{Row: b, Pos: p, Layers: make([][]Pred, L+1)})
		}
	}
	normed := make([]backend.Mat, L+1)
	for l := 0; l <= L; l++ {
		t, err := m.BE.New(B*T, m.Cfg.DModel)
		if err != nil {
			return nil, err
		}
		defer m.BE.Free(t)
		normed[l] = backend.Whole(t)
		if res.Loss[l], err = sc.Lens(t, backend.Whole(c.Resid[l])); err != nil {
			return nil, err
		}
		for i := range res.TopK {
			tk := &res.TopK[i]
			if tk.Layers[l], err = sc.topK(normed[l], tk.Row*T+tk.Pos, opt.TopK); err != nil {
				return nil, err
			}
		}
		step()
	}
	if res.KL, err = sc.KLs(normed); err != nil {
		return nil, err
	}
	step()
	if opt.FinalBlock {
		if res.FinalBlockLoss, err = finalBlock(c, sc, step); err != nil {
			return nil, err
		}
	}
	if opt.Centered {
		if res.LossCentered, err = centered(c, sc, step); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// finalBlock: loss of LN_f(Block_{L-1}(resid[l])) for l = 0..L-1.
func finalBlock(c *Capture, sc *Scorer, step func()) ([]float64, error) {
	m := c.M
	L := m.Cfg.Layers
	s, err := m.Start(c.Tokens, c.B, c.T, nil)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	out := make([]float64, L)
	for l := 0; l < L; l++ {
		if err := m.BE.Copy(backend.Whole(s.Resid), backend.Whole(c.Resid[l])); err != nil {
			return nil, err
		}
		if err := m.Blocks(s, L-1, L, nil); err != nil {
			return nil, err
		}
		if out[l], err = sc.Lens(nil, backend.Whole(s.Resid)); err != nil {
			return nil, err
		}
		step()
	}
	return out, nil
}

// centered: loss of LN_f(r - (r.u)u) for l = 0..L.
func centered(c *Capture, sc *Scorer, step func()) ([]float64, error) {
	m := c.M
	be := m.BE
	L, C, N := m.Cfg.Layers, m.Cfg.DModel, c.B*c.T
	u64, err := embed.MeanDirection(m)
	if err != nil {
		return nil, err
	}
	u, nu := make([]float32, C), make([]float32, C)
	for i, x := range u64 {
		u[i], nu[i] = float32(x), float32(-x)
	}
	var free []backend.Tensor
	defer func() {
		for _, t := range free {
			be.Free(t)
		}
	}()
	uT, err := be.Upload(u, 1, C)
	if err != nil {
		return nil, err
	}
	free = append(free, uT)
	nuT, err := be.Upload(nu, 1, C)
	if err != nil {
		return nil, err
	}
	free = append(free, nuT)
	proj, err := be.New(N, 1)
	if err != nil {
		return nil, err
	}
	free = append(free, proj)
	rc, err := be.New(N, C)
	if err != nil {
		return nil, err
	}
	free = append(free, rc)
	out := make([]float64, L+1)
	for l := 0; l <= L; l++ {
		r := backend.Whole(c.Resid[l])
		// proj = r @ u^T [N,1]; rc = r + proj @ (-u) [N,C].
		if err := be.MatMul(backend.Whole(proj), r, backend.Whole(uT), true, nil, false); err != nil {
			return nil, err
		}
		if err := be.Copy(backend.Whole(rc), r); err != nil {
			return nil, err
		}
		if err := be.MatMul(backend.Whole(rc), backend.Whole(proj), backend.Whole(nuT), false, nil, true); err != nil {
			return nil, err
		}
		if out[l], err = sc.Lens(nil, backend.Whole(rc)); err != nil {
			return nil, err
		}
		step()
	}
	return out, nil
}
