package lens

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"os"
	"strconv"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"

	"github.com/neoscope/neoscope/internal/outfile"
	"github.com/neoscope/neoscope/runtime/backend"
	"github.com/neoscope/neoscope/runtime/checkpoint"
	"github.com/neoscope/neoscope/runtime/forward"
)

// Translator is one layer's affine map h -> h + h A^T + b (A [C,C] row-major,
// out x in, as nn.Linear stores it; b [C]).
type Translator struct {
	A, B []float64
}

// Tuned is a tuned lens: translators for layers 0..L-1 (layer L, the final
// residual, is read as it is: its translator would be the identity).
type Tuned struct {
	C      int
	Layers []Translator
	Meta   map[string]string
}

// FitOptions tune Fit. Zero values take the defaults in brackets.
type FitOptions struct {
	Steps    int     // gradient steps per layer [DefaultSteps]
	NoSGD    bool    // skip the gradient steps (closed-form start only)
	LR       float64 // SGD learning rate [see DefaultLR]
	Momentum float64 // Nesterov momentum [0.9]
	Ridge    float64 // ridge strength, relative to the mean diagonal of X^T X [1e-3]
	Progress func(done, total int)
}

// DefaultLR is the default SGD learning rate. A's gradient is rescaled so
// that its size does not depend on the residual norm (see Fit), so one rate
// serves every layer. On tiny-neo (32 x 24 random rows, 15 steps from the
// ridge start) rates 0.001, 0.01, 0.05 and 0.2 lowered the training KL of
// layer 0 from 0.04670 to 0.04664, 0.04650, 0.04646 and 0.04650: 0.05 was
// best, and the kept-best-iterate rule makes a too-large rate harmless.
const DefaultLR = 0.05

// DefaultSteps is the default number of gradient steps per layer.
const DefaultSteps = 50

// FitLayer reports the training-set KL of one layer's translator.
type FitLayer struct {
	Layer                   int
	LogitKL, RidgeKL, Final float64 // identity (logit lens), after the closed form, after SGD (the kept iterate)
	Init                    string  // "identity" or "ridge": the better start
}

// layerData is one layer's training problem on the host (float64).
type layerData struct {
	N, C, V int
	H       []float64 // [N,C] resid[l]
	P, LogP []float64 // [N,V] final distribution
	WU      []float64 // [V,C] unembedding
	G, Beta []float64 // ln_f weight and bias [C]
	Eps     float64
}

// work holds one evaluation's intermediates (reused across steps).
type work struct {
	hp, n, y, dy, dh []float64 // [N,C]
	z                []float64 // [N,V]
	sigma            []float64 // [N]
}

func newWork(d *layerData) *work {
	N, C := d.N, d.C
	return &work{hp: make([]float64, N*C), n: make([]float64, N*C), y: make([]float64, N*C),
		dy: make([]float64, N*C), dh: make([]float64, N*C), z: make([]float64, N*d.V), sigma: make([]float64, N)}
}

func gen(r, c int, d []float64) blas64.General {
	return blas64.General{Rows: r, Cols: c, Stride: c, Data: d}
}

// kl evaluates the mean KL(p || lens) of translator t on d and, when gA and
// gb are non-nil, its gradient with respect to A and b. The steps, written
// out (one row h, p the final distribution):
//
//	h' = h + A h + b
//	n  = (h' - mean(h')) / s,  s = sqrt(var(h') + eps)   (biased variance)
//	y  = g * n + beta
//	z  = W_U y,  q = softmax(z)
//	KL = sum_v p_v (log p_v - log q_v)
//
// backwards (mean over the N rows, hence the 1/N):
//
//	dKL/dz  = (q - p) / N
//	dKL/dy  = W_U^T dz
//	dKL/dn  = g * dy
//	dKL/dh' = (dn - mean(dn) - n * mean(dn * n)) / s    (LayerNorm backward)
//	dKL/dA  = sum_rows dh' h^T,  dKL/db = sum_rows dh'
func kl(d *layerData, t *Translator, w *work, gA, gb []float64) float64 {
	N, C, V := d.N, d.C, d.V
	// h' = h + h A^T + b
	copy(w.hp, d.H)
	blas64.Gemm(blas.NoTrans, blas.Trans, 1, gen(N, C, d.H), gen(C, C, t.A), 1, gen(N, C, w.hp))
	for i := 0; i < N; i++ {
		row := w.hp[i*C : (i+1)*C]
		for c := range row {
			row[c] += t.B[c]
		}
		var mu, v float64
		for _, x := range row {
			mu += x
		}
		mu /= float64(C)
		for _, x := range row {
			v += (x - mu) * (x - mu)
		}
		s := math.Sqrt(v/float64(C) + d.Eps)
		w.sigma[i] = s
		for c, x := range row {
			n := (x - mu) / s
			w.n[i*C+c] = n
			w.y[i*C+c] = d.G[c]*n + d.Beta[c]
		}
	}
	blas64.Gemm(blas.NoTrans, blas.Trans, 1, gen(N, C, w.y), gen(V, C, d.WU), 0, gen(N, V, w.z))
	var total float64
	for i := 0; i < N; i++ {
		z := w.z[i*V : (i+1)*V]
		mx := math.Inf(-1)
		for _, x := range z {
			mx = math.Max(mx, x)
		}
		var s float64
		for _, x := range z {
			s += math.Exp(x - mx)
		}
		lse := mx + math.Log(s)
		p, lp := d.P[i*V:(i+1)*V], d.LogP[i*V:(i+1)*V]
		for v, x := range z {
			lq := x - lse
			total += p[v] * (lp[v] - lq)
			if gA != nil {
				z[v] = (math.Exp(lq) - p[v]) / float64(N) // dKL/dz in place
			}
		}
	}
	if gA == nil {
		return total / float64(N)
	}
	blas64.Gemm(blas.NoTrans, blas.NoTrans, 1, gen(N, V, w.z), gen(V, C, d.WU), 0, gen(N, C, w.dy))
	for c := range gb {
		gb[c] = 0
	}
	for i := 0; i < N; i++ {
		dy, n := w.dy[i*C:(i+1)*C], w.n[i*C:(i+1)*C]
		var m1, m2 float64
		for c := range dy {
			dn := d.G[c] * dy[c]
			m1 += dn
			m2 += dn * n[c]
		}
		m1 /= float64(C)
		m2 /= float64(C)
		for c := range dy {
			g := (d.G[c]*dy[c] - m1 - n[c]*m2) / w.sigma[i]
			w.dh[i*C+c] = g
			gb[c] += g
		}
	}
	blas64.Gemm(blas.Trans, blas.NoTrans, 1, gen(N, C, w.dh), gen(N, C, d.H), 0, gen(C, C, gA))
	return total / float64(N)
}

// ridge solves min |[H 1] W - Y|^2 + lambda |W[:C]|^2 for W [C+1, C]
// (lambda = rel * mean diagonal of H^T H; the bias row is not penalised)
// and returns the translator h -> h W[:C] + W[C] written as h + A h + b.
func ridge(H, Y []float64, N, C int, rel float64) (Translator, error) {
	X := mat.NewDense(N, C+1, nil)
	for i := 0; i < N; i++ {
		for c := 0; c < C; c++ {
			X.Set(i, c, H[i*C+c])
		}
		X.Set(i, C, 1)
	}
	var xtx, xty mat.Dense
	xtx.Mul(X.T(), X)
	xty.Mul(X.T(), mat.NewDense(N, C, Y))
	return ridgeSolve(&xtx, &xty, C, rel)
}

// ridgeSolve is ridge from the sums X^T X [C+1,C+1] and X^T Y [C+1,C]
// (FitStream accumulates them over minibatches). xtx is modified.
func ridgeSolve(xtx, xty *mat.Dense, C int, rel float64) (Translator, error) {
	var tr float64
	for c := 0; c < C; c++ {
		tr += xtx.At(c, c)
	}
	lam := rel * tr / float64(C)
	for c := 0; c < C; c++ {
		xtx.Set(c, c, xtx.At(c, c)+lam)
	}
	var W mat.Dense
	if err := W.Solve(xtx, xty); err != nil {
		return Translator{}, fmt.Errorf("tuned lens: ridge regression: %w", err)
	}
	t := Translator{A: make([]float64, C*C), B: make([]float64, C)}
	for o := 0; o < C; o++ {
		for i := 0; i < C; i++ {
			t.A[o*C+i] = W.At(i, o)
		}
		t.A[o*C+o]--
		t.B[o] = W.At(C, o)
	}
	return t, nil
}

func identity(C int) Translator {
	return Translator{A: make([]float64, C*C), B: make([]float64, C)}
}

func (t Translator) clone() Translator {
	return Translator{A: append([]float64(nil), t.A...), B: append([]float64(nil), t.B...)}
}

// maxHostFloats bounds the host copy of the final distribution (p and
// log p, [N,V] float64 each) that Fit keeps: 2 x 16M floats = 256 MB.
const maxHostFloats = 1 << 24

// Fit fits a tuned lens of m on tokens [B*T]. The recipe:
//
//  1. Closed-form start: for each layer l < L, ridge regression of the final
//     residual resid[L] (before ln_f) on [resid[l], 1]; the start kept is
//     whichever of it and the identity (the logit lens) has the lower
//     training KL.
//  2. Steps of full-batch SGD with Nesterov momentum (the tuned-lens
//     package's optimiser) on the mean KL(p_final || p_lens), gradients from
//     the backward pass written out in kl. The gradient of A is divided by
//     the mean squared norm of the centered residual rows over C (and b's by
//     1): LayerNorm makes the loss invariant to the scale of h', so this
//     makes the step size independent of the layer's residual norm. The
//     iterate with the lowest training KL is kept (a step that overshoots
//     never makes the result worse than its start).
//
// On tiny-neo the closed-form start does nearly all the work: training KL
// at layer 0 goes from 1.85 (logit lens) to 0.0467 (ridge) and 0.0465 after
// 15 Nesterov steps. The gradient steps matter more where the final
// residual is a poor regression target (larger models, where ln_f's
// normalisation hides scale errors the regression pays for).
//
// The host work is O(steps * N * V * C) per layer in float64 (gonum BLAS):
// meant for small models or modest samples (N = B*T rows; N*V is capped).
func Fit(m *forward.Model, tokens []int32, B, T int, opt FitOptions) (*Tuned, []FitLayer, error) {
	L, C, V, N := m.Cfg.Layers, m.Cfg.DModel, m.Cfg.Vocab, B*T
	if N*V > maxHostFloats {
		return nil, nil, fmt.Errorf("tuned lens: %d positions x %d vocabulary = %d floats exceeds the host fit's limit of %d: fit on fewer rows", N, V, N*V, maxHostFloats)
	}
	if opt.Steps < 0 {
		return nil, nil, fmt.Errorf("tuned lens: --steps must be >= 0, got %d", opt.Steps)
	}
	if opt.Steps == 0 && !opt.NoSGD {
		opt.Steps = DefaultSteps
	}
	if opt.NoSGD {
		opt.Steps = 0
	}
	if opt.LR == 0 {
		opt.LR = DefaultLR
	}
	if opt.Momentum == 0 {
		opt.Momentum = 0.9
	}
	if opt.Ridge == 0 {
		opt.Ridge = 1e-3
	}
	if opt.LR < 0 || opt.Momentum < 0 || opt.Momentum >= 1 || opt.Ridge < 0 {
		return nil, nil, fmt.Errorf("tuned lens: want lr > 0, 0 <= momentum < 1, ridge >= 0 (got %g, %g, %g)", opt.LR, opt.Momentum, opt.Ridge)
	}
	c, err := NewCapture(m, tokens, B, T)
	if err != nil {
		return nil, nil, err
	}
	defer c.Close()
	// Final distribution on the host.
	lt, err := m.LogitsTensor(c.S, nil)
	if err != nil {
		return nil, nil, err
	}
	logits := make([]float32, N*V)
	err = m.BE.Download(logits, lt)
	m.BE.Free(lt)
	if err != nil {
		return nil, nil, err
	}
	d := &layerData{N: N, C: C, V: V, P: make([]float64, N*V), LogP: make([]float64, N*V), Eps: m.Cfg.LNEps}
	for i := 0; i < N; i++ {
		row := logits[i*V : (i+1)*V]
		lse := logSumExp(row)
		for v, z := range row {
			d.LogP[i*V+v] = float64(z) - lse
			d.P[i*V+v] = math.Exp(d.LogP[i*V+v])
		}
	}
	um := m.Unembed()
	wu := make([]float32, um.Rows*um.Cols)
	if err := m.BE.DownloadMat(wu, um); err != nil {
		return nil, nil, err
	}
	d.WU = f64(wu)
	lnw, lnb := m.LNFinalHost()
	d.G, d.Beta = f64(lnw), f64(lnb)
	if len(d.G) != C || len(d.Beta) != C {
		return nil, nil, fmt.Errorf("tuned lens: ln_final weight/bias have %d/%d values, want %d", len(d.G), len(d.Beta), C)
	}
	final, err := c.Host(L)
	if err != nil {
		return nil, nil, err
	}
	Y := f64(final)

	tl := &Tuned{C: C, Layers: make([]Translator, L), Meta: map[string]string{
		"format":     "neoscope-tuned-lens-v1",
		"layout":     "h' = h + h @ weight^T + bias (weight [out,in] as nn.Linear), then ln_f and the unembedding",
		"d_model":    strconv.Itoa(C),
		"n_layers":   strconv.Itoa(L),
		"steps":      strconv.Itoa(opt.Steps),
		"lr":         strconv.FormatFloat(opt.LR, 'g', -1, 64),
		"momentum":   strconv.FormatFloat(opt.Momentum, 'g', -1, 64),
		"ridge":      strconv.FormatFloat(opt.Ridge, 'g', -1, 64),
		"train_rows": strconv.Itoa(B),
		"train_seq":  strconv.Itoa(T),

		"model_fingerprint": Fingerprint(m),
	}}
	report := make([]FitLayer, L)
	total, done := L*(opt.Steps+1), 0
	step := func() {
		done++
		if opt.Progress != nil {
			opt.Progress(done, total)
		}
	}
	w := newWork(d)
	gA, gb := make([]float64, C*C), make([]float64, C)
	for l := 0; l < L; l++ {
		h, err := c.Host(l)
		if err != nil {
			return nil, nil, err
		}
		d.H = f64(h)
		id := identity(C)
		rep := FitLayer{Layer: l, LogitKL: kl(d, &id, w, nil, nil)}
		best, bestKL := id, rep.LogitKL
		rep.Init = "identity"
		if r, err := ridge(d.H, Y, N, C, opt.Ridge); err == nil {
			rep.RidgeKL = kl(d, &r, w, nil, nil)
			if rep.RidgeKL < bestKL {
				best, bestKL, rep.Init = r, rep.RidgeKL, "ridge"
			}
		} else {
			rep.RidgeKL = math.NaN()
		}
		step()
		// Gradient scale for A: mean over rows of |h - mean(h)|^2 / C.
		var scale float64
		for i := 0; i < N; i++ {
			row := d.H[i*C : (i+1)*C]
			var mu, v float64
			for _, x := range row {
				mu += x
			}
			mu /= float64(C)
			for _, x := range row {
				v += (x - mu) * (x - mu)
			}
			scale += v / float64(C)
		}
		scale /= float64(N)
		if scale == 0 {
			scale = 1
		}
		cur := best.clone()
		vA, vb := make([]float64, C*C), make([]float64, C)
		mu, lr := opt.Momentum, opt.LR
		for s := 0; s < opt.Steps; s++ {
			k := kl(d, &cur, w, gA, gb)
			if k < bestKL {
				best, bestKL = cur.clone(), k
			}
			// Nesterov (PyTorch's form): v = mu v + g; p -= lr (g + mu v).
			for i := range gA {
				g := gA[i] / scale
				vA[i] = mu*vA[i] + g
				cur.A[i] -= lr * (g + mu*vA[i])
			}
			for i := range gb {
				vb[i] = mu*vb[i] + gb[i]
				cur.B[i] -= lr * (gb[i] + mu*vb[i])
			}
			step()
		}
		if opt.Steps > 0 {
			if k := kl(d, &cur, w, nil, nil); k < bestKL {
				best, bestKL = cur, k
			}
		}
		rep.Final = bestKL
		report[l] = rep
		tl.Layers[l] = best
	}
	return tl, report, nil
}

// Fingerprint identifies a model's weights for a saved lens: FNV-64a over
// the shape and the float32 bits of ln_f's weight and bias, wte's first and
// last rows and wpe's first row. A lens fitted on one model and read on
// another of the same shape would otherwise give plausible-looking numbers.
func Fingerprint(m *forward.Model) string {
	h := fnv.New64a()
	C, V := m.Cfg.DModel, m.Cfg.Vocab
	fmt.Fprintf(h, "%d %d %d|", m.Cfg.Layers, C, V)
	put := func(x []float32) {
		var b [4]byte
		for _, v := range x {
			binary.LittleEndian.PutUint32(b[:], math.Float32bits(v))
			h.Write(b[:])
		}
	}
	lnw, lnb := m.LNFinalHost()
	put(lnw)
	put(lnb)
	if we := m.WE(); len(we) == V*C {
		put(we[:C])
		put(we[(V-1)*C:])
	}
	if wp := m.WPos(); len(wp) >= C {
		put(wp[:C])
	}
	return fmt.Sprintf("%016x", h.Sum64())
}

func f64(x []float32) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v)
	}
	return out
}

// Save writes the lens as safetensors: layers.{l}.weight [C,C] and
// layers.{l}.bias [C] (float32), with extra metadata merged into t.Meta.
func (t *Tuned) Save(path string, extra map[string]string) error {
	tensors := map[string]outfile.F32{}
	for l, tr := range t.Layers {
		tensors[fmt.Sprintf("layers.%d.weight", l)] = outfile.F32{ShapeOf: []int{t.C, t.C}, Values: f32(tr.A)}
		tensors[fmt.Sprintf("layers.%d.bias", l)] = outfile.F32{ShapeOf: []int{t.C}, Values: f32(tr.B)}
	}
	meta := map[string]string{}
	for k, v := range t.Meta {
		meta[k] = v
	}
	for k, v := range extra {
		meta[k] = v
	}
	return outfile.Safetensors(path, tensors, meta)
}

func f32(x []float64) []float32 {
	out := make([]float32, len(x))
	for i, v := range x {
		out[i] = float32(v)
	}
	return out
}

// Load reads a lens written by Save and checks it against a model of L
// layers and width C; errors name the file and the tensor at fault.
func Load(path string, L, C int) (*Tuned, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	entries, err := checkpoint.ParseSafetensors(path, data)
	if err != nil {
		return nil, err
	}
	t := &Tuned{C: C, Layers: make([]Translator, L), Meta: map[string]string{}}
	if len(data) >= 8 {
		hl := binary.LittleEndian.Uint64(data)
		var hdr struct {
			Meta map[string]string `json:"__metadata__"`
		}
		if hl <= uint64(len(data)-8) && json.Unmarshal(data[8:8+hl], &hdr) == nil && hdr.Meta != nil {
			t.Meta = hdr.Meta
		}
	}
	byName := map[string]checkpoint.Entry{}
	for _, e := range entries {
		byName[e.Name] = e
	}
	get := func(name string, shape ...int) ([]float64, error) {
		e, ok := byName[name]
		if !ok {
			return nil, fmt.Errorf("%s: no tensor %q (a lens for a model with %d layers of width %d needs layers.0..%d.weight/bias)", path, name, L, C, L-1)
		}
		if fmt.Sprint(e.Shape) != fmt.Sprint(shape) {
			return nil, fmt.Errorf("%s: tensor %q has shape %v, want %v for this model", path, name, e.Shape, shape)
		}
		v, err := checkpoint.Convert(e)
		if err != nil {
			return nil, fmt.Errorf("%s: tensor %q: %w", path, name, err)
		}
		out := f64(v)
		for i, x := range out {
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return nil, fmt.Errorf("%s: tensor %q: non-finite value at %d", path, name, i)
			}
		}
		return out, nil
	}
	for l := 0; l < L; l++ {
		if t.Layers[l].A, err = get(fmt.Sprintf("layers.%d.weight", l), C, C); err != nil {
			return nil, err
		}
		if t.Layers[l].B, err = get(fmt.Sprintf("layers.%d.bias", l), C); err != nil {
			return nil, err
		}
	}
	if _, ok := byName[fmt.Sprintf("layers.%d.weight", L)]; ok {
		return nil, fmt.Errorf("%s: has layers.%d.weight: the lens is for a deeper model than this one (%d layers)", path, L, L)
	}
	return t, nil
}

// EvalResult compares the tuned lens with the logit lens per layer 0..L
// (index L: the final residual, where both are the model itself).
type EvalResult struct {
	Layers             int
	LogitLoss, LogitKL []float64
	TunedLoss, TunedKL []float64
}

// Eval scores the logit lens and the tuned lens t on tokens [B*T] on the
// backend: h' = h + h A^T + b by one MatMul with bias and one Add.
func Eval(m *forward.Model, t *Tuned, tokens []int32, B, T int) (*EvalResult, error) {
	L, C, N := m.Cfg.Layers, m.Cfg.DModel, B*T
	if len(t.Layers) != L || t.C != C {
		return nil, fmt.Errorf("tuned lens: %d layers of width %d, the model has %d of width %d", len(t.Layers), t.C, L, C)
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
	var free []backend.Tensor
	defer func() {
		for _, t := range free {
			m.BE.Free(t)
		}
	}()
	be := m.BE
	res := &EvalResult{Layers: L, LogitLoss: make([]float64, L+1), TunedLoss: make([]float64, L+1)}
	// normed[0..L]: logit lens; normed[L+1..2L]: tuned lens of layers 0..L-1.
	normed := make([]backend.Mat, 2*L+1)
	alloc := func() (backend.Tensor, error) {
		t, err := be.New(N, C)
		if err == nil {
			free = append(free, t)
		}
		return t, err
	}
	tr, err := alloc()
	if err != nil {
		return nil, err
	}
	o := backend.Whole(tr)
	for l := 0; l <= L; l++ {
		r := backend.Whole(c.Resid[l])
		nt, err := alloc()
		if err != nil {
			return nil, err
		}
		normed[l] = backend.Whole(nt)
		if res.LogitLoss[l], err = sc.Lens(nt, r); err != nil {
			return nil, err
		}
		if l == L {
			res.TunedLoss[l] = res.LogitLoss[l]
			break
		}
		aT, err := be.Upload(f32(t.Layers[l].A), C, C)
		if err != nil {
			return nil, err
		}
		free = append(free, aT)
		bT, err := be.Upload(f32(t.Layers[l].B), C)
		if err != nil {
			return nil, err
		}
		free = append(free, bT)
		// o = r + r A^T + b
		if err := be.MatMul(o, r, backend.Whole(aT), true, bT, false); err != nil {
			return nil, err
		}
		if err := be.Add(o, o, r); err != nil {
			return nil, err
		}
		tt, err := alloc()
		if err != nil {
			return nil, err
		}
		normed[L+1+l] = backend.Whole(tt)
		if res.TunedLoss[l], err = sc.Lens(tt, o); err != nil {
			return nil, err
		}
	}
	kls, err := sc.KLs(normed)
	if err != nil {
		return nil, err
	}
	res.LogitKL = kls[:L+1]
	res.TunedKL = append(append([]float64(nil), kls[L+1:]...), kls[L])
	return res, nil
}
