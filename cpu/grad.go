package cpu

import (
	"fmt"
	"math"

	"github.com/neoscope/neoscope/runtime/backend"
)

// The backward-pass operations (backend.Grad) in plain Go, parallel over
// independent rows, heads or column chunks so no two goroutines write the
// same element. Reductions (means, variances, column sums, softmax
// normalisers) accumulate in float64; products stay float32 as in the
// forward kernels.

var _ backend.Grad = (*Backend)(nil)

// MatMulTN: c = a^T @ b (+ c); a [K,M], b [K,N], c [M,N].
func (be *Backend) MatMulTN(c, a, b backend.Mat, accumulate bool) error {
	K, M, N := a.Rows, a.Cols, b.Cols
	if b.Rows != K || c.Rows != M || c.Cols != N {
		panic(fmt.Sprintf("backend: matmul_tn: a^T is %dx%d, b is %dx%d, c is %dx%d", M, K, b.Rows, N, c.Rows, c.Cols))
	}
	if M == 0 || N == 0 {
		return nil
	}
	cd := view(c)
	beta := float32(0)
	if accumulate {
		beta = 1
	}
	if K == 0 {
		if !accumulate {
			for r := 0; r < M; r++ {
				clear(cd[r*c.Stride : r*c.Stride+N])
			}
		}
		return nil
	}
	sgemmTN(be, M, N, K, view(a), a.Stride, view(b), b.Stride, beta, cd, c.Stride)
	return nil
}

// ColSum: out[j] (+)= sum_i x[i,j].
func (be *Backend) ColSum(out backend.Tensor, x backend.Mat, accumulate bool) error {
	od := host(out)
	if len(od) != x.Cols {
		panic(fmt.Sprintf("backend: colsum: out of %d for %d columns", len(od), x.Cols))
	}
	if x.Rows == 0 || x.Cols == 0 {
		if !accumulate {
			clear(od)
		}
		return nil
	}
	colSumPar(be.threads, od, view(x), x.Stride, x.Rows, x.Cols, accumulate)
	return nil
}

// colSumColsGo is ColSum for the columns [lo, hi), in float64; the pure-Go
// kernel, and the reference the native one is tested against.
func colSumColsGo(out, x []float32, xs, rows, lo, hi int, accumulate bool) {
	acc := make([]float64, hi-lo)
	for r := 0; r < rows; r++ {
		for j, v := range x[r*xs+lo : r*xs+hi] {
			acc[j] += float64(v)
		}
	}
	for j, v := range acc {
		if accumulate {
			out[lo+j] += float32(v)
		} else {
			out[lo+j] = float32(v)
		}
	}
}

// LayerNormBackward: xhat = (x-mean)*rstd, g = dout*w,
// dx = rstd*(g - mean(g) - xhat*mean(g*xhat)); dw += sum dout*xhat, db += sum dout.
func (be *Backend) LayerNormBackward(dx, dout, x backend.Mat, w backend.Tensor, eps float32, dw, db backend.Tensor, accumulate bool) error {
	sameDims("layernorm_backward", dx, x)
	sameDims("layernorm_backward", dout, x)
	R, C := x.Rows, x.Cols
	wd := host(w)
	if len(wd) != C {
		panic(fmt.Sprintf("backend: layernorm_backward: weight of %d for %d columns", len(wd), C))
	}
	if R == 0 {
		return nil
	}
	xd, gd, dd := view(x), view(dout), view(dx)
	mean := make([]float64, R)
	rstd := make([]float64, R)
	lnBackPar(be.threads, dd, dx.Stride, gd, dout.Stride, xd, x.Stride, wd, nil, mean, rstd, R, eps, accumulate, nil, 0)
	if dw == nil && db == nil {
		return nil
	}
	var dwd, dbd []float32
	if dw != nil {
		dwd = host(dw)
	}
	if db != nil {
		dbd = host(db)
	}
	if (dwd != nil && len(dwd) != C) || (dbd != nil && len(dbd) != C) {
		panic("backend: layernorm_backward: dw/db must have C elements")
	}
	lnParamPar(be.threads, dwd, dbd, xd, x.Stride, gd, dout.Stride, mean, rstd, R, C)
	return nil
}

// lnParamColsGo adds LayerNormBackward's weight and bias gradients of the
// columns [lo, hi) into dw and db (either may be nil), in float64; the
// pure-Go kernel, and the reference the native one is tested against.
func lnParamColsGo(dw, db, x []float32, xs int, g []float32, gs int, mean, rstd []float64, rows, lo, hi int) {
	aw := make([]float64, hi-lo)
	ab := make([]float64, hi-lo)
	for r := 0; r < rows; r++ {
		xr := x[r*xs+lo : r*xs+hi]
		gr := g[r*gs+lo : r*gs+hi]
		mu, rs := mean[r], rstd[r]
		for j, v := range xr {
			gv := float64(gr[j])
			aw[j] += gv * (float64(v) - mu) * rs
			ab[j] += gv
		}
	}
	for j := range aw {
		if dw != nil {
			dw[lo+j] += float32(aw[j])
		}
		if db != nil {
			db[lo+j] += float32(ab[j])
		}
	}
}

// lnBackRowsGo is LayerNormBackward's dx for rows of x (strides xs, gs,
// dxs; C = len(w) channels; dx may alias dout): each row's mean and rstd
// from stats ([rows, 2] as LayerNormRowStats gives them) or, when stats is
// nil, computed here in float64 and written to mean and rstd. The pure-Go
// kernel, and the reference the native one is tested against.
func lnBackRowsGo(dx []float32, dxs int, dout []float32, gs int, x []float32, xs int, w, stats []float32, mean, rstd []float64, rows int, eps float32, accumulate bool) {
	C := len(w)
	for r := 0; r < rows; r++ {
		xr := x[r*xs : r*xs+C]
		var mu, rs float64
		if stats != nil {
			mu, rs = float64(stats[2*r]), float64(stats[2*r+1])
		} else {
			mu = sum4(xr) / float64(C)
			rs = 1 / math.Sqrt(sqDev4(xr, mu)/float64(C)+float64(eps))
			mean[r], rstd[r] = mu, rs
		}
		lnBackRow(dx[r*dxs:r*dxs+C], dout[r*gs:r*gs+C], xr, w, mu, rs, accumulate)
	}
}

// lnBackRow is one row of LayerNormBackward given the row's mean and rstd:
// dx = rstd*(g - mean(g)) - (x-mean)*rstd^2*mean(g*xhat), g = dout*w, in
// float32 (the same as rstd*(g - mean(g) - xhat*mean(g*xhat))) with the
// means in float64; out may alias dout (the row is read whole first).
func lnBackRow(out, dout, x, w []float32, mu, rs float64, accumulate bool) {
	C := len(x)
	mu32, rs32 := float32(mu), float32(rs)
	mg, mgx := lnDots(dout, w, x, mu32)
	mg32 := float32(mg / float64(C))
	mgx32 := float32(mgx * rs * rs * rs / float64(C)) // rstd^2 * mean(g*xhat)
	out, dout, w = out[:C], dout[:C], w[:C]
	if accumulate {
		for j, v := range x {
			out[j] += rs32*(dout[j]*w[j]-mg32) - (v-mu32)*mgx32
		}
	} else {
		for j, v := range x {
			out[j] = rs32*(dout[j]*w[j]-mg32) - (v-mu32)*mgx32
		}
	}
}

// LayerNormRowStats: x's row means and 1/sqrt(var+eps) [R, 2] (backend.LNStats).
func (be *Backend) LayerNormRowStats(x backend.Mat, eps float32) (backend.Tensor, error) {
	R, C := x.Rows, x.Cols
	st, err := be.New(R, 2)
	if err != nil {
		return nil, err
	}
	sd, xd := host(st), view(x)
	be.parallel(R, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			xr := xd[r*x.Stride : r*x.Stride+C]
			mu := sum4(xr) / float64(C)
			sd[2*r] = float32(mu)
			sd[2*r+1] = float32(1 / math.Sqrt(sqDev4(xr, mu)/float64(C)+float64(eps)))
		}
	})
	return st, nil
}

// LayerNormBackwardStats: LayerNormBackward's dx with the row statistics of
// LayerNormRowStats (backend.LNStats), adding dout into sum when sum.T is
// not nil.
func (be *Backend) LayerNormBackwardStats(dx, dout, x backend.Mat, stats, w backend.Tensor, accumulate bool, sum backend.Mat) error {
	sameDims("layernorm_backward", dx, x)
	sameDims("layernorm_backward", dout, x)
	R, C := x.Rows, x.Cols
	wd, sd := host(w), host(stats)
	if len(wd) != C || len(sd) != 2*R {
		panic(fmt.Sprintf("backend: layernorm_backward: weight of %d and %d stats for %dx%d", len(wd), len(sd), R, C))
	}
	var sumd []float32
	if sum.T != nil {
		sameDims("layernorm_backward sum", sum, x)
		sumd = view(sum)
	}
	xd, gd, dd := view(x), view(dout), view(dx)
	lnBackPar(be.threads, dd, dx.Stride, gd, dout.Stride, xd, x.Stride, wd, sd, nil, nil, R, 0, accumulate, sumd, sum.Stride)
	return nil
}

// The row reductions of LayerNormBackward, in float64 with four
// independent accumulators (a single chain of float64 adds is bound by the
// add latency): LayerNormBackward over 3 EAP runs on GPT-Neo-125M at 8 x 20
// took 0.60 s of CPU before, 0.44 s after (pprof).

// sum4 is sum_j x[j].
func sum4(x []float32) float64 {
	var s0, s1, s2, s3 float64
	j := 0
	for ; j+4 <= len(x); j += 4 {
		v := x[j : j+4 : j+4]
		s0 += float64(v[0])
		s1 += float64(v[1])
		s2 += float64(v[2])
		s3 += float64(v[3])
	}
	for ; j < len(x); j++ {
		s0 += float64(x[j])
	}
	return (s0 + s1) + (s2 + s3)
}

// sqDev4 is sum_j (x[j]-mu)^2.
func sqDev4(x []float32, mu float64) float64 {
	var s0, s1, s2, s3 float64
	j := 0
	for ; j+4 <= len(x); j += 4 {
		v := x[j : j+4 : j+4]
		d0, d1, d2, d3 := float64(v[0])-mu, float64(v[1])-mu, float64(v[2])-mu, float64(v[3])-mu
		s0 += d0 * d0
		s1 += d1 * d1
		s2 += d2 * d2
		s3 += d3 * d3
	}
	for ; j < len(x); j++ {
		d := float64(x[j]) - mu
		s0 += d * d
	}
	return (s0 + s1) + (s2 + s3)
}

// lnDots is sum_j g_j and sum_j g_j*(x_j-mu) with g = dout*w (products in
// float32, sums in float64).
func lnDots(dout, w, x []float32, mu float32) (mg, mgx float64) {
	n := len(x)
	dout, w = dout[:n], w[:n]
	var a0, a1, a2, a3, b0, b1, b2, b3 float64
	j := 0
	for ; j+4 <= n; j += 4 {
		g, wv, xv := dout[j:j+4:j+4], w[j:j+4:j+4], x[j:j+4:j+4]
		g0, g1, g2, g3 := g[0]*wv[0], g[1]*wv[1], g[2]*wv[2], g[3]*wv[3]
		a0 += float64(g0)
		a1 += float64(g1)
		a2 += float64(g2)
		a3 += float64(g3)
		b0 += float64(g0 * (xv[0] - mu))
		b1 += float64(g1 * (xv[1] - mu))
		b2 += float64(g2 * (xv[2] - mu))
		b3 += float64(g3 * (xv[3] - mu))
	}
	for ; j < n; j++ {
		g := dout[j] * w[j]
		a0 += float64(g)
		b0 += float64(g * (x[j] - mu))
	}
	return (a0 + a1) + (a2 + a3), (b0 + b1) + (b2 + b3)
}

// GELUNewBackward: with u = s(x + 0.044715x^3), s = sqrt(2/pi),
// gelu'(x) = 0.5(1+tanh u) + 0.5x(1-tanh^2 u) s (1 + 3*0.044715x^2).
func (be *Backend) GELUNewBackward(dx, dy, pre backend.Mat) error {
	sameDims("gelu_backward", dx, pre)
	sameDims("gelu_backward", dy, pre)
	if pre.Rows == 0 || pre.Cols == 0 {
		return nil
	}
	xd, yd, od := view(pre), view(dy), view(dx)
	geluBackPar(be.threads, od, dx.Stride, yd, dy.Stride, xd, pre.Stride, pre.Rows, pre.Cols, false)
	return nil
}

// geluBackRowsGo is GELUNewBackward on rows (strides dxs, dys, ps; dx may
// alias dy), in float64 with math.Tanh and rounded once. (In float32 with
// tanh32, the forward's, it was 2e-6 off in relative terms where
// 1 - tanh^2 loses digits.) The pure-Go kernel, and the reference the
// native one is tested against.
func geluBackRowsGo(dx []float32, dxs int, dy []float32, dys int, pre []float32, ps int, rows, cols int) {
	for r := 0; r < rows; r++ {
		xr := pre[r*ps : r*ps+cols]
		yr := dy[r*dys : r*dys+cols]
		or := dx[r*dxs : r*dxs+cols]
		for j, v := range xr {
			x := float64(v)
			th := math.Tanh(geluK * (x + geluA*x*x*x))
			g := 0.5*(1+th) + 0.5*x*(1-th*th)*geluK*(1+3*geluA*x*x)
			or[j] = float32(float64(yr[j]) * g)
		}
	}
}

// GELUErfBackward: gelu'(x) = Phi(x) + x phi(x) = 0.5(1+erf(x/sqrt2)) +
// x exp(-x^2/2)/sqrt(2pi), in float64 and rounded once (as GELUErf).
func (be *Backend) GELUErfBackward(dx, dy, pre backend.Mat) error {
	sameDims("gelu_erf_backward", dx, pre)
	sameDims("gelu_erf_backward", dy, pre)
	if pre.Rows == 0 || pre.Cols == 0 {
		return nil
	}
	xd, yd, od := view(pre), view(dy), view(dx)
	geluBackPar(be.threads, od, dx.Stride, yd, dy.Stride, xd, pre.Stride, pre.Rows, pre.Cols, true)
	return nil
}

// geluErfBackRowsGo is GELUErfBackward on rows (strides as geluBackRowsGo);
// the pure-Go kernel, and the reference the native one is tested against.
func geluErfBackRowsGo(dx []float32, dxs int, dy []float32, dys int, pre []float32, ps int, rows, cols int) {
	const invSqrt2Pi = 0.3989422804014327 // 1/sqrt(2pi)
	for r := 0; r < rows; r++ {
		xr := pre[r*ps : r*ps+cols]
		yr := dy[r*dys : r*dys+cols]
		or := dx[r*dxs : r*dxs+cols]
		for j, v := range xr {
			x := float64(v)
			g := 0.5*(1+math.Erf(x*(1/math.Sqrt2))) + x*math.Exp(-0.5*x*x)*invSqrt2Pi
			or[j] = float32(float64(yr[j]) * g)
		}
	}
}

// AttentionBackward: one task per (row b, head h), which owns that head's
// slices of dq, dk, dv. For query i over its visible keys j:
// p = softmax(scale q_i.k_j), dP_ij = dz_i.v_j, dS_ij = p_ij (dP_ij - sum_j p_ij dP_ij),
// dq_i = scale sum_j dS_ij k_j, dk_j += scale dS_ij q_i, dv_j += p_ij dz_i.
func (be *Backend) AttentionBackward(dq, dk, dv, dz, q, k, v backend.Mat, p backend.AttnParams) error {
	checkAttn(dz, q, k, v, p)
	checkAttn(dq, dk, dv, dz, p)
	a := attnBackArgs{dq: view(dq), dk: view(dk), dv: view(dv), dz: view(dz), q: view(q), k: view(k), v: view(v),
		dqs: dq.Stride, dks: dk.Stride, dvs: dv.Stride, dzs: dz.Stride, qs: q.Stride, ks: k.Stride, vs: v.Stride,
		T: p.T, HS: p.HS, NH: p.NH, window: p.Window, scale: p.Scale}
	attnBackPar(be.threads, &a, p.B*p.NH)
	return nil
}

// attnBackArgs: the operands of attnBackHeads, row-major with row strides
// (head h of row r at r*stride + h*HS).
type attnBackArgs struct {
	dq, dk, dv, dz, q, k, v        []float32
	dqs, dks, dvs, dzs, qs, ks, vs int
	T, HS, NH, window              int
	scale                          float32
}

// attnBackHeadsGo is AttentionBackward for the (row, head) pairs bh in
// [lo, hi), which own their slices of dq, dk, dv; scratch is 2T float64s.
// The pure-Go kernel, and the reference the native one is tested against.
func attnBackHeadsGo(a *attnBackArgs, lo, hi int, scratch []float64) {
	T, HS, NH := a.T, a.HS, a.NH
	prob, dP := scratch[:T], scratch[T:2*T]
	for task := lo; task < hi; task++ {
		b, h := task/NH, task%NH
		at := func(d []float32, stride, t int) []float32 {
			o := (b*T+t)*stride + h*HS
			return d[o : o+HS]
		}
		for t := 0; t < T; t++ {
			clear(at(a.dq, a.dqs, t))
			clear(at(a.dk, a.dks, t))
			clear(at(a.dv, a.dvs, t))
		}
		for i := 0; i < T; i++ {
			j0 := 0
			if a.window > 0 && i-a.window+1 > 0 {
				j0 = i - a.window + 1
			}
			qi, dzi := at(a.q, a.qs, i), at(a.dz, a.dzs, i)
			mx := math.Inf(-1)
			for j := j0; j <= i; j++ {
				kj := at(a.k, a.ks, j)
				var s float32
				for d, x := range qi {
					s += x * kj[d]
				}
				prob[j] = float64(s * a.scale)
				mx = math.Max(mx, prob[j])
			}
			var sum float64
			for j := j0; j <= i; j++ {
				prob[j] = math.Exp(prob[j] - mx)
				sum += prob[j]
			}
			var D float64
			for j := j0; j <= i; j++ {
				prob[j] /= sum
				vj := at(a.v, a.vs, j)
				var s float32
				for d, x := range dzi {
					s += x * vj[d]
				}
				dP[j] = float64(s)
				D += prob[j] * dP[j]
			}
			dqi := at(a.dq, a.dqs, i)
			for j := j0; j <= i; j++ {
				ds := float32(prob[j]*(dP[j]-D)) * a.scale
				pj := float32(prob[j])
				kj, dkj, dvj := at(a.k, a.ks, j), at(a.dk, a.dks, j), at(a.dv, a.dvs, j)
				for d := range dqi {
					dqi[d] += ds * kj[d]
					dkj[d] += ds * qi[d]
					dvj[d] += pj * dzi[d]
				}
			}
		}
	}
}

// EmbedBackward scatter-adds dx into dwte (by token) and dwpe (by position).
func (be *Backend) EmbedBackward(dwte, dwpe, dx backend.Mat, tokens []int32, B, T int) error {
	C := dx.Cols
	if len(tokens) != B*T || dx.Rows != B*T || dwte.Cols != C || (dwpe.T != nil && (dwpe.Cols != C || dwpe.Rows < T)) {
		panic(fmt.Sprintf("backend: embed_backward: %d tokens, dx %dx%d, dwte %dx%d, for B=%d T=%d", len(tokens), dx.Rows, dx.Cols, dwte.Rows, dwte.Cols, B, T))
	}
	xd, td := view(dx), view(dwte)
	var pd []float32
	if dwpe.T != nil {
		pd = view(dwpe)
	}
	be.parallel(C, func(lo, hi int) {
		for i, tok := range tokens {
			if int(tok) < 0 || int(tok) >= dwte.Rows {
				panic(fmt.Sprintf("backend: embed_backward: token %d outside %d rows", tok, dwte.Rows))
			}
			xr := xd[i*dx.Stride+lo : i*dx.Stride+hi]
			tr := td[int(tok)*dwte.Stride+lo : int(tok)*dwte.Stride+hi]
			for j, v := range xr {
				tr[j] += v
			}
			if pd != nil {
				pr := pd[(i%T)*dwpe.Stride+lo : (i%T)*dwpe.Stride+hi]
				for j, v := range xr {
					pr[j] += v
				}
			}
		}
	})
	return nil
}

// SoftmaxXentBackward: logits[i] <- scale*(softmax(logits[i]) - onehot(targets[i])).
func (be *Backend) SoftmaxXentBackward(logits backend.Mat, targets []int32, scale float32) error {
	return be.SoftmaxXentBackwardLoss(logits, targets, scale, nil)
}

// SoftmaxXentBackwardLoss is SoftmaxXentBackward writing each row's loss
// logsumexp - logit[target] (in float64) into loss when not nil (backend.XentLoss).
func (be *Backend) SoftmaxXentBackwardLoss(logits backend.Mat, targets []int32, scale float32, loss []float64) error {
	if len(targets) != logits.Rows || (loss != nil && len(loss) != logits.Rows) {
		panic(fmt.Sprintf("backend: softmax_xent_backward: %d targets and %d losses for %d rows", len(targets), len(loss), logits.Rows))
	}
	if logits.Rows == 0 {
		return nil
	}
	for _, t := range targets {
		if int(t) >= logits.Cols {
			panic(fmt.Sprintf("backend: softmax_xent_backward: target %d outside %d", t, logits.Cols))
		}
	}
	xentBackPar(be.threads, view(logits), logits.Stride, logits.Rows, logits.Cols, targets, scale, loss)
	return nil
}

// xentBackRowGo turns one row of logits (len >= 1, 0 <= t < len) into
// scale*(softmax(row) - onehot(t)) and returns logsumexp(row) - row[t], in
// float64: one exp per logit (exp32, as the forward's softmax), kept in the
// row, summed in float64. The pure-Go kernel, and the reference the native
// one is tested against.
func xentBackRowGo(row []float32, t int, scale float32) float64 {
	mx := float32(math.Inf(-1))
	for _, x := range row {
		mx = max(mx, x)
	}
	xt := row[t] // the target's logit, before the row is overwritten
	var sum float64
	for j, x := range row {
		e := exp32(x - mx)
		sum += float64(e)
		row[j] = e
	}
	inv := 1 / sum
	for j, e := range row {
		row[j] = float32(float64(e)*inv) * scale
	}
	row[t] -= scale
	return float64(mx) + math.Log(sum) - float64(xt)
}
