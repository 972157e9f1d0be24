package sweep

import (
	"runtime"
	"testing"

	"github.com/neoscope/neoscope/runtime/arch"
	"github.com/neoscope/neoscope/runtime/graph"
)

// TestDimsOfBuildsNoGraph (issue 17): a knock-out sweep's dimensions and
// space cost no edge graph. DimsOf built it eagerly, 830 MB allocated on
// GPT-2 XL and kept resident beside the weights; here a shape of 20 x 21
// heads that no other test builds (20 MB built, under 1 MB not).
// Edge spaces still get the model's layout: a parallel-residual model has
// 21 x 20 edges fewer (no head feeds its own layer's MLP).
func TestDimsOfBuildsNoGraph(t *testing.T) {
	cfg := &arch.Config{Layers: 20, Heads: 21}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	d := DimsOf(cfg)
	for _, s := range []string{"singles(heads) | singles(attn, mlp)", "none"} {
		if _, err := Count(s, d); err != nil {
			t.Fatal(err)
		}
		st, err := Open(s, d)
		if err != nil {
			t.Fatal(err)
		}
		if st.Len() == 0 {
			t.Fatalf("%s: no configurations", s)
		}
	}
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
		t.Errorf("DimsOf, Count and Open of knock-out spaces allocated %d bytes (an edge graph?)", got)
	}

	par := &arch.Config{Layers: 3, Heads: 2, Parallel: true}
	seq := len(graph.New(3, 2, nil).Edges)
	for c, want := range map[*arch.Config]int{cfg: len(graph.New(20, 21, nil).Edges), par: seq - 3*2} {
		n, err := Count("edges", DimsOf(c))
		if err != nil || n.Int64() != int64(want) {
			t.Errorf("%d x %d heads, parallel %v: %v edges (%v), want %d", c.Layers, c.Heads, c.Parallel, n, err, want)
		}
	}
}
