package ioi

import (
	"math"
	"strings"
	"testing"
)

// TestGapTooSmall: the case (clean 0.16 below corrupt 0.32) and a
// noise-sized gap get no verdict; a clear positive gap does.
func TestGapTooSmall(t *testing.T) {
	n := 200
	clean, corrupt := make([]float64, n), make([]float64, n)
	for i := range clean {
		wiggle := 0.5 * math.Sin(float64(i)) // spread of the per-prompt gap
		clean[i], corrupt[i] = 0.16+wiggle, 0.32
	}
	if g := GapTooSmall(clean, corrupt); !g.TooSmall || !strings.Contains(g.Reason, "prefer IO less") {
		t.Errorf("clean below corrupt: %+v", g)
	}
	for i := range clean {
		clean[i] = 0.32 + 0.01 + 0.5*math.Sin(float64(i)) // mean gap ~0.01, SE ~0.025
	}
	if g := GapTooSmall(clean, corrupt); !g.TooSmall || !strings.Contains(g.Reason, "noise") {
		t.Errorf("noise-sized gap: %+v", g)
	}
	for i := range clean {
		clean[i] = 1.32 + 0.5*math.Sin(float64(i))
	}
	g := GapTooSmall(clean, corrupt)
	if g.TooSmall || math.Abs(g.Mean-1) > 0.01 || g.SE <= 0 || g.SE > 0.05 {
		t.Errorf("clear gap of 1: %+v", g)
	}
	if g := GapTooSmall([]float64{3}, []float64{0}); !g.TooSmall {
		t.Errorf("one prompt: %+v", g)
	}
}
