package attrib

import (
	"fmt"
	"math"
	"sort"

	"github.com/neoscope/neoscope/runtime/forward"
	"github.com/neoscope/neoscope/runtime/sweep"
)

// Verification compares the largest attribution estimates with exact
// patching: each candidate (a head "l.h" and an MLP "mlp.l" for AtP, an
// edge "S>R" for EAP) patched from the corrupt run into the clean run
// through the batched engine of runtime/sweep (resample ablation, noise
// mode), exact change = patched LD - clean LD.
type Verification struct {
	Names    []string  `json:"names"`    // the N largest |estimates|, largest first
	Estimate []float64 `json:"estimate"` // AtP / EAP
	Exact    []float64 `json:"exact"`    // patched LD - clean LD
	// Spearman is the rank correlation of estimate and exact over the N
	// (NaN, printed as null, when N < 3); Pearson the linear one.
	Spearman float64 `json:"spearman"`
	Pearson  float64 `json:"pearson"`
	// Worst are the indices (into Names) of the largest |estimate - exact|,
	// at most 5: AtP's known misses (saturated attention) show up here.
	Worst []int `json:"worst"`
}

// Verify re-evaluates the n largest |scores| of r exactly (EAP's edges when
// r has them, else AtP's heads and MLPs) and stores the comparison in
// r.Verify.
func Verify(m *forward.Model, t Task, r *Result, n int) error {
	var names []string
	var est []float64
	if r.EAP != nil {
		names, est = r.Edges, r.EAP
	} else {
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
	}
	idx := make([]int, len(est))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return math.Abs(est[idx[a]]) > math.Abs(est[idx[b]]) })
	idx = idx[:min(n, len(idx))]
	cfg := m.Cfg
	d := sweep.DimsOf(cfg)
	d.T = t.T
	v := &Verification{}
	cfgs := make([]sweep.Config, len(idx))
	for i, j := range idx {
		c, err := sweep.ParseConfig(names[j], d)
		if err != nil {
			return fmt.Errorf("verify: %s: %w", names[j], err)
		}
		cfgs[i] = c
		v.Names = append(v.Names, names[j])
		v.Estimate = append(v.Estimate, est[j])
	}
	e, err := sweep.New(m, sweep.Task{Tokens: t.Clean, Corrupt: t.Corrupt, B: t.B, T: t.T, Metric: sweep.LD,
		Pos: t.Pos, A: t.IO, C: t.S}, sweep.Options{Mode: sweep.Noise})
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	defer e.Close()
	vals, err := e.EvalCircuits(cfgs)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	for _, x := range vals {
		v.Exact = append(v.Exact, x-e.Baseline)
	}
	v.Spearman, v.Pearson = math.NaN(), math.NaN()
	if len(vals) >= 3 {
		v.Spearman = pearson(ranks(v.Estimate), ranks(v.Exact))
		v.Pearson = pearson(v.Estimate, v.Exact)
	}
	miss := make([]int, len(vals))
	for i := range miss {
		miss[i] = i
	}
	sort.SliceStable(miss, func(a, b int) bool {
		return math.Abs(v.Estimate[miss[a]]-v.Exact[miss[a]]) > math.Abs(v.Estimate[miss[b]]-v.Exact[miss[b]])
	})
	v.Worst = miss[:min(5, len(miss))]
	r.Verify = v
	return nil
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
