package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/neoscope/neoscope/probes/ioi"
)

// TestIOITokenLabelsWhole (issue 18, charts): the per-position tables label
// their columns with whole tokens; a long one widens its column instead of
// being cut to 8 characters.
func TestIOITokenLabelsWhole(t *testing.T) {
	res := &ioi.Result{ResidT: 3,
		PatchResid:   [][]float64{{0.1, 0.5, -0.25}},
		PatchHeadPos: [][][]float64{{{0.02, 0.3, 0.04}}}}
	res.DLA.Head = [][]float64{{0}}
	labels := []string{"0:When", "1:Christopher", "2: international"}
	var b bytes.Buffer
	printIOI(&b, res, labels)
	out := b.String()
	for _, want := range []string{"1:Christopher", "2: international"} {
		if n := strings.Count(out, want); n != 2 {
			t.Errorf("label %q appears %d times, want it whole in both per-position tables:\n%s", want, n, out)
		}
	}
	// Columns stay aligned: each value ends where its label ends.
	lines := strings.Split(out, "\n")
	for i, ln := range lines[:len(lines)-1] {
		if strings.HasPrefix(ln, "layer ") && strings.Contains(ln, "1:Christopher") {
			end := strings.Index(ln, "1:Christopher") + len("1:Christopher")
			if next := lines[i+1]; strings.Index(next, "0.500")+len("0.500") != end {
				t.Errorf("values not aligned under the widened columns:\n%s\n%s", ln, next)
			}
		}
	}
}
