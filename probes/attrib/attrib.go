// Package attrib is attribution patching: first-order estimates of what
// patching a component (AtP, Nanda 2023) or one edge of the residual-stream
// graph (EAP, Syed et al. 2023) from a corrupt run into a clean run does to
// a metric, from one clean forward, one corrupt forward and one backward
// pass (runtime/forward's Tape).
//
// Definitions (../shared/fixtures/*/CIRCUITS.md), with M the mean over rows
// of the logit difference logits[b,pos,io_b] - logits[b,pos,s_b] on the
// clean run, all gradients taken on the clean run:
//
//	HeadZ[l][h]      = sum over rows, positions, d_head of (z_corrupt - z_clean) * dM/dz   (AtP)
//	HeadZPos[l][h][t] = the same without the sum over positions
//	MLPOut[l]        = sum of (mlp_out_corrupt - mlp_out_clean) * dM/d mlp_out
//	EAP[e], e = S>R  = sum over rows, positions, features of
//	                   (out_S(corrupt) - out_S(clean)) * dM/d(input of R)
//
// out_S is a head's z_h @ W_O[rows of h] without b_O, an MLP's whole output,
// or the embedding (token + position). Each estimates the change of M
// (patched minus clean).
//
// The KL metric is not offered: KL(p_clean || p) has a zero gradient at the
// clean run, so its first-order estimate is identically zero.
package attrib

import (
	"fmt"

	"github.com/neoscope/neoscope/runtime/backend"
	"github.com/neoscope/neoscope/runtime/forward"
	"github.com/neoscope/neoscope/runtime/graph"
)

// Task is a clean/corrupt pair of validated [B*T] batches and the answers.
type Task struct {
	Clean, Corrupt []int32
	B, T, Pos      int
	IO, S          []int32
}

// Result holds the estimates; EAP fields are set by EAP only.
type Result struct {
	LDClean   float64       `json:"ld_clean"`
	LDCorrupt float64       `json:"ld_corrupt"`
	HeadZ     [][]float64   `json:"atp_head_z"`     // [L][H]
	MLPOut    []float64     `json:"atp_mlp_out"`    // [L]
	HeadZPos  [][][]float64 `json:"atp_head_z_pos"` // [L][H][T]
	Edges     []string      `json:"edges,omitempty"`
	EAP       []float64     `json:"eap_edge,omitempty"` // [E], canonical edge order
	// Verify is set by Verify (`attribute --verify N`).
	Verify *Verification `json:"verify,omitempty"`
}

func (t Task) objective() forward.Objective { return forward.LogitDiff(t.Pos, t.IO, t.S) }

// runs does the clean recorded pass, the corrupt pass (observing hook_z,
// hook_mlp_out and block 0's input on both) and returns the tape.
func runs(m *forward.Model, t Task) (tp *forward.Tape, clean, corrupt *forward.Hooks, ldCorrupt float64, err error) {
	obs := []string{"blocks.*.attn.hook_z", "blocks.*.hook_mlp_out", "blocks.0.hook_resid_pre"}
	clean = (&forward.Hooks{}).Observe(obs...)
	corrupt = (&forward.Hooks{}).Observe(obs...)
	s, _, err := m.Run(t.Corrupt, t.B, t.T, corrupt, false)
	if err != nil {
		return nil, nil, nil, 0, err
	}
	ld, err := m.LogitDiffs(s, t.Pos, t.IO, t.S)
	s.Close()
	if err != nil {
		return nil, nil, nil, 0, err
	}
	tp, err = m.Record(t.Clean, t.B, t.T, clean)
	if err != nil {
		return nil, nil, nil, 0, err
	}
	return tp, clean, corrupt, forward.Mean(ld), nil
}

func name(l int, s string) string { return fmt.Sprintf("blocks.%d.%s", l, s) }

// AtP estimates every head's (and head x position's) and MLP's patching effect.
func AtP(m *forward.Model, t Task) (*Result, error) {
	return run(m, t, false)
}

// EAP estimates every edge's patching effect (and the AtP node scores).
func EAP(m *forward.Model, t Task) (*Result, error) {
	return run(m, t, true)
}

func run(m *forward.Model, t Task, edges bool) (*Result, error) {
	tp, clean, corrupt, ldk, err := runs(m, t)
	if err != nil {
		return nil, err
	}
	defer tp.Close()
	gh := (&forward.Hooks{}).Observe("blocks.*.attn.hook_z", "blocks.*.hook_mlp_out")
	opt := forward.BackwardOptions{Hooks: gh}
	var ea *eapAcc
	if edges {
		if ea, err = newEAP(m, t, clean, corrupt); err != nil {
			return nil, err
		}
		defer ea.free()
		opt.Receiver, opt.ReceiverDst = ea.receive, ea.slot
	}
	g, err := tp.Backward(t.objective(), opt)
	if err != nil {
		return nil, err
	}
	cfg := m.Cfg
	L, H, HS, T := cfg.Layers, cfg.Heads, cfg.DHead, t.T
	res := &Result{LDClean: g.Value, LDCorrupt: ldk,
		HeadZ: make([][]float64, L), MLPOut: make([]float64, L), HeadZPos: make([][][]float64, L)}
	for l := 0; l < L; l++ {
		zc, zk, gz := clean.Cache[name(l, "attn.hook_z")].Data, corrupt.Cache[name(l, "attn.hook_z")].Data, gh.Cache[name(l, "attn.hook_z")].Data
		res.HeadZ[l] = make([]float64, H)
		res.HeadZPos[l] = make([][]float64, H)
		for h := range res.HeadZPos[l] {
			res.HeadZPos[l][h] = make([]float64, T)
		}
		for i := 0; i < len(zc); i += HS { // [B,T,NH,HS]: HS values of one head at a time
			pos, h := (i/(H*HS))%T, (i/HS)%H
			var v float64
			for j := i; j < i+HS; j++ {
				v += float64(zk[j]-zc[j]) * float64(gz[j])
			}
			res.HeadZPos[l][h][pos] += v
		}
		for h := 0; h < H; h++ {
			for _, v := range res.HeadZPos[l][h] {
				res.HeadZ[l][h] += v
			}
		}
		mc, mk, gm := clean.Cache[name(l, "hook_mlp_out")].Data, corrupt.Cache[name(l, "hook_mlp_out")].Data, gh.Cache[name(l, "hook_mlp_out")].Data
		for i := range mc {
			res.MLPOut[l] += float64(mk[i]-mc[i]) * float64(gm[i])
		}
	}
	if ea != nil {
		if err := ea.flush(); err != nil {
			return nil, err
		}
		res.Edges = append([]string(nil), ea.g.EdgeNames()...)
		res.EAP = ea.scores
	}
	return res, nil
}

// eapAcc turns receiver gradients into edge scores: the senders' output
// differences D [S, N] (N = B*T*C) live on the backend; the gradients of
// receivers are gathered into G [maxR, N] (one layer's 3*NH+1 receivers at
// least, several layers' while G stays within GatherBytes) and scored in
// one product G @ D[prefix]^T, so D is read once per flush, not once per
// layer: on GPT-Neo-125M at 8 x 20 tokens, 3 flushes instead of 13 (the
// scores of senders that do not feed a receiver are computed and dropped).
type eapAcc struct {
	m           *forward.Model
	g           *graph.Graph
	N           int
	rowsPerNode int            // B*T
	D           backend.Tensor // [S, N]
	G           backend.Tensor // [maxR, N]
	maxR        int
	rows        []graph.Node // receivers gathered in G
	src         []int        // [E] sender index of each edge (the graph's, shared)
	scores      []float64
	sc          backend.Tensor // [maxR, S]
}

func newEAP(m *forward.Model, t Task, clean, corrupt *forward.Hooks) (*eapAcc, error) {
	cfg, be := m.Cfg, m.BE
	L, H, C := cfg.Layers, cfg.Heads, cfg.DModel
	R := t.B * t.T
	gr := graph.New(L, H, cfg.ParallelAt)
	a := &eapAcc{m: m, g: gr, N: R * C, rowsPerNode: R, scores: make([]float64, len(gr.Edges))}
	S := len(gr.Senders)
	maxR := max(3*H+1, min(len(gr.Receivers), int(GatherBytes/(4*int64(a.N)))))
	a.maxR = maxR
	a.src = gr.Src
	var err error
	if a.D, err = be.New(S, a.N); err != nil {
		return nil, err
	}
	if a.G, err = be.New(maxR, a.N); err != nil {
		a.free()
		return nil, err
	}
	if a.sc, err = be.New(maxR, S); err != nil {
		a.free()
		return nil, err
	}
	row := func(s int) backend.Mat { return backend.Mat{T: a.D, Off: s * a.N, Rows: R, Cols: C, Stride: C} }
	diff := func(n string) []float32 {
		c, k := clean.Cache[n].Data, corrupt.Cache[n].Data
		d := make([]float32, len(c))
		for i := range d {
			d[i] = k[i] - c[i]
		}
		return d
	}
	upload := func(d []float32, s int) error {
		u, err := be.Upload(d, R, C)
		if err != nil {
			return err
		}
		defer be.Free(u)
		return be.Copy(row(s), backend.Whole(u))
	}
	for si, s := range gr.Senders {
		var err error
		switch s.Kind {
		case graph.Embed:
			err = upload(diff("blocks.0.hook_resid_pre"), si)
		case graph.MLP:
			err = upload(diff(name(s.Layer, "hook_mlp_out")), si)
		case graph.Head:
			if s.Head != 0 {
				continue // done with head 0 of the layer
			}
			err = func() error {
				dz, err := be.Upload(diff(name(s.Layer, "attn.hook_z")), R, C)
				if err != nil {
					return err
				}
				defer be.Free(dz)
				for h := 0; h < H; h++ {
					if err := m.HeadOut(row(si+h), backend.Whole(dz), s.Layer, h, false); err != nil {
						return err
					}
				}
				return nil
			}()
		}
		if err != nil {
			a.free()
			return nil, err
		}
	}
	return a, nil
}

func (a *eapAcc) free() {
	for _, t := range []backend.Tensor{a.D, a.G, a.sc} {
		if t != nil {
			a.m.BE.Free(t)
		}
	}
}

// GatherBytes bounds the receiver gradients EAP gathers before scoring
// them (at least one layer's are gathered whatever it says).
var GatherBytes int64 = 96 << 20

// slot gives the row of G receiver r's gradient is written into, scoring
// the gathered receivers first when G is full.
func (a *eapAcc) slot(r graph.Node) (backend.Mat, error) {
	if len(a.rows) >= a.maxR {
		if err := a.flush(); err != nil {
			return backend.Mat{}, err
		}
	}
	C := a.N / (a.rowsPerNode)
	return backend.Mat{T: a.G, Off: len(a.rows) * a.N, Rows: a.rowsPerNode, Cols: C, Stride: C}, nil
}

// receive records that receiver r's gradient is in its slot of G.
func (a *eapAcc) receive(r graph.Node, g backend.Mat) error {
	if g.T != a.G || g.Off != len(a.rows)*a.N {
		return fmt.Errorf("eap: gradient of %s not in its slot", r)
	}
	a.rows = append(a.rows, r)
	return nil
}

// flush scores the gathered receivers against the senders: one product
// G @ D[:ns]^T, ns the widest prefix of the canonical sender order that
// feeds one of them (a layer's MLP reads that layer's heads too, its heads'
// q, k, v do not; the logits read every sender); each receiver keeps the
// scores of its own in-edges.
func (a *eapAcc) flush() error {
	n := len(a.rows)
	if n == 0 {
		return nil
	}
	be := a.m.BE
	S := len(a.g.Senders)
	ns := 0
	for _, r := range a.rows {
		ri, _ := a.g.ReceiverOf(r)
		in := a.g.In[ri]
		for e := in[0]; e < in[1]; e++ {
			ns = max(ns, a.src[e]+1)
		}
	}
	sc := backend.Mat{T: a.sc, Rows: n, Cols: ns, Stride: S}
	G := backend.Mat{T: a.G, Rows: n, Cols: a.N, Stride: a.N}
	D := backend.Mat{T: a.D, Rows: ns, Cols: a.N, Stride: a.N}
	if err := be.MatMul(sc, G, D, true, nil, false); err != nil {
		return err
	}
	host := make([]float32, ns)
	for k, r := range a.rows {
		if err := be.DownloadMat(host, sc.RowSlice(k, 1)); err != nil {
			return err
		}
		ri, _ := a.g.ReceiverOf(r)
		in := a.g.In[ri]
		for e := in[0]; e < in[1]; e++ {
			a.scores[e] = float64(host[a.src[e]])
		}
	}
	a.rows = a.rows[:0]
	return nil
}
