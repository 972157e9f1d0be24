package sweep

import (
	"fmt"
	"math"
	"sort"

	"github.com/neoscope/neoscope/runtime/backend"
	"github.com/neoscope/neoscope/runtime/forward"
)

// Metric is what a sweep measures per configuration.
type Metric int

const (
	// Loss is the mean next-token loss over every row and the predictions
	// made at positions LossFrom..T-2.
	Loss Metric = iota
	// LogitDiff is the mean over rows of logits[b, Pos, A[b]] - logits[b, Pos, C[b]].
	LogitDiff
	// LD is LogitDiff under its patching name (column `ld`), and KL the mean
	// over rows of KL(p_clean || p_run) at the last position: patching
	// sweeps only (Mode Noise or Denoise; see patch.go).
	LD
	KL
)

// Column is the metric's column name in result files.
func (m Metric) Column() string {
	switch m {
	case LogitDiff:
		return "logit_diff"
	case LD:
		return "ld"
	case KL:
		return "kl"
	}
	return "loss"
}

// Mode is how an ablated component is replaced.
type Mode int

const (
	Zero Mode = iota // by zero
	Mean             // by its per-position mean over the B prompts in the unablated run
	// Noise runs Task.Tokens (clean) and patches in values from
	// Task.Corrupt (resample ablation); Denoise runs Task.Corrupt and
	// patches in clean values (activation patching). See patch.go.
	Noise
	Denoise
)

func (m Mode) String() string {
	switch m {
	case Mean:
		return "mean"
	case Noise:
		return "noise"
	case Denoise:
		return "denoise"
	}
	return "zero"
}

// Task is the prompts and the metric a sweep evaluates each configuration on.
type Task struct {
	Tokens   []int32 // [B*T]
	B, T     int
	Metric   Metric
	LossFrom int     // Loss: first predicting position
	Pos      int     // LogitDiff: the position read
	A, C     []int32 // LogitDiff, LD: [B] answer and counterfactual ids
	// Corrupt is the corrupted prompts of a patching sweep, [B*T] like
	// Tokens (which then holds the clean prompts).
	Corrupt []int32
}

// Options tune the engine; the zero value is the batched, prefix-sharing
// engine with a 2 GiB activation budget.
type Options struct {
	Mode  Mode
	Chunk int // configurations per pass; 0: as many as MaxMemory allows
	// MaxMemory: bytes of activations one pass may use, on top of the
	// weights; below one configuration's activations New refuses the task.
	// 0: DefaultMaxMemory, raised to one configuration's activations when
	// that is more (the probes that run sweeps have no budget flag).
	MaxMemory int64
	// NoShare runs every configuration as its own pass from the embedding
	// (no prefix sharing, no batching across configurations: set Chunk 1 too
	// to get the one-configuration-per-pass loop). It exists to measure what
	// the engine saves.
	NoShare bool
}

// DefaultMaxMemory is the default activation budget of one pass.
const DefaultMaxMemory = 2 << 30

// Engine evaluates configurations on one task. New runs the unablated pass
// once and keeps the residual stream before every block (and, in mean mode,
// the per-position means of z, attention output and MLP output); Eval then
// starts every configuration from the cached residual before the first layer
// it touches.
type Engine struct {
	m    *forward.Model
	task Task
	opt  Options
	// tn is the number of positions the passes run: no later position can
	// influence the metric (attention is causal), so tokens after the last
	// position read are dropped: T-1 for the loss (the last token is only a
	// target), Pos+1 for a logit difference.
	tn  int
	tok []int32 // [B*tn], the task's prompts cut to tn positions
	// resid[l] is the unablated residual stream before block l, [B*tn, C].
	resid []backend.Tensor
	// Mean mode fills per layer, [T, C] (z: [T, NH*HS]).
	fillZ, fillAttn, fillMLP []backend.Tensor
	// from is the first position the metric reads (LossFrom, or Pos): the
	// last block runs from there on (forward.BlockOpts.From). Mean mode
	// needs the tails of the last layer's fills for it, [tn-from, C].
	from                      int
	fillAttnTail, fillMLPTail backend.Tensor
	// sh is the unablated attention of the layer where the last pass
	// started (see firstAttnOut), kept for the next pass starting there.
	sh *sharedAttn
	// Baseline is the metric of the unablated model.
	Baseline float64
	// K is the number of configurations per pass.
	K int

	cur   layerAblation // the masks the hooks apply in the block being run
	hooks *forward.Hooks
	p     *patcher // patching sweeps (Mode Noise, Denoise)
}

// layerAblation holds the per-row keep masks of one block of one pass
// (nil when nothing of that kind is ablated in the block).
type layerAblation struct {
	layer                    int
	heads, attn, mlp         []uint8 // heads: [R*NH]; attn, mlp: [R]
	fillZ, fillAttn, fillMLP backend.Tensor
}

// TaskError is a task New refuses (token counts, positions, ids, metric):
// the caller's input, as opposed to a failure of the backend.
type TaskError struct{ msg string }

func (e *TaskError) Error() string { return e.msg }

func taskErrorf(format string, a ...any) error { return &TaskError{fmt.Sprintf(format, a...)} }

// New checks the task (a *TaskError when it is malformed), runs the
// unablated pass and sizes the passes.
func New(m *forward.Model, task Task, opt Options) (*Engine, error) {
	if opt.Mode == Noise || opt.Mode == Denoise || task.Metric == LD || task.Metric == KL {
		return newPatch(m, task, opt)
	}
	cfg := m.Cfg
	if task.B <= 0 || task.T <= 0 || len(task.Tokens) != task.B*task.T {
		return nil, taskErrorf("sweep: %d token ids for %d rows of %d", len(task.Tokens), task.B, task.T)
	}
	if cfg.Heads > 64 {
		return nil, taskErrorf("sweep: %d heads per layer; at most 64 supported", cfg.Heads)
	}
	switch task.Metric {
	case Loss:
		if task.LossFrom < 0 || task.LossFrom > task.T-2 {
			return nil, taskErrorf("sweep: --loss-from %d leaves no prediction in sequences of %d tokens (want 0..%d)", task.LossFrom, task.T, task.T-2)
		}
	case LogitDiff:
		if task.Pos < 0 || task.Pos >= task.T {
			return nil, taskErrorf("sweep: logit-difference position %d outside 0..%d", task.Pos, task.T-1)
		}
		if len(task.A) != task.B || len(task.C) != task.B {
			return nil, taskErrorf("sweep: want %d answer and %d counterfactual ids (one per row), got %d and %d", task.B, task.B, len(task.A), len(task.C))
		}
		for i := range task.A {
			for _, id := range []int32{task.A[i], task.C[i]} {
				if id < 0 || int(id) >= cfg.Vocab {
					return nil, taskErrorf("sweep: answer id %d (row %d) outside the vocabulary [0, %d)", id, i, cfg.Vocab)
				}
			}
		}
	default:
		return nil, taskErrorf("sweep: unknown metric %d", task.Metric)
	}
	e := &Engine{m: m, task: task, opt: opt}
	e.tn, e.from = task.T-1, task.LossFrom
	if task.Metric == LogitDiff {
		e.tn, e.from = task.Pos+1, task.Pos
	}
	for b := 0; b < task.B; b++ {
		e.tok = append(e.tok, task.Tokens[b*task.T:b*task.T+e.tn]...)
	}
	var err error
	if e.K, err = e.passSize(); err != nil {
		return nil, err
	}
	if err := e.baseline(); err != nil {
		e.Close()
		return nil, err
	}
	e.hooks = &forward.Hooks{}
	e.hooks.Replace("blocks.*.attn.hook_z", func(a *forward.Act) error {
		if e.cur.heads == nil || a.Layer() != e.cur.layer {
			return nil
		}
		return a.BE.AblateHeads(a.M, e.cur.heads[:a.B*m.Cfg.Heads], m.Cfg.Heads, a.T, e.cur.fillZ)
	})
	e.hooks.Replace("blocks.*.hook_attn_out", func(a *forward.Act) error {
		if e.cur.attn == nil || a.Layer() != e.cur.layer {
			return nil
		}
		return a.BE.AblateRows(a.M, e.cur.attn[:a.B], a.T, e.cur.fillAttn)
	})
	e.hooks.Replace("blocks.*.hook_mlp_out", func(a *forward.Act) error {
		if e.cur.mlp == nil || a.Layer() != e.cur.layer {
			return nil
		}
		return a.BE.AblateRows(a.M, e.cur.mlp[:a.B], a.T, e.cur.fillMLP)
	})
	return e, nil
}

// passSize returns K, the configurations per pass: Options.Chunk when set,
// else as many as Options.MaxMemory holds. A budget below one
// configuration's activations is a *TaskError naming both figures (the
// command line exits with status 2): running anyway, one configuration per
// pass, would silently use more memory than the user allowed.
func (e *Engine) passSize() (int, error) {
	one := e.ConfigBytes()
	if e.opt.MaxMemory <= 0 {
		e.opt.MaxMemory = max(DefaultMaxMemory, one)
	}
	if e.opt.Chunk > 0 {
		return e.opt.Chunk, nil
	}
	if e.opt.MaxMemory < one {
		c := e.m.Cfg
		return 0, taskErrorf("sweep: --max-memory %s is below the activations of one configuration on this model and task: %s (%d token rows x (9 x d_model %d + d_mlp %d) float32, doubled), on top of the weights; allow at least %s",
			FormatBytes(e.opt.MaxMemory), FormatBytes(one), e.task.B*e.tn, c.DModel, c.DMLP, FormatBytes(one))
	}
	return int(e.opt.MaxMemory / one), nil
}

// FormatBytes writes a byte count the way --max-memory reads it back: in
// bytes below 1 MiB, else in MiB (GiB from 1 GiB) rounded up to 0.1, so
// that a figure printed as a minimum is enough.
func FormatBytes(n int64) string {
	switch {
	case n < 1<<20:
		return fmt.Sprintf("%dB", n)
	case n >= 1<<30:
		return fmt.Sprintf("%.1fGiB", math.Ceil(float64(n)/(1<<30)*10)/10)
	}
	return fmt.Sprintf("%.1fMiB", math.Ceil(float64(n)/(1<<20)*10)/10)
}

// ConfigBytes estimates the activation memory one configuration adds to a
// pass: B*tn token rows, each with the forward pass's buffers (residual,
// final norm, LN output, q, k, v, z, attention and MLP outputs: 9 C floats,
// plus F for the MLP hidden layer), twice over because the state of the
// previous block is alive while the next is filled when prefixes split.
func (e *Engine) ConfigBytes() int64 {
	c := e.m.Cfg
	return 2 * 4 * int64(9*c.DModel+c.DMLP) * int64(e.task.B*e.tn)
}

// Close frees the cached tensors.
func (e *Engine) Close() {
	if e.p != nil {
		e.p.close(e.m.BE)
		e.p = nil
	}
	e.sh.free(e.m.BE)
	e.sh = nil
	for _, ts := range [][]backend.Tensor{e.resid, e.fillZ, e.fillAttn, e.fillMLP, {e.fillAttnTail, e.fillMLPTail}} {
		for _, t := range ts {
			if t != nil {
				e.m.BE.Free(t)
			}
		}
	}
	e.resid, e.fillZ, e.fillAttn, e.fillMLP, e.fillAttnTail, e.fillMLPTail = nil, nil, nil, nil, nil, nil
}

func (e *Engine) baseline() error {
	m, be, t := e.m, e.m.BE, e.task
	L, C := m.Cfg.Layers, m.Cfg.DModel
	s, err := m.Start(e.tok, t.B, e.tn, nil)
	if err != nil {
		return err
	}
	defer s.Close()
	var h *forward.Hooks
	if e.opt.Mode == Mean {
		h = (&forward.Hooks{}).Observe("blocks.*.attn.hook_z", "blocks.*.hook_attn_out", "blocks.*.hook_mlp_out")
		e.fillZ, e.fillAttn, e.fillMLP = make([]backend.Tensor, L), make([]backend.Tensor, L), make([]backend.Tensor, L)
	}
	e.resid = make([]backend.Tensor, L)
	for l := 0; l < L; l++ {
		if e.resid[l], err = be.New(t.B*e.tn, C); err != nil {
			return err
		}
		if err := be.Copy(backend.Whole(e.resid[l]), backend.Whole(s.Resid)); err != nil {
			return err
		}
		if err := m.Blocks(s, l, l+1, h); err != nil {
			return err
		}
		if h == nil {
			continue
		}
		for _, p := range []struct {
			name string
			dst  *backend.Tensor
		}{
			{fmt.Sprintf("blocks.%d.attn.hook_z", l), &e.fillZ[l]},
			{fmt.Sprintf("blocks.%d.hook_attn_out", l), &e.fillAttn[l]},
			{fmt.Sprintf("blocks.%d.hook_mlp_out", l), &e.fillMLP[l]},
		} {
			a := h.Cache[p.name]
			if a == nil {
				return fmt.Errorf("sweep: mean ablation: %s was not observed", p.name)
			}
			mean := positionMean(a.Data, t.B, e.tn)
			D := len(mean) / e.tn
			if *p.dst, err = be.Upload(mean, e.tn, D); err != nil {
				return err
			}
			if l < L-1 || e.from == 0 {
				continue
			}
			switch p.dst {
			case &e.fillAttn[l]:
				e.fillAttnTail, err = be.Upload(mean[e.from*D:], e.tn-e.from, D)
			case &e.fillMLP[l]:
				e.fillMLPTail, err = be.Upload(mean[e.from*D:], e.tn-e.from, D)
			}
			if err != nil {
				return err
			}
		}
		h.Cache = nil
	}
	if err := m.FinalNorm(s, nil); err != nil {
		return err
	}
	rows, err := e.rowMetric(s, 1)
	if err != nil {
		return err
	}
	e.Baseline = forward.Mean(rows)
	return nil
}

// positionMean averages x [B*T, D] over the B rows: out [T, D], summed in
// float64 (the TransformerLens idiom cache[name].mean(0)).
func positionMean(x []float32, B, T int) []float32 {
	D := len(x) / (B * T)
	acc := make([]float64, T*D)
	for b := 0; b < B; b++ {
		for i, v := range x[b*T*D : (b+1)*T*D] {
			acc[i] += float64(v)
		}
	}
	out := make([]float32, T*D)
	for i, v := range acc {
		out[i] = float32(v / float64(B))
	}
	return out
}

// rowMetric returns the metric of each of the s.B rows (s holds G copies of
// the task's B prompts, cut to tn positions, G = s.B/B), through one
// LogitStats reduction over only the positions the metric reads. Targets
// come from the uncut prompts. The loss of a row is the mean of its
// per-position losses (lse - logit of the next token), in float64.
func (e *Engine) rowMetric(s *forward.State, G int) ([]float64, error) {
	t, tn := e.task, e.tn
	R := G * t.B
	var rows, idx []int32
	if t.Metric == Loss {
		for r := 0; r < R; r++ {
			b := r % t.B
			for p := t.LossFrom; p <= t.T-2; p++ {
				rows = append(rows, int32(r*tn+p))
				idx = append(idx, t.Tokens[b*t.T+p+1])
			}
		}
	} else {
		for r := 0; r < R; r++ {
			rows = append(rows, int32(r*tn+t.Pos))
			idx = append(idx, t.A[r%t.B], t.C[r%t.B])
		}
	}
	lse := make([]float32, len(rows))
	g := make([]float32, len(idx))
	if err := e.m.BE.LogitStats(backend.Whole(s.Final), e.m.Unembed(), rows, idx, lse, g); err != nil {
		return nil, err
	}
	out := make([]float64, R)
	if t.Metric == LogitDiff {
		for r := range out {
			out[r] = float64(g[2*r]) - float64(g[2*r+1])
		}
		return out, nil
	}
	n := len(rows) / R
	for r := range out {
		var sum float64
		for i := r * n; i < (r+1)*n; i++ {
			sum += float64(lse[i]) - float64(g[i])
		}
		out[r] = sum / float64(n)
	}
	return out, nil
}

// abl is what one configuration ablates in one layer.
type abl struct {
	heads     uint64 // bit h: head h
	attn, mlp bool
}

func (a abl) empty() bool { return a.heads == 0 && !a.attn && !a.mlp }

func (a abl) less(b abl) bool {
	if a.heads != b.heads {
		return a.heads < b.heads
	}
	if a.attn != b.attn {
		return !a.attn
	}
	return !a.mlp && b.mlp
}

func (e *Engine) perLayer(c Config) []abl {
	out := make([]abl, e.m.Cfg.Layers)
	for _, x := range c {
		switch x.Kind {
		case Head:
			out[x.Layer].heads |= 1 << x.Head
		case Attn:
			out[x.Layer].attn = true
		case MLP:
			out[x.Layer].mlp = true
		}
	}
	return out
}

// Plan orders configurations by the first layer they touch and then as
// the leaves of a prefix tree over layers (lexicographic in their per-layer
// ablations, layer 0 first, "nothing ablated" first), so that
// configurations sharing the ablations of their first layers are
// neighbours, and cuts that order into chunks of at most K that never mix
// first layers. Mixing would share nothing (configurations that differ in
// their first touched layer have no common work beyond the cached
// residual), and keeping them apart lets a chunk of singles run as one
// fixed-size pass from its first layer to the end, reusing its buffers.
// The plan depends only on cfgs and K, so a resumed run re-forms the same
// chunks and computes bit-identical numbers.
func (e *Engine) Plan(cfgs []Config) [][]int {
	if e.p != nil {
		return e.planPatch(cfgs)
	}
	L := e.m.Cfg.Layers
	keys := make([][]abl, len(cfgs))
	first := make([]int, len(cfgs))
	order := make([]int, len(cfgs))
	for i, c := range cfgs {
		keys[i] = e.perLayer(c)
		first[i] = L
		for l, a := range keys[i] {
			if !a.empty() {
				first[i] = l
				break
			}
		}
		order[i] = i
	}
	sort.SliceStable(order, func(x, y int) bool {
		i, j := order[x], order[y]
		if first[i] != first[j] {
			return first[i] < first[j]
		}
		a, b := keys[i], keys[j]
		for l := range a {
			if a[l] != b[l] {
				return a[l].less(b[l])
			}
		}
		return false
	})
	var chunks [][]int
	for lo := 0; lo < len(order); {
		hi := lo + 1
		for hi < len(order) && hi-lo < e.K && first[order[hi]] == first[order[lo]] {
			hi++
		}
		chunks = append(chunks, order[lo:hi])
		lo = hi
	}
	return chunks
}

// Eval returns the metric of each configuration (the unablated one gets
// Baseline). It runs one pass over the configurations, whatever their
// number: callers cut work into chunks with Plan.
//
// The pass is a prefix tree walked layer by layer: before block l each
// configuration belongs to a group, the set of configurations that ablated
// exactly the same things in blocks < l (and so have the same residual
// stream); configurations that ablated nothing yet belong to no group and
// are read from the cached unablated residual. Groups split where their
// members ablate different things in block l; the pass holds B rows per
// group, built by copying the parent's rows, and runs block l once on all
// of them with per-row keep masks (AblateHeads at hook_z, AblateRows at
// hook_attn_out and hook_mlp_out). After the last block one LogitStats
// reduction reads only the positions the metric needs.
func (e *Engine) Eval(cfgs []Config) ([]float64, error) {
	if e.p != nil {
		return e.evalPatch(cfgs)
	}
	for _, c := range cfgs {
		for _, x := range c {
			if x.Kind > MLP {
				return nil, fmt.Errorf("sweep: %s: positions and edges need a patching sweep (--mode noise or denoise)", x)
			}
		}
	}
	m, be, t := e.m, e.m.BE, e.task
	L, NH := m.Cfg.Layers, m.Cfg.Heads
	B, T := t.B, e.tn
	keys := make([][]abl, len(cfgs))
	for i, c := range cfgs {
		keys[i] = e.perLayer(c)
	}
	gid := make([]int, len(cfgs)) // group before the current block; -1: still unablated
	for i := range gid {
		gid[i] = -1
	}
	type node struct {
		parent int
		a      abl
		self   int // NoShare: the configuration owning the group
	}
	var s *forward.State
	defer func() {
		if s != nil {
			s.Close()
		}
	}()
	active, capacity := 0, 0 // groups in use, group slots in s
	for l := 0; l < L; l++ {
		// Number this block's groups: the first child of an existing group
		// keeps its slot (its rows are already in place); other children
		// and groups leaving the unablated stream get new slots after the
		// active ones, in configuration order.
		gs := newGroupSlots[node](active)
		abls := make([]abl, active)
		next := make([]int, len(cfgs))
		add := func(i int, n node) {
			g, appended := gs.assign(n.parent, n)
			if appended {
				abls = append(abls, abl{})
			}
			abls[g] = n.a
			next[i] = g
		}
		for i := range cfgs {
			if gid[i] >= 0 {
				add(i, node{parent: gid[i], a: keys[i][l], self: -1})
			}
		}
		for i := range cfgs {
			if gid[i] >= 0 {
				continue
			}
			a := keys[i][l]
			n := node{parent: -1, a: a, self: -1}
			if e.opt.NoShare {
				n.self = i // every configuration its own pass from the embedding
			} else if a.empty() {
				next[i] = -1
				continue
			}
			add(i, n)
		}
		gid = next
		parents := gs.parents
		fresh := active == 0 // every group of this block starts from the cached residual
		grown := active + len(parents)
		if grown == 0 {
			continue
		}
		if grown > capacity {
			// A bigger state, its size taken from a short ladder (see
			// slots) so that few distinct sizes are ever allocated.
			c := e.slots(grown)
			ns, err := m.Start(repeatTokens(e.tok, c), c*B, T, nil)
			if err != nil {
				return nil, err
			}
			if active > 0 {
				if err := be.Copy(backend.Whole(ns.Resid).RowSlice(0, active*B*T), backend.Whole(s.Resid).RowSlice(0, active*B*T)); err != nil {
					ns.Close()
					return nil, err
				}
			}
			if s != nil {
				s.Close()
			}
			s, capacity = ns, c
		}
		for k, p := range parents {
			src := backend.Whole(e.resid[l])
			if p >= 0 {
				src = backend.Whole(s.Resid).RowSlice(p*B*T, B*T)
			}
			if err := be.Copy(backend.Whole(s.Resid).RowSlice((active+k)*B*T, B*T), src); err != nil {
				return nil, err
			}
		}
		active = grown
		// Sharing (not in NoShare passes, which measure the plain loop):
		// the last block computes only the positions the metric reads, and
		// a block whose groups all start here from the cached residual
		// takes the unablated attention output, computed once, minus the
		// ablated heads' share (firstAttnOut).
		var o forward.BlockOpts
		if !e.opt.NoShare {
			if l == L-1 {
				o.From = e.from
			}
			if fresh {
				sh, err := e.shared(l)
				if err != nil {
					return nil, err
				}
				o.AttnOut = func(ao backend.Mat) error { return e.firstAttnOut(ao, sh, abls) }
			}
		}
		e.cur = layerAblation{layer: l}
		if e.opt.Mode == Mean {
			e.cur.fillZ, e.cur.fillAttn, e.cur.fillMLP = e.fillZ[l], e.fillAttn[l], e.fillMLP[l]
			if o.From > 0 {
				e.cur.fillAttn, e.cur.fillMLP = e.fillAttnTail, e.fillMLPTail
			}
		}
		for g, a := range abls {
			if a.heads != 0 && e.cur.heads == nil {
				e.cur.heads = ones(capacity * B * NH)
			}
			if a.attn && e.cur.attn == nil {
				e.cur.attn = ones(capacity * B)
			}
			if a.mlp && e.cur.mlp == nil {
				e.cur.mlp = ones(capacity * B)
			}
			for r := g * B; r < (g+1)*B; r++ {
				for h := 0; h < NH; h++ {
					if a.heads>>h&1 == 1 {
						e.cur.heads[r*NH+h] = 0
					}
				}
				if a.attn {
					e.cur.attn[r] = 0
				}
				if a.mlp {
					e.cur.mlp[r] = 0
				}
			}
		}
		// Slots past active (ladder padding) are skipped: the block runs on
		// the active groups' rows only.
		if err := s.Narrow(active * B); err != nil {
			return nil, err
		}
		err := m.Block(s, l, e.hooks, o)
		e.cur = layerAblation{}
		if err != nil {
			return nil, err
		}
	}
	out := make([]float64, len(cfgs))
	var rows []float64
	if s != nil {
		if err := m.FinalNorm(s, nil); err != nil {
			return nil, err
		}
		var err error
		if rows, err = e.rowMetric(s, active); err != nil {
			return nil, err
		}
	}
	return e.groupMeans(cfgs, gid, rows, out)
}

// sharedAttn is the unablated attention of layer l on the task's B rows:
// ao = hook_attn_out [B*tn, C] and dz = fill - hook_z [B*tn, NH*HS], what
// ablating a head changes z by (fill: zero, or the mean-mode fill).
type sharedAttn struct {
	l      int
	ao, dz backend.Tensor
}

func (sh *sharedAttn) free(be backend.Backend) {
	if sh != nil {
		be.Free(sh.ao)
		be.Free(sh.dz)
	}
}

// shared returns layer l's unablated attention (sharedAttn), computing it
// from the cached residual unless the last call was for l too (Plan's
// chunks come in order of their first layer).
func (e *Engine) shared(l int) (*sharedAttn, error) {
	if e.sh != nil && e.sh.l == l {
		return e.sh, nil
	}
	e.sh.free(e.m.BE)
	e.sh = nil
	m, be, B, T := e.m, e.m.BE, e.task.B, e.tn
	C := m.Cfg.DModel
	s, err := m.Start(e.tok, B, T, nil)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	if err := be.Copy(backend.Whole(s.Resid), backend.Whole(e.resid[l])); err != nil {
		return nil, err
	}
	z, ao, err := m.Attention(s, l, nil)
	if err != nil {
		return nil, err
	}
	dz := make([]float32, B*T*C)
	if err := be.DownloadMat(dz, z); err != nil {
		return nil, err
	}
	fill := make([]float32, T*C) // zero ablation: z becomes 0
	if e.opt.Mode == Mean {
		if err := be.Download(fill, e.fillZ[l]); err != nil {
			return nil, err
		}
	}
	for i := range dz {
		dz[i] = fill[i%(T*C)] - dz[i]
	}
	sh := &sharedAttn{l: l}
	if sh.dz, err = be.Upload(dz, B*T, C); err != nil {
		return nil, err
	}
	if sh.ao, err = be.New(B*T, C); err == nil {
		err = be.Copy(backend.Whole(sh.ao), ao)
	}
	if err != nil {
		sh.free(be)
		return nil, err
	}
	e.sh = sh
	return sh, nil
}

// firstAttnOut writes the attention output of every group of a block whose
// groups all start from the cached residual (so share its q, k, v and
// attention): group g's rows get sh.ao + sum over its ablated heads h of
// dz_h @ W_O[h], which is z @ W_O + b_O with head h's z replaced, since the
// output projection is linear in z (exact up to float32 rounding). A
// group that ablates the whole attention output is left to the
// hook_attn_out replacement.
func (e *Engine) firstAttnOut(ao backend.Mat, sh *sharedAttn, abls []abl) error {
	m, be := e.m, e.m.BE
	R := e.task.B * e.tn
	if ao.Rows != len(abls)*R {
		return fmt.Errorf("sweep: %d rows of attention output for %d groups of %d", ao.Rows, len(abls), R)
	}
	for g, a := range abls {
		dst := ao.RowSlice(g*R, R)
		if err := be.Copy(dst, backend.Whole(sh.ao)); err != nil {
			return err
		}
		if a.attn {
			continue
		}
		for h := 0; h < m.Cfg.Heads; h++ {
			if a.heads>>h&1 == 1 {
				if err := m.HeadOut(dst, backend.Whole(sh.dz), sh.l, h, true); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// groupMeans fills out[i] with the mean over the B rows of configuration
// i's group (gid[i]; -1: the unablated baseline) and refuses a NaN.
func (e *Engine) groupMeans(cfgs []Config, gid []int, rows, out []float64) ([]float64, error) {
	B := e.task.B
	for i, g := range gid {
		if g < 0 {
			out[i] = e.Baseline
			continue
		}
		out[i] = forward.Mean(rows[g*B : (g+1)*B])
		if math.IsNaN(out[i]) {
			return nil, fmt.Errorf("sweep: configuration %s gave NaN", cfgs[i])
		}
	}
	return out, nil
}

// slots is the number of group slots a pass needing g groups allocates:
// the smallest rung >= g of the ladder 1, 2, 3, 4, 5, 7, 9, 12, 15, 19, ...
// (each rung max(r+1, ceil(1.25 r))), but not past max(g, K). Exact sizes
// would make every pass of a pairs sweep a new size; backends that keep
// freed buffers for reuse by size (the CPU backend keeps up to 16 of each)
// would then hold dozens of gigabytes. With the ladder the sizes in use
// number about log_1.25(K) and their sum is about 5K groups, so such a pool
// holds at most about 2.5x the --max-memory budget (singles use one size);
// at most a quarter of a pass is padding.
func (e *Engine) slots(g int) int {
	r := 1
	for r < g {
		r = max(r+1, (5*r+3)/4)
	}
	return min(r, max(g, e.K))
}

func ones(n int) []uint8 {
	k := make([]uint8, n)
	for i := range k {
		k[i] = 1
	}
	return k
}

func repeatTokens(tok []int32, n int) []int32 {
	out := make([]int32, 0, n*len(tok))
	for i := 0; i < n; i++ {
		out = append(out, tok...)
	}
	return out
}

// groupSlots numbers the groups of one block of a prefix-tree pass (Eval,
// evalPatch): configurations with the same history so far and the same
// node key in this block share a group. The first child of an existing
// group keeps its slot (its rows are already in place); other children and
// groups leaving the unablated stream get new slots after the active ones,
// in the order they are assigned.
type groupSlots[K comparable] struct {
	active  int
	slot    map[K]int
	kept    []bool
	parents []int // of the new slots active, active+1, ...: a slot, or -1 for the cached residual
}

func newGroupSlots[K comparable](active int) *groupSlots[K] {
	return &groupSlots[K]{active: active, slot: map[K]int{}, kept: make([]bool, active)}
}

// assign returns the group of node key whose group before this block is
// parent (-1: the cached stream); appended says it is a new slot at the end.
func (s *groupSlots[K]) assign(parent int, key K) (g int, appended bool) {
	if g, ok := s.slot[key]; ok {
		return g, false
	}
	g = s.active + len(s.parents)
	if parent >= 0 && !s.kept[parent] {
		g = parent
		s.kept[g] = true
	} else {
		s.parents = append(s.parents, parent)
		appended = true
	}
	s.slot[key] = g
	return g, appended
}
