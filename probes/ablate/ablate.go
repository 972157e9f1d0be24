package ablate

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/neoscope/neoscope/runtime/backend"
	"github.com/neoscope/neoscope/runtime/forward"
)

// Mode is what an ablated activation is replaced by.
type Mode int

const (
	Zero Mode = iota // 0
	Mean             // its per-position mean over the batch rows in the unablated run
)

func (m Mode) String() string {
	if m == Mean {
		return "mean"
	}
	return "zero"
}

// ParseMode reads "zero" or "mean".
func ParseMode(s string) (Mode, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "zero", "":
		return Zero, nil
	case "mean":
		return Mean, nil
	}
	return Zero, fmt.Errorf("ablation mode %q: want zero or mean", s)
}

// Head names attention head Head of layer Layer, written "layer.head".
type Head struct{ Layer, Head int }

func (h Head) String() string { return fmt.Sprintf("%d.%d", h.Layer, h.Head) }

// ParseHead reads "layer.head" (e.g. "6.1").
func ParseHead(s string) (Head, error) {
	a, b, ok := strings.Cut(strings.TrimSpace(s), ".")
	if !ok {
		return Head{}, fmt.Errorf("head %q: want layer.head, e.g. 6.1", s)
	}
	l, err1 := strconv.Atoi(a)
	h, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil || l < 0 || h < 0 {
		return Head{}, fmt.Errorf("head %q: want layer.head with non-negative integers, e.g. 6.1", s)
	}
	return Head{l, h}, nil
}

// Runner evaluates ablations of one model on one batch of B rows of T
// tokens. It is not safe for concurrent use.
type Runner struct {
	M        *forward.Model
	Tokens   []int32 // [B*T], validated
	B, T     int
	LossFrom int // first predicting position of the loss

	means *means
}

// means are the per-position batch means of the unablated run, on the
// backend: z [T, NH*HS], attn_out and mlp_out [T, C], one per layer.
type means struct {
	z, attn, mlp []backend.Tensor
}

// NewRunner checks the batch and the loss range. tokens is [B*T] row-major.
func NewRunner(m *forward.Model, tokens []int32, B, T, lossFrom int) (*Runner, error) {
	if B < 1 || T < 1 || len(tokens) != B*T {
		return nil, fmt.Errorf("ablate: %d token ids for B=%d T=%d", len(tokens), B, T)
	}
	if T > m.Cfg.Context {
		return nil, fmt.Errorf("ablate: sequences of %d tokens exceed the model's context of %d", T, m.Cfg.Context)
	}
	for i, id := range tokens {
		if id < 0 || int(id) >= m.Cfg.Vocab {
			return nil, fmt.Errorf("ablate: row %d position %d: id %d is outside the vocabulary [0, %d)", i/T, i%T, id, m.Cfg.Vocab)
		}
	}
	if lossFrom < 0 || lossFrom > T-2 {
		return nil, fmt.Errorf("ablate: --loss-from %d leaves no prediction in sequences of %d tokens (want 0..%d)", lossFrom, T, T-2)
	}
	return &Runner{M: m, Tokens: tokens, B: B, T: T, LossFrom: lossFrom}, nil
}

// Close frees the mean tensors (if any were computed).
func (r *Runner) Close() {
	if r.means == nil {
		return
	}
	for _, ts := range [][]backend.Tensor{r.means.z, r.means.attn, r.means.mlp} {
		for _, t := range ts {
			r.M.BE.Free(t)
		}
	}
	r.means = nil
}

// loss runs one full pass with h and returns the mean loss.
func (r *Runner) loss(h *forward.Hooks) (float64, error) {
	s, _, err := r.M.Run(r.Tokens, r.B, r.T, h, false)
	if err != nil {
		return 0, err
	}
	defer s.Close()
	return r.M.MeanLoss(s, r.LossFrom)
}

// Baseline is the unablated loss.
func (r *Runner) Baseline() (float64, error) { return r.loss(nil) }

// ensureMeans computes the per-position batch means from one observed
// unablated pass (accumulated in float64) and uploads them.
func (r *Runner) ensureMeans() error {
	if r.means != nil {
		return nil
	}
	L := r.M.Cfg.Layers
	// One layer at a time, so only one layer's activations are on the host.
	s, err := r.M.Start(r.Tokens, r.B, r.T, nil)
	if err != nil {
		return err
	}
	defer s.Close()
	mn := &means{}
	r.means = mn // so Close frees partial uploads on error
	up := func(h *forward.Hooks, name string) (backend.Tensor, error) {
		a := h.Cache[name]
		if a == nil {
			return nil, fmt.Errorf("ablate: %s was not observed", name)
		}
		cols := len(a.Data) / (r.B * r.T)
		acc := make([]float64, r.T*cols)
		for b := 0; b < r.B; b++ {
			row := a.Data[b*r.T*cols : (b+1)*r.T*cols]
			for i, v := range row {
				acc[i] += float64(v)
			}
		}
		out := make([]float32, len(acc))
		for i, v := range acc {
			out[i] = float32(v / float64(r.B))
		}
		return r.M.BE.Upload(out, r.T, cols)
	}
	for l := 0; l < L; l++ {
		names := []string{fmt.Sprintf("blocks.%d.attn.hook_z", l), fmt.Sprintf("blocks.%d.hook_attn_out", l), fmt.Sprintf("blocks.%d.hook_mlp_out", l)}
		h := (&forward.Hooks{}).Observe(names...)
		if err := r.M.Blocks(s, l, l+1, h); err != nil {
			return err
		}
		for i, dst := range []*[]backend.Tensor{&mn.z, &mn.attn, &mn.mlp} {
			t, err := up(h, names[i])
			if err != nil {
				return err
			}
			*dst = append(*dst, t)
		}
	}
	return nil
}

// checkHeads validates heads against the model.
func (r *Runner) checkHeads(heads []Head) error {
	for _, h := range heads {
		if h.Layer < 0 || h.Layer >= r.M.Cfg.Layers || h.Head < 0 || h.Head >= r.M.Cfg.Heads {
			return fmt.Errorf("ablate: head %s outside the model's %d layers x %d heads", h, r.M.Cfg.Layers, r.M.Cfg.Heads)
		}
	}
	return nil
}

// HeadHooks returns hooks that ablate every head in heads (zero, or the
// mean fill when fills is non-nil: per layer [T, NH*HS]). One Replace per
// touched layer on blocks.l.attn.hook_z.
func HeadHooks(NH int, heads []Head, fills []backend.Tensor) *forward.Hooks {
	byLayer := map[int][]int{}
	var order []int
	for _, h := range heads {
		if _, ok := byLayer[h.Layer]; !ok {
			order = append(order, h.Layer)
		}
		byLayer[h.Layer] = append(byLayer[h.Layer], h.Head)
	}
	hk := &forward.Hooks{}
	for _, l := range order {
		hs := byLayer[l]
		var fill backend.Tensor
		if fills != nil {
			fill = fills[l]
		}
		hk.Replace(fmt.Sprintf("blocks.%d.attn.hook_z", l), func(a *forward.Act) error {
			keep := make([]uint8, a.B*NH) // per (row, head)
			for i := range keep {
				keep[i] = 1
			}
			for b := 0; b < a.B; b++ {
				for _, h := range hs {
					keep[b*NH+h] = 0
				}
			}
			return a.BE.AblateHeads(a.M, keep, NH, a.T, fill)
		})
	}
	return hk
}

// rowsHook ablates a whole [B*T, C] activation (every row) with zero or fill.
func rowsHook(fill backend.Tensor) forward.ReplaceFn {
	return func(a *forward.Act) error {
		return a.BE.AblateRows(a.M, make([]uint8, a.B), a.T, fill)
	}
}

// HeadsLoss is the loss with every head in heads ablated at once.
func (r *Runner) HeadsLoss(heads []Head, mode Mode) (float64, error) {
	if err := r.checkHeads(heads); err != nil {
		return 0, err
	}
	var fills []backend.Tensor
	if mode == Mean {
		if err := r.ensureMeans(); err != nil {
			return 0, err
		}
		fills = r.means.z
	}
	return r.loss(HeadHooks(r.M.Cfg.Heads, heads, fills))
}

func (r *Runner) layerLoss(l int, mode Mode, hook string, pick func(*means) []backend.Tensor) (float64, error) {
	if l < 0 || l >= r.M.Cfg.Layers {
		return 0, fmt.Errorf("ablate: layer %d outside 0..%d", l, r.M.Cfg.Layers-1)
	}
	var fill backend.Tensor
	if mode == Mean {
		if err := r.ensureMeans(); err != nil {
			return 0, err
		}
		fill = pick(r.means)[l]
	}
	return r.loss((&forward.Hooks{}).Replace(fmt.Sprintf("blocks.%d.%s", l, hook), rowsHook(fill)))
}

// AttnLoss is the loss with layer l's whole attention output (incl. b_O) ablated.
func (r *Runner) AttnLoss(l int, mode Mode) (float64, error) {
	return r.layerLoss(l, mode, "hook_attn_out", func(m *means) []backend.Tensor { return m.attn })
}

// MLPLoss is the loss with layer l's whole MLP output (incl. bias) ablated.
func (r *Runner) MLPLoss(l int, mode Mode) (float64, error) {
	return r.layerLoss(l, mode, "hook_mlp_out", func(m *means) []backend.Tensor { return m.mlp })
}

// Subsets returns the loss for every subset m of heads (2^len(heads)
// values): bit j of m set = heads[j] ablated; index 0 is the unablated loss.
func (r *Runner) Subsets(heads []Head, mode Mode) ([]float64, error) {
	if len(heads) > 16 {
		return nil, fmt.Errorf("ablate: %d heads give 2^%d subsets; at most 16 heads", len(heads), len(heads))
	}
	if err := r.checkHeads(heads); err != nil {
		return nil, err
	}
	out := make([]float64, 1<<len(heads))
	for m := range out {
		var set []Head
		for j, h := range heads {
			if m>>j&1 == 1 {
				set = append(set, h)
			}
		}
		var err error
		if len(set) == 0 {
			out[m], err = r.Baseline()
		} else {
			out[m], err = r.HeadsLoss(set, mode)
		}
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Each selects which component kinds Run ablates.
type Each struct{ Heads, Attn, MLP bool }

// ParseEach reads a comma-separated list of head, attn, mlp (or "all").
func ParseEach(s string) (Each, error) {
	var e Each
	for _, p := range strings.Split(s, ",") {
		switch strings.ToLower(strings.TrimSpace(p)) {
		case "all":
			e = Each{true, true, true}
		case "head", "heads":
			e.Heads = true
		case "attn":
			e.Attn = true
		case "mlp":
			e.MLP = true
		default:
			return Each{}, fmt.Errorf("--each %q: want a comma-separated list of head, attn, mlp (or all)", s)
		}
	}
	return e, nil
}

// Result is one ablation table. In mean mode the keys are the same (the
// mode is in "mode").
type Result struct {
	Mode     string      `json:"mode"`
	LossFrom int         `json:"loss_from"`
	B        int         `json:"batch"`
	T        int         `json:"tokens"`
	Baseline float64     `json:"baseline_loss"`
	Head     [][]float64 `json:"head_ablation_loss,omitempty"`       // [L][NH]
	Attn     []float64   `json:"attn_layer_ablation_loss,omitempty"` // [L]
	MLP      []float64   `json:"mlp_ablation_loss,omitempty"`        // [L]
}

// Run evaluates the baseline and every single component of the selected
// kinds, one pass each. progress (may be nil) gets (done, total) passes.
func (r *Runner) Run(each Each, mode Mode, progress func(done, total int)) (*Result, error) {
	L, NH := r.M.Cfg.Layers, r.M.Cfg.Heads
	total := 1
	if each.Heads {
		total += L * NH
	}
	if each.Attn {
		total += L
	}
	if each.MLP {
		total += L
	}
	if mode == Mean {
		total++
	}
	done := 0
	tick := func() {
		done++
		if progress != nil {
			progress(done, total)
		}
	}
	res := &Result{Mode: mode.String(), LossFrom: r.LossFrom, B: r.B, T: r.T}
	var err error
	if res.Baseline, err = r.Baseline(); err != nil {
		return nil, err
	}
	tick()
	if mode == Mean {
		if err := r.ensureMeans(); err != nil {
			return nil, err
		}
		tick()
	}
	if each.Heads {
		res.Head = make([][]float64, L)
		for l := 0; l < L; l++ {
			res.Head[l] = make([]float64, NH)
			for h := 0; h < NH; h++ {
				if res.Head[l][h], err = r.HeadsLoss([]Head{{l, h}}, mode); err != nil {
					return nil, err
				}
				tick()
			}
		}
	}
	if each.Attn {
		res.Attn = make([]float64, L)
		for l := range res.Attn {
			if res.Attn[l], err = r.AttnLoss(l, mode); err != nil {
				return nil, err
			}
			tick()
		}
	}
	if each.MLP {
		res.MLP = make([]float64, L)
		for l := range res.MLP {
			if res.MLP[l], err = r.MLPLoss(l, mode); err != nil {
				return nil, err
			}
			tick()
		}
	}
	return res, nil
}
