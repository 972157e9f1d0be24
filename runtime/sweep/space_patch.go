package sweep

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/neoscope/neoscope/runtime/arch"
	"github.com/neoscope/neoscope/runtime/graph"
)

// DimsOf returns the dimensions of a model (T left 0) with its residual
// layout, so that edges follow it (a parallel-residual GPT-NeoX block's MLP
// reads no head of its layer). The graph itself is built only when a space
// names edges (Dims.graph): on GPT-2 XL's 48 x 25 heads it holds 2.2 million
// edges, 160 MB that a knock-out sweep never reads; built here it raised
// such a sweep's peak by 800 MB (issue 17).
func DimsOf(cfg *arch.Config) Dims {
	return Dims{Layers: cfg.Layers, Heads: cfg.Heads, Parallel: cfg.ParallelAt}
}

// graph is the residual-stream graph of the dimensions, made on first use
// (graph.New keeps one per shape).
func (d Dims) graph() *graph.Graph {
	return graph.New(d.Layers, d.Heads, d.Parallel)
}

// manyWord says whether a word standing alone as a term names many items,
// each its own configuration (`edges`, `heads@*`, `6.*@*`, `resid.*@*`),
// rather than one configuration patching them all at once.
func manyWord(w string) bool {
	return w == "edges" || strings.HasSuffix(w, "@*")
}

func edgeComponent(e graph.Edge, layers int) Component {
	l := e.R.Layer
	if e.R.Kind == graph.Logits {
		l = layers
	}
	return Component{Kind: Edge, Layer: l, S: e.S, R: e.R}
}

// edgeLess is the canonical edge order within one receiver layer:
// receivers (heads by index, q, k, v; then the MLP; logits), then senders
// (embed, then layer by layer heads then the MLP).
func edgeLess(a, b Component) bool {
	rk := func(n graph.Node) [3]int { return [3]int{int(n.Kind), n.Head, strings.IndexByte("qkv", n.Input)} }
	if ra, rb := rk(a.R), rk(b.R); ra != rb {
		for i := range ra {
			if ra[i] != rb[i] {
				return ra[i] < rb[i]
			}
		}
	}
	sk := func(n graph.Node) [3]int {
		if n.Kind == graph.Embed {
			return [3]int{-1, 0, 0}
		}
		return [3]int{n.Layer, int(n.Kind), n.Head}
	}
	sa, sb := sk(a.S), sk(b.S)
	for i := range sa {
		if sa[i] != sb[i] {
			return sa[i] < sb[i]
		}
	}
	return false
}

// expandAt expands BASE@POS: heads (6.1, 6.*, *.1, heads) or the residual
// (resid.6, resid.*, resid) at a position or at every position (*),
// layer-major, then heads, positions inner.
func expandAt(w, base, at string, d Dims) ([]Component, error) {
	var pos []int
	if at == "*" {
		if d.T <= 0 {
			return nil, fmt.Errorf("%q: @* needs the prompts' length (patching sweeps only)", w)
		}
		for p := 0; p < d.T; p++ {
			pos = append(pos, p)
		}
	} else {
		p, err := strconv.Atoi(at)
		if err != nil || p < 0 {
			return nil, fmt.Errorf("%q: %q is not a position", w, at)
		}
		if d.T > 0 && p >= d.T {
			return nil, fmt.Errorf("%q: position %d outside the prompts' 0..%d", w, p, d.T-1)
		}
		pos = []int{p}
	}
	var out []Component
	if base == "resid" || strings.HasPrefix(base, "resid.") {
		ls := "*"
		if base != "resid" {
			ls = base[len("resid."):]
		}
		mlps, err := expandWord("mlp."+ls, d) // the same layer syntax
		if err != nil {
			return nil, fmt.Errorf("%q: %v", w, err)
		}
		for _, c := range mlps {
			for _, p := range pos {
				out = append(out, Component{Kind: ResidAt, Layer: c.Layer, Pos: p})
			}
		}
		return out, nil
	}
	heads, err := expandWord(base, d)
	if err != nil {
		return nil, err
	}
	for _, c := range heads {
		if c.Kind != Head {
			return nil, fmt.Errorf("%q: only heads and resid take a position (6.1@9, resid.6@9)", w)
		}
		for _, p := range pos {
			out = append(out, Component{Kind: HeadAt, Layer: c.Layer, Head: c.Head, Pos: p})
		}
	}
	return out, nil
}

// EdgeConfig is the configuration that removes (patches) the given edges of
// a model with the given number of layers, in canonical order: the form
// circuit discovery hands to (*Engine).EvalCircuits.
func EdgeConfig(layers int, edges []graph.Edge) Config {
	c := make(Config, len(edges))
	for i, e := range edges {
		c[i] = edgeComponent(e, layers)
	}
	return Canon(c)
}

// PatchItem returns the first item of the space that only a patching sweep
// can evaluate (a position or an edge); ok is false when there is none.
func PatchItem(src Source) (Component, bool) {
	if s, ok := src.(*Stream); ok {
		// The components the space's terms can hold: no walk of the space.
		var found Component
		ok := false
		s.u.comps(func(x Component) {
			if !ok && x.Kind > MLP {
				found, ok = x, true
			}
		})
		return found, ok
	}
	for _, c := range src.All() {
		for _, x := range c {
			if x.Kind > MLP {
				return x, true
			}
		}
	}
	return Component{}, false
}
