package sweep

import (
	"fmt"
	"io"
	"math"
	"strings"
)

// SubsetsOf returns the listed components when the whole space is one
// subsets(...) term (the spaces an interaction table is made from).
func SubsetsOf(src string, d Dims) ([]Component, bool) {
	p := &parser{src: src, d: d}
	p.next()
	if p.tok.kind != tWord || p.tok.s != "subsets" {
		return nil, false
	}
	p.next()
	if p.expect("(", "") != nil {
		return nil, false
	}
	set, err := p.setList()
	if err != nil || p.expect(")", "") != nil || p.tok.kind != tEOF || len(set) > 16 {
		return nil, false
	}
	return set, true
}

// Interaction is the effect of ablating each component given a set S of
// the others already ablated: Effect[m][j] = v(S_m + c_j) - v(S_m), where
// S_m is subset m (bit j = j-th component) and v the metric; NaN when c_j
// is in S_m. Row 0 holds each component's effect alone. A head whose effect
// grows once others are ablated is a backup head (it compensates); one
// whose effect shrinks is redundant with what S removed.
type Interaction struct {
	Components []Component
	Sets       []string    // row labels, "none" for the empty set
	Effect     [][]float64 // [2^k][k]
}

// Interactions builds the table from the metric of every subset, indexed by
// mask (bit j = j-th component), as subsets(...) orders its configurations.
func Interactions(comps []Component, value []float64) (*Interaction, error) {
	k := len(comps)
	if len(value) != 1<<k {
		return nil, fmt.Errorf("interactions: %d values for %d components (want 2^%d)", len(value), k, k)
	}
	it := &Interaction{Components: comps}
	for m := 0; m < 1<<k; m++ {
		var names []string
		row := make([]float64, k)
		for j := 0; j < k; j++ {
			if m>>j&1 == 1 {
				names = append(names, comps[j].String())
				row[j] = math.NaN()
			} else {
				row[j] = value[m|1<<j] - value[m]
			}
		}
		if len(names) == 0 {
			names = []string{"none"}
		}
		it.Sets = append(it.Sets, strings.Join(names, "+"))
		it.Effect = append(it.Effect, row)
	}
	return it, nil
}

// Print writes the table: one row per set S already ablated, one column per
// component; "." where the component is in S.
func (it *Interaction) Print(w io.Writer, metric string) {
	fmt.Fprintf(w, "change in %s from ablating the column's component, given the row's set already ablated:\n", metric)
	width := len("given S")
	for _, s := range it.Sets {
		width = max(width, len(s))
	}
	fmt.Fprintf(w, "%-*s", width, "given S")
	for _, c := range it.Components {
		fmt.Fprintf(w, " %10s", c)
	}
	fmt.Fprintln(w)
	for m, row := range it.Effect {
		fmt.Fprintf(w, "%-*s", width, it.Sets[m])
		for _, v := range row {
			if math.IsNaN(v) {
				fmt.Fprintf(w, " %10s", ".")
			} else {
				fmt.Fprintf(w, " %+10.5f", v)
			}
		}
		fmt.Fprintln(w)
	}
}

// Summary is, for each component j, its effect alone, given all the others,
// and the minimum, mean and maximum over every set S of the others (the
// table for spaces too large to show whole): [k][5].
func (it *Interaction) Summary() (cols []string, rows [][]float64) {
	k := len(it.Components)
	cols = []string{"alone", "given all others", "min", "mean", "max"}
	all := 1<<k - 1
	for j := 0; j < k; j++ {
		lo, hi, sum, n := math.Inf(1), math.Inf(-1), 0.0, 0
		for m, row := range it.Effect {
			if m>>j&1 == 1 {
				continue
			}
			v := row[j]
			lo, hi, sum, n = math.Min(lo, v), math.Max(hi, v), sum+v, n+1
		}
		rows = append(rows, []float64{it.Effect[0][j], it.Effect[all&^(1<<j)][j], lo, sum / float64(n), hi})
	}
	return cols, rows
}

// MaxTable is the largest number of components whose whole table Print
// shows (2^6 = 64 rows); larger tables are summarised.
const MaxTable = 6

// PrintSummary writes Summary as a table.
func (it *Interaction) PrintSummary(w io.Writer, metric string) {
	cols, rows := it.Summary()
	fmt.Fprintf(w, "change in %s from ablating each component, over the %d sets of the others already ablated:\n", metric, 1<<(len(it.Components)-1))
	fmt.Fprintf(w, "%-10s", "component")
	for _, c := range cols {
		fmt.Fprintf(w, " %17s", c)
	}
	fmt.Fprintln(w)
	for j, r := range rows {
		fmt.Fprintf(w, "%-10s", it.Components[j])
		for _, v := range r {
			fmt.Fprintf(w, " %+17.5f", v)
		}
		fmt.Fprintln(w)
	}
}
