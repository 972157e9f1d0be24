package circuit

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"

	"github.com/neoscope/neoscope/runtime/backend"
	"github.com/neoscope/neoscope/runtime/forward"
	"github.com/neoscope/neoscope/runtime/graph"
)

// Task is what circuits are scored on: B clean rows of T tokens, their
// corrupt counterparts, and (for ld) one io and one s answer id per row.
type Task struct {
	Clean, Corrupt []int32 // [B*T], validated by the caller (forward.Model.CheckTokens)
	B, T           int
	IO, S          []int32 // [B]; needed for LD only
	Metric         Metric
}

// Check validates the task's shapes against the model.
func (t Task) Check(m *forward.Model) error {
	if t.B < 1 || t.T < 1 || len(t.Clean) != t.B*t.T || len(t.Corrupt) != t.B*t.T {
		return fmt.Errorf("circuit task: %d clean and %d corrupt ids for B=%d rows of T=%d tokens", len(t.Clean), len(t.Corrupt), t.B, t.T)
	}
	if _, err := ParseMetric(string(t.Metric)); err != nil {
		return err
	}
	if t.Metric == LD {
		if len(t.IO) != t.B || len(t.S) != t.B {
			return fmt.Errorf("circuit task: metric ld needs one io and one s id per row: %d and %d for %d rows", len(t.IO), len(t.S), t.B)
		}
	}
	for _, ids := range [][]int32{t.IO, t.S} {
		for _, id := range ids {
			if id < 0 || int(id) >= m.Cfg.Vocab {
				return fmt.Errorf("circuit task: answer id %d outside the vocabulary [0, %d)", id, m.Cfg.Vocab)
			}
		}
	}
	return nil
}

// HookEvaluator scores circuits with plain forward passes and replace hooks:
// the circuits of one pass are stacked as batch rows (circuit c holds rows
// c*B..c*B+B-1), sender outputs of the running pass are read at hook_z (heads,
// times their W_O rows) and hook_mlp_out, and each receiver that has removed
// edges gets its input rebuilt on the host: the residual it reads minus, for
// every removed edge S>R, out_S(this run) - out_S(corrupt); a head's q, k or
// v is recomputed from it through ln_1 and that head's projection, an MLP's
// ln2.hook_normalized (from resid_mid, or resid_pre in a parallel-residual
// block) and ln_final.hook_normalized from their LayerNorms. q and k are
// replaced at hook_q/hook_k, before a rotary family's rotation, which the
// block then applies to them as to every head.
// It is the independent reference for the batched engine and slow on large
// models (host loops over every removed edge).
type HookEvaluator struct {
	m     *forward.Model
	g     *graph.Graph
	t     Task
	batch int
	C, HS int
	// host weights
	ln1W, ln1B, ln2W, ln2B [][]float32
	lnfW, lnfB             []float32
	qkv                    [][3][]float32 // [L][q,k,v] W [C, C] x@W layout
	qkvB                   [][3][]float32
	wo                     [][][]float32 // [L][H] [HS, C]
	// corrupt sender outputs [B*T*C] by sender index; clean embedding
	outK      [][]float32
	embClean  []float32
	cleanLogp [][]float64 // [B][V] log-softmax of the full model at the last position (kl)
	senderOf  []int       // edge -> sender index
}

// NewHookEvaluator runs the corrupt prompts once (sender outputs) and the
// clean ones once (the full model's distribution); batch is how many circuits
// one pass carries.
func NewHookEvaluator(m *forward.Model, g *graph.Graph, t Task, batch int) (*HookEvaluator, error) {
	if g.Layers != m.Cfg.Layers || g.Heads != m.Cfg.Heads {
		return nil, fmt.Errorf("circuit: graph of %d layers x %d heads for a model of %d x %d", g.Layers, g.Heads, m.Cfg.Layers, m.Cfg.Heads)
	}
	if err := checkLayout(m, g); err != nil {
		return nil, err
	}
	if err := t.Check(m); err != nil {
		return nil, err
	}
	if batch < 1 {
		batch = 1
	}
	L, H := m.Cfg.Layers, m.Cfg.Heads
	e := &HookEvaluator{m: m, g: g, t: t, batch: batch, C: m.Cfg.DModel, HS: m.Cfg.DHead}
	var err error
	if e.lnfW, e.lnfB, err = m.HostLN(0, "ln_f"); err != nil {
		return nil, err
	}
	for l := 0; l < L; l++ {
		w1, b1, err := m.HostLN(l, "ln_1")
		if err != nil {
			return nil, err
		}
		w2, b2, err := m.HostLN(l, "ln_2")
		if err != nil {
			return nil, err
		}
		e.ln1W, e.ln1B = append(e.ln1W, w1), append(e.ln1B, b1)
		e.ln2W, e.ln2B = append(e.ln2W, w2), append(e.ln2B, b2)
		var ws, bs [3][]float32
		for i, c := range []byte{'q', 'k', 'v'} {
			if ws[i], bs[i], err = m.HostQKV(l, c); err != nil {
				return nil, err
			}
		}
		e.qkv, e.qkvB = append(e.qkv, ws), append(e.qkvB, bs)
		wl := make([][]float32, H)
		for h := range wl {
			wl[h] = m.WOut(l, h)
		}
		e.wo = append(e.wo, wl)
	}
	e.senderOf = make([]int, len(g.Edges))
	for i, ed := range g.Edges {
		e.senderOf[i], _ = g.SenderIndex(ed.S.String())
	}
	// Sender outputs on the corrupt prompts and the clean embedding.
	if e.outK, err = e.senderOutputs(t.Corrupt); err != nil {
		return nil, err
	}
	clean, err := e.senderOutputs(t.Clean)
	if err != nil {
		return nil, err
	}
	e.embClean = clean[0]
	if t.Metric == KL {
		lg, err := e.pass([][]bool{nil}) // the full model
		if err != nil {
			return nil, err
		}
		for b := 0; b < t.B; b++ {
			e.cleanLogp = append(e.cleanLogp, logSoftmax(lg[b]))
		}
	}
	return e, nil
}

// checkLayout refuses a graph built for another residual layout than the
// model's (graph.New(L, H, m.Cfg.ParallelAt) is the model's own): its MLP
// edges would read the wrong residual.
func checkLayout(m *forward.Model, g *graph.Graph) error {
	for l := range g.Parallel {
		if g.Parallel[l] != m.Cfg.ParallelAt(l) {
			return fmt.Errorf("circuit: the graph's block %d is %s but the model's is %s (build it with graph.New(layers, heads, cfg.ParallelAt))",
				l, layoutName(g.Parallel[l]), layoutName(m.Cfg.ParallelAt(l)))
		}
	}
	return nil
}

func layoutName(parallel bool) string {
	if parallel {
		return "parallel-residual"
	}
	return "sequential"
}

// Batch is the number of circuits one pass carries.
func (e *HookEvaluator) Batch() int { return e.batch }

// Eval scores circuits, Batch() per forward pass.
func (e *HookEvaluator) Eval(removed [][]bool) ([]float64, error) {
	out := make([]float64, 0, len(removed))
	for lo := 0; lo < len(removed); lo += e.batch {
		cs := removed[lo:min(lo+e.batch, len(removed))]
		for _, c := range cs {
			if c != nil && len(c) != len(e.g.Edges) {
				return nil, fmt.Errorf("circuit: a circuit of %d edge flags for a graph of %d edges", len(c), len(e.g.Edges))
			}
		}
		lg, err := e.pass(cs)
		if err != nil {
			return nil, err
		}
		B := e.t.B
		for c := range cs {
			var s float64
			for b := 0; b < B; b++ {
				row := lg[c*B+b]
				if e.t.Metric == KL {
					s += kl(e.cleanLogp[b], logSoftmax(row))
				} else {
					s += float64(row[e.t.IO[b]]) - float64(row[e.t.S[b]])
				}
			}
			out = append(out, s/float64(B))
		}
	}
	return out, nil
}

// senderOutputs runs tokens through the plain model and returns every
// sender's output [B*T*C] by sender index (embed, heads z_h @ W_O rows, MLPs).
func (e *HookEvaluator) senderOutputs(tokens []int32) ([][]float32, error) {
	m, g := e.m, e.g
	h := (&forward.Hooks{}).Observe("blocks.0.hook_resid_pre", "blocks.*.attn.hook_z", "blocks.*.hook_mlp_out")
	s, _, err := m.Run(tokens, e.t.B, e.t.T, h, false)
	if err != nil {
		return nil, err
	}
	s.Close()
	out := make([][]float32, len(g.Senders))
	N := e.t.B * e.t.T
	for si, sn := range g.Senders {
		switch sn.Kind {
		case graph.Embed:
			out[si] = h.Cache["blocks.0.hook_resid_pre"].Data
		case graph.MLP:
			out[si] = h.Cache[fmt.Sprintf("blocks.%d.hook_mlp_out", sn.Layer)].Data
		case graph.Head:
			out[si] = e.headOut(h.Cache[fmt.Sprintf("blocks.%d.attn.hook_z", sn.Layer)].Data, N, sn.Layer, sn.Head)
		}
	}
	return out, nil
}

// headOut is z[:, head h] @ W_O rows of h: [N, C] from z [N, C].
func (e *HookEvaluator) headOut(z []float32, N, l, h int) []float32 {
	C, HS := e.C, e.HS
	out := make([]float32, N*C)
	blas32.Gemm(blas.NoTrans, blas.NoTrans, 1,
		blas32.General{Rows: N, Cols: HS, Stride: C, Data: z[h*HS:]},
		blas32.General{Rows: HS, Cols: C, Stride: C, Data: e.wo[l][h]},
		0, blas32.General{Rows: N, Cols: C, Stride: C, Data: out})
	return out
}

// passState is what one pass of k stacked circuits keeps on the host.
type passState struct {
	cs   [][]bool
	k, N int               // circuits, rows (k*B*T)
	diff map[int][]float32 // sender index -> out(this run) - out(corrupt), [N*C]
	pre  []float32         // current layer's hook_resid_pre [N*C]
	mid  []float32         // current layer's hook_resid_mid
	post []float32         // last layer's hook_resid_post
	need []bool            // sender index -> removed somewhere in the batch
}

// removedInto lists, for circuit c, the senders of removed edges into receiver ri.
func (e *HookEvaluator) removedInto(p *passState, c, ri int) []int {
	if p.cs[c] == nil {
		return nil
	}
	var out []int
	lo, hi := e.g.In[ri][0], e.g.In[ri][1]
	for ed := lo; ed < hi; ed++ {
		if p.cs[c][ed] {
			out = append(out, e.senderOf[ed])
		}
	}
	return out
}

// patchedInput is circuit c's rows of x minus the diffs of senders; nil if
// senders is empty.
func (e *HookEvaluator) patchedInput(p *passState, x []float32, c int, senders []int) []float32 {
	if len(senders) == 0 {
		return nil
	}
	n := e.t.B * e.t.T * e.C
	out := append([]float32(nil), x[c*n:(c+1)*n]...)
	y := blas32.Vector{N: n, Inc: 1, Data: out}
	for _, si := range senders {
		blas32.Axpy(-1, blas32.Vector{N: n, Inc: 1, Data: p.diff[si][c*n : (c+1)*n]}, y)
	}
	return out
}

// layerNorm normalises each row of x [rows, C] in place (float64 sums) and
// applies w, b.
func (e *HookEvaluator) layerNorm(x []float32, w, b []float32) {
	C := e.C
	eps := e.m.Cfg.LNEps
	for r := 0; r < len(x)/C; r++ {
		row := x[r*C : (r+1)*C]
		var mean, v float64
		for _, a := range row {
			mean += float64(a)
		}
		mean /= float64(C)
		for _, a := range row {
			d := float64(a) - mean
			v += d * d
		}
		inv := 1 / math.Sqrt(v/float64(C)+eps)
		for j := range row {
			row[j] = float32((float64(row[j])-mean)*inv*float64(w[j]) + float64(b[j]))
		}
	}
}

// pass runs the clean prompts once with len(cs) circuits stacked and returns
// the logits at the last position of every stacked row: [k*B][V].
func (e *HookEvaluator) pass(cs [][]bool) ([][]float32, error) {
	m, g, t := e.m, e.g, e.t
	C, HS, L, H := e.C, e.HS, m.Cfg.Layers, m.Cfg.Heads
	k := len(cs)
	BT := t.B * t.T
	p := &passState{cs: cs, k: k, N: k * BT, diff: map[int][]float32{}, need: make([]bool, len(g.Senders))}
	for _, c := range cs {
		for ed, rm := range c {
			if rm {
				p.need[e.senderOf[ed]] = true
			}
		}
	}
	setDiff := func(si int, cur []float32) {
		d := make([]float32, p.N*C)
		K := e.outK[si]
		for r := 0; r < p.N; r++ {
			kr := K[(r%BT)*C : (r%BT+1)*C]
			cr, dr := cur[r*C:(r+1)*C], d[r*C:(r+1)*C]
			for j := range dr {
				dr[j] = cr[j] - kr[j]
			}
		}
		p.diff[si] = d
	}
	if p.need[0] { // embed: the clean embedding in every circuit
		emb := make([]float32, p.N*C)
		for c := 0; c < k; c++ {
			copy(emb[c*BT*C:], e.embClean)
		}
		setDiff(0, emb)
	}
	down := func(a *forward.Act) ([]float32, error) {
		d := make([]float32, a.M.Rows*a.M.Cols)
		return d, a.BE.DownloadMat(d, a.M)
	}
	up := func(a *forward.Act, d []float32) error {
		tt, err := a.BE.Upload(d, a.M.Rows, a.M.Cols)
		if err != nil {
			return err
		}
		defer a.BE.Free(tt)
		return a.BE.Copy(a.M, backend.Whole(tt))
	}
	recv := func(n graph.Node) int {
		ri, _ := g.ReceiverIndex(n.String())
		return ri
	}
	h := &forward.Hooks{}
	h.Replace("blocks.*.hook_resid_pre", func(a *forward.Act) (err error) {
		p.pre, err = down(a)
		return err
	})
	sequential := false
	for _, par := range g.Parallel {
		sequential = sequential || !par
	}
	if sequential { // a parallel-residual block has no hook_resid_mid
		h.Replace("blocks.*.hook_resid_mid", func(a *forward.Act) (err error) {
			p.mid, err = down(a)
			return err
		})
	}
	h.Replace(fmt.Sprintf("blocks.%d.hook_resid_post", L-1), func(a *forward.Act) (err error) {
		p.post, err = down(a)
		return err
	})
	h.Replace("blocks.*.attn.hook_z", func(a *forward.Act) error {
		l := a.Layer()
		var z []float32
		for hd := 0; hd < H; hd++ {
			si, _ := g.SenderIndex(graph.Node{Kind: graph.Head, Layer: l, Head: hd}.String())
			if !p.need[si] {
				continue
			}
			if z == nil {
				var err error
				if z, err = down(a); err != nil {
					return err
				}
			}
			setDiff(si, e.headOut(z, p.N, l, hd))
		}
		return nil
	})
	h.Replace("blocks.*.hook_mlp_out", func(a *forward.Act) error {
		si, _ := g.SenderIndex(graph.Node{Kind: graph.MLP, Layer: a.Layer()}.String())
		if !p.need[si] {
			return nil
		}
		cur, err := down(a)
		if err != nil {
			return err
		}
		setDiff(si, cur)
		return nil
	})
	for qi, qc := range []byte{'q', 'k', 'v'} {
		h.Replace("blocks.*.attn.hook_"+string(qc), func(a *forward.Act) error {
			l := a.Layer()
			var data []float32
			for c := 0; c < k; c++ {
				for hd := 0; hd < H; hd++ {
					snd := e.removedInto(p, c, recv(graph.Node{Kind: graph.Head, Layer: l, Head: hd, Input: qc}))
					x := e.patchedInput(p, p.pre, c, snd)
					if x == nil {
						continue
					}
					if data == nil {
						var err error
						if data, err = down(a); err != nil {
							return err
						}
					}
					e.layerNorm(x, e.ln1W[l], e.ln1B[l])
					W, bias := e.qkv[l][qi], e.qkvB[l][qi]
					NC := len(bias)
					// data rows of circuit c, head hd's columns = x @ W[:, hd] + b[hd]
					dst := blas32.General{Rows: BT, Cols: HS, Stride: C, Data: data[c*BT*C+hd*HS:]}
					for r := 0; r < BT; r++ {
						copy(dst.Data[r*C:r*C+HS], bias[hd*HS:hd*HS+HS])
					}
					blas32.Gemm(blas.NoTrans, blas.NoTrans, 1,
						blas32.General{Rows: BT, Cols: C, Stride: C, Data: x},
						blas32.General{Rows: C, Cols: HS, Stride: NC, Data: W[hd*HS:]},
						1, dst)
				}
			}
			if data == nil {
				return nil
			}
			return up(a, data)
		})
	}
	// An MLP's and the logits' inputs: LayerNorm of the patched residual.
	lnPatch := func(a *forward.Act, ri int, x []float32, w, b []float32) error {
		var data []float32
		for c := 0; c < k; c++ {
			in := e.patchedInput(p, x, c, e.removedInto(p, c, ri))
			if in == nil {
				continue
			}
			if data == nil {
				var err error
				if data, err = down(a); err != nil {
					return err
				}
			}
			e.layerNorm(in, w, b)
			copy(data[c*BT*C:(c+1)*BT*C], in)
		}
		if data == nil {
			return nil
		}
		return up(a, data)
	}
	h.Replace("blocks.*.ln2.hook_normalized", func(a *forward.Act) error {
		l := a.Layer()
		x := p.mid
		if g.Parallel[l] {
			x = p.pre
		}
		return lnPatch(a, recv(graph.Node{Kind: graph.MLP, Layer: l}), x, e.ln2W[l], e.ln2B[l])
	})
	h.Replace("ln_final.hook_normalized", func(a *forward.Act) error {
		return lnPatch(a, recv(graph.Node{Kind: graph.Logits}), p.post, e.lnfW, e.lnfB)
	})

	tokens := make([]int32, 0, p.N)
	for c := 0; c < k; c++ {
		tokens = append(tokens, t.Clean...)
	}
	s, _, err := m.Run(tokens, k*t.B, t.T, h, false)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return lastLogits(m, s)
}

// lastLogits computes the logits at the last position of every row of a
// finished pass: [B][V].
func lastLogits(m *forward.Model, s *forward.State) ([][]float32, error) {
	be, C, V := m.BE, m.Cfg.DModel, m.Cfg.Vocab
	fin := backend.Mat{T: s.Final, Rows: s.B * s.T, Cols: C, Stride: C}
	x := make([]float32, s.B*C)
	for b := 0; b < s.B; b++ {
		if err := be.DownloadMat(x[b*C:(b+1)*C], fin.RowSlice(b*s.T+s.T-1, 1)); err != nil {
			return nil, err
		}
	}
	xt, err := be.Upload(x, s.B, C)
	if err != nil {
		return nil, err
	}
	defer be.Free(xt)
	lt, err := be.New(s.B, V)
	if err != nil {
		return nil, err
	}
	defer be.Free(lt)
	if err := be.MatMul(backend.Whole(lt), backend.Whole(xt), m.Unembed(), true, nil, false); err != nil {
		return nil, err
	}
	flat := make([]float32, s.B*V)
	if err := be.Download(flat, lt); err != nil {
		return nil, err
	}
	out := make([][]float32, s.B)
	for b := range out {
		out[b] = flat[b*V : (b+1)*V]
	}
	return out, nil
}

func logSoftmax(x []float32) []float64 {
	mx := math.Inf(-1)
	for _, v := range x {
		mx = math.Max(mx, float64(v))
	}
	var s float64
	for _, v := range x {
		s += math.Exp(float64(v) - mx)
	}
	lse := mx + math.Log(s)
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v) - lse
	}
	return out
}

// kl is KL(p || q) from log-probabilities.
func kl(lp, lq []float64) float64 {
	var s float64
	for i, a := range lp {
		s += math.Exp(a) * (a - lq[i])
	}
	return s
}
