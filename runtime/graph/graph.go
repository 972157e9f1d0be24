// Package graph is the residual-stream graph that edge patching, edge
// attribution and circuit discovery work on, exactly as the fixtures'
// CIRCUITS.md defines it.
//
// Senders write to the residual stream: `embed` (token plus position
// embedding), every head `l.h` (its z_h @ W_O rows, without the output bias,
// which is the same in every run) and every MLP `mlp.l` (its whole output).
// Receivers read it: each head's query, key and value input `l.h.q`,
// `l.h.k`, `l.h.v` (the residual before ln_1, the LayerNorm recomputed from
// the patched input), each MLP's input `mlp.l` (the residual before ln_2)
// and `logits` (the final residual, before ln_final).
//
// An edge `S>R` exists when S's output is part of R's input: `embed` and the
// heads and MLPs of earlier layers feed the heads of layer l; MLP l also reads
// the heads of its own layer, except in a parallel-residual block (GPT-NeoX),
// whose MLP reads the block input; `logits` reads every sender.
//
// Canonical order: receivers layer by layer (heads 0..H-1 each with q, k, v,
// then the layer's MLP), `logits` last; senders `embed`, then layer by layer
// heads then the MLP; edges receiver-major, each receiver's senders in sender
// order.
package graph

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
)

// Kind is what a node is.
type Kind uint8

const (
	Embed  Kind = iota // sender `embed`
	Head               // sender `l.h`; receiver `l.h.q|k|v`
	MLP                // sender and receiver `mlp.l`
	Logits             // receiver `logits`
)

// Node is a sender, or a receiver when Kind is Head (with Input 'q', 'k' or
// 'v'), MLP or Logits.
type Node struct {
	Kind        Kind
	Layer, Head int
	Input       byte // receivers of kind Head: 'q', 'k' or 'v'; 0 otherwise
}

// String is the node's canonical name.
func (n Node) String() string {
	switch n.Kind {
	case Embed:
		return "embed"
	case Head:
		if n.Input != 0 {
			return fmt.Sprintf("%d.%d.%c", n.Layer, n.Head, n.Input)
		}
		return fmt.Sprintf("%d.%d", n.Layer, n.Head)
	case MLP:
		return fmt.Sprintf("mlp.%d", n.Layer)
	default:
		return "logits"
	}
}

// Sender is the sender a receiver node belongs to (l.h.q -> l.h); ok is
// false for `logits`, which sends nothing.
func (n Node) Sender() (Node, bool) {
	if n.Kind == Logits {
		return Node{}, false
	}
	n.Input = 0
	return n, true
}

// Edge is S>R.
type Edge struct{ S, R Node }

func (e Edge) String() string { return e.S.String() + ">" + e.R.String() }

// Graph is the edge graph of one model shape. It is immutable and shared:
// New returns the same *Graph for the same shape, so the 32,491 edge names
// of GPT-Neo-125M are made once a process (they cost EAP 30 ms a call
// when every call made them again).
type Graph struct {
	Layers, Heads int
	// Parallel[l] is true for a parallel-residual block (its MLP reads the
	// block input, so its own heads do not feed it).
	Parallel  []bool
	Senders   []Node // canonical order
	Receivers []Node // canonical order
	Edges     []Edge // canonical order
	// In[r] is the range of Edges into Receivers[r]: Edges[In[r][0]:In[r][1]].
	In [][2]int
	// Src[e] is the index in Senders of Edges[e].S.
	Src   []int
	recv  map[string]int
	sendr map[string]int
	recvN map[Node]int
	names struct {
		once  sync.Once
		edges []string
		index map[string]int
	}
}

var shared struct {
	sync.Mutex
	graphs map[string]*Graph
}

// New returns the graph of a model with the given layers and heads per
// layer; parallel (nil: none) says which blocks use a parallel residual.
func New(layers, heads int, parallel func(layer int) bool) *Graph {
	par := make([]bool, max(layers, 0))
	key := []byte(fmt.Sprintf("%d.%d.", layers, heads))
	for l := range par {
		par[l] = parallel != nil && parallel(l)
		key = strconv.AppendBool(key, par[l])
	}
	shared.Lock()
	defer shared.Unlock()
	if g, ok := shared.graphs[string(key)]; ok {
		return g
	}
	g := build(layers, heads, par)
	if shared.graphs == nil {
		shared.graphs = map[string]*Graph{}
	}
	shared.graphs[string(key)] = g
	return g
}

func build(layers, heads int, parallel []bool) *Graph {
	g := &Graph{Layers: layers, Heads: heads, Parallel: parallel,
		recv: map[string]int{}, sendr: map[string]int{}, recvN: map[Node]int{}}
	g.Senders = append(g.Senders, Node{Kind: Embed})
	for l := 0; l < layers; l++ {
		for h := 0; h < heads; h++ {
			g.Senders = append(g.Senders, Node{Kind: Head, Layer: l, Head: h})
			for _, c := range []byte{'q', 'k', 'v'} {
				g.Receivers = append(g.Receivers, Node{Kind: Head, Layer: l, Head: h, Input: c})
			}
		}
		g.Senders = append(g.Senders, Node{Kind: MLP, Layer: l})
		g.Receivers = append(g.Receivers, Node{Kind: MLP, Layer: l})
	}
	g.Receivers = append(g.Receivers, Node{Kind: Logits})
	for i, s := range g.Senders {
		g.sendr[s.String()] = i
	}
	// Edges and Src are sized before they are filled: grown by append they
	// allocated 830 MB on GPT-2 XL (2.2 million edges of 64 bytes, 143 MB
	// kept), garbage that stayed resident because the weights put the next
	// collection twice their size away (issue 17).
	n := 0
	for _, r := range g.Receivers {
		for _, s := range g.Senders {
			if g.Feeds(s, r) {
				n++
			}
		}
	}
	g.Edges, g.Src = make([]Edge, 0, n), make([]int, 0, n)
	g.In = make([][2]int, 0, len(g.Receivers))
	for ri, r := range g.Receivers {
		g.recv[r.String()] = ri
		g.recvN[r] = ri
		lo := len(g.Edges)
		for si, s := range g.Senders {
			if g.Feeds(s, r) {
				g.Edges = append(g.Edges, Edge{S: s, R: r})
				g.Src = append(g.Src, si)
			}
		}
		g.In = append(g.In, [2]int{lo, len(g.Edges)})
	}
	return g
}

// EdgeNames are the edges' names `S>R` in canonical order (made on first
// use; shared: do not modify).
func (g *Graph) EdgeNames() []string {
	g.names.once.Do(func() {
		g.names.edges = make([]string, len(g.Edges))
		g.names.index = make(map[string]int, len(g.Edges))
		for i, e := range g.Edges {
			g.names.edges[i] = e.String()
			g.names.index[g.names.edges[i]] = i
		}
	})
	return g.names.edges
}

// Feeds says whether sender s's output is part of receiver r's input.
func (g *Graph) Feeds(s, r Node) bool {
	if r.Kind == Logits {
		return true
	}
	if s.Kind == Embed {
		return true
	}
	switch r.Kind {
	case Head:
		return s.Layer < r.Layer
	case MLP:
		if s.Layer < r.Layer {
			return true
		}
		return s.Layer == r.Layer && s.Kind == Head && !g.Parallel[r.Layer]
	}
	return false
}

// EdgeIndex is the canonical index of edge name `S>R`.
func (g *Graph) EdgeIndex(name string) (int, bool) {
	g.EdgeNames()
	i, ok := g.names.index[name]
	return i, ok
}

// ReceiverIndex is the canonical index of receiver name (`6.1.k`, `mlp.3`, `logits`).
func (g *Graph) ReceiverIndex(name string) (int, bool) {
	i, ok := g.recv[name]
	return i, ok
}

// ReceiverOf is the canonical index of receiver node r.
func (g *Graph) ReceiverOf(r Node) (int, bool) {
	i, ok := g.recvN[r]
	return i, ok
}

// SenderIndex is the canonical index of sender name (`embed`, `6.1`, `mlp.3`).
func (g *Graph) SenderIndex(name string) (int, bool) {
	i, ok := g.sendr[name]
	return i, ok
}

// ParseEdge reads `S>R` and checks that the edge exists in g, with an error
// that says which part is wrong.
func (g *Graph) ParseEdge(name string) (Edge, error) {
	s, r, ok := strings.Cut(name, ">")
	if !ok {
		return Edge{}, fmt.Errorf("edge %q: want SENDER>RECEIVER (e.g. mlp.0>6.1.k)", name)
	}
	si, ok := g.sendr[s]
	if !ok {
		return Edge{}, fmt.Errorf("edge %q: unknown sender %q (want embed, L.H or mlp.L with L < %d, H < %d)", name, s, g.Layers, g.Heads)
	}
	ri, ok := g.recv[r]
	if !ok {
		return Edge{}, fmt.Errorf("edge %q: unknown receiver %q (want L.H.q|k|v, mlp.L or logits)", name, r)
	}
	e := Edge{S: g.Senders[si], R: g.Receivers[ri]}
	if !g.Feeds(e.S, e.R) {
		return Edge{}, fmt.Errorf("edge %q: %s does not feed %s (senders of layer l reach later layers only; an MLP reads its own layer's heads unless the block is parallel-residual)", name, s, r)
	}
	return e, nil
}

// ParseNode reads a sender or receiver name without a graph (layer and head
// not range-checked).
func ParseNode(name string) (Node, error) {
	switch {
	case name == "embed":
		return Node{Kind: Embed}, nil
	case name == "logits":
		return Node{Kind: Logits}, nil
	case strings.HasPrefix(name, "mlp."):
		l, err := strconv.Atoi(name[4:])
		if err != nil || l < 0 {
			return Node{}, fmt.Errorf("node %q: want mlp.LAYER", name)
		}
		return Node{Kind: MLP, Layer: l}, nil
	}
	parts := strings.Split(name, ".")
	if len(parts) < 2 || len(parts) > 3 {
		return Node{}, fmt.Errorf("node %q: want embed, L.H, L.H.q|k|v, mlp.L or logits", name)
	}
	l, err1 := strconv.Atoi(parts[0])
	h, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil || l < 0 || h < 0 {
		return Node{}, fmt.Errorf("node %q: want embed, L.H, L.H.q|k|v, mlp.L or logits", name)
	}
	n := Node{Kind: Head, Layer: l, Head: h}
	if len(parts) == 3 {
		if len(parts[2]) != 1 || !strings.Contains("qkv", parts[2]) {
			return Node{}, fmt.Errorf("node %q: a head's input is q, k or v", name)
		}
		n.Input = parts[2][0]
	}
	return n, nil
}
