package circuit

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/neoscope/neoscope/runtime/graph"
)

// fake scores a circuit without a model: the metric is a nonlinear function
// of the removed edges' weights, so decisions interact as in a real run. It
// records the order in which single candidates were first tried.
type fake struct {
	w     []float64
	batch int
	calls int
}

func (f *fake) Batch() int { return f.batch }
func (f *fake) Eval(cs [][]bool) ([]float64, error) {
	f.calls++
	out := make([]float64, len(cs))
	for i, c := range cs {
		var s float64
		for e, rm := range c {
			if rm {
				s += f.w[e]
			}
		}
		out[i] = s * s / (1 + s) // >= 0, grows with the removed weight
	}
	return out, nil
}

func newFake(g *graph.Graph, seed uint64, batch int) *fake {
	r := rand.New(rand.NewPCG(seed, 7))
	f := &fake{w: make([]float64, len(g.Edges)), batch: batch}
	for i := range f.w {
		f.w[i] = math.Pow(r.Float64(), 6) // mostly tiny, a few large
	}
	return f
}

// Speculative batches decide exactly as the sequential algorithm, for many
// thresholds, depths and graphs (one with parallel blocks).
func TestSpeculationIsExact(t *testing.T) {
	for _, g := range []*graph.Graph{graph.New(3, 4, nil), graph.New(2, 3, func(int) bool { return true })} {
		for seed := uint64(0); seed < 4; seed++ {
			for _, tau := range []float64{0, 1e-4, 1e-3, 0.01, 0.1} {
				seq, err := Run(g, newFake(g, seed, 1), Options{Metric: KL, Threshold: tau})
				if err != nil {
					t.Fatal(err)
				}
				for _, depth := range []int{2, 5, 64} {
					bat, err := Run(g, newFake(g, seed, depth), Options{Metric: KL, Threshold: tau})
					if err != nil {
						t.Fatal(err)
					}
					for e := range seq.Removed {
						if seq.Removed[e] != bat.Removed[e] {
							t.Fatalf("seed %d tau %g depth %d: %s differs", seed, tau, depth, g.Edges[e])
						}
					}
					if bat.Metric != seq.Metric || bat.Tried != seq.Tried {
						t.Fatalf("seed %d tau %g depth %d: metric %g/%g tried %d/%d", seed, tau, depth, bat.Metric, seq.Metric, bat.Tried, seq.Tried)
					}
				}
			}
		}
	}
}

// The order of the issue: logits first, its senders from the last; a node
// with no kept outgoing edge has its incoming edges removed untried.
func TestOrderAndDeadNodes(t *testing.T) {
	g := graph.New(2, 2, nil)
	var tried []int
	rec := func(d Decision) error {
		if d.Edge >= 0 {
			tried = append(tried, d.Edge)
		}
		return nil
	}
	f := &fake{w: make([]float64, len(g.Edges)), batch: 1}
	// Only mlp.1>logits matters.
	last, _ := g.EdgeIndex("mlp.1>logits")
	f.w[last] = 1
	res, err := Run(g, f, Options{Metric: KL, Threshold: 0.1, Record: rec})
	if err != nil {
		t.Fatal(err)
	}
	if k := res.Kept(g); len(k) != 1 || k[0] != "mlp.1>logits" {
		t.Fatalf("kept %v", k)
	}
	// logits' edges from the last sender down, then mlp.1's (alive), then
	// every head of layer 1 is dead (its only targets mlp.1 and logits were
	// cut) and mlp.0 too: nothing else is tried but mlp.1's inputs.
	lo, hi := g.In[len(g.Receivers)-1][0], g.In[len(g.Receivers)-1][1]
	for i := 0; i < hi-lo; i++ {
		if tried[i] != hi-1-i {
			t.Fatalf("decision %d was %s, want %s", i, g.Edges[tried[i]], g.Edges[hi-1-i])
		}
	}
	m1, _ := g.ReceiverIndex("mlp.1")
	n := (hi - lo) + (g.In[m1][1] - g.In[m1][0])
	if len(tried) != n || res.Tried != n {
		t.Errorf("%d decisions (%d tried), want %d: the logits' and mlp.1's inputs only", len(tried), res.Tried, n)
	}
}

// A run replayed from its journal makes no evaluation for the replayed
// decisions and ends the same; a journal of another threshold is refused.
func TestJournalReplay(t *testing.T) {
	g := graph.New(2, 3, nil)
	path := filepath.Join(t.TempDir(), "j.jsonl")
	hdr := JournalHeader{Inputs: "abc", Metric: KL, Threshold: 0.01, Edges: len(g.Edges)}
	j, replay, err := OpenJournal(path, hdr, false)
	if err != nil || replay != nil {
		t.Fatal(err, replay)
	}
	first, err := Run(g, newFake(g, 1, 3), Options{Metric: KL, Threshold: 0.01, Record: j.Record})
	if err != nil {
		t.Fatal(err)
	}
	j.Close()
	if _, _, err := OpenJournal(path, hdr, false); err == nil {
		t.Error("an existing journal opened without resume")
	}
	other := hdr
	other.Threshold = 0.02
	if _, _, err := OpenJournal(path, other, true); err == nil {
		t.Error("a journal of another threshold was accepted")
	}
	other = hdr
	other.Inputs = "abd"
	if _, _, err := OpenJournal(path, other, true); err == nil {
		t.Error("a journal of other inputs was accepted")
	}
	j, replay, err = OpenJournal(path, hdr, true)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	f := newFake(g, 1, 3)
	again, err := Run(g, f, Options{Metric: KL, Threshold: 0.01, Replay: replay, Record: j.Record})
	if err != nil {
		t.Fatal(err)
	}
	if again.Replayed != first.Tried+1 || f.calls != 1 { // only the final evaluation
		t.Errorf("replayed %d of %d decisions with %d evaluator calls", again.Replayed, first.Tried+1, f.calls)
	}
	for e := range first.Removed {
		if first.Removed[e] != again.Removed[e] {
			t.Fatalf("%s differs after replay", g.Edges[e])
		}
	}
	// A journal replayed into a run that decides otherwise is an error.
	if _, err := Run(g, newFake(g, 1, 3), Options{Metric: KL, Threshold: 0.5, Replay: replay}); err == nil {
		t.Error("a journal of another run was replayed without complaint")
	}
}
