package ioi

import (
	"fmt"
	"math"

	"github.com/neoscope/neoscope/runtime/forward"
	"github.com/neoscope/neoscope/runtime/sweep"
)

// Batch is B prompt pairs of T tokens each: Clean and Corrupt [B*T]
// row-major, equal everywhere except where the corruption changed a token;
// the logit difference is read at position Pos (usually T-1) between IO[b]
// and S[b].
type Batch struct {
	Clean, Corrupt []int32
	B, T, Pos      int
	IO, S          []int32
}

// Check validates a batch against the model.
func (bt *Batch) Check(m *forward.Model) error {
	if bt.B < 1 || bt.T < 1 {
		return fmt.Errorf("ioi: batch of %d rows of %d tokens", bt.B, bt.T)
	}
	if len(bt.Clean) != bt.B*bt.T || len(bt.Corrupt) != bt.B*bt.T {
		return fmt.Errorf("ioi: clean has %d ids and corrupt %d, want B*T = %d*%d (equal shapes)", len(bt.Clean), len(bt.Corrupt), bt.B, bt.T)
	}
	if bt.T > m.Cfg.Context {
		return fmt.Errorf("ioi: sequences of %d tokens exceed the model's context of %d", bt.T, m.Cfg.Context)
	}
	if len(bt.IO) != bt.B || len(bt.S) != bt.B {
		return fmt.Errorf("ioi: %d IO ids and %d S ids for %d rows (want one of each per row)", len(bt.IO), len(bt.S), bt.B)
	}
	if bt.Pos < 0 || bt.Pos >= bt.T {
		return fmt.Errorf("ioi: position %d outside 0..%d", bt.Pos, bt.T-1)
	}
	V := m.Cfg.Vocab
	for _, p := range []struct {
		name string
		ids  []int32
	}{{"clean", bt.Clean}, {"corrupt", bt.Corrupt}, {"io", bt.IO}, {"s", bt.S}} {
		name := p.name
		for i, id := range p.ids {
			if id < 0 || int(id) >= V {
				return fmt.Errorf("ioi: %s id %d at index %d is outside the vocabulary [0, %d)", name, id, i, V)
			}
		}
	}
	for b := range bt.IO {
		if bt.IO[b] == bt.S[b] {
			return fmt.Errorf("ioi: row %d: IO and S are the same id %d", b, bt.IO[b])
		}
	}
	return nil
}

// What selects the patching experiments: per head z, the residual at one
// position, per MLP, per attention layer, per head at one position.
type What struct{ Heads, Resid, MLP, Attn, HeadPos bool }

// All is every experiment.
var All = What{true, true, true, true, true}

// Result holds the IOI measurements. Logit differences are means over all
// rows of all batches; patching values are normalised,
// (LD_patched - LD_corrupt) / (LD_clean - LD_corrupt): 1 = clean behaviour
// restored, 0 = no effect.
type Result struct {
	N           int       `json:"prompts"`
	LDClean     float64   `json:"ioi_ld_clean"`
	LDCorrupt   float64   `json:"ioi_ld_corrupt"`
	RowLDClean  []float64 `json:"row_ld_clean"`   // per prompt, batches in order
	RowLDCorr   []float64 `json:"row_ld_corrupt"` // per prompt
	IOPreferred float64   `json:"io_preferred_fraction"`

	PatchHeadZ [][]float64 `json:"patch_head_z,omitempty"` // [L][NH]
	PatchMLP   []float64   `json:"patch_mlp_out,omitempty"`
	PatchAttn  []float64   `json:"patch_attn_out,omitempty"`
	// PatchResid is [L][T] on the first batch only (positions only line up
	// within one batch), normalised by that batch's own clean and corrupt
	// logit differences; ResidT is its T.
	PatchResid [][]float64 `json:"patch_resid_pre,omitempty"`
	ResidT     int         `json:"patch_resid_tokens,omitempty"`
	// PatchHeadPos [L][NH][T] is head z patched at one position, on the
	// first batch and normalised like PatchResid.
	PatchHeadPos [][][]float64 `json:"patch_head_z_pos,omitempty"`
	// GapSE is the standard error of the mean over rows of LD_clean_b -
	// LD_corrupt_b; GapIsNoise is true when |LDClean - LDCorrupt| < 2
	// GapSE: normalised patching values are then noise and Summary gives
	// no verdict.
	GapSE      float64 `json:"ld_gap_se"`
	GapIsNoise bool    `json:"gap_is_noise"`
	// GapReversed is true when LDClean < LDCorrupt by more than 2 GapSE:
	// the model does not do IOI on these prompts (the corrupt prompts
	// favour IO more); Summary gives no verdict then either.
	GapReversed bool `json:"gap_reversed"`

	DLA
	Summary Summary `json:"summary"`
}

// Summary answers "heads or MLPs?": the share of the total absolute
// patching effect (sum |patch_head_z| over heads vs sum |patch_mlp_out|
// over layers) and of the total absolute DLA (sum |dla_head| vs sum
// |dla_mlp|) carried by heads. A share of 0.5 or more means heads carry
// more; when the two measures disagree the answer says so. PatchHeadShare is
// -1 when head or MLP patching was not run. Single heads are compared with
// whole MLP layers, as the question is usually asked. When the clean-corrupt
// gap is noise (Result.GapIsNoise) the answer gives no verdict.
type Summary struct {
	PatchHeadShare float64 `json:"patch_head_share"`
	DLAHeadShare   float64 `json:"dla_head_share"`
	Answer         string  `json:"answer"`
	// Gap is the clean-corrupt gap (GapTooSmall); NoVerdict is true when it
	// is too small for the shares to mean anything, and Answer then says so.
	Gap       Gap  `json:"gap"`
	NoVerdict bool `json:"no_verdict"`
}

// Options for Run.
type Options struct {
	Patch    What
	Progress func(done, total int) // may be nil
}

// ldRun runs tokens with h and returns the per-row logit differences.
func ldRun(m *forward.Model, bt *Batch, tokens []int32, h *forward.Hooks) ([]float64, error) {
	s, _, err := m.Run(tokens, bt.B, bt.T, h, false)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return m.LogitDiffs(s, bt.Pos, bt.IO, bt.S)
}

func sum(x []float64) float64 {
	var s float64
	for _, v := range x {
		s += v
	}
	return s
}

// Run measures logit differences, activation patching (corrupt run with
// clean activations patched in) and direct logit
// attribution on the clean run, over batches (all with the same model).
// Each batch's patching experiments run as one batched sweep (patchAll).
func Run(m *forward.Model, batches []Batch, opt Options) (*Result, error) {
	if len(batches) == 0 {
		return nil, fmt.Errorf("ioi: no prompts")
	}
	for i := range batches {
		if err := batches[i].Check(m); err != nil {
			if len(batches) > 1 {
				return nil, fmt.Errorf("batch %d: %w", i, err)
			}
			return nil, err
		}
	}
	L, NH := m.Cfg.Layers, m.Cfg.Heads
	w := opt.Patch
	perBatch := 0
	if w.Heads {
		perBatch += L * NH
	}
	if w.MLP {
		perBatch += L
	}
	if w.Attn {
		perBatch += L
	}
	total := len(batches) * (2 + perBatch)
	if w.Resid {
		total += L * batches[0].T
	}
	if w.HeadPos {
		total += L * NH * batches[0].T
	}
	done := 0
	tick := func() {
		done++
		if opt.Progress != nil {
			opt.Progress(done, total)
		}
	}

	res := &Result{}
	if w.Heads {
		res.PatchHeadZ = zeros2(L, NH)
	}
	if w.MLP {
		res.PatchMLP = make([]float64, L)
	}
	if w.Attn {
		res.PatchAttn = make([]float64, L)
	}
	res.DLA = newDLA(L, NH)
	undefined := func(what string, cl, co float64) error {
		if math.Abs(cl-co) < 1e-6 {
			return fmt.Errorf("ioi: %sclean and corrupt logit differences are equal (%.6g); the normalised patching metric is undefined", what, cl)
		}
		return nil
	}
	// One batch at a time: its clean activations stay on the host only while
	// its experiments run (peak memory is one batch's cache). Patched LDs
	// are summed over rows here and normalised at the end.
	for i := range batches {
		bt := &batches[i]
		h := (&forward.Hooks{}).Observe("blocks.*.attn.hook_z", "blocks.*.hook_mlp_out") // for DLA
		s, _, err := m.Run(bt.Clean, bt.B, bt.T, h, false)
		if err != nil {
			return nil, err
		}
		ld, err := m.LogitDiffs(s, bt.Pos, bt.IO, bt.S)
		if err == nil {
			err = addDLA(m, bt, s, h.Cache, &res.DLA)
		}
		s.Close()
		if err != nil {
			return nil, err
		}
		tick()
		ldc, err := ldRun(m, bt, bt.Corrupt, nil)
		if err != nil {
			return nil, err
		}
		tick()
		res.RowLDClean = append(res.RowLDClean, ld...)
		res.RowLDCorr = append(res.RowLDCorr, ldc...)
		n0 := float64(bt.B)
		cl, co := sum(ld)/n0, sum(ldc)/n0
		if len(batches) == 1 && perBatch > 0 {
			// Fail before the experiments when the answer is already known.
			if err := undefined("", cl, co); err != nil {
				return nil, err
			}
		}

		if (w.Resid || w.HeadPos) && i == 0 {
			if err := undefined("batch 0's ", cl, co); err != nil {
				return nil, err
			}
		}
		// Every experiment of this batch through the sweep engine
		// (runtime/sweep, Mode Denoise): one batched, prefix-shared run
		// instead of one pass per entry.
		type slot struct {
			dst  *float64
			norm bool // batch 0's own normalisation (positions), else a row sum
		}
		var space []string
		var slots []slot
		for l := 0; l < L; l++ {
			if w.Heads {
				for hd := 0; hd < NH; hd++ {
					space = append(space, fmt.Sprintf("%d.%d", l, hd))
					slots = append(slots, slot{&res.PatchHeadZ[l][hd], false})
				}
			}
			if w.MLP {
				space = append(space, fmt.Sprintf("mlp.%d", l))
				slots = append(slots, slot{&res.PatchMLP[l], false})
			}
			if w.Attn {
				space = append(space, fmt.Sprintf("attn.%d", l))
				slots = append(slots, slot{&res.PatchAttn[l], false})
			}
		}
		if w.Resid && i == 0 {
			res.ResidT = bt.T
			res.PatchResid = zeros2(L, bt.T)
			for l := 0; l < L; l++ {
				for t := 0; t < bt.T; t++ {
					space = append(space, fmt.Sprintf("resid.%d@%d", l, t))
					slots = append(slots, slot{&res.PatchResid[l][t], true})
				}
			}
		}
		if w.HeadPos && i == 0 {
			res.ResidT = bt.T
			res.PatchHeadPos = make([][][]float64, L)
			for l := 0; l < L; l++ {
				res.PatchHeadPos[l] = zeros2(NH, bt.T)
				for hd := 0; hd < NH; hd++ {
					for t := 0; t < bt.T; t++ {
						space = append(space, fmt.Sprintf("%d.%d@%d", l, hd, t))
						slots = append(slots, slot{&res.PatchHeadPos[l][hd][t], true})
					}
				}
			}
		}
		if len(space) > 0 {
			vals, err := patchAll(m, bt, space, func(n int) {
				for k := 0; k < n; k++ {
					tick()
				}
			})
			if err != nil {
				return nil, err
			}
			for k, sl := range slots {
				if sl.norm {
					*sl.dst = (vals[k] - co) / (cl - co)
				} else {
					*sl.dst += vals[k] * n0
				}
			}
		}
	}

	N := float64(len(res.RowLDClean))
	res.N = len(res.RowLDClean)
	res.LDClean, res.LDCorrupt = sum(res.RowLDClean)/N, sum(res.RowLDCorr)/N
	for _, v := range res.RowLDClean {
		if v > 0 {
			res.IOPreferred++
		}
	}
	res.IOPreferred /= N
	res.DLA.scale(1 / N)
	den := res.LDClean - res.LDCorrupt
	if perBatch > 0 {
		if err := undefined("", res.LDClean, res.LDCorrupt); err != nil {
			return nil, err
		}
	}
	norm := func(rowSum float64) float64 { return (rowSum/N - res.LDCorrupt) / den }
	for l := 0; l < L; l++ {
		if w.Heads {
			for hd := range res.PatchHeadZ[l] {
				res.PatchHeadZ[l][hd] = norm(res.PatchHeadZ[l][hd])
			}
		}
		if w.MLP {
			res.PatchMLP[l] = norm(res.PatchMLP[l])
		}
		if w.Attn {
			res.PatchAttn[l] = norm(res.PatchAttn[l])
		}
	}
	gap := sweep.GapOf(res.RowLDClean, res.RowLDCorr)
	res.GapSE, res.GapIsNoise, res.GapReversed = gap.SE, gap.Noisy, gap.Reversed
	res.Summary = summarise(res)
	return res, nil
}

// patchAll runs the corrupt prompts of bt with each configuration of space
// (sweep configuration names) patched in from the clean run, batched
// through the sweep engine, and returns the mean logit difference of each.
func patchAll(m *forward.Model, bt *Batch, space []string, done func(n int)) ([]float64, error) {
	dims := sweep.DimsOf(m.Cfg)
	dims.T = bt.T
	cfgs := make([]sweep.Config, len(space))
	for i, s := range space {
		c, err := sweep.ParseConfig(s, dims)
		if err != nil {
			return nil, err
		}
		cfgs[i] = c
	}
	e, err := sweep.New(m, sweep.Task{Tokens: bt.Clean, Corrupt: bt.Corrupt, B: bt.B, T: bt.T,
		Metric: sweep.LD, Pos: bt.Pos, A: bt.IO, C: bt.S}, sweep.Options{Mode: sweep.Denoise})
	if err != nil {
		return nil, err
	}
	defer e.Close()
	out := make([]float64, len(cfgs))
	for _, ch := range e.Plan(cfgs) {
		batch := make([]sweep.Config, len(ch))
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
		done(len(ch))
	}
	return out, nil
}

func zeros2(a, b int) [][]float64 {
	out := make([][]float64, a)
	for i := range out {
		out[i] = make([]float64, b)
	}
	return out
}

func absSum2(x [][]float64) float64 {
	var s float64
	for _, r := range x {
		for _, v := range r {
			s += math.Abs(v)
		}
	}
	return s
}

func summarise(r *Result) Summary {
	var s Summary
	share := func(heads, mlps float64) float64 {
		if heads+mlps == 0 {
			return 0
		}
		return heads / (heads + mlps)
	}
	s.DLAHeadShare = share(absSum2(r.DLA.Head), absSum2([][]float64{r.DLA.MLP}))
	s.PatchHeadShare = -1 // not measured
	if r.PatchHeadZ != nil && r.PatchMLP != nil {
		s.PatchHeadShare = share(absSum2(r.PatchHeadZ), absSum2([][]float64{r.PatchMLP}))
	}
	who := func(x float64) string {
		if x >= 0.5 {
			return "heads"
		}
		return "MLPs"
	}
	s.Gap = GapTooSmall(r.RowLDClean, r.RowLDCorr)
	if s.NoVerdict = s.Gap.TooSmall; s.NoVerdict {
		s.Answer = fmt.Sprintf("no verdict: %s; the patching shares measure noise (heads carry %.0f%% of the total |DLA|)", s.Gap.Reason, 100*s.DLAHeadShare)
	} else if s.PatchHeadShare >= 0 {
		verdict := "mostly " + who(s.PatchHeadShare)
		if who(s.PatchHeadShare) != who(s.DLAHeadShare) {
			verdict = fmt.Sprintf("mixed: patching points to %s, DLA to %s", who(s.PatchHeadShare), who(s.DLAHeadShare))
		}
		s.Answer = fmt.Sprintf("heads carry %.0f%% of the total |patching effect| (heads + MLPs) and %.0f%% of the total |DLA|: %s",
			100*s.PatchHeadShare, 100*s.DLAHeadShare, verdict)
	} else {
		s.Answer = fmt.Sprintf("heads carry %.0f%% of the total |DLA| (heads + MLPs): mostly %s", 100*s.DLAHeadShare, who(s.DLAHeadShare))
	}
	return s
}
