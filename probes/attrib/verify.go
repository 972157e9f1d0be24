package attrib

import (
	"fmt"
	"math"
	"sort"

	"github.com/neoscope/neoscope/runtime/forward"
	"github.com/neoscope/neoscope/runtime/sweep"
)

// Verification compares attribution estimates with exact patching: each
// candidate (a head "l.h" and an MLP "mlp.l" for AtP, an edge "S>R" for
// EAP) patched from the corrupt run into the clean run through the batched
// engine of runtime/sweep (resample ablation, noise mode), exact change =
// patched LD - clean LD. Verify fills it for the largest estimates, Compare
// for every node and edge.
type Verification struct {
	// Names are Verify's N largest |estimates|, largest first, or Compare's
	// every node or edge in canonical order.
	Names    []string  `json:"names"`
	Estimate []float64 `json:"estimate"` // AtP / EAP
	Exact    []float64 `json:"exact"`    // patched LD - clean LD
	// Spearman is the rank correlation of estimate and exact over the N
	// (NaN, printed as null, when N < 3); Pearson the linear one.
	Spearman float64 `json:"spearman"`
	Pearson  float64 `json:"pearson"`
	// Worst are the indices (into Names) of the largest |estimate - exact|,
	// largest first (Verify: at most 5): AtP's known misses (saturated
	// attention) show up here.
	Worst []int `json:"worst"`
}

// nodeScores lists r's AtP scores by name: every head "l.h" (layer-major),
// then every MLP "mlp.l".
func nodeScores(r *Result) (names []string, est []float64) {
	for l, row := range r.HeadZ {
		for h, v := range row {
			names = append(names, fmt.Sprintf("%d.%d", l, h))
			est = append(est, v)
		}
	}
	for l, v := range r.MLPOut {
		names = append(names, fmt.Sprintf("mlp.%d", l))
		est = append(est, v)
	}
	return names, est
}

// Verify re-evaluates the n largest |scores| of r exactly (EAP's edges when
// r has them, else AtP's heads and MLPs) and stores the comparison in
// r.Verify.
func Verify(m *forward.Model, t Task, r *Result, n int) error {
	names, est := r.Edges, r.EAP
	if r.EAP == nil {
		names, est = nodeScores(r)
	}
	idx := byAbs(est)
	idx = idx[:min(n, len(idx))]
	pick, pickEst := make([]string, len(idx)), make([]float64, len(idx))
	for i, j := range idx {
		pick[i], pickEst[i] = names[j], est[j]
	}
	exact, err := exactChanges(m, t, pick)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	r.Verify = compare(pick, pickEst, exact, 5)
	return nil
}

// byAbs lists the indices of est by |est|, largest first (ties in order).
func byAbs(est []float64) []int {
	idx := make([]int, len(est))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return math.Abs(est[idx[a]]) > math.Abs(est[idx[b]]) })
	return idx
}

// exactChanges patches each named node or edge (sweep.ParseConfig syntax)
// from t's corrupt run into its clean run through the batched engine
// (noise mode, mean logit difference) and returns patched LD - clean LD for
// each.
func exactChanges(m *forward.Model, t Task, names []string) ([]float64, error) {
	cfg := m.Cfg
	d := sweep.DimsOf(cfg)
	d.T = t.T
	cfgs := make([]sweep.Config, len(names))
	for i, nm := range names {
		c, err := sweep.ParseConfig(nm, d)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", nm, err)
		}
		cfgs[i] = c
	}
	e, err := sweep.New(m, sweep.Task{Tokens: t.Clean, Corrupt: t.Corrupt, B: t.B, T: t.T, Metric: sweep.LD,
		Pos: t.Pos, A: t.IO, C: t.S}, sweep.Options{Mode: sweep.Noise})
	if err != nil {
		return nil, err
	}
	defer e.Close()
	vals, err := e.EvalCircuits(cfgs)
	if err != nil {
		return nil, err
	}
	for i := range vals {
		vals[i] -= e.Baseline
	}
	return vals, nil
}

// compare puts estimates beside exact values: the correlations and the k
// largest |estimate - exact|.
func compare(names []string, est, exact []float64, k int) *Verification {
	v := &Verification{Names: names, Estimate: est, Exact: exact, Spearman: math.NaN(), Pearson: math.NaN()}
	if len(exact) >= 3 {
		v.Spearman = pearson(ranks(est), ranks(exact))
		v.Pearson = pearson(est, exact)
	}
	miss := make([]int, len(exact))
	for i := range miss {
		miss[i] = i
	}
	sort.SliceStable(miss, func(a, b int) bool {
		return math.Abs(est[miss[a]]-exact[miss[a]]) > math.Abs(est[miss[b]]-exact[miss[b]])
	})
	v.Worst = miss[:min(k, len(miss))]
	return v
}

// ranks are the ranks of x (0-based, ties given their mean rank).
func ranks(x []float64) []float64 {
	idx := make([]int, len(x))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return x[idx[a]] < x[idx[b]] })
	r := make([]float64, len(x))
	for i := 0; i < len(idx); {
		j := i
		for j+1 < len(idx) && x[idx[j+1]] == x[idx[i]] {
			j++
		}
		for k := i; k <= j; k++ {
			r[idx[k]] = float64(i+j) / 2
		}
		i = j + 1
	}
	return r
}

// pearson is the correlation of x and y (NaN when either is constant).
func pearson(x, y []float64) float64 {
	n := float64(len(x))
	var mx, my float64
	for i := range x {
		mx += x[i]
		my += y[i]
	}
	mx, my = mx/n, my/n
	var sxy, sxx, syy float64
	for i := range x {
		sxy += (x[i] - mx) * (y[i] - my)
		sxx += (x[i] - mx) * (x[i] - mx)
		syy += (y[i] - my) * (y[i] - my)
	}
	if sxx == 0 || syy == 0 {
		return math.NaN()
	}
	return sxy / math.Sqrt(sxx*syy)
}
