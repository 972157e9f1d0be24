package graph

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"unsafe"

	"github.com/neoscope/neoscope/internal/fixtures"
)

// TestCanonicalOrder rebuilds each fixture's graph from its config and
// compares senders, receivers and edges, in order, with circuits.json.
func TestCanonicalOrder(t *testing.T) {
	for _, name := range fixtures.All {
		t.Run(name, func(t *testing.T) {
			dir := fixtures.Dir(t, name)
			var ref struct {
				Senders, Receivers, Edges []string
			}
			var cfg struct {
				Layers   int  `json:"num_layers"`
				NLayer   int  `json:"n_layer"`
				NHidden  int  `json:"num_hidden_layers"`
				Heads    int  `json:"num_heads"`
				NHead    int  `json:"n_head"`
				NAttn    int  `json:"num_attention_heads"`
				Parallel bool `json:"use_parallel_residual"`
			}
			for f, v := range map[string]any{"circuits.json": &ref, "config.json": &cfg} {
				b, err := os.ReadFile(filepath.Join(dir, f))
				if err != nil {
					t.Fatal(err)
				}
				if err := json.Unmarshal(b, v); err != nil {
					t.Fatal(err)
				}
			}
			L := max(cfg.Layers, cfg.NLayer, cfg.NHidden)
			H := max(cfg.Heads, cfg.NHead, cfg.NAttn)
			g := New(L, H, func(int) bool { return cfg.Parallel })
			check := func(what string, got []string, want []string) {
				if len(got) != len(want) {
					t.Fatalf("%s: %d, reference %d", what, len(got), len(want))
				}
				for i := range got {
					if got[i] != want[i] {
						t.Fatalf("%s[%d] = %s, reference %s", what, i, got[i], want[i])
					}
				}
			}
			var s, r, e []string
			for _, n := range g.Senders {
				s = append(s, n.String())
			}
			for _, n := range g.Receivers {
				r = append(r, n.String())
			}
			for i, x := range g.Edges {
				e = append(e, x.String())
				if j, ok := g.EdgeIndex(x.String()); !ok || j != i {
					t.Fatalf("EdgeIndex(%s) = %d, %v", x, j, ok)
				}
				if p, err := g.ParseEdge(x.String()); err != nil || p != x {
					t.Fatalf("ParseEdge(%s) = %v, %v", x, p, err)
				}
			}
			check("senders", s, ref.Senders)
			check("receivers", r, ref.Receivers)
			check("edges", e, ref.Edges)
			for ri := range g.Receivers {
				for _, x := range g.Edges[g.In[ri][0]:g.In[ri][1]] {
					if x.R != g.Receivers[ri] {
						t.Fatalf("In[%d] holds %s", ri, x)
					}
				}
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	g := New(2, 2, nil)
	for _, bad := range []string{"mlp.0", "1.0>0.0.q", "mlp.1>mlp.1", "0.0>0.1.x", "9.9>logits", "logits>mlp.1", "0.0>0.1.q"} {
		if _, err := g.ParseEdge(bad); err == nil {
			t.Errorf("ParseEdge(%q) accepted", bad)
		}
	}
	for _, good := range []string{"0.1>mlp.0", "embed>logits", "mlp.0>1.1.k"} {
		if _, err := g.ParseEdge(good); err != nil {
			t.Errorf("ParseEdge(%q): %v", good, err)
		}
	}
	if p := New(2, 2, func(int) bool { return true }); p.Feeds(Node{Kind: Head, Layer: 1}, Node{Kind: MLP, Layer: 1}) {
		t.Error("a parallel-residual MLP reads its own layer's heads")
	}
}

// TestBuildAllocates bounds what building a graph allocates by what it
// keeps (issue 17): Edges and Src grown by append allocated five times
// their final size (830 MB for GPT-2 XL's 143 MB of edges), garbage the
// collector left resident beside the weights. 20 x 20 heads: 240,000 edges.
func TestBuildAllocates(t *testing.T) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	g := build(20, 20, make([]bool, 20))
	runtime.ReadMemStats(&after)
	kept := uint64(cap(g.Edges))*uint64(unsafe.Sizeof(Edge{})) + uint64(cap(g.Src))*uint64(unsafe.Sizeof(int(0)))
	if len(g.Edges) < 200_000 {
		t.Fatalf("%d edges: the shape is too small to measure", len(g.Edges))
	}
	// 1.25: the slices kept, plus the node slices, maps and names (about
	// 4% here).
	if got := after.TotalAlloc - before.TotalAlloc; float64(got) > 1.25*float64(kept) {
		t.Errorf("building %d edges allocated %d bytes, %.2fx the %d kept in Edges and Src", len(g.Edges), got, float64(got)/float64(kept), kept)
	}
}
