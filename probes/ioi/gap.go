package ioi

import (
	"fmt"
	"math"

	"github.com/neoscope/neoscope/runtime/sweep"
)

// GapSE is how many standard errors the clean-corrupt gap must clear for a
// verdict (GapTooSmall). The rule itself lives in one place, sweep.GapOf,
// which the patching engine's tables use too.
const GapSE = sweep.GapSE

// Gap is the clean-corrupt logit-difference gap over paired prompts: the
// per-prompt differences d_i = LD_clean_i - LD_corrupt_i, their mean and
// its standard error (sample standard deviation / sqrt(n)).
type Gap struct {
	N        int     `json:"prompts"`
	Mean     float64 `json:"mean"`
	SE       float64 `json:"standard_error"`
	TooSmall bool    `json:"too_small"`
	Reason   string  `json:"reason,omitempty"`
}

// GapTooSmall decides whether the clean run shows the behaviour clearly
// more than the corrupted one, so that normalised patching
// (patched - corrupt) / (clean - corrupt) and the heads-or-MLPs verdict
// measure something. The rule (sweep.GapOf): the mean per-prompt difference
// LD_clean - LD_corrupt must be positive and more than GapSE (2) standard
// errors of that mean. Otherwise (a negative or noise-sized gap, or fewer
// than two prompts, where the spread is unknown) Gap.TooSmall is true and
// Gap.Reason says why; commands then print no verdict. clean and corrupt
// are per-prompt logit differences, paired by index.
func GapTooSmall(clean, corrupt []float64) Gap {
	n := min(len(clean), len(corrupt))
	g := Gap{N: n}
	if n == 0 {
		g.TooSmall, g.Reason = true, "no prompts"
		return g
	}
	sg := sweep.GapOf(clean[:n], corrupt[:n])
	g.Mean, g.SE, g.TooSmall = sg.Diff, sg.SE, !sg.Verdict()
	switch {
	case n < 2:
		g.Reason = "one prompt: the spread of the gap is unknown"
	case math.IsNaN(g.Mean) || math.IsNaN(g.SE):
		g.Reason = "the logit differences are not numbers (NaN)"
	case sg.Reversed:
		g.Reason = fmt.Sprintf("the clean prompts prefer IO less than the corrupted ones (mean LD_clean - LD_corrupt = %.4f, below zero by more than %d standard errors of %.4f over %d prompts): the model does not show the behaviour", g.Mean, GapSE, g.SE, n)
	case sg.Noisy:
		g.Reason = fmt.Sprintf("the gap LD_clean - LD_corrupt = %.4f is within %d standard errors (%.4f) of zero over %d prompts: indistinguishable from noise", g.Mean, GapSE, g.SE, n)
	}
	return g
}
