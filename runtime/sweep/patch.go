package sweep

import (
	"fmt"
	"math"
	"sort"

	"github.com/neoscope/neoscope/runtime/backend"
	"github.com/neoscope/neoscope/runtime/forward"
	"github.com/neoscope/neoscope/runtime/graph"
)

// patcher is the state of a patching sweep (Mode Noise or Denoise): the
// "other" run's activations, the differences other - base of every
// sender's output, the output projections, and scratch.
//
// Tensors are [B*T, C] over the task's rows unless said otherwise.
type patcher struct {
	g    *graph.Graph // the model's edge graph, made at the first edge checked
	base []int32      // [B*T] the prompts that are run (clean for Noise, corrupt for Denoise)
	// The other run: hook_resid_pre, hook_z, hook_attn_out, hook_mlp_out per layer.
	oResid, oZ, oAttn, oMLP []backend.Tensor
	// dZ[l] = z_other - z_base, dMLP[l] = mlp_other - mlp_base, dEmbed = the
	// embedding difference (resid_pre of block 0).
	dZ, dMLP []backend.Tensor
	dEmbed   backend.Tensor
	// finalResid is the base run's residual after the last block.
	finalResid backend.Tensor
	// wo[l], nwo[l]: layer l's output projection in the x @ W layout
	// [NH*HS, C] (head h at rows h*HS..), and its negation; negI = -I [C, C].
	wo, nwo []backend.Tensor
	negI    backend.Tensor
	// Scratch for one group: delta, patched input, its LayerNorm.
	delta, tmp, ln backend.Tensor
	// Per-row metric of the clean and the corrupt run.
	cleanRows, corruptRows []float64
	// KL: the clean log-probabilities at the last position, [B][V], host.
	cleanLogP [][]float64
	logitBuf  backend.Tensor // [klRows, V]

	hooks *forward.Hooks
	s     *forward.State // the pass being run
	cur   patchLayer
}

const klRows = 64

// patchLayer is what the hooks do in the block being run: per group slot,
// its items at this layer and where its history lives.
type patchLayer struct {
	layer int
	items [][]Component // [group] this layer's items
	first []int         // [group] the first layer its configurations touch
	hist  []map[int]backend.Tensor
	needZ []bool            // [group] keep the current z of this layer (a later edge reads it)
	needM []bool            // [group] keep the current MLP output of this layer
	owned *[]backend.Tensor // every history tensor of the pass, freed at its end
}

func (p *patcher) close(be backend.Backend) {
	for _, ts := range [][]backend.Tensor{p.oResid, p.oZ, p.oAttn, p.oMLP, p.dZ, p.dMLP, p.wo, p.nwo,
		{p.dEmbed, p.finalResid, p.negI, p.delta, p.tmp, p.ln, p.logitBuf}} {
		for _, t := range ts {
			if t != nil {
				be.Free(t)
			}
		}
	}
}

// Gap is the clean-corrupt metric gap and its standard error over rows.
type Gap struct {
	Clean, Corrupt float64 // mean metric of the clean and the corrupt run
	Diff, SE       float64 // mean over rows of clean_b - corrupt_b, and its standard error
	// Noisy is true when |Diff| < 2 SE: the runs are not distinguishable on
	// these prompts, so normalised patching scores ((m - corrupt) / (clean -
	// corrupt)) are noise and no verdict should be drawn from them.
	Noisy bool
	// Reversed is true when Diff <= -2 SE: the corrupt prompts show more of
	// the behaviour (a larger logit difference) than the clean ones, so the
	// model does not show the behaviour the clean/corrupt pair probes;
	// normalised scores are well defined but measure the reverse, and no
	// verdict should be drawn from them either.
	Reversed bool
}

// Verdict says whether conclusions may be drawn from normalised scores:
// the clean run shows the behaviour by more than 2 standard errors.
func (g Gap) Verdict() bool { return !g.Noisy && !g.Reversed }

// Gap returns the clean-corrupt gap of a patching engine (ok false otherwise).
func (e *Engine) Gap() (Gap, bool) {
	if e.p == nil {
		return Gap{}, false
	}
	return GapOf(e.p.cleanRows, e.p.corruptRows), true
}

// GapSE is how many standard errors of the mean paired difference
// clean_b - corrupt_b a gap must clear to mean anything.
const GapSE = 2

// GapOf is the Gap of per-row clean and corrupt metrics: the one place where
// neoscope decides whether a clean-corrupt gap is noise (Noisy: |mean| <
// GapSE standard errors, or fewer than two rows) or reversed (significantly
// negative); normalised patching and verdicts are withheld in both cases.
func GapOf(clean, corrupt []float64) Gap {
	g := Gap{Clean: forward.Mean(clean), Corrupt: forward.Mean(corrupt)}
	n := float64(len(clean))
	d := make([]float64, len(clean))
	for i := range d {
		d[i] = clean[i] - corrupt[i]
	}
	g.Diff = forward.Mean(d)
	var ss float64
	for _, v := range d {
		ss += (v - g.Diff) * (v - g.Diff)
	}
	if n > 1 {
		g.SE = math.Sqrt(ss/(n-1)) / math.Sqrt(n)
	}
	// Fewer than two rows: the spread is unknown, so nothing is significant.
	g.Noisy = n < 2 || !(math.Abs(g.Diff) >= GapSE*g.SE) || g.Diff == 0
	g.Reversed = !g.Noisy && g.Diff < 0
	return g
}

// Normalised is (m - corrupt) / (clean - corrupt) of an ld value (NaN when
// the gap is zero).
func (g Gap) Normalised(m float64) float64 {
	if g.Clean == g.Corrupt {
		return math.NaN()
	}
	return (m - g.Corrupt) / (g.Clean - g.Corrupt)
}

func newPatch(m *forward.Model, task Task, opt Options) (*Engine, error) {
	cfg := m.Cfg

	B, T := task.B, task.T
	if B <= 0 || T <= 0 || len(task.Tokens) != B*T {
		return nil, taskErrorf("sweep: %d clean token ids for %d rows of %d", len(task.Tokens), B, T)
	}
	if len(task.Corrupt) != B*T {
		return nil, taskErrorf("sweep: patching needs corrupt prompts of the clean prompts' shape [%d, %d]; got %d ids", B, T, len(task.Corrupt))
	}
	if opt.Mode != Noise && opt.Mode != Denoise {
		return nil, taskErrorf("sweep: metric %s needs --mode noise or denoise", task.Metric.Column())
	}
	switch task.Metric {
	case LD, KL:
	default:
		return nil, taskErrorf("sweep: a patching sweep measures ld or kl, not %s", task.Metric.Column())
	}
	if task.Metric == LD || len(task.A) > 0 {
		if task.Pos < 0 || task.Pos >= T {
			return nil, taskErrorf("sweep: logit-difference position %d outside 0..%d", task.Pos, T-1)
		}
		if len(task.A) != B || len(task.C) != B {
			return nil, taskErrorf("sweep: want %d io and %d s ids (one per row), got %d and %d", B, B, len(task.A), len(task.C))
		}
		for i := range task.A {
			for _, id := range []int32{task.A[i], task.C[i]} {
				if id < 0 || int(id) >= cfg.Vocab {
					return nil, taskErrorf("sweep: answer id %d (row %d) outside the vocabulary [0, %d)", id, i, cfg.Vocab)
				}
			}
		}
	}
	e := &Engine{m: m, task: task, opt: opt, tn: T}
	p := &patcher{}
	e.p = p
	other := task.Corrupt
	p.base = task.Tokens
	if opt.Mode == Denoise {
		p.base, other = task.Corrupt, task.Tokens
	}
	e.tok = p.base
	var err error
	if e.K, err = e.passSize(); err != nil {
		return nil, err
	}
	if err := e.patchCache(other); err != nil {
		e.Close()
		return nil, err
	}
	e.patchHooks()
	return e, nil
}

// patchCache runs the clean and the corrupt prompts once each and keeps
// what the passes need.
func (e *Engine) patchCache(other []int32) error {
	m, be, p := e.m, e.m.BE, e.p
	L, C, NH, HS := m.Cfg.Layers, m.Cfg.DModel, m.Cfg.Heads, m.Cfg.DHead
	B, T := e.task.B, e.tn
	obs := func(tok []int32) (map[string]*forward.HostTensor, *forward.State, error) {
		h := (&forward.Hooks{}).Observe("blocks.*.hook_resid_pre", "blocks.*.attn.hook_z", "blocks.*.hook_attn_out", "blocks.*.hook_mlp_out")
		s, _, err := m.Run(tok, B, T, h, false)
		if err != nil {
			return nil, nil, err
		}
		return h.Cache, s, nil
	}
	up := func(x []float32) (backend.Tensor, error) { return be.Upload(x, len(x)/C, C) }
	sub := func(a, b []float32) []float32 {
		out := make([]float32, len(a))
		for i := range a {
			out[i] = float32(float64(a[i]) - float64(b[i]))
		}
		return out
	}
	bc, bs, err := obs(e.p.base)
	if err != nil {
		return err
	}
	defer bs.Close()
	oc, os, err := obs(other)
	if err != nil {
		return err
	}
	defer os.Close()
	name := func(l int, n string) string { return fmt.Sprintf("blocks.%d.%s", l, n) }
	e.resid = make([]backend.Tensor, L)
	p.oResid, p.oZ, p.oAttn, p.oMLP = make([]backend.Tensor, L), make([]backend.Tensor, L), make([]backend.Tensor, L), make([]backend.Tensor, L)
	p.dZ, p.dMLP, p.wo, p.nwo = make([]backend.Tensor, L), make([]backend.Tensor, L), make([]backend.Tensor, L), make([]backend.Tensor, L)
	for l := 0; l < L; l++ {
		for _, x := range []struct {
			dst *backend.Tensor
			src []float32
		}{
			{&e.resid[l], bc[name(l, "hook_resid_pre")].Data},
			{&p.oResid[l], oc[name(l, "hook_resid_pre")].Data},
			{&p.oZ[l], oc[name(l, "attn.hook_z")].Data},
			{&p.oAttn[l], oc[name(l, "hook_attn_out")].Data},
			{&p.oMLP[l], oc[name(l, "hook_mlp_out")].Data},
			{&p.dZ[l], sub(oc[name(l, "attn.hook_z")].Data, bc[name(l, "attn.hook_z")].Data)},
			{&p.dMLP[l], sub(oc[name(l, "hook_mlp_out")].Data, bc[name(l, "hook_mlp_out")].Data)},
		} {
			if *x.dst, err = up(x.src); err != nil {
				return err
			}
		}
		w := make([]float32, 0, NH*HS*C)
		for h := 0; h < NH; h++ {
			w = append(w, m.WOut(l, h)...)
		}
		nw := make([]float32, len(w))
		for i, v := range w {
			nw[i] = -v
		}
		if p.wo[l], err = up(w); err != nil {
			return err
		}
		if p.nwo[l], err = up(nw); err != nil {
			return err
		}
	}
	if p.dEmbed, err = up(sub(oc[name(0, "hook_resid_pre")].Data, bc[name(0, "hook_resid_pre")].Data)); err != nil {
		return err
	}
	fin := make([]float32, B*T*C)
	if err := be.DownloadMat(fin, backend.Whole(bs.Resid).RowSlice(0, B*T)); err != nil {
		return err
	}
	if p.finalResid, err = up(fin); err != nil {
		return err
	}
	ni := make([]float32, C*C)
	for i := 0; i < C; i++ {
		ni[i*C+i] = -1
	}
	if p.negI, err = up(ni); err != nil {
		return err
	}
	for _, t := range []*backend.Tensor{&p.delta, &p.tmp, &p.ln} {
		if *t, err = be.New(B*T, C); err != nil {
			return err
		}
	}
	clean, corrupt := bs, os
	if e.opt.Mode == Denoise {
		clean, corrupt = os, bs
	}
	if e.task.Metric == KL {
		if p.cleanLogP, err = e.lastLogProbs(clean, B); err != nil {
			return err
		}
	}
	if p.cleanRows, err = e.patchRows(clean, 1); err != nil {
		return err
	}
	if p.corruptRows, err = e.patchRows(corrupt, 1); err != nil {
		return err
	}
	e.Baseline = forward.Mean(p.cleanRows)
	if e.opt.Mode == Denoise {
		e.Baseline = forward.Mean(p.corruptRows)
	}
	return nil
}

// lastLogProbs returns log_softmax of the logits at the last position of
// each of the R rows of s (after FinalNorm), in float64 on the host.
func (e *Engine) lastLogProbs(s *forward.State, R int) ([][]float64, error) {
	m, be, p := e.m, e.m.BE, e.p
	C, V, T := m.Cfg.DModel, m.Cfg.Vocab, e.tn
	if p.logitBuf == nil {
		var err error
		if p.logitBuf, err = be.New(klRows, V); err != nil {
			return nil, err
		}
	}
	out := make([][]float64, R)
	buf := make([]float32, klRows*V)
	for r0 := 0; r0 < R; r0 += klRows {
		n := min(klRows, R-r0)
		x := backend.Mat{T: s.Final, Off: (r0*T + T - 1) * C, Rows: n, Cols: C, Stride: T * C}
		lg := backend.Whole(p.logitBuf).RowSlice(0, n)
		if err := be.MatMul(lg, x, m.Unembed(), true, nil, false); err != nil {
			return nil, err
		}
		if err := be.DownloadMat(buf[:n*V], lg); err != nil {
			return nil, err
		}
		for i := 0; i < n; i++ {
			row := buf[i*V : (i+1)*V]
			mx := math.Inf(-1)
			for _, v := range row {
				mx = math.Max(mx, float64(v))
			}
			var sum float64
			for _, v := range row {
				sum += math.Exp(float64(v) - mx)
			}
			lse := mx + math.Log(sum)
			lp := make([]float64, V)
			for j, v := range row {
				lp[j] = float64(v) - lse
			}
			out[r0+i] = lp
		}
	}
	return out, nil
}

// patchRows is the metric of each of the G*B rows of s (FinalNorm is run
// here): the logit difference at Pos, or KL(p_clean || p_row) at the last
// position.
func (e *Engine) patchRows(s *forward.State, G int) ([]float64, error) {
	if err := e.m.FinalNorm(s, nil); err != nil {
		return nil, err
	}
	t := e.task
	R := G * t.B
	if e.task.Metric == KL {
		lp, err := e.lastLogProbs(s, R)
		if err != nil {
			return nil, err
		}
		out := make([]float64, R)
		for r := range out {
			pc := e.p.cleanLogP[r%t.B]
			var kl float64
			for j, c := range pc {
				kl += math.Exp(c) * (c - lp[r][j])
			}
			out[r] = kl
		}
		return out, nil
	}
	var rows, idx []int32
	for r := 0; r < R; r++ {
		rows = append(rows, int32(r*e.tn+t.Pos))
		idx = append(idx, t.A[r%t.B], t.C[r%t.B])
	}
	lse := make([]float32, len(rows))
	g := make([]float32, len(idx))
	if err := e.m.BE.LogitStats(backend.Whole(s.Final), e.m.Unembed(), rows, idx, lse, g); err != nil {
		return nil, err
	}
	out := make([]float64, R)
	for r := range out {
		out[r] = float64(g[2*r]) - float64(g[2*r+1])
	}
	return out, nil
}

// patchLayers splits a configuration by the layer its items act in (an
// edge: its receiver's layer; `logits`: Layers) and returns per-layer keys
// (canonical names) and the first layer touched (Layers+1 for none).
func (e *Engine) patchLayers(c Config) (keys []string, items [][]Component, first int) {
	L := e.m.Cfg.Layers
	items = make([][]Component, L+1)
	for _, x := range c {
		items[x.Layer] = append(items[x.Layer], x)
	}
	keys = make([]string, L+1)
	first = L + 1
	for l, it := range items {
		if len(it) > 0 {
			keys[l] = Config(it).String()
			first = min(first, l)
		}
	}
	return keys, items, first
}

// checkPatch refuses items the patching engine cannot place.
func (e *Engine) checkPatch(c Config) error {
	L, NH := e.m.Cfg.Layers, e.m.Cfg.Heads
	for _, x := range c {
		lim := L
		if x.Kind == Edge {
			lim = L + 1
		}
		if x.Layer < 0 || x.Layer >= lim || (x.Kind == Head || x.Kind == HeadAt) && (x.Head < 0 || x.Head >= NH) {
			return fmt.Errorf("sweep: %s outside the model (%d layers x %d heads)", x, L, NH)
		}
		if (x.Kind == HeadAt || x.Kind == ResidAt) && (x.Pos < 0 || x.Pos >= e.tn) {
			return fmt.Errorf("sweep: %s: position outside the prompts' 0..%d", x, e.tn-1)
		}
		if x.Kind == Edge {
			// The graph follows the model's residual layout: no edge from a
			// head into its own layer's parallel-residual MLP. It is made
			// at the first edge: GPT-2 XL's holds 2.2 million (issue 17).
			if e.p.g == nil {
				e.p.g = graph.New(L, NH, e.m.Cfg.ParallelAt)
			}
			if _, ok := e.p.g.EdgeIndex(x.String()); !ok {
				return fmt.Errorf("sweep: %s is not an edge of the model's graph", x)
			}
		}
	}
	return nil
}

// planPatch is Plan for patching sweeps: by first layer touched, then as
// the leaves of the prefix tree over the per-layer items.
func (e *Engine) planPatch(cfgs []Config) [][]int {
	keys := make([][]string, len(cfgs))
	first := make([]int, len(cfgs))
	order := make([]int, len(cfgs))
	for i, c := range cfgs {
		keys[i], _, first[i] = e.patchLayers(c)
		order[i] = i
	}
	sort.SliceStable(order, func(x, y int) bool {
		i, j := order[x], order[y]
		if first[i] != first[j] {
			return first[i] < first[j]
		}
		for l := range keys[i] {
			if keys[i][l] != keys[j][l] {
				return keys[i][l] < keys[j][l]
			}
		}
		return false
	})
	// Circuits keep the current outputs of senders at or after their first
	// layer (z and MLP output, B*T x C each): a chunk also closes when those
	// would pass the memory budget.
	rowBytes := 4 * int64(e.task.B*e.tn*e.m.Cfg.DModel)
	extra := make([]int64, len(cfgs))
	for i, c := range cfgs {
		kept := map[[2]int]bool{}
		for _, x := range c {
			if x.Kind != Edge {
				continue
			}
			if x.S.Kind != graph.Embed && x.S.Layer >= first[i] {
				kept[[2]int{x.S.Layer, int(x.S.Kind)}] = true
			}
		}
		extra[i] = int64(len(kept)) * rowBytes
	}
	var chunks [][]int
	for lo := 0; lo < len(order); {
		hi := lo + 1
		used := e.ConfigBytes() + extra[order[lo]]
		for hi < len(order) && hi-lo < e.K && first[order[hi]] == first[order[lo]] {
			used += e.ConfigBytes() + extra[order[hi]]
			if used > e.opt.MaxMemory {
				break
			}
			hi++
		}
		chunks = append(chunks, order[lo:hi])
		lo = hi
	}
	return chunks
}

// EvalCircuits evaluates many configurations (circuits: sets of removed
// edges, possibly with node patches) on a patching engine and returns the
// metric of each: it plans them into passes (Plan) and runs every pass
// (Eval). The configurations are in any order; the result follows it.
func (e *Engine) EvalCircuits(cfgs []Config) ([]float64, error) {
	if e.p == nil {
		return nil, fmt.Errorf("sweep: EvalCircuits needs a patching engine (Mode Noise or Denoise)")
	}
	out := make([]float64, len(cfgs))
	for _, ch := range e.Plan(cfgs) {
		batch := make([]Config, len(ch))
		for j, k := range ch {
			batch[j] = cfgs[k]
		}
		vals, err := e.Eval(batch)
		if err != nil {
			return nil, err
		}
		for j, k := range ch {
			out[k] = vals[j]
		}
	}
	return out, nil
}

// evalPatch is Eval for patching sweeps: the prefix-tree walk of Eval, with
// hooks that patch node values, recompute patched receivers and keep the
// current outputs of senders later edges subtract.
func (e *Engine) evalPatch(cfgs []Config) ([]float64, error) {
	m, be, t, p := e.m, e.m.BE, e.task, e.p
	L := m.Cfg.Layers
	B, T := t.B, e.tn
	keys := make([][]string, len(cfgs))
	items := make([][][]Component, len(cfgs))
	first := make([]int, len(cfgs))
	for i, c := range cfgs {
		if err := e.checkPatch(c); err != nil {
			return nil, err
		}
		keys[i], items[i], first[i] = e.patchLayers(c)
	}
	// needS[i][l]: configuration i subtracts the current output of a head
	// (bit 1) or the MLP (bit 2) of layer l >= its first layer.
	need := make([][]uint8, len(cfgs))
	for i, c := range cfgs {
		need[i] = make([]uint8, L)
		for _, x := range c {
			if x.Kind != Edge || x.S.Kind == graph.Embed || x.S.Layer < first[i] {
				continue
			}
			if x.S.Kind == graph.Head {
				need[i][x.S.Layer] |= 1
			} else {
				need[i][x.S.Layer] |= 2
			}
		}
	}
	gid := make([]int, len(cfgs))
	for i := range gid {
		gid[i] = -1
	}
	type node struct {
		parent int
		key    string
	}
	var owned []backend.Tensor
	defer func() {
		for _, x := range owned {
			be.Free(x)
		}
		if p.s != nil {
			p.s.Close()
			p.s = nil
		}
	}()
	var hist []map[int]backend.Tensor // per group slot
	var gfirst []int
	active, capacity := 0, 0
	for l := 0; l <= L; l++ {
		gs := newGroupSlots[node](active)
		gitems := make([][]Component, active)
		next := make([]int, len(cfgs))
		add := func(i int, n node) {
			g, appended := gs.assign(n.parent, n)
			if appended {
				gitems = append(gitems, nil)
			}
			gitems[g] = items[i][l]
			next[i] = g
		}
		for i := range cfgs {
			if gid[i] >= 0 {
				add(i, node{parent: gid[i], key: keys[i][l]})
			}
		}
		for i := range cfgs {
			if gid[i] >= 0 {
				continue
			}
			if keys[i][l] == "" {
				next[i] = -1
				continue
			}
			add(i, node{parent: -1, key: keys[i][l]})
		}
		gid = next
		parents := gs.parents
		grown := active + len(parents)
		if grown == 0 {
			continue
		}
		if grown > capacity {
			c := e.slots(grown)
			ns, err := m.Start(repeatTokens(p.base, c), c*B, T, nil)
			if err != nil {
				return nil, err
			}
			if active > 0 {
				if err := be.Copy(backend.Whole(ns.Resid).RowSlice(0, active*B*T), backend.Whole(p.s.Resid).RowSlice(0, active*B*T)); err != nil {
					ns.Close()
					return nil, err
				}
			}
			if p.s != nil {
				p.s.Close()
			}
			p.s, capacity = ns, c
		}
		for k, par := range parents {
			g := active + k
			var src backend.Mat
			switch {
			case par >= 0:
				src = backend.Whole(p.s.Resid).RowSlice(par*B*T, B*T)
			case l == L:
				src = backend.Whole(p.finalResid)
			default:
				src = backend.Whole(e.resid[l])
			}
			if err := be.Copy(backend.Whole(p.s.Resid).RowSlice(g*B*T, B*T), src); err != nil {
				return nil, err
			}
			h := map[int]backend.Tensor{}
			if par >= 0 {
				for k, v := range hist[par] {
					h[k] = v
				}
			}
			hist = append(hist, h)
			gfirst = append(gfirst, 0)
		}
		for i, g := range gid {
			if g >= 0 {
				gfirst[g] = first[i] // one value per group: its members share their history
			}
		}
		active = grown
		cur := patchLayer{layer: l, items: gitems, first: gfirst, hist: hist,
			needZ: make([]bool, active), needM: make([]bool, active), owned: &owned}
		if l < L {
			for i, g := range gid {
				if g >= 0 {
					cur.needZ[g] = cur.needZ[g] || need[i][l]&1 != 0
					cur.needM[g] = cur.needM[g] || need[i][l]&2 != 0
				}
			}
		}
		if err := p.s.Narrow(active * B); err != nil {
			return nil, err
		}
		p.cur = cur
		var err error
		if l < L {
			err = m.Blocks(p.s, l, l+1, p.hooks)
		} else {
			err = e.patchLogits()
		}
		p.cur = patchLayer{}
		if err != nil {
			return nil, err
		}
	}
	out := make([]float64, len(cfgs))
	var rows []float64
	if p.s != nil {
		var err error
		if rows, err = e.patchRows(p.s, active); err != nil {
			return nil, err
		}
	}
	return e.groupMeans(cfgs, gid, rows, out)
}

// rowsOf views group g's rows of a [R*B*T, cols] state buffer.
func (e *Engine) rowsOf(x backend.Mat, g int) backend.Mat {
	n := e.task.B * e.tn
	return x.RowSlice(g*n, n)
}

// delta computes into p.delta the sum over the senders of (the sender's
// output on the other prompts - its output in group g's current run).
// Senders before the group's first touched layer are unchanged from the
// base run, so the cached difference is used; later ones subtract the
// output kept in the group's history.
func (e *Engine) delta(g int, senders []graph.Node) (backend.Mat, error) {
	be, p := e.m.BE, e.p
	HS := e.m.Cfg.DHead
	D := backend.Whole(p.delta)
	started := false
	add := func(src backend.Mat) error {
		defer func() { started = true }()
		if !started {
			return be.Copy(D, src)
		}
		return be.Add(D, D, src)
	}
	mm := func(a, b backend.Mat) error {
		defer func() { started = true }()
		return be.MatMul(D, a, b, false, nil, started)
	}
	f := p.cur.first[g]
	for _, s := range senders {
		var err error
		switch s.Kind {
		case graph.Embed:
			err = add(backend.Whole(p.dEmbed))
		case graph.Head:
			wo := backend.Whole(p.wo[s.Layer]).RowSlice(s.Head*HS, HS)
			if s.Layer < f {
				err = mm(backend.Whole(p.dZ[s.Layer]).ColSlice(s.Head*HS, HS), wo)
				break
			}
			z, ok := p.cur.hist[g][2*s.Layer]
			if !ok {
				return D, fmt.Errorf("sweep: internal: no kept z of layer %d", s.Layer)
			}
			if err = mm(backend.Whole(p.oZ[s.Layer]).ColSlice(s.Head*HS, HS), wo); err == nil {
				err = mm(backend.Whole(z).ColSlice(s.Head*HS, HS), backend.Whole(p.nwo[s.Layer]).RowSlice(s.Head*HS, HS))
			}
		case graph.MLP:
			if s.Layer < f {
				err = add(backend.Whole(p.dMLP[s.Layer]))
				break
			}
			mo, ok := p.cur.hist[g][2*s.Layer+1]
			if !ok {
				return D, fmt.Errorf("sweep: internal: no kept MLP output of layer %d", s.Layer)
			}
			if err = add(backend.Whole(p.oMLP[s.Layer])); err == nil {
				err = mm(backend.Whole(mo), backend.Whole(p.negI))
			}
		}
		if err != nil {
			return D, err
		}
	}
	if !started {
		return D, fmt.Errorf("sweep: internal: receiver with no senders")
	}
	return D, nil
}

// receivers groups group g's edges at this layer by receiver, in order.
func receivers(items []Component, pick func(graph.Node) bool) (rs []graph.Node, ss [][]graph.Node) {
	at := map[graph.Node]int{}
	for _, x := range items {
		if x.Kind != Edge || !pick(x.R) {
			continue
		}
		i, ok := at[x.R]
		if !ok {
			i = len(rs)
			at[x.R] = i
			rs = append(rs, x.R)
			ss = append(ss, nil)
		}
		ss[i] = append(ss[i], x.S)
	}
	return rs, ss
}

// keep copies src (a group's rows) into a new tensor of the pass.
func (e *Engine) keep(src backend.Mat) (backend.Tensor, error) {
	be := e.m.BE
	t, err := be.New(src.Rows, src.Cols)
	if err != nil {
		return nil, err
	}
	*e.p.cur.owned = append(*e.p.cur.owned, t)
	return t, be.Copy(backend.Whole(t), src)
}

func (e *Engine) patchHooks() {
	p := e.p
	B, T := e.task.B, e.tn
	HS := e.m.Cfg.DHead
	mine := func(a *forward.Act) bool { return a.Layer() == p.cur.layer && p.cur.items != nil }
	h := &forward.Hooks{}
	// Residual at one position: the real stream changes.
	h.Replace("blocks.*.hook_resid_pre", func(a *forward.Act) error {
		if !mine(a) {
			return nil
		}
		for g, it := range p.cur.items {
			for _, x := range it {
				if x.Kind != ResidAt {
					continue
				}
				for b := 0; b < B; b++ {
					dst := a.M.RowSlice((g*B+b)*T+x.Pos, 1)
					if err := a.BE.Copy(dst, backend.Whole(p.oResid[x.Layer]).RowSlice(b*T+x.Pos, 1)); err != nil {
						return err
					}
				}
			}
		}
		return nil
	})
	// Edges into one head's q, k or v: that head's projection from the
	// patched input.
	for _, which := range []byte{'q', 'k', 'v'} {
		which := which
		h.Replace("blocks.*.attn.hook_"+string(which), func(a *forward.Act) error {
			if !mine(a) {
				return nil
			}
			resid := backend.Whole(p.s.Resid)
			for g, it := range p.cur.items {
				rs, ss := receivers(it, func(n graph.Node) bool { return n.Kind == graph.Head && n.Input == which })
				for k, r := range rs {
					D, err := e.delta(g, ss[k])
					if err != nil {
						return err
					}
					X := backend.Whole(p.tmp)
					if err := a.BE.Add(X, e.rowsOf(resid, g), D); err != nil {
						return err
					}
					out := e.rowsOf(a.M, g).ColSlice(r.Head*HS, HS)
					if err := e.m.HeadInput(r.Layer, r.Head, which, X, backend.Whole(p.ln), out); err != nil {
						return err
					}
				}
			}
			return nil
		})
	}
	h.Replace("blocks.*.attn.hook_z", func(a *forward.Act) error {
		if !mine(a) {
			return nil
		}
		l := p.cur.layer
		oz := backend.Whole(p.oZ[l])
		for g, it := range p.cur.items {
			for _, x := range it {
				switch x.Kind {
				case Head:
					if err := a.BE.Copy(e.rowsOf(a.M, g).ColSlice(x.Head*HS, HS), oz.ColSlice(x.Head*HS, HS)); err != nil {
						return err
					}
				case HeadAt:
					for b := 0; b < B; b++ {
						dst := a.M.RowSlice((g*B+b)*T+x.Pos, 1).ColSlice(x.Head*HS, HS)
						if err := a.BE.Copy(dst, oz.RowSlice(b*T+x.Pos, 1).ColSlice(x.Head*HS, HS)); err != nil {
							return err
						}
					}
				}
			}
		}
		for g := range p.cur.needZ {
			if p.cur.needZ[g] {
				z, err := e.keep(e.rowsOf(a.M, g))
				if err != nil {
					return err
				}
				p.cur.hist[g][2*l] = z
			}
		}
		return nil
	})
	h.Replace("blocks.*.hook_attn_out", func(a *forward.Act) error {
		if !mine(a) {
			return nil
		}
		for g, it := range p.cur.items {
			for _, x := range it {
				if x.Kind == Attn {
					if err := a.BE.Copy(e.rowsOf(a.M, g), backend.Whole(p.oAttn[x.Layer])); err != nil {
						return err
					}
				}
			}
		}
		return nil
	})
	// Edges into the MLP: ln_2 is recomputed from the residual the MLP
	// reads plus the delta, for the MLP only (the stream is untouched). At
	// ln2.hook_normalized the stream holds that residual: resid_mid in a
	// sequential block, the block input (resid_pre) in a parallel-residual
	// one, whose attention output is added after the MLP has run.
	h.Replace("blocks.*.ln2.hook_normalized", func(a *forward.Act) error {
		if !mine(a) {
			return nil
		}
		resid := backend.Whole(p.s.Resid)
		for g, it := range p.cur.items {
			rs, ss := receivers(it, func(n graph.Node) bool { return n.Kind == graph.MLP })
			if len(rs) == 0 {
				continue
			}
			D, err := e.delta(g, ss[0])
			if err != nil {
				return err
			}
			X := backend.Whole(p.tmp)
			if err := a.BE.Add(X, e.rowsOf(resid, g), D); err != nil {
				return err
			}
			if err := e.m.MLPInput(rs[0].Layer, X, e.rowsOf(a.M, g)); err != nil {
				return err
			}
		}
		return nil
	})
	h.Replace("blocks.*.hook_mlp_out", func(a *forward.Act) error {
		if !mine(a) {
			return nil
		}
		l := p.cur.layer
		for g, it := range p.cur.items {
			for _, x := range it {
				if x.Kind == MLP {
					if err := a.BE.Copy(e.rowsOf(a.M, g), backend.Whole(p.oMLP[l])); err != nil {
						return err
					}
				}
			}
		}
		for g := range p.cur.needM {
			if p.cur.needM[g] {
				mo, err := e.keep(e.rowsOf(a.M, g))
				if err != nil {
					return err
				}
				p.cur.hist[g][2*l+1] = mo
			}
		}
		return nil
	})
	p.hooks = h
}

// patchLogits applies edges into `logits`: the final residual of each
// group gets its delta before ln_final.
func (e *Engine) patchLogits() error {
	p := e.p
	resid := backend.Whole(p.s.Resid)
	for g, it := range p.cur.items {
		rs, ss := receivers(it, func(n graph.Node) bool { return n.Kind == graph.Logits })
		if len(rs) == 0 {
			continue
		}
		D, err := e.delta(g, ss[0])
		if err != nil {
			return err
		}
		rows := e.rowsOf(resid, g)
		if err := e.m.BE.Add(rows, rows, D); err != nil {
			return err
		}
	}
	return nil
}

// Parquet rows of patching sweeps.
type pqPatchLD struct {
	Config     string  `parquet:"config"`
	NAblated   int64   `parquet:"n_ablated"`
	LD         float64 `parquet:"ld"`
	Delta      float64 `parquet:"delta"`
	Normalised float64 `parquet:"normalised"`
	Index      int64   `parquet:"index"`
}

type pqPatchKL struct {
	Config   string  `parquet:"config"`
	NAblated int64   `parquet:"n_ablated"`
	KL       float64 `parquet:"kl"`
	Delta    float64 `parquet:"delta"`
	Index    int64   `parquet:"index"`
}
