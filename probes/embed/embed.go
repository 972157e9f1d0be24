package embed

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/neoscope/neoscope/runtime/backend"
	"github.com/neoscope/neoscope/runtime/forward"
)

// Stats are the embedding statistics of the package doc.
type Stats struct {
	V, C                       int
	MeanNorm                   float64 `json:"mean_norm"`
	NormOfMean                 float64 `json:"norm_of_mean"`
	MeanPairwiseCos            float64 `json:"mean_pairwise_cos"`
	MeanPairwiseCosCentered    float64 `json:"mean_pairwise_cos_centered"`
	MeanAbsPairwiseCosCentered float64 `json:"mean_abs_pairwise_cos_centered"`
	SelfTop1                   float64 `json:"embed_self_top1"`
	SelfTop1LN                 float64 `json:"embed_self_top1_ln"`
	// Top1Index[t] = argmax_s W_E[t].W_E[s]; Top1IndexLN with LN_f on W_E[t]. [V]
	Top1Index, Top1IndexLN []int32
	// Rescored counts the rows whose float32 top candidates were within the
	// rescoring margin and were decided in float64 (both variants together).
	Rescored int
}

// Options tune Compute.
type Options struct {
	// ChunkRows is the number of rows per MatMul chunk (0: as many as fit in
	// 4M floats of [R,V] scores).
	ChunkRows int
	// Progress, when set, is called after each chunk with (done, total) chunks.
	Progress func(done, total int)
}

// maxChunkFloats bounds a [R,V] score chunk: 4M floats = 16 MB.
const maxChunkFloats = 1 << 22

// Rescoring margin for the argmax: float32 scores of a length-C dot product
// with |scores| ~ |W_E|^2 carry a relative error of order C*2^-24 (~4e-6 for
// C=64, ~5e-5 worst case for C=768); 1e-4 relative plus 1e-6 absolute keeps
// every candidate that float32 could have misordered.
const (
	rescoreRel = 1e-4
	rescoreAbs = 1e-6
)

// Compute measures W_E of m as described in the package doc.
func Compute(m *forward.Model, opt Options) (*Stats, error) {
	V, C := m.Cfg.Vocab, m.Cfg.DModel
	we, wu := m.WE(), m.WU() // W_U = W_E when tied
	if len(we) != V*C || len(wu) != V*C {
		return nil, fmt.Errorf("embed: W_E / W_U have %d / %d values, want V*C = %d*%d", len(we), len(wu), V, C)
	}
	lnW, lnB := m.LNFinalHost()
	if len(lnW) != C || len(lnB) != C {
		return nil, fmt.Errorf("embed: ln_final weight/bias have %d/%d values, want %d", len(lnW), len(lnB), C)
	}
	st := &Stats{V: V, C: C}

	// Host float64: mean row, norms, unit rows' sums (closed forms).
	mean := make([]float64, C)
	for t := 0; t < V; t++ {
		for c, x := range we[t*C : (t+1)*C] {
			mean[c] += float64(x)
		}
	}
	for c := range mean {
		mean[c] /= float64(V)
	}
	st.NormOfMean = norm(mean)
	sumU := make([]float64, C)  // sum of unit rows
	sumUc := make([]float64, C) // sum of unit centered rows
	uc := make([]float32, V*C)  // unit centered rows, for the |cos| pass
	row := make([]float64, C)
	for t := 0; t < V; t++ {
		r := we[t*C : (t+1)*C]
		for c, x := range r {
			row[c] = float64(x)
		}
		n := norm(row)
		st.MeanNorm += n
		if n > 0 {
			for c := range row {
				sumU[c] += row[c] / n
			}
		}
		for c := range row {
			row[c] -= mean[c]
		}
		if n = norm(row); n > 0 {
			for c := range row {
				sumUc[c] += row[c] / n
				uc[t*C+c] = float32(row[c] / n)
			}
		}
	}
	st.MeanNorm /= float64(V)
	pairs := float64(V) * float64(V-1)
	if V > 1 {
		st.MeanPairwiseCos = (dot(sumU, sumU) - unitCount(we, nil, V, C)) / pairs
		st.MeanPairwiseCosCentered = (dot(sumUc, sumUc) - unitCount(we, mean, V, C)) / pairs
	}

	// Backend passes over chunks of rows.
	be := m.BE
	R := opt.ChunkRows
	if R <= 0 {
		R = max(1, min(V, maxChunkFloats/V))
	}
	R = min(R, V)
	nChunks := (V + R - 1) / R
	total, done := 3*nChunks, 0
	step := func() {
		done++
		if opt.Progress != nil {
			opt.Progress(done, total)
		}
	}
	var free []backend.Tensor
	defer func() {
		for _, t := range free {
			be.Free(t)
		}
	}()
	alloc := func(shape ...int) (backend.Tensor, error) {
		t, err := be.New(shape...)
		if err == nil {
			free = append(free, t)
		}
		return t, err
	}
	upload := func(d []float32, shape ...int) (backend.Tensor, error) {
		t, err := be.Upload(d, shape...)
		if err == nil {
			free = append(free, t)
		}
		return t, err
	}
	// The unit centered rows are the one [V, C] matrix made here: a backend
	// that can use host memory in place (the CPU) wraps them, others get a
	// copy. W_E and W_U are the model's own tensors. Uploading the unit
	// rows and W_E (and an untied W_U) as well held two (three) more [V, C]
	// copies on the CPU, 154 MB each on GPT-Neo-125M's 50,257 x 768, for the
	// same values (issue 17).
	var ucT backend.Tensor
	var err error
	if wr, ok := be.(forward.Wrapper); ok {
		ucT, err = wr.Wrap(uc, V, C)
	} else {
		ucT, err = upload(uc, V, C)
	}
	if err != nil {
		return nil, err
	}
	lnWT, err := upload(lnW, C)
	if err != nil {
		return nil, err
	}
	lnBT, err := upload(lnB, C)
	if err != nil {
		return nil, err
	}
	scT, err := alloc(R, V)
	if err != nil {
		return nil, err
	}
	lnT, err := alloc(R, C)
	if err != nil {
		return nil, err
	}
	UC, W, U, SC, LN := backend.Whole(ucT), m.Embed(), m.Unembed(), backend.Whole(scT), backend.Whole(lnT)
	host := make([]float32, R*V)

	// |cos| of centered rows, all ordered pairs i != j.
	var absSum float64
	for i0 := 0; i0 < V; i0 += R {
		r := min(R, V-i0)
		sc := SC.RowSlice(0, r)
		if err := be.MatMul(sc, UC.RowSlice(i0, r), UC, true, nil, false); err != nil {
			return nil, err
		}
		if err := be.DownloadMat(host[:r*V], sc); err != nil {
			return nil, err
		}
		for i := 0; i < r; i++ {
			for j, x := range host[i*V : (i+1)*V] {
				if j != i0+i {
					absSum += math.Abs(float64(x))
				}
			}
		}
		step()
	}
	if V > 1 {
		st.MeanAbsPairwiseCosCentered = absSum / pairs
	}

	// Top-1 without and with LN_f.
	eps := float32(m.Cfg.LNEps)
	x64 := make([]float64, C)
	for variant := 0; variant < 2; variant++ {
		idx := make([]int32, V)
		hits := 0
		for i0 := 0; i0 < V; i0 += R {
			r := min(R, V-i0)
			a := W.RowSlice(i0, r)
			if variant == 1 {
				a = LN.RowSlice(0, r)
				if err := be.LayerNorm(a, W.RowSlice(i0, r), lnWT, lnBT, eps); err != nil {
					return nil, err
				}
			}
			sc := SC.RowSlice(0, r)
			if err := be.MatMul(sc, a, U, true, nil, false); err != nil {
				return nil, err
			}
			if err := be.DownloadMat(host[:r*V], sc); err != nil {
				return nil, err
			}
			for i := 0; i < r; i++ {
				t := i0 + i
				for c, x := range we[t*C : (t+1)*C] {
					x64[c] = float64(x)
				}
				if variant == 1 {
					layerNorm64(x64, lnW, lnB, m.Cfg.LNEps)
				}
				best, again := argmax(host[i*V:(i+1)*V], x64, wu, C)
				if again {
					st.Rescored++
				}
				idx[t] = int32(best)
				if best == t {
					hits++
				}
			}
			step()
		}
		if variant == 0 {
			st.Top1Index, st.SelfTop1 = idx, float64(hits)/float64(V)
		} else {
			st.Top1IndexLN, st.SelfTop1LN = idx, float64(hits)/float64(V)
		}
	}
	return st, nil
}

// argmax returns the index of the largest float32 score, deciding between
// candidates within the rescoring margin by float64 dots of x with rows of
// we; rescored says whether that happened.
func argmax(scores []float32, x []float64, we []float32, C int) (best int, rescored bool) {
	for j, s := range scores {
		if s > scores[best] {
			best = j
		}
	}
	b := float64(scores[best])
	thr := b - (rescoreRel*math.Abs(b) + rescoreAbs)
	var cands []int
	for j, s := range scores {
		if float64(s) >= thr {
			cands = append(cands, j)
		}
	}
	if len(cands) == 1 {
		return best, false
	}
	bestV := math.Inf(-1)
	for _, j := range cands { // ascending j: the first index wins exact ties
		var d float64
		for c, w := range we[j*C : (j+1)*C] {
			d += x[c] * float64(w)
		}
		if d > bestV {
			bestV, best = d, j
		}
	}
	return best, true
}

// layerNorm64 applies LayerNorm (biased variance) in place in float64.
func layerNorm64(x []float64, w, b []float32, eps float64) {
	var mu, v float64
	for _, a := range x {
		mu += a
	}
	mu /= float64(len(x))
	for _, a := range x {
		v += (a - mu) * (a - mu)
	}
	v /= float64(len(x))
	s := 1 / math.Sqrt(v+eps)
	for c := range x {
		x[c] = (x[c]-mu)*s*float64(w[c]) + float64(b[c])
	}
}

// unitCount is the number of rows of we (minus sub, when given) with a
// nonzero norm: sum_i |u_i|^2 in the closed form (1 per unit row, 0 per zero row).
func unitCount(we []float32, sub []float64, V, C int) float64 {
	n := 0
	for t := 0; t < V; t++ {
		var s float64
		for c, x := range we[t*C : (t+1)*C] {
			d := float64(x)
			if sub != nil {
				d -= sub[c]
			}
			s += d * d
		}
		if s > 0 {
			n++
		}
	}
	return float64(n)
}

func dot(a, b []float64) float64 {
	var s float64
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

func norm(a []float64) float64 { return math.Sqrt(dot(a, a)) }

// Layer summarises resid[l].u over every position of a batch.
type Layer struct {
	Layer     int     `json:"layer"`
	Mean      float64 `json:"mean"`       // mean of resid[l].u
	Std       float64 `json:"std"`        // population standard deviation of resid[l].u
	MeanNorm  float64 `json:"mean_norm"`  // mean |resid[l]|
	MeanCos   float64 `json:"mean_cos"`   // mean cos(resid[l], u)
	MeanShare float64 `json:"mean_share"` // mean (resid[l].u)^2 / |resid[l]|^2: share of the squared norm along u
}

// MeanDirection returns u = mean(W_E)/|mean(W_E)| [C] (an error when the mean is 0).
func MeanDirection(m *forward.Model) ([]float64, error) {
	V, C := m.Cfg.Vocab, m.Cfg.DModel
	we := m.WE()
	if len(we) != V*C {
		return nil, fmt.Errorf("embed: W_E has %d values, want V*C = %d*%d", len(we), V, C)
	}
	u := make([]float64, C)
	for t := 0; t < V; t++ {
		for c, x := range we[t*C : (t+1)*C] {
			u[c] += float64(x)
		}
	}
	n := norm(u)
	if n == 0 {
		return nil, fmt.Errorf("embed: the mean embedding row is zero; no direction")
	}
	for c := range u {
		u[c] /= n
	}
	return u, nil
}

// DefaultTokens is the default sample for Project: B=8 rows of
// T=min(32, context) ids drawn uniformly from the vocabulary (PCG, seed).
func DefaultTokens(m *forward.Model, seed uint64) (tokens []int32, B, T int) {
	B, T = 8, min(32, m.Cfg.Context)
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	tokens = make([]int32, B*T)
	for i := range tokens {
		tokens[i] = int32(rng.IntN(m.Cfg.Vocab))
	}
	return tokens, B, T
}

// Project runs tokens [B*T] through m and summarises resid[l].u for
// l = 0..L (L+1 entries).
func Project(m *forward.Model, tokens []int32, B, T int) ([]Layer, error) {
	u, err := MeanDirection(m)
	if err != nil {
		return nil, err
	}
	L, C := m.Cfg.Layers, m.Cfg.DModel
	h := (&forward.Hooks{}).Observe("blocks.*.hook_resid_pre")
	s, _, err := m.Run(tokens, B, T, h, false)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	final := make([]float32, B*T*C)
	if err := m.BE.Download(final, s.Resid); err != nil {
		return nil, err
	}
	out := make([]Layer, L+1)
	for l := 0; l <= L; l++ {
		data := final
		if l < L {
			ht := h.Cache[fmt.Sprintf("blocks.%d.hook_resid_pre", l)]
			if ht == nil {
				return nil, fmt.Errorf("embed: blocks.%d.hook_resid_pre was not cached", l)
			}
			data = ht.Data
		}
		n := B * T
		var sum, sum2, sn, scos, share float64
		for i := 0; i < n; i++ {
			var p, q float64
			for c, x := range data[i*C : (i+1)*C] {
				p += float64(x) * u[c]
				q += float64(x) * float64(x)
			}
			sum += p
			sum2 += p * p
			r := math.Sqrt(q)
			sn += r
			if r > 0 {
				scos += p / r
				share += p * p / q
			}
		}
		mu := sum / float64(n)
		out[l] = Layer{
			Layer:     l,
			Mean:      mu,
			Std:       math.Sqrt(math.Max(0, sum2/float64(n)-mu*mu)),
			MeanNorm:  sn / float64(n),
			MeanCos:   scos / float64(n),
			MeanShare: share / float64(n),
		}
	}
	return out, nil
}
