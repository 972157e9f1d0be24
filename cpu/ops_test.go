package cpu

import (
	"math"
	"testing"
)

// TestTanh32: the approximation behind GELUNew stays within 5e-7 of float64
// tanh (4e-7 measured), far below the 1e-4 the golden tests allow.
func TestTanh32(t *testing.T) {
	worst := 0.0
	for i := -2000000; i <= 2000000; i++ {
		x := float32(i) * 1e-5
		d := math.Abs(float64(tanh32(x)) - math.Tanh(float64(x)))
		worst = math.Max(worst, d)
	}
	if worst > 5e-7 {
		t.Fatalf("tanh32 max abs error %.3g > 5e-7", worst)
	}
	t.Logf("tanh32 max abs error %.3g", worst)
}
