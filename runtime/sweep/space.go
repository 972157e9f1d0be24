package sweep

import (
	"fmt"
	"math/big"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/neoscope/neoscope/runtime/graph"
)

// Kind is what a component ablates.
type Kind uint8

const (
	Head Kind = iota // one head's z (blocks.L.attn.hook_z, columns of head H)
	Attn             // a layer's whole attention output (blocks.L.hook_attn_out, b_O included)
	MLP              // a layer's whole MLP output (blocks.L.hook_mlp_out, c_proj bias included)
	// Patching only (see patch.go): a head's z at one position `6.1@9`, the
	// residual before a block at one position `resid.6@9`, and an edge
	// `S>R` of the residual-stream graph (runtime/graph).
	HeadAt
	ResidAt
	Edge
)

// Component is one ablatable unit: a head `6.1`, an attention layer `attn.6`
// or an MLP `mlp.0`.
type Component struct {
	Kind  Kind
	Layer int
	Head  int // heads only
	Pos   int // HeadAt, ResidAt: the position
	// Edge: sender and receiver; Layer is the receiver's layer (Layers for
	// `logits`), so edges sort with the block that reads them.
	S, R graph.Node
}

func (c Component) String() string {
	switch c.Kind {
	case Attn:
		return "attn." + strconv.Itoa(c.Layer)
	case MLP:
		return "mlp." + strconv.Itoa(c.Layer)
	case HeadAt:
		return strconv.Itoa(c.Layer) + "." + strconv.Itoa(c.Head) + "@" + strconv.Itoa(c.Pos)
	case ResidAt:
		return "resid." + strconv.Itoa(c.Layer) + "@" + strconv.Itoa(c.Pos)
	case Edge:
		return c.S.String() + ">" + c.R.String()
	}
	return strconv.Itoa(c.Layer) + "." + strconv.Itoa(c.Head)
}

// less is the canonical order: by layer, then heads (by index), attn, mlp.
func (c Component) less(d Component) bool {
	if c.Layer != d.Layer {
		return c.Layer < d.Layer
	}
	if c.Kind != d.Kind {
		return c.Kind < d.Kind
	}
	if c.Kind == Edge {
		return edgeLess(c, d)
	}
	if c.Head != d.Head {
		return c.Head < d.Head
	}
	return c.Pos < d.Pos
}

// Config is one ablation configuration: a set of components in canonical
// order (see Canon). The empty Config is the unablated model.
type Config []Component

// Canon sorts and deduplicates c in place and returns it.
func Canon(c Config) Config {
	sort.Slice(c, func(i, j int) bool { return c[i].less(c[j]) })
	out := c[:0]
	for i, x := range c {
		if i == 0 || x != c[i-1] {
			out = append(out, x)
		}
	}
	return out
}

// String joins the components with "+" ("" for no ablation).
func (c Config) String() string {
	parts := make([]string, len(c))
	for i, x := range c {
		parts[i] = x.String()
	}
	return strings.Join(parts, "+")
}

// Dims are the model dimensions a space is expanded against. T (positions)
// is needed by `@*`; Parallel (nil: every block sequential; DimsOf gives a
// model's own) by edges, whose graph is graph.New(Layers, Heads, Parallel),
// made only when a space names an edge.
type Dims struct {
	Layers, Heads int
	T             int
	Parallel      func(layer int) bool
}

// MaxConfigs bounds the size of an expanded space (k(4, heads) on GPT-2 XL
// alone would be 10^11); larger spaces are refused before expansion.
const MaxConfigs = 50_000_000

// ParseComponent reads one component ("6.1", "attn.6", "mlp.0").
func ParseComponent(s string, d Dims) (Component, error) {
	cs, err := expandWord(s, d)
	if err != nil {
		return Component{}, err
	}
	if len(cs) != 1 || strings.Contains(s, "*") {
		return Component{}, fmt.Errorf("%q: want one component (6.1, attn.6, mlp.0)", s)
	}
	return cs[0], nil
}

// ParseConfig reads one configuration: components joined by "+", "" for none.
func ParseConfig(s string, d Dims) (Config, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "none" {
		return Config{}, nil
	}
	var c Config
	for _, p := range strings.Split(s, "+") {
		x, err := ParseComponent(strings.TrimSpace(p), d)
		if err != nil {
			return nil, err
		}
		c = append(c, x)
	}
	return Canon(c), nil
}

// SyntaxError is a parse or expansion error at a 1-based column of the space.
type SyntaxError struct {
	Col int
	Msg string
}

func (e *SyntaxError) Error() string { return fmt.Sprintf("space: column %d: %s", e.Col, e.Msg) }

// Parse expands a configuration space (grammar in doc.go) against the model
// dimensions into configurations in deterministic order, duplicates removed
// (the first occurrence is kept). It holds the whole space in memory: a
// sweep reads it as a Stream (Open) instead.
func Parse(src string, d Dims) ([]Config, error) {
	s, err := Open(src, d)
	if err != nil {
		return nil, err
	}
	var out []Config
	for _, c := range s.All() {
		out = append(out, c)
	}
	return out, nil
}

// parse builds the generators of a space (see stream.go).
func parse(src string, d Dims) (*union, error) {
	if d.Layers <= 0 || d.Heads <= 0 || d.Heads > 64 {
		return nil, fmt.Errorf("space: model dimensions %d layers x %d heads not supported (1..64 heads)", d.Layers, d.Heads)
	}
	p := &parser{src: src, d: d}
	p.next()
	u, err := p.space()
	if err != nil {
		return nil, err
	}
	if p.tok.kind != tEOF {
		return nil, p.errf("expected '|', ',' or the end of the space, got %s", p.tok)
	}
	return u, nil
}

// Count returns how many configurations src lists, without expanding any
// (so a space of 2^40 configurations is counted at once, in no memory). It
// reports the same syntax and range errors as Parse. Duplicates are counted
// (Parse removes them), so Count is at least len(Parse(src, d)); the two are
// equal when no configuration is listed twice. Commands compare it with
// their limit (--max-configs) before calling Parse.
func Count(src string, d Dims) (*big.Int, error) {
	if d.Layers <= 0 || d.Heads <= 0 || d.Heads > 64 {
		return nil, fmt.Errorf("space: model dimensions %d layers x %d heads not supported (1..64 heads)", d.Layers, d.Heads)
	}
	p := &parser{src: src, d: d, count: true}
	p.next()
	if _, err := p.space(); err != nil {
		return nil, err
	}
	if p.tok.kind != tEOF {
		return nil, p.errf("expected '|', ',' or the end of the space, got %s", p.tok)
	}
	return &p.total, nil
}

type tokKind int

const (
	tEOF tokKind = iota
	tWord
	tPunct
)

type token struct {
	kind tokKind
	s    string
	pos  int // byte offset
}

func (t token) String() string {
	switch t.kind {
	case tEOF:
		return "the end of the space"
	case tPunct:
		return fmt.Sprintf("'%s'", t.s)
	}
	return fmt.Sprintf("%q", t.s)
}

type parser struct {
	src string
	i   int
	tok token
	d   Dims
	n   int // configurations produced so far (for MaxConfigs)
	// count: only count configurations (Count), expanding nothing.
	count bool
	total big.Int
}

func isWordByte(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '.' || b == '*' || b == '_' || b == '@' || b == '>'
}

func (p *parser) next() {
	for p.i < len(p.src) && (p.src[p.i] == ' ' || p.src[p.i] == '\t' || p.src[p.i] == '\n') {
		p.i++
	}
	if p.i >= len(p.src) {
		p.tok = token{kind: tEOF, pos: p.i}
		return
	}
	start := p.i
	if isWordByte(p.src[p.i]) {
		for p.i < len(p.src) && isWordByte(p.src[p.i]) {
			p.i++
		}
		p.tok = token{kind: tWord, s: p.src[start:p.i], pos: start}
		return
	}
	p.i++
	p.tok = token{kind: tPunct, s: p.src[start:p.i], pos: start}
}

func (p *parser) errf(format string, a ...any) error {
	return &SyntaxError{Col: p.tok.pos + 1, Msg: fmt.Sprintf(format, a...)}
}

func (p *parser) expect(punct, what string) error {
	if p.tok.kind != tPunct || p.tok.s != punct {
		return p.errf("expected '%s' %s, got %s", punct, what, p.tok)
	}
	p.next()
	return nil
}

func (p *parser) grow(n *big.Int) error {
	if p.count {
		p.total.Add(&p.total, n)
		return nil
	}
	if !n.IsInt64() || n.Int64()+int64(p.n) > MaxConfigs {
		return p.errf("space has more than %d configurations (%s here)", MaxConfigs, n.String())
	}
	p.n += int(n.Int64())
	return nil
}

// space := term { ('|' | ',') term }
func (p *parser) space() (*union, error) {
	u := &union{}
	for {
		g, err := p.term()
		if err != nil {
			return nil, err
		}
		if !p.count {
			u.push(g)
		}
		if p.tok.kind == tPunct && (p.tok.s == "|" || p.tok.s == ",") {
			p.next()
			continue
		}
		return u, nil
	}
}

var functions = "subsets, singles, pairs, k, given, file, edges"

// term := FUNC '(' args ')' | literal
func (p *parser) term() (gen, error) {
	if p.tok.kind != tWord {
		return nil, p.errf("expected a space (%s, or components joined by '+'), got %s", functions, p.tok)
	}
	name, at := p.tok.s, p.tok
	p.next()
	if p.tok.kind != tPunct || p.tok.s != "(" {
		// A literal configuration: name [+ word ...].
		p.tok, p.i = at, at.pos
		p.next()
		if many := manyWord(name); many && (p.tok.kind != tPunct || p.tok.s != "+") {
			// `edges`, `heads@*`, `resid.*@*`: one configuration per item.
			p.tok, p.i = at, at.pos
			p.next()
			cs, err := p.setListSep()
			if err != nil {
				return nil, err
			}
			if err := p.grow(big.NewInt(int64(len(cs)))); err != nil {
				return nil, err
			}
			return newCombos(cs, 1), nil
		}
		c, err := p.literal()
		if err != nil {
			return nil, err
		}
		if err := p.grow(big.NewInt(1)); err != nil {
			return nil, err
		}
		l := &list{}
		l.add(c)
		return l, nil
	}
	open := p.tok
	p.next()
	var out gen
	switch name {
	case "subsets":
		set, err := p.setList()
		if err != nil {
			return nil, err
		}
		if len(set) > 26 && !p.count {
			return nil, &SyntaxError{Col: open.pos + 1, Msg: fmt.Sprintf("subsets of %d components is 2^%d configurations; at most 26 components", len(set), len(set))}
		}
		if err := p.grow(new(big.Int).Lsh(big.NewInt(1), uint(len(set)))); err != nil {
			return nil, err
		}
		out = &subsets{set: set, in: setOf(set)}
	case "singles", "pairs":
		set, err := p.setList()
		if err != nil {
			return nil, err
		}
		k := 1
		if name == "pairs" {
			k = 2
		}
		if err := p.grow(new(big.Int).Binomial(int64(len(set)), int64(k))); err != nil {
			return nil, err
		}
		if k > len(set) {
			return nil, &SyntaxError{Col: open.pos + 1, Msg: fmt.Sprintf("%s(...) over %d component(s) has no configurations (a %s needs %d)", name, len(set), map[bool]string{true: "pair", false: "single"}[k == 2], k)}
		}
		out = newCombos(set, k)
	case "k":
		if p.tok.kind != tWord {
			return nil, p.errf("expected a number (the set size) in k(N, components), got %s", p.tok)
		}
		k, err := strconv.Atoi(p.tok.s)
		if err != nil || k < 0 {
			return nil, p.errf("expected a number (the set size) in k(N, components), got %s", p.tok)
		}
		p.next()
		if err := p.expect(",", "after the set size in k(N, components)"); err != nil {
			return nil, err
		}
		set, err := p.setList()
		if err != nil {
			return nil, err
		}
		if k > len(set) {
			return nil, &SyntaxError{Col: open.pos + 1, Msg: fmt.Sprintf("k(%d, ...) over %d components has no configurations", k, len(set))}
		}
		if err := p.grow(new(big.Int).Binomial(int64(len(set)), int64(k))); err != nil {
			return nil, err
		}
		out = newCombos(set, k)
	case "edges":
		// edges(R): every edge into receiver R, one configuration each.
		if p.tok.kind != tWord {
			return nil, p.errf("expected a receiver (6.1.q, mlp.3, logits) in edges(R), got %s", p.tok)
		}
		g := p.d.graph()
		ri, ok := g.ReceiverIndex(p.tok.s)
		if !ok {
			return nil, p.errf("edges(%s): unknown receiver (want L.H.q|k|v, mlp.L or logits with L < %d, H < %d)", p.tok.s, p.d.Layers, p.d.Heads)
		}
		p.next()
		var set []Component
		for _, e := range g.Edges[g.In[ri][0]:g.In[ri][1]] {
			set = append(set, edgeComponent(e, p.d.Layers))
		}
		if err := p.grow(big.NewInt(int64(len(set)))); err != nil {
			return nil, err
		}
		out = newCombos(set, 1)
	case "given":
		fixed, err := p.setListSep("+", ",")
		if err != nil {
			return nil, err
		}
		if err := p.expect(";", "after the fixed components in given(COMPONENTS; SPACE)"); err != nil {
			return nil, err
		}
		inner, err := p.space()
		if err != nil {
			return nil, err
		}
		if !p.count {
			out = newGiven(Canon(fixed), inner)
		}
	case "file":
		// The path is everything up to the matching ')' (paths containing ')' are not supported).
		start := open.pos + 1
		end := strings.IndexByte(p.src[start:], ')')
		if end < 0 {
			return nil, &SyntaxError{Col: open.pos + 1, Msg: "expected ')' after the path in file(PATH)"}
		}
		path := strings.TrimSpace(p.src[start : start+end])
		cs, err := ReadConfigFile(path, p.d)
		if err != nil {
			return nil, &SyntaxError{Col: start + 1, Msg: err.Error()}
		}
		if err := p.grow(big.NewInt(int64(len(cs)))); err != nil {
			return nil, err
		}
		l := &list{}
		for _, c := range cs {
			l.add(c)
		}
		out = l
		p.i = start + end
		p.next()
	default:
		return nil, &SyntaxError{Col: at.pos + 1, Msg: fmt.Sprintf("unknown space function %q (want one of %s)", name, functions)}
	}
	if err := p.expect(")", "to close "+name+"("); err != nil {
		return nil, err
	}
	return out, nil
}

// newGiven is given(FIXED; inner): lazy when no configuration of inner can
// hold a component of FIXED (so the results stay distinct and membership
// is decidable), else expanded into a list with repeats dropped.
func newGiven(fixed Config, inner *union) gen {
	in := setOf(fixed)
	overlap := false
	inner.comps(func(x Component) { overlap = overlap || in[x] })
	g := &given{fixed: fixed, in: in, inner: inner}
	if !overlap {
		return g
	}
	l := &list{}
	g.each(func(c Config) bool { l.add(c); return true })
	return l
}

// literal := word { '+' word }, one configuration ("none" = no ablation).
func (p *parser) literal() (Config, error) {
	if p.tok.s == "none" {
		p.next()
		return Config{}, nil
	}
	set, err := p.setListSep("+")
	if err != nil {
		return nil, err
	}
	return Canon(set), nil
}

func (p *parser) setList() ([]Component, error) { return p.setListSep(",") }

// setListSep := word { sep word }, expanded in order, duplicates dropped.
func (p *parser) setListSep(seps ...string) ([]Component, error) {
	var out []Component
	seen := map[Component]bool{}
	for {
		if p.tok.kind != tWord {
			if p.tok.s == "-" {
				return nil, p.errf("'-': layers and heads are counted from 0, there are no negative indices")
			}
			return nil, p.errf("expected a component (6.1, 6.*, *.1, attn.6, mlp.0, heads, attn, mlp), got %s", p.tok)
		}
		cs, err := expandWord(p.tok.s, p.d)
		if err != nil {
			return nil, p.errf("%v", err)
		}
		for _, c := range cs {
			if !seen[c] {
				seen[c] = true
				out = append(out, c)
			}
		}
		p.next()
		if p.tok.kind == tPunct && slices.Contains(seps, p.tok.s) {
			p.next()
			continue
		}
		return out, nil
	}
}

// expandWord turns one set word into components in canonical order.
func expandWord(w string, d Dims) ([]Component, error) {
	layers := func(s string) ([]int, error) {
		if s == "*" {
			ls := make([]int, d.Layers)
			for i := range ls {
				ls[i] = i
			}
			return ls, nil
		}
		l, err := strconv.Atoi(s)
		if err != nil || l < 0 {
			return nil, fmt.Errorf("%q: %q is not a layer number", w, s)
		}
		if l >= d.Layers {
			return nil, fmt.Errorf("%q: layer %d out of range (the model has layers 0..%d)", w, l, d.Layers-1)
		}
		return []int{l}, nil
	}
	if w == "edges" {
		g := d.graph()
		out := make([]Component, len(g.Edges))
		for i, e := range g.Edges {
			out[i] = edgeComponent(e, d.Layers)
		}
		return out, nil
	}
	if strings.Contains(w, ">") {
		e, err := d.graph().ParseEdge(w)
		if err != nil {
			return nil, err
		}
		return []Component{edgeComponent(e, d.Layers)}, nil
	}
	if base, at, ok := strings.Cut(w, "@"); ok {
		return expandAt(w, base, at, d)
	}
	switch w {
	case "heads":
		w = "*.*"
	case "attn":
		w = "attn.*"
	case "mlp":
		w = "mlp.*"
	}
	parts := strings.Split(w, ".")
	if len(parts) == 2 && (parts[0] == "" || parts[1] == "") {
		return nil, fmt.Errorf("%q: a number is missing around the '.' (components are LAYER.HEAD, attn.LAYER, mlp.LAYER, with layers and heads counted from 0; there are no negative indices)", w)
	}
	if len(parts) != 2 {
		return nil, fmt.Errorf("%q is not a component (want LAYER.HEAD like 6.1, attn.LAYER, mlp.LAYER, globs 6.* *.1, or heads/attn/mlp)", w)
	}
	var out []Component
	switch parts[0] {
	case "attn", "mlp":
		ls, err := layers(parts[1])
		if err != nil {
			return nil, err
		}
		k := Attn
		if parts[0] == "mlp" {
			k = MLP
		}
		for _, l := range ls {
			out = append(out, Component{Kind: k, Layer: l})
		}
		return out, nil
	}
	ls, err := layers(parts[0])
	if err != nil {
		return nil, err
	}
	var hs []int
	if parts[1] == "*" {
		for h := 0; h < d.Heads; h++ {
			hs = append(hs, h)
		}
	} else {
		h, err := strconv.Atoi(parts[1])
		if err != nil || h < 0 {
			return nil, fmt.Errorf("%q: %q is not a head number", w, parts[1])
		}
		if h >= d.Heads {
			return nil, fmt.Errorf("%q: head %d out of range (the model has heads 0..%d)", w, h, d.Heads-1)
		}
		hs = []int{h}
	}
	for _, l := range ls {
		for _, h := range hs {
			out = append(out, Component{Kind: Head, Layer: l, Head: h})
		}
	}
	return out, nil
}

// ReadConfigFile reads one configuration per line (components joined by
// "+"; an empty line is the unablated model; a final newline ends the last
// line and adds no configuration). Errors name the file and line.
func ReadConfigFile(path string, d Dims) ([]Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	text := strings.TrimSuffix(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n")
	if len(data) == 0 {
		return nil, fmt.Errorf("%s: empty file (an empty line is the unablated model; an empty file has no configurations)", path)
	}
	var out []Config
	for i, line := range strings.Split(text, "\n") {
		c, err := ParseConfig(line, d)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %v", path, i+1, err)
		}
		out = append(out, c)
	}
	return out, nil
}
