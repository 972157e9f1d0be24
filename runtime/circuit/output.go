package circuit

import (
	"fmt"
	"io"
	"math"
	"sort"

	"github.com/neoscope/neoscope/runtime/graph"
)

// Summary is circuit.json.
type Summary struct {
	Edges       []string  `json:"edges"`   // kept edges, canonical order
	Effects     []float64 `json:"effects"` // per kept edge: how much worse removing it made the circuit when tried
	Metric      float64   `json:"metric"`  // the returned circuit's
	MetricFull  float64   `json:"metric_full"`
	MetricEmpty float64   `json:"metric_empty"`
	MetricName  Metric    `json:"metric_name"`
	Threshold   float64   `json:"threshold"`
	Evaluations int       `json:"evaluations"` // circuits scored, discarded speculations included
	Tried       int       `json:"tried"`       // edges decided by an evaluation
	Passes      int       `json:"passes"`      // evaluator calls
	Replayed    int       `json:"replayed"`    // decisions read back from the journal on --resume
	TotalEdges  int       `json:"total_edges"`
	Inputs      string    `json:"inputs"`
	Evaluator   string    `json:"evaluator"`
	Seconds     float64   `json:"seconds"`
}

// Summarize fills the circuit's part of a Summary.
func Summarize(g *graph.Graph, r *Result, o Options) Summary {
	s := Summary{Edges: r.Kept(g), Metric: r.Metric, MetricFull: r.MetricFull, MetricEmpty: r.MetricEmpty,
		MetricName: o.Metric, Threshold: o.Threshold, Evaluations: r.Evaluations, Tried: r.Tried,
		Passes: r.Passes, Replayed: r.Replayed, TotalEdges: len(g.Edges), Effects: []float64{}}
	for e, rm := range r.Removed {
		if !rm {
			s.Effects = append(s.Effects, r.Effect[e])
		}
	}
	return s
}

// DiagramNode is a node of the drawn circuit: Rank is its row from the
// bottom (embed 0, layer l's heads 2l+1, its MLP 2l+2, logits 2L+1), Layer
// its layer (-1 for embed and logits).
type DiagramNode struct {
	Name        string
	Rank, Layer int
}

// DiagramEdge is a kept edge between diagram nodes; Input is the head input
// it enters ('q', 'k', 'v', or 0), Weight the square root of its effect over
// the largest kept effect (0..1; the root keeps small effects visible beside
// one dominant edge).
type DiagramEdge struct {
	From, To int
	Input    byte
	Weight   float64
	Effect   float64
	Name     string
}

// Diagram is the kept circuit as nodes (senders and receivers merged: a
// head's q, k and v inputs are the head) and edges; embed and logits are
// always present.
func Diagram(g *graph.Graph, r *Result) ([]DiagramNode, []DiagramEdge) {
	idx := map[string]int{}
	var nodes []DiagramNode
	node := func(n graph.Node) int {
		if s, ok := n.Sender(); ok {
			n = s
		}
		name := n.String()
		if i, ok := idx[name]; ok {
			return i
		}
		d := DiagramNode{Name: name, Layer: -1}
		switch n.Kind {
		case graph.Head:
			d.Rank, d.Layer = 2*n.Layer+1, n.Layer
		case graph.MLP:
			d.Rank, d.Layer = 2*n.Layer+2, n.Layer
		case graph.Logits:
			d.Rank = 2*g.Layers + 1
		}
		idx[name] = len(nodes)
		nodes = append(nodes, d)
		return idx[name]
	}
	node(graph.Node{Kind: graph.Embed})
	big := 0.0
	for e, rm := range r.Removed {
		if !rm && !math.IsNaN(r.Effect[e]) {
			big = math.Max(big, r.Effect[e])
		}
	}
	var edges []DiagramEdge
	for e, rm := range r.Removed {
		if rm {
			continue
		}
		ed := g.Edges[e]
		de := DiagramEdge{From: node(ed.S), To: node(ed.R), Input: ed.R.Input, Effect: r.Effect[e], Name: ed.String()}
		if big > 0 && !math.IsNaN(de.Effect) {
			de.Weight = math.Sqrt(math.Max(0, de.Effect/big))
		}
		edges = append(edges, de)
	}
	node(graph.Node{Kind: graph.Logits})
	// Within a rank, heads in head order.
	order := make([]int, len(nodes))
	for i := range order {
		order[i] = i
	}
	key := func(i int) string { return fmt.Sprintf("%04d %08s", nodes[i].Rank, nodes[i].Name) }
	sort.Slice(order, func(a, b int) bool { return key(order[a]) < key(order[b]) })
	where := make([]int, len(nodes))
	sorted := make([]DiagramNode, len(nodes))
	for to, from := range order {
		where[from], sorted[to] = to, nodes[from]
	}
	for i := range edges {
		edges[i].From, edges[i].To = where[edges[i].From], where[edges[i].To]
	}
	return sorted, edges
}

// InputColor is the colour of edges into a head's q, k, v (others grey), as
// #rrggbb.
func InputColor(c byte) string {
	switch c {
	case 'q':
		return "#1f77b4"
	case 'k':
		return "#2ca02c"
	case 'v':
		return "#d62728"
	}
	return "#787878"
}

// LayerColor is a node fill per layer (a hue wheel), #rrggbb; grey for -1.
func LayerColor(layer, layers int) string {
	if layer < 0 {
		return "#d7d7d7"
	}
	hue := 360 * float64(layer) / float64(max(layers, 1))
	r, g, b := hsl(hue, 0.6, 0.78)
	return fmt.Sprintf("#%02x%02x%02x", r, g, b)
}

func hsl(h, s, l float64) (uint8, uint8, uint8) {
	c := (1 - math.Abs(2*l-1)) * s
	x := c * (1 - math.Abs(math.Mod(h/60, 2)-1))
	m := l - c/2
	var r, g, b float64
	switch {
	case h < 60:
		r, g, b = c, x, 0
	case h < 120:
		r, g, b = x, c, 0
	case h < 180:
		r, g, b = 0, c, x
	case h < 240:
		r, g, b = 0, x, c
	case h < 300:
		r, g, b = x, 0, c
	default:
		r, g, b = c, 0, x
	}
	f := func(v float64) uint8 { return uint8(math.Round((v + m) * 255)) }
	return f(r), f(g), f(b)
}

// WriteDOT writes the circuit as a Graphviz digraph (bottom to top; heads
// coloured by layer; edges coloured by the head input they enter, q blue, k
// green, v red, and as wide as their effect).
func WriteDOT(w io.Writer, g *graph.Graph, r *Result, title string) error {
	nodes, edges := Diagram(g, r)
	fmt.Fprintf(w, "digraph circuit {\n  label=%q; labelloc=t; rankdir=BT;\n  node [shape=box, style=\"filled,rounded\", fontname=Helvetica];\n", title)
	for _, n := range nodes {
		fmt.Fprintf(w, "  %q [fillcolor=%q];\n", n.Name, LayerColor(n.Layer, g.Layers))
	}
	for _, e := range edges {
		lab := ""
		if e.Input != 0 {
			lab = string(e.Input)
		}
		fmt.Fprintf(w, "  %q -> %q [label=%q, color=%q, penwidth=%.2f, tooltip=%q];\n", nodes[e.From].Name, nodes[e.To].Name,
			lab, InputColor(e.Input), 0.6+5*e.Weight, fmt.Sprintf("%s effect %.4g", e.Name, e.Effect))
	}
	_, err := fmt.Fprintln(w, "}")
	return err
}
