package main

import (
	"fmt"
	"os"
	"strconv"

	"github.com/neoscope/neoscope/runtime/forward"
	"github.com/neoscope/neoscope/runtime/sweep"
)

// buildPatchTask reads the flags of `sweep --task patch`: --clean and
// --corrupt (equal shapes), --io/--s (one id per row), --metric ld|kl,
// --pos (ld; default last).
func (f *sweepFlags) buildPatchTask(m *forward.Model, rowsOf func(path, flag string) error, t *sweep.Task) (sweep.Task, string, error) {
	if err := rowsOf(f.corrupt, "corrupt"); err != nil {
		return *t, "", err
	}
	corrupt, cB, cT := t.Tokens, t.B, t.T
	if err := rowsOf(f.clean, "clean"); err != nil {
		return *t, "", err
	}
	if cB != t.B || cT != t.T {
		return *t, "", usagef("--corrupt %s holds %d prompts x %d tokens, --clean %s %d x %d: want equal shapes", f.corrupt, cB, cT, f.clean, t.B, t.T)
	}
	t.Corrupt = corrupt
	switch f.metric {
	case "ld", "", "logit_diff":
		t.Metric = sweep.LD
	case "kl":
		t.Metric = sweep.KL
	default:
		return *t, "", usagef("--metric %q: --task patch measures ld or kl", f.metric)
	}
	var err error
	if f.ioIDs != "" || t.Metric == sweep.LD {
		if t.A, err = parseIDs("io", f.ioIDs, t.B); err != nil {
			return *t, "", err
		}
		if t.C, err = parseIDs("s", f.sIDs, t.B); err != nil {
			return *t, "", err
		}
	}
	t.Pos = t.T - 1
	if f.pos != "" {
		p, err := strconv.Atoi(f.pos)
		if err != nil || p < 0 || p >= t.T {
			return *t, "", usagef("--pos %q: want a position in 0..%d", f.pos, t.T-1)
		}
		t.Pos = p
	}
	return *t, fmt.Sprintf("patch pos=%d", t.Pos), nil
}

// reportPatch prints the clean/corrupt gap, whether normalised scores mean
// anything on these prompts, and the configurations that move the metric
// most.
func (f *sweepFlags) reportPatch(sum *sweepSummary, base float64, col string, gap sweep.Gap) error {
	top := sum.top
	noisy := col == "ld" && gap.Noisy
	reversed := col == "ld" && gap.Reversed
	if f.model.JSON {
		out := map[string]any{"out": f.out, "rows": sum.n, "baseline": base, "metric": col, "top": top,
			"clean": gap.Clean, "corrupt": gap.Corrupt, "gap": gap.Diff, "gap_se": gap.SE, "gap_is_noise": noisy, "gap_reversed": reversed}
		return printJSON(os.Stdout, out)
	}
	fmt.Printf("%s clean %.6f, corrupt %.6f: gap %.6f +- %.6f (standard error over %s)\n", col, gap.Clean, gap.Corrupt, gap.Diff, gap.SE, "rows")
	if noisy {
		fmt.Println("the clean-corrupt gap is within 2 standard errors of zero: normalised patching scores are noise on these prompts; no verdict")
	}
	if reversed {
		fmt.Println("the corrupt prompts score higher than the clean ones (by more than 2 standard errors): the model does not show the behaviour these prompts probe; normalised scores measure the reverse; no verdict")
	}
	fmt.Printf("%-32s %9s %12s %12s", "config", "n_patched", col, "delta")
	if col == "ld" && !noisy {
		fmt.Printf(" %12s", "normalised")
	}
	fmt.Println()
	for _, r := range top {
		name := r.Config
		if name == "" {
			name = "(none)"
		}
		fmt.Printf("%-32s %9d %12.6f %+12.6f", name, r.NAblated, r.Value, r.Delta)
		if col == "ld" && !noisy {
			fmt.Printf(" %12.4f", gap.Normalised(r.Value))
		}
		fmt.Println()
	}
	return nil
}
