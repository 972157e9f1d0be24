package lens

import (
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"

	"gonum.org/v1/gonum/mat"

	"github.com/neoscope/neoscope/internal/outfile"
	"github.com/neoscope/neoscope/runtime/backend"
	"github.com/neoscope/neoscope/runtime/forward"
)

// StreamOptions configure FitStream. Zero values take the defaults in
// brackets, which follow the tuned-lens package's training script
// (tuned_lens/scripts/ingredients.py and train_loop.py) where it has one.
type StreamOptions struct {
	Optimizer   string  // "adam" [default] or "sgd" (tuned-lens's own default is SGD)
	Steps       int     // optimizer steps (0: the ridge start only; the CLI's default is DefaultStreamSteps)
	Rows        int     // windows per minibatch [4]
	LRScale     float64 // the base rate (Adam 1e-3, SGD 1-momentum) is multiplied by this [1]
	Momentum    float64 // SGD Nesterov momentum, or Adam's beta1 [0.9]
	WeightDecay float64 // L2 weight decay added to the gradient, as torch's Adam/SGD (0: none; the CLI's default is tuned-lens's 1e-3)
	Warmup      int     // linear warmup steps [-1 = tuned-lens's rule: Adam min(1000, steps/5), SGD 0]
	Ridge       float64 // ridge strength of the closed-form start [1e-3]; < 0: start at the identity
	Holdout     int     // window k is held out when k % Holdout == Holdout-1 [10]; < 0: none
	Checkpoint  string  // file for resumable state ("" = none)
	Every       int     // checkpoint every this many steps [10]
	Resume      bool    // continue from Checkpoint (refused when the identity differs)
	Progress    func(stage string, done, total int)

	stopAt int // tests: return errStopped after this many steps (a killed run)
}

// errStopped is returned when a test stops a fit early (stopAt).
var errStopped = errors.New("tuned lens: stopped (test)")

// DefaultStreamSteps is the default number of optimizer steps. tuned-lens
// takes 250 steps of 2^18 tokens on a GPU; on a CPU each step of R windows
// costs about 4 x N x V x C x L multiply-adds for N = R*T positions (the
// unembedding forward and backward at every layer), so the default is lower
// and the ridge start does most of the work.
const DefaultStreamSteps = 50

func (o *StreamOptions) defaults() error {
	if o.Optimizer == "" {
		o.Optimizer = "adam"
	}
	if o.Optimizer != "adam" && o.Optimizer != "sgd" {
		return fmt.Errorf("tuned lens: optimizer %q: want adam or sgd", o.Optimizer)
	}
	if o.Rows == 0 {
		o.Rows = 4
	}
	if o.LRScale == 0 {
		o.LRScale = 1
	}
	if o.Momentum == 0 {
		o.Momentum = 0.9
	}
	if o.Warmup < 0 {
		o.Warmup = 0
		if o.Optimizer == "adam" {
			o.Warmup = min(1000, o.Steps/5)
		}
	}
	if o.Ridge == 0 {
		o.Ridge = 1e-3
	}
	if o.Holdout == 0 {
		o.Holdout = 10
	}
	if o.Every == 0 {
		o.Every = 10
	}
	if o.Steps < 0 || o.Rows < 1 || o.LRScale < 0 || o.Momentum < 0 || o.Momentum >= 1 || o.WeightDecay < 0 || o.Every < 1 {
		return fmt.Errorf("tuned lens: want steps >= 0, rows >= 1, lr scale > 0, 0 <= momentum < 1, weight decay >= 0, checkpoint interval >= 1")
	}
	return nil
}

// identity is everything a resumed fit must share with the run that wrote
// the checkpoint.
func (o *StreamOptions) identity(m *forward.Model, src Source, T int) map[string]string {
	f := func(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }
	return map[string]string{
		"model_fingerprint": Fingerprint(m), "input": src.Identity(), "seq": strconv.Itoa(T),
		"optimizer": o.Optimizer, "steps": strconv.Itoa(o.Steps), "rows": strconv.Itoa(o.Rows),
		"lr_scale": f(o.LRScale), "momentum": f(o.Momentum), "weight_decay": f(o.WeightDecay),
		"warmup": strconv.Itoa(o.Warmup), "ridge": f(o.Ridge), "holdout": strconv.Itoa(o.Holdout),
	}
}

// streamState is the resumable state, written with encoding/gob (float64
// exactly) through outfile's atomic writer.
type streamState struct {
	Identity map[string]string
	Step     int         // optimizer steps done
	Cursor   int         // training windows consumed by the gradient phase (all epochs)
	Params   [][]float64 // per layer: A [C*C] then b [C]
	M1, M2   [][]float64 // Adam: first moment [P]; second moment and its running max (amsgrad) [2P]. SGD: momentum in M1
	Init     []string    // per layer: "ridge" or "identity"
	Start    [][]float64 // per layer: the start the steps began from (kept when they did not help)
	Train    []float64   // per step: mean training KL over the layers
}

// StreamReport summarises a streamed fit.
type StreamReport struct {
	Layers            int
	TrainWindows      int // per epoch
	TrainPositions    int // per epoch
	HeldoutPositions  int
	StepPositions     []int     // positions seen by each step of this run
	Init              []string  // per layer: "ridge" or "identity"
	Kept              []string  // per layer: "trained", or "start" when the steps did not beat it
	TrainKL           []float64 // mean training KL over the layers after each step (all runs)
	Heldout           *EvalResult
	ResumedAt, Epochs int
}

// windows reads the next training window (skipping held-out ones), cycling
// to the start at the end of the stream. k counts every window read.
type windows struct {
	src     Source
	holdout int
	k       int
	epochs  int
	trained int // training windows returned
}

func (w *windows) held(k int) bool { return w.holdout > 0 && k%w.holdout == w.holdout-1 }

// next returns a training window; with cycle false, io.EOF at the end.
func (w *windows) next(cycle bool) ([]int32, error) {
	for {
		win, err := w.src.Next()
		if err == io.EOF {
			if !cycle {
				return nil, io.EOF
			}
			if w.trained == 0 {
				return nil, fmt.Errorf("tuned lens: %s has no training window", w.src.Identity())
			}
			if err := w.src.Reset(); err != nil {
				return nil, err
			}
			w.k = 0
			w.epochs++
			continue
		}
		if err != nil {
			return nil, err
		}
		k := w.k
		w.k++
		if w.held(k) {
			continue
		}
		w.trained++
		return win, nil
	}
}

// batchOf stacks up to rows windows of one length: a window of another
// length (the stream's short last one) is returned alone on the next call.
type batcher struct {
	w       *windows
	pending []int32
}

func (b *batcher) next(rows int, cycle bool) (tokens []int32, B, T int, err error) {
	var out [][]int32
	if b.pending != nil {
		out = append(out, b.pending)
		b.pending = nil
	}
	for len(out) < rows {
		win, err := b.w.next(cycle)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, 0, 0, err
		}
		if len(out) > 0 && len(win) != len(out[0]) {
			b.pending = win
			break
		}
		out = append(out, win)
	}
	if len(out) == 0 {
		return nil, 0, 0, io.EOF
	}
	T = len(out[0])
	for _, r := range out {
		tokens = append(tokens, r...)
	}
	return tokens, len(out), T, nil
}

// lrAt is the learning rate of step s (0-based): linear warmup over Warmup
// steps, then linear decay to 0 at Steps (transformers'
// get_linear_schedule_with_warmup, as tuned-lens uses it).
func (o *StreamOptions) lrAt(s int) float64 {
	base := o.LRScale * 1e-3
	if o.Optimizer == "sgd" {
		base = o.LRScale * (1 - o.Momentum)
	}
	if s < o.Warmup {
		return base * float64(s+1) / float64(o.Warmup)
	}
	rest := o.Steps - o.Warmup
	if rest <= 0 {
		return base
	}
	return base * math.Max(0, float64(o.Steps-s)/float64(rest))
}

// FitStream fits a tuned lens of m on the windows of src, T tokens each,
// with memory bounded by one minibatch whatever the corpus length:
//
//  1. Ridge start (unless Ridge < 0): one pass over every training window
//     accumulates, per layer, X^T X and X^T Y for X = [resid[l], 1] and Y
//     the final residual (each minibatch's products on the backend in
//     float32, summed across minibatches in float64), then solves the
//     ridge regression as Fit does. On the first minibatch each layer keeps
//     whichever of the ridge solution and the identity has the lower KL.
//  2. Steps optimizer steps, each on the next Rows training windows
//     (cycling through the corpus): the mean KL(p_final || p_lens) of every
//     layer, its gradient (kl's formulas; the two [N,V] products on the
//     backend, one row chunk at a time), A's gradient divided by the
//     layer's mean squared centered residual over C (as Fit does), weight
//     decay, then clipping of the global gradient norm at 1 and Adam
//     (amsgrad, betas (momentum, 0.999)) or Nesterov SGD at the scheduled
//     rate, as tuned-lens trains.
//     Each layer then keeps the trained translator only if its KL on the
//     first training minibatch is below its start's.
//  3. The held-out windows are scored with Eval (logit lens vs tuned lens),
//     summed over minibatches weighted by their positions.
//
// With Checkpoint set, the state (parameters, optimizer moments, step and
// stream position) is written atomically every Every steps and at the end;
// Resume continues from it after checking that the model fingerprint, the
// input's identity and every option are the same.
func FitStream(m *forward.Model, src Source, T int, opt StreamOptions) (*Tuned, *StreamReport, error) {
	if err := opt.defaults(); err != nil {
		return nil, nil, err
	}
	L, C := m.Cfg.Layers, m.Cfg.DModel
	P := C*C + C
	id := opt.identity(m, src, T)
	progress := func(stage string, d, n int) {
		if opt.Progress != nil {
			opt.Progress(stage, d, n)
		}
	}
	st := &streamState{Identity: id}
	rep := &StreamReport{Layers: L}
	if opt.Resume {
		if opt.Checkpoint == "" {
			return nil, nil, fmt.Errorf("tuned lens: resume needs a checkpoint file")
		}
		var err error
		if st, err = readState(opt.Checkpoint); err != nil {
			return nil, nil, err
		}
		if err := sameIdentity(opt.Checkpoint, st.Identity, id); err != nil {
			return nil, nil, err
		}
		if len(st.Params) != L || len(st.Params[0]) != P {
			return nil, nil, fmt.Errorf( // same fingerprint, other shape: cannot happen short of a corrupt file
				"%s: state for %d layers of %d parameters, the model needs %d of %d", opt.Checkpoint, len(st.Params), len(st.Params[0]), L, P)
		}
		rep.ResumedAt = st.Step
	}
	w := &windows{src: src, holdout: opt.Holdout}
	// Count the corpus (and, for a fresh fit, the ridge start) in one pass.
	if err := src.Reset(); err != nil {
		return nil, nil, err
	}
	var xtx, xty []*mat.Dense
	if !opt.Resume && opt.Ridge > 0 {
		xtx, xty = make([]*mat.Dense, L), make([]*mat.Dense, L)
		for l := range xtx {
			xtx[l], xty[l] = mat.NewDense(C+1, C+1, nil), mat.NewDense(C+1, C, nil)
		}
	}
	bt := &batcher{w: w}
	for {
		tokens, B, Tb, err := bt.next(opt.Rows, false)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, err
		}
		rep.TrainWindows += B
		rep.TrainPositions += B * Tb
		if xtx != nil {
			if err := accumulateRidge(m, tokens, B, Tb, xtx, xty); err != nil {
				return nil, nil, err
			}
		}
		progress("ridge pass (windows)", rep.TrainWindows, 0)
	}
	if rep.TrainWindows == 0 {
		return nil, nil, fmt.Errorf("tuned lens: %s has no training window (holdout every %d)", src.Identity(), opt.Holdout)
	}
	if err := src.Reset(); err != nil {
		return nil, nil, err
	}
	w.k, w.trained = 0, 0
	if !opt.Resume {
		st.Params, st.M1, st.M2, st.Init = make([][]float64, L), make([][]float64, L), make([][]float64, L), make([]string, L)
		for l := range st.Params {
			st.Params[l], st.M1[l], st.M2[l] = make([]float64, P), make([]float64, P), make([]float64, 2*P)
			st.Init[l] = "identity"
		}
		if xtx != nil {
			// First training minibatch: keep ridge or identity per layer.
			tokens, B, Tb, err := bt.next(opt.Rows, true)
			if err != nil {
				return nil, nil, err
			}
			g, err := newGradBatch(m, tokens, B, Tb)
			if err != nil {
				return nil, nil, err
			}
			for l := 0; l < L; l++ {
				r, err := ridgeSolve(xtx[l], xty[l], C, opt.Ridge)
				if err != nil {
					continue // singular: keep the identity
				}
				cand := append(append([]float64(nil), r.A...), r.B...)
				kr, err1 := g.layer(l, cand, nil)
				ki, err2 := g.layer(l, st.Params[l], nil)
				if err := errors.Join(err1, err2); err != nil {
					g.close()
					return nil, nil, err
				}
				if kr < ki {
					st.Params[l], st.Init[l] = cand, "ridge"
				}
			}
			g.close()
			// The selection batch is not counted as a gradient step's data.
			if err := src.Reset(); err != nil {
				return nil, nil, err
			}
			w.k, w.trained, bt.pending = 0, 0, nil
		}
		st.Start = make([][]float64, L)
		for l := range st.Start {
			st.Start[l] = append([]float64(nil), st.Params[l]...)
		}
		if opt.Checkpoint != "" {
			if err := writeState(opt.Checkpoint, st); err != nil {
				return nil, nil, err
			}
		}
	} else {
		// Fast-forward the stream to where the checkpoint stopped.
		for w.trained < st.Cursor {
			if _, err := w.next(true); err != nil {
				return nil, nil, err
			}
		}
	}
	rep.Init = st.Init
	grads := make([][]float64, L)
	for l := range grads {
		grads[l] = make([]float64, P)
	}
	for st.Step < opt.Steps {
		tokens, B, Tb, err := bt.next(opt.Rows, true)
		if err != nil {
			return nil, nil, err
		}
		g, err := newGradBatch(m, tokens, B, Tb)
		if err != nil {
			return nil, nil, err
		}
		var mean, norm2 float64
		for l := 0; l < L; l++ {
			k, err := g.layer(l, st.Params[l], grads[l])
			if err != nil {
				g.close()
				return nil, nil, err
			}
			mean += k / float64(L)
			for i, x := range grads[l] {
				x += opt.WeightDecay * st.Params[l][i]
				grads[l][i] = x
				norm2 += x * x
			}
		}
		g.close()
		clip := 1.0
		if n := math.Sqrt(norm2); n > 1 {
			clip = 1 / n
		}
		lr := opt.lrAt(st.Step)
		t := float64(st.Step + 1)
		b1, b2 := opt.Momentum, 0.999
		for l := 0; l < L; l++ {
			p, m1, m2 := st.Params[l], st.M1[l], st.M2[l]
			for i, gi := range grads[l] {
				gi *= clip
				if opt.Optimizer == "sgd" {
					// torch's Nesterov: v = mu v + g; p -= lr (g + mu v).
					m1[i] = b1*m1[i] + gi
					p[i] -= lr * (gi + b1*m1[i])
					continue
				}
				m1[i] = b1*m1[i] + (1-b1)*gi
				// amsgrad: m2 holds v in its first half and the running
				// max of v in its second.
				m2[i] = b2*m2[i] + (1-b2)*gi*gi
				vmax := math.Max(m2[P+i], m2[i])
				m2[P+i] = vmax
				mhat := m1[i] / (1 - math.Pow(b1, t))
				vhat := vmax / (1 - math.Pow(b2, t))
				p[i] -= lr * mhat / (math.Sqrt(vhat) + 1e-8)
			}
		}
		st.Step++
		st.Train = append(st.Train, mean)
		rep.StepPositions = append(rep.StepPositions, B*Tb)
		st.Cursor += B
		progress("optimizer steps", st.Step, opt.Steps)
		if opt.Checkpoint != "" && (st.Step%opt.Every == 0 || st.Step == opt.Steps) {
			if err := writeState(opt.Checkpoint, st); err != nil {
				return nil, nil, err
			}
		}
		if opt.stopAt > 0 && st.Step == opt.stopAt {
			return nil, nil, errStopped
		}
	}
	rep.TrainKL = st.Train
	rep.Epochs = w.epochs
	rep.Kept = make([]string, L)
	for l := range rep.Kept {
		rep.Kept[l] = "start"
	}
	if opt.Steps > 0 && len(st.Start) == L {
		// Keep, per layer, the trained translator only if it beats its start
		// on the first training minibatch (training data, never the held-out
		// windows): steps that overshoot never make the lens worse than its
		// start there, as Fit's kept-best rule.
		if err := src.Reset(); err != nil {
			return nil, nil, err
		}
		first := &batcher{w: &windows{src: src, holdout: opt.Holdout}}
		tokens, B, Tb, err := first.next(opt.Rows, true)
		if err != nil {
			return nil, nil, err
		}
		g, err := newGradBatch(m, tokens, B, Tb)
		if err != nil {
			return nil, nil, err
		}
		for l := 0; l < L; l++ {
			kt, err1 := g.layer(l, st.Params[l], nil)
			ks, err2 := g.layer(l, st.Start[l], nil)
			if err := errors.Join(err1, err2); err != nil {
				g.close()
				return nil, nil, err
			}
			if kt < ks {
				rep.Kept[l] = "trained"
			} else {
				st.Params[l] = st.Start[l]
			}
		}
		g.close()
	}
	tl := &Tuned{C: C, Layers: make([]Translator, L), Meta: map[string]string{
		"format":     "neoscope-tuned-lens-v1",
		"layout":     "h' = h + h @ weight^T + bias (weight [out,in] as nn.Linear), then ln_f and the unembedding",
		"d_model":    strconv.Itoa(C),
		"n_layers":   strconv.Itoa(L),
		"fit":        "stream",
		"train_seq":  strconv.Itoa(T),
		"train_rows": strconv.Itoa(rep.TrainWindows),
	}}
	for k, v := range id {
		tl.Meta[k] = v
	}
	for l := range tl.Layers {
		tl.Layers[l] = Translator{A: st.Params[l][:C*C], B: st.Params[l][C*C:]}
	}
	// Held-out evaluation.
	if opt.Holdout > 0 {
		res, n, err := evalHeldout(m, tl, src, opt.Holdout, opt.Rows, progress)
		if err != nil {
			return nil, nil, err
		}
		rep.Heldout, rep.HeldoutPositions = res, n
	}
	return tl, rep, nil
}

// evalHeldout scores the held-out windows with Eval, weighting each
// minibatch by its positions (KL) and predictions (loss).
func evalHeldout(m *forward.Model, tl *Tuned, src Source, holdout, rows int, progress func(string, int, int)) (*EvalResult, int, error) {
	if err := src.Reset(); err != nil {
		return nil, 0, err
	}
	L := m.Cfg.Layers
	sum := &EvalResult{Layers: L, LogitLoss: make([]float64, L+1), LogitKL: make([]float64, L+1), TunedLoss: make([]float64, L+1), TunedKL: make([]float64, L+1)}
	var n, preds int
	k := 0
	var batch [][]int32
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		T := len(batch[0])
		var tokens []int32
		for _, r := range batch {
			tokens = append(tokens, r...)
		}
		B := len(batch)
		batch = batch[:0]
		if T < 2 {
			return nil // no next-token prediction to score the loss on
		}
		r, err := Eval(m, tl, tokens, B, T)
		if err != nil {
			return err
		}
		np, nq := float64(B*T), float64(B*(T-1))
		for l := 0; l <= L; l++ {
			sum.LogitKL[l] += r.LogitKL[l] * np
			sum.TunedKL[l] += r.TunedKL[l] * np
			sum.LogitLoss[l] += r.LogitLoss[l] * nq
			sum.TunedLoss[l] += r.TunedLoss[l] * nq
		}
		n += B * T
		preds += B * (T - 1)
		progress("held-out eval (positions)", n, 0)
		return nil
	}
	for {
		win, err := src.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, 0, err
		}
		held := k%holdout == holdout-1
		k++
		if !held {
			continue
		}
		if len(batch) > 0 && len(win) != len(batch[0]) {
			if err := flush(); err != nil {
				return nil, 0, err
			}
		}
		batch = append(batch, win)
		if len(batch) == rows {
			if err := flush(); err != nil {
				return nil, 0, err
			}
		}
	}
	if err := flush(); err != nil {
		return nil, 0, err
	}
	if n == 0 {
		return nil, 0, nil // no held-out window of 2 or more tokens: nothing to report
	}
	for l := 0; l <= L; l++ {
		sum.LogitKL[l] /= float64(n)
		sum.TunedKL[l] /= float64(n)
		sum.LogitLoss[l] /= float64(preds)
		sum.TunedLoss[l] /= float64(preds)
	}
	return sum, n, nil
}

func writeState(path string, st *streamState) error {
	return outfile.Write(path, func(w io.Writer) error { return gob.NewEncoder(w).Encode(st) })
}

func readState(path string) (*streamState, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("tuned lens: resume: %w", err)
	}
	defer f.Close()
	var st streamState
	if err := gob.NewDecoder(f).Decode(&st); err != nil || len(st.Params) == 0 {
		return nil, &ResumeMismatchError{Path: path, Diffs: []string{fmt.Sprintf("not a tuned-lens fit checkpoint (%v)", err)}}
	}
	return &st, nil
}

// sameIdentity refuses a resume whose model, input or options differ,
// naming every difference.
func sameIdentity(path string, have, want map[string]string) error {
	var diffs []string
	keys := map[string]bool{}
	for k := range have {
		keys[k] = true
	}
	for k := range want {
		keys[k] = true
	}
	var names []string
	for k := range keys {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if have[k] != want[k] {
			diffs = append(diffs, fmt.Sprintf("%s: checkpoint %q, now %q", k, have[k], want[k]))
		}
	}
	if len(diffs) > 0 {
		return &ResumeMismatchError{Path: path, Diffs: diffs}
	}
	return nil
}

// ResumeMismatchError: the checkpoint was written for another model, input
// or set of options, or is not a checkpoint at all.
type ResumeMismatchError struct {
	Path  string
	Diffs []string
}

func (e *ResumeMismatchError) Error() string {
	return fmt.Sprintf("%s was written by a different fit; not resuming: %v", e.Path, e.Diffs)
}

// accumulateRidge adds one minibatch's X^T X and X^T Y (X = [resid[l], 1],
// Y = the final residual) to the float64 sums, computing the products on
// the backend in float32.
func accumulateRidge(m *forward.Model, tokens []int32, B, T int, xtx, xty []*mat.Dense) error {
	c, err := NewCapture(m, tokens, B, T)
	if err != nil {
		return err
	}
	defer c.Close()
	L, C, N := m.Cfg.Layers, m.Cfg.DModel, B*T
	be := m.BE
	y, err := c.Host(L)
	if err != nil {
		return err
	}
	yT, err := be.Upload(transpose(y, N, C, false), C, N)
	if err != nil {
		return err
	}
	defer be.Free(yT)
	a, err := be.New(C+1, C+1)
	if err != nil {
		return err
	}
	defer be.Free(a)
	b, err := be.New(C+1, C)
	if err != nil {
		return err
	}
	defer be.Free(b)
	ha, hb := make([]float32, (C+1)*(C+1)), make([]float32, (C+1)*C)
	for l := 0; l < L; l++ {
		h, err := c.Host(l)
		if err != nil {
			return err
		}
		xT, err := be.Upload(transpose(h, N, C, true), C+1, N)
		if err != nil {
			return err
		}
		err = errors.Join(be.MatMul(backend.Whole(a), backend.Whole(xT), backend.Whole(xT), true, nil, false),
			be.MatMul(backend.Whole(b), backend.Whole(xT), backend.Whole(yT), true, nil, false),
			be.Download(ha, a), be.Download(hb, b))
		be.Free(xT)
		if err != nil {
			return err
		}
		addF32(xtx[l], ha)
		addF32(xty[l], hb)
	}
	return nil
}

// transpose returns x [N,C] as [C,N], with a row of ones appended when ones.
func transpose(x []float32, N, C int, ones bool) []float32 {
	R := C
	if ones {
		R++
	}
	out := make([]float32, R*N)
	for i := 0; i < N; i++ {
		for c := 0; c < C; c++ {
			out[c*N+i] = x[i*C+c]
		}
	}
	if ones {
		for i := 0; i < N; i++ {
			out[C*N+i] = 1
		}
	}
	return out
}

func addF32(d *mat.Dense, x []float32) {
	raw := d.RawMatrix().Data
	for i, v := range x {
		raw[i] += float64(v)
	}
}
