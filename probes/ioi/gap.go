package ioi

import (
	"fmt"
	"math"
)

// GapSE is how many standard errors the clean-corrupt gap must clear for a
// verdict (GapTooSmall).
const GapSE = 2

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
// measure something. The rule: the mean per-prompt difference
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
	var sum float64
	for i := 0; i < n; i++ {
		sum += clean[i] - corrupt[i]
	}
	g.Mean = sum / float64(n)
	if n < 2 {
		g.TooSmall, g.Reason = true, "one prompt: the spread of the gap is unknown"
		return g
	}
	var ss float64
	for i := 0; i < n; i++ {
		d := clean[i] - corrupt[i] - g.Mean
		ss += d * d
	}
	g.SE = math.Sqrt(ss/float64(n-1)) / math.Sqrt(float64(n))
	switch {
	case math.IsNaN(g.Mean) || math.IsNaN(g.SE):
		g.TooSmall, g.Reason = true, "the logit differences are not numbers (NaN)"
	case g.Mean <= 0:
		g.TooSmall, g.Reason = true, fmt.Sprintf("the clean prompts do not prefer IO more than the corrupted ones (mean LD_clean - LD_corrupt = %.4f, standard error %.4f over %d prompts)", g.Mean, g.SE, n)
	case g.Mean <= GapSE*g.SE:
		g.TooSmall, g.Reason = true, fmt.Sprintf("the gap LD_clean - LD_corrupt = %.4f is within %d standard errors (%.4f) over %d prompts: indistinguishable from noise", g.Mean, GapSE, g.SE, n)
	}
	return g
}
