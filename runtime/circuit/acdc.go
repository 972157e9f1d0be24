package circuit

import (
	"fmt"
	"math"

	"github.com/neoscope/neoscope/runtime/graph"
)

// Metric is what an Evaluator returns for a circuit.
type Metric string

const (
	KL Metric = "kl" // mean over rows of KL(p_clean || p_circuit) at the last position
	LD Metric = "ld" // mean over rows of logits[io] - logits[s] at the last position
)

// ParseMetric reads "kl" or "ld".
func ParseMetric(s string) (Metric, error) {
	switch Metric(s) {
	case KL, LD:
		return Metric(s), nil
	}
	return "", fmt.Errorf("metric %q: want kl or ld", s)
}

// Evaluator scores circuits. removed[i][e] is true when canonical edge e of
// the graph is removed from circuit i (a nil or all-false slice is the full
// model). It returns one metric value per circuit, in order.
type Evaluator interface {
	Eval(removed [][]bool) ([]float64, error)
	// Batch is how many circuits one Eval call should carry (>= 1): the
	// speculation depth of Run.
	Batch() int
}

// Decision is one evaluated ACDC decision: the metric of the circuit with
// Edge removed from the current circuit (Edge -1: the full circuit).
type Decision struct {
	Edge  int     `json:"e"`
	Value float64 `json:"v"`
}

// Options control Run.
type Options struct {
	Metric    Metric
	Threshold float64 // TAU
	// Batch caps the speculation depth (0: the Evaluator's Batch; 1: the
	// plain sequential algorithm).
	Batch int
	// Replay holds the decisions of an earlier run of the same inputs, in
	// order; they are used instead of evaluations.
	Replay []Decision
	// Record, if set, is called with every evaluated decision in order
	// (replayed ones excluded), before Run goes on.
	Record func(Decision) error
	// Progress, if set, is called after each receiver with the number of
	// receivers done and the total.
	Progress func(done, total int)
}

// Result is a discovered circuit.
type Result struct {
	Removed []bool // [E] canonical edges removed
	// Effect[e] is how much worse the circuit got when edge e was tried
	// (KL_without - KL_current, or LD_current - LD_without); NaN for edges
	// removed unevaluated.
	Effect      []float64
	Metric      float64 // the final circuit's metric, evaluated at the end
	MetricFull  float64 // the full model's
	MetricEmpty float64 // every edge removed
	Evaluations int     // circuits scored, discarded speculations included
	Tried       int     // edges decided by an evaluation
	Passes      int     // Eval calls
	Replayed    int     // decisions taken from Options.Replay
}

// Kept lists the kept edges' names in canonical order.
func (r *Result) Kept(g *graph.Graph) []string {
	out := []string{}
	for e, rm := range r.Removed {
		if !rm {
			out = append(out, g.Edges[e].String())
		}
	}
	return out
}

// worse is how much worse the circuit gets going from cur to v.
func worse(m Metric, cur, v float64) float64 {
	if m == KL {
		return v - cur
	}
	return cur - v
}

type runner struct {
	g       *graph.Graph
	ev      Evaluator
	o       Options
	res     *Result
	replay  []Decision
	batch   int // the speculation depth's cap
	depth   int // the current speculation depth (1..batch)
	removed []bool
}

func (r *runner) eval(cs [][]bool) ([]float64, error) {
	v, err := r.ev.Eval(cs)
	if err != nil {
		return nil, err
	}
	if len(v) != len(cs) {
		return nil, fmt.Errorf("circuit: evaluator returned %d values for %d circuits", len(v), len(cs))
	}
	for i, x := range v {
		if math.IsNaN(x) {
			return nil, fmt.Errorf("circuit: evaluator returned NaN for circuit %d of %d", i, len(cs))
		}
	}
	r.res.Passes++
	r.res.Evaluations += len(cs)
	return v, nil
}

// take returns the next replayed decision when it is for edge e.
func (r *runner) take(e int) (float64, bool, error) {
	if len(r.replay) == 0 {
		return 0, false, nil
	}
	d := r.replay[0]
	if d.Edge != e {
		name := func(i int) string {
			if i < 0 {
				return "the full circuit"
			}
			if i >= len(r.g.Edges) {
				return fmt.Sprintf("edge #%d", i)
			}
			return r.g.Edges[i].String()
		}
		return 0, false, fmt.Errorf("circuit: the journal's next decision is %s but this run decides %s (a different graph, threshold or metric?)", name(d.Edge), name(e))
	}
	r.replay = r.replay[1:]
	r.res.Replayed++
	return d.Value, true, nil
}

func (r *runner) record(d Decision) error {
	if r.o.Record == nil {
		return nil
	}
	return r.o.Record(d)
}

func with(base []bool, extra ...int) []bool {
	c := append([]bool(nil), base...)
	for _, e := range extra {
		c[e] = true
	}
	return c
}

// Run is ACDC over g with ev (see the package comment for the order).
func Run(g *graph.Graph, ev Evaluator, o Options) (*Result, error) {
	if o.Metric != KL && o.Metric != LD {
		return nil, fmt.Errorf("circuit: metric %q: want kl or ld", o.Metric)
	}
	if math.IsNaN(o.Threshold) || math.IsInf(o.Threshold, 0) {
		return nil, fmt.Errorf("circuit: threshold %v is not a finite number", o.Threshold)
	}
	E := len(g.Edges)
	r := &runner{g: g, ev: ev, o: o, replay: o.Replay, removed: make([]bool, E),
		res: &Result{Effect: make([]float64, E)}}
	for i := range r.res.Effect {
		r.res.Effect[i] = math.NaN()
	}
	r.batch = o.Batch
	if r.batch <= 0 {
		r.batch = ev.Batch()
	}
	if r.batch < 1 {
		r.batch = 1
	}
	r.depth = r.batch
	// The full circuit.
	cur, ok, err := r.take(-1)
	if err != nil {
		return nil, err
	}
	if !ok {
		v, err := r.eval([][]bool{r.removed})
		if err != nil {
			return nil, err
		}
		cur = v[0]
		if err := r.record(Decision{Edge: -1, Value: cur}); err != nil {
			return nil, err
		}
	}
	r.res.MetricFull = cur
	// out[s]: edges leaving sender s, to tell whether a node is still alive.
	out := make([][]int, len(g.Senders))
	for e, ed := range g.Edges {
		si, _ := g.SenderIndex(ed.S.String())
		out[si] = append(out[si], e)
	}
	nR := len(g.Receivers)
	for ri := nR - 1; ri >= 0; ri-- {
		rc := g.Receivers[ri]
		lo, hi := g.In[ri][0], g.In[ri][1]
		alive := true
		if s, ok := rc.Sender(); ok {
			si, _ := g.SenderIndex(s.String())
			alive = false
			for _, e := range out[si] {
				if !r.removed[e] {
					alive = true
					break
				}
			}
		}
		if !alive {
			for e := lo; e < hi; e++ {
				r.removed[e] = true
			}
		} else {
			cands := make([]int, 0, hi-lo)
			for e := hi - 1; e >= lo; e-- {
				cands = append(cands, e)
			}
			if cur, err = r.receiver(cands, cur); err != nil {
				return nil, err
			}
		}
		if o.Progress != nil {
			o.Progress(nR-ri, nR)
		}
	}
	if len(r.replay) > 0 {
		return nil, fmt.Errorf("circuit: the journal holds %d decisions more than this run makes (a different graph, threshold or metric?)", len(r.replay))
	}
	// The final circuit, evaluated as a whole (it equals the last accepted
	// value up to rounding: edges into dead nodes change nothing), and the
	// empty circuit.
	all := make([]bool, E)
	for i := range all {
		all[i] = true
	}
	v, err := r.eval([][]bool{r.removed, all})
	if err != nil {
		return nil, err
	}
	r.res.Metric, r.res.MetricEmpty = v[0], v[1]
	r.res.Removed = r.removed
	return r.res, nil
}

// receiver decides the candidate edges of one receiver, in order, and
// returns the metric of the current circuit afterwards.
func (r *runner) receiver(cands []int, cur float64) (float64, error) {
	decide := func(e int, v float64) {
		w := worse(r.o.Metric, cur, v)
		r.res.Effect[e] = w
		r.res.Tried++
		if w < r.o.Threshold {
			r.removed[e] = true
			cur = v
		}
	}
	for len(cands) > 0 {
		// Replayed decisions first.
		v, ok, err := r.take(cands[0])
		if err != nil {
			return 0, err
		}
		if ok {
			decide(cands[0], v)
			cands = cands[1:]
			continue
		}
		k := min(r.depth, len(cands))
		cs := make([][]bool, k)
		for i := range cs {
			cs[i] = with(r.removed, cands[:i+1]...)
		}
		vals, err := r.eval(cs)
		if err != nil {
			return 0, err
		}
		used := 0
		for i := 0; i < k; i++ {
			e := cands[i]
			decide(e, vals[i])
			used++
			if err := r.record(Decision{Edge: e, Value: vals[i]}); err != nil {
				return 0, err
			}
			if !r.removed[e] {
				break // later speculations assumed e removed
			}
		}
		// Adapt the speculation depth: double it after a batch accepted
		// whole, halve it after a rejection (dense receivers waste less,
		// sparse ones keep full batches). Decisions do not depend on it.
		if r.removed[cands[used-1]] {
			r.depth = min(r.batch, 2*r.depth)
		} else {
			r.depth = max(1, r.depth/2)
		}
		cands = cands[used:]
	}
	return cur, nil
}
