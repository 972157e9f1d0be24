package lens

import (
	"errors"
	"math"

	"github.com/neoscope/neoscope/runtime/backend"
	"github.com/neoscope/neoscope/runtime/forward"
)

// gradBatch is one minibatch of FitStream's gradient phase: one forward
// pass with every resid[l] kept on the backend, and the final distribution
// log p and p on the host as float32 [N,V] (N = B*T positions).
type gradBatch struct {
	m       *forward.Model
	c       *Capture
	N, C, V int
	R       int // rows per logits chunk
	logp, p []float32
	g, beta []float64 // ln_f weight and bias
	logits  backend.Tensor
}

func newGradBatch(m *forward.Model, tokens []int32, B, T int) (*gradBatch, error) {
	c, err := NewCapture(m, tokens, B, T)
	if err != nil {
		return nil, err
	}
	N, C, V := B*T, m.Cfg.DModel, m.Cfg.Vocab
	g := &gradBatch{m: m, c: c, N: N, C: C, V: V, R: max(1, min(N, maxChunkFloats/V)),
		logp: make([]float32, N*V), p: make([]float32, N*V),
		g: f64(m.HostWeight("ln_f.weight")), beta: f64(m.HostWeight("ln_f.bias"))}
	if len(g.g) != C || len(g.beta) != C {
		c.Close()
		return nil, errors.New("tuned lens: ln_f.weight/ln_f.bias not found on the host")
	}
	if g.logits, err = m.BE.New(g.R, V); err != nil {
		c.Close()
		return nil, err
	}
	// Final distribution, a chunk of rows at a time.
	for r0 := 0; r0 < N; r0 += g.R {
		r := min(g.R, N-r0)
		host := g.logp[r0*V : (r0+r)*V]
		if err := g.chunk(backend.Whole(c.S.Final), r0, r, host); err != nil {
			g.close()
			return nil, err
		}
		for i := 0; i < r; i++ {
			row := host[i*V : (i+1)*V]
			lse := logSumExp(row)
			for v, z := range row {
				lp := float64(z) - lse
				row[v] = float32(lp)
				g.p[(r0+i)*V+v] = float32(math.Exp(lp))
			}
		}
	}
	return g, nil
}

func (g *gradBatch) close() {
	g.m.BE.Free(g.logits)
	g.c.Close()
}

// chunk computes logits of rows [r0, r0+r) of x (after ln_f) into host.
func (g *gradBatch) chunk(x backend.Mat, r0, r int, host []float32) error {
	lm := backend.Whole(g.logits).RowSlice(0, r)
	if err := g.m.BE.MatMul(lm, x.RowSlice(r0, r), g.m.Unembed(), true, nil, false); err != nil {
		return err
	}
	return g.m.BE.DownloadMat(host[:r*g.V], lm)
}

// layer returns the mean KL(p || lens) of layer l's translator params (A
// [C*C] then b [C]) on the batch and, when grad is non-nil, writes its
// gradient there (kl's formulas), A's part divided by the layer's mean
// squared centered residual over C. The [N,V] products run on the backend.
func (g *gradBatch) layer(l int, params, grad []float64) (float64, error) {
	be, N, C, V := g.m.BE, g.N, g.C, g.V
	var free []backend.Tensor
	defer func() {
		for _, t := range free {
			be.Free(t)
		}
	}()
	up := func(x []float32, shape ...int) (backend.Tensor, error) {
		t, err := be.Upload(x, shape...)
		if err == nil {
			free = append(free, t)
		}
		return t, err
	}
	aT, err := up(f32(params[:C*C]), C, C)
	if err != nil {
		return 0, err
	}
	bT, err := up(f32(params[C*C:]), C)
	if err != nil {
		return 0, err
	}
	o, err := be.New(N, C)
	if err != nil {
		return 0, err
	}
	free = append(free, o)
	h := backend.Whole(g.c.Resid[l])
	if err := errors.Join(be.MatMul(backend.Whole(o), h, backend.Whole(aT), true, bT, false), be.Add(backend.Whole(o), backend.Whole(o), h)); err != nil {
		return 0, err
	}
	hp := make([]float32, N*C)
	if err := be.Download(hp, o); err != nil {
		return 0, err
	}
	// ln_f on the host (float64): n, sigma per row, y = g n + beta.
	n := make([]float64, N*C)
	sigma := make([]float64, N)
	y := make([]float32, N*C)
	for i := 0; i < N; i++ {
		row := hp[i*C : (i+1)*C]
		var mu, v float64
		for _, x := range row {
			mu += float64(x)
		}
		mu /= float64(C)
		for _, x := range row {
			v += (float64(x) - mu) * (float64(x) - mu)
		}
		s := math.Sqrt(v/float64(C) + g.m.Cfg.LNEps)
		sigma[i] = s
		for c, x := range row {
			nn := (float64(x) - mu) / s
			n[i*C+c] = nn
			y[i*C+c] = float32(g.g[c]*nn + g.beta[c])
		}
	}
	yT, err := up(y, N, C)
	if err != nil {
		return 0, err
	}
	var dyT backend.Tensor
	if grad != nil {
		if dyT, err = be.New(N, C); err != nil {
			return 0, err
		}
		free = append(free, dyT)
	}
	host := make([]float32, g.R*V)
	var total float64
	for r0 := 0; r0 < N; r0 += g.R {
		r := min(g.R, N-r0)
		if err := g.chunk(backend.Whole(yT), r0, r, host); err != nil {
			return 0, err
		}
		for i := 0; i < r; i++ {
			z := host[i*V : (i+1)*V]
			lse := logSumExp(z)
			p, lp := g.p[(r0+i)*V:(r0+i+1)*V], g.logp[(r0+i)*V:(r0+i+1)*V]
			for v, x := range z {
				lq := float64(x) - lse
				total += float64(p[v]) * (float64(lp[v]) - lq)
				if grad != nil {
					z[v] = float32((math.Exp(lq) - float64(p[v])) / float64(N)) // dKL/dz
				}
			}
		}
		if grad == nil {
			continue
		}
		dz, err := be.Upload(host[:r*V], r, V)
		if err != nil {
			return 0, err
		}
		err = be.MatMul(backend.Whole(dyT).RowSlice(r0, r), backend.Whole(dz), g.m.Unembed(), false, nil, false)
		be.Free(dz)
		if err != nil {
			return 0, err
		}
	}
	kl := total / float64(N)
	if grad == nil {
		return kl, nil
	}
	dy := make([]float32, N*C)
	if err := be.Download(dy, dyT); err != nil {
		return 0, err
	}
	// LayerNorm backward to dh' (kl's formulas); dKL/db = sum of rows.
	dh := make([]float32, N*C)
	gb := grad[C*C:]
	clear(gb)
	for i := 0; i < N; i++ {
		var m1, m2 float64
		for c := 0; c < C; c++ {
			dn := g.g[c] * float64(dy[i*C+c])
			m1 += dn
			m2 += dn * n[i*C+c]
		}
		m1 /= float64(C)
		m2 /= float64(C)
		for c := 0; c < C; c++ {
			d := (g.g[c]*float64(dy[i*C+c]) - m1 - n[i*C+c]*m2) / sigma[i]
			dh[i*C+c] = float32(d)
			gb[c] += d
		}
	}
	// dKL/dA = dh'^T h [C,C]: both transposed to [C,N] for MatMul's a @ b^T.
	hh, err := g.c.Host(l)
	if err != nil {
		return 0, err
	}
	var scale float64
	for i := 0; i < N; i++ {
		row := hh[i*C : (i+1)*C]
		var mu, v float64
		for _, x := range row {
			mu += float64(x)
		}
		mu /= float64(C)
		for _, x := range row {
			v += (float64(x) - mu) * (float64(x) - mu)
		}
		scale += v / float64(C)
	}
	scale /= float64(N)
	if scale == 0 {
		scale = 1
	}
	dhT, err := up(transpose(dh, N, C, false), C, N)
	if err != nil {
		return 0, err
	}
	hT, err := up(transpose(hh, N, C, false), C, N)
	if err != nil {
		return 0, err
	}
	gT, err := be.New(C, C)
	if err != nil {
		return 0, err
	}
	free = append(free, gT)
	if err := be.MatMul(backend.Whole(gT), backend.Whole(dhT), backend.Whole(hT), true, nil, false); err != nil {
		return 0, err
	}
	ga := make([]float32, C*C)
	if err := be.Download(ga, gT); err != nil {
		return 0, err
	}
	for i, v := range ga {
		grad[i] = float64(v) / scale
	}
	return kl, nil
}
