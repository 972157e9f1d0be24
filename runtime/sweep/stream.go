package sweep

import (
	"iter"
	"math/big"
	"slices"
)

// A space is expanded lazily: the parser builds one generator per term and
// a Stream makes the configurations one at a time, in the order Parse lists
// them, so a sweep of millions of configurations holds a window of them,
// never the space (issue 18, item 7).
//
// Duplicates are removed without a table of everything seen. Every term
// lists each of its configurations once (a combination or subset of a set
// whose repeats were dropped; a list (a literal, a file) is deduplicated as
// it is read; given(FIXED; S) adds FIXED to S's distinct configurations,
// which stay distinct when no configuration of S can contain a component of
// FIXED). So a configuration of a union's term j is a repeat exactly when
// one of the terms before j contains it, which every generator can answer
// from the configuration alone (has). A given(...) whose inner space can
// hold a fixed component is the one case with no such test: it is expanded
// whole, as before (bounded by MaxConfigs and the caller's --max-configs).

// gen is one term of a space.
type gen interface {
	// each yields the term's configurations in order, each once; it
	// returns false when yield did.
	each(yield func(Config) bool) bool
	// has says whether c (canonical) is one of the term's configurations.
	has(c Config) bool
	// comps adds every component a configuration of the term can hold.
	comps(add func(Component))
}

// combos are the k-element subsets of set, lexicographic in set positions
// (singles, pairs, k(N, ...), edges, heads@*).
type combos struct {
	set []Component
	in  map[Component]bool
	k   int
}

func newCombos(set []Component, k int) *combos {
	return &combos{set: set, in: setOf(set), k: k}
}

func setOf(set []Component) map[Component]bool {
	in := make(map[Component]bool, len(set))
	for _, x := range set {
		in[x] = true
	}
	return in
}

func (g *combos) each(yield func(Config) bool) bool {
	k, n := g.k, len(g.set)
	if k > n || k < 0 {
		return true
	}
	idx := make([]int, k)
	for i := range idx {
		idx[i] = i
	}
	for {
		c := make(Config, k)
		for i, j := range idx {
			c[i] = g.set[j]
		}
		if !yield(Canon(c)) {
			return false
		}
		i := k - 1
		for i >= 0 && idx[i] == n-k+i {
			i--
		}
		if i < 0 {
			return true
		}
		idx[i]++
		for j := i + 1; j < k; j++ {
			idx[j] = idx[j-1] + 1
		}
	}
}

func (g *combos) has(c Config) bool { return len(c) == g.k && allIn(c, g.in) }

func (g *combos) comps(add func(Component)) {
	if g.k == 0 {
		return // k(0, ...) is the empty configuration alone
	}
	for _, x := range g.set {
		add(x)
	}
}

func allIn(c Config, in map[Component]bool) bool {
	for _, x := range c {
		if !in[x] {
			return false
		}
	}
	return true
}

// subsets are all 2^k subsets of set: index m has bit j set iff the j-th
// listed component is in configuration m.
type subsets struct {
	set []Component
	in  map[Component]bool
}

func (g *subsets) each(yield func(Config) bool) bool {
	for m := 0; m < 1<<len(g.set); m++ {
		c := Config{}
		for j, x := range g.set {
			if m>>j&1 == 1 {
				c = append(c, x)
			}
		}
		if !yield(Canon(c)) {
			return false
		}
	}
	return true
}

func (g *subsets) has(c Config) bool { return allIn(c, g.in) }

func (g *subsets) comps(add func(Component)) {
	for _, x := range g.set {
		add(x)
	}
}

// list is an explicit list of configurations (literals, file(PATH), an
// expanded given), repeats dropped as it is built.
type list struct {
	cfgs []Config
	keys map[string]bool
}

func (g *list) add(c Config) {
	if g.keys == nil {
		g.keys = map[string]bool{}
	}
	k := c.String()
	if !g.keys[k] {
		g.keys[k] = true
		g.cfgs = append(g.cfgs, c)
	}
}

func (g *list) each(yield func(Config) bool) bool {
	for _, c := range g.cfgs {
		if !yield(c) {
			return false
		}
	}
	return true
}

func (g *list) has(c Config) bool { return g.keys[c.String()] }

func (g *list) comps(add func(Component)) {
	for _, c := range g.cfgs {
		for _, x := range c {
			add(x)
		}
	}
}

// given adds fixed to every configuration of inner, which holds none of
// fixed's components (else the parser expands the term into a list).
type given struct {
	fixed Config
	in    map[Component]bool
	inner *union
}

func (g *given) each(yield func(Config) bool) bool {
	return g.inner.each(func(c Config) bool {
		return yield(Canon(append(append(Config{}, c...), g.fixed...)))
	})
}

func (g *given) has(c Config) bool {
	rest := make(Config, 0, len(c))
	n := 0
	for _, x := range c {
		if g.in[x] {
			n++
		} else {
			rest = append(rest, x)
		}
	}
	return n == len(g.fixed) && g.inner.has(rest)
}

func (g *given) comps(add func(Component)) {
	for _, x := range g.fixed {
		add(x)
	}
	g.inner.comps(add)
}

// union lists its terms in order, each configuration at its first
// occurrence.
type union struct {
	terms []gen
}

// push appends a term, merging consecutive lists (a union of many literals
// is one list, so the repeat test stays one lookup).
func (u *union) push(g gen) {
	if l, ok := g.(*list); ok && len(u.terms) > 0 {
		if last, ok := u.terms[len(u.terms)-1].(*list); ok {
			for _, c := range l.cfgs {
				last.add(c)
			}
			return
		}
	}
	u.terms = append(u.terms, g)
}

func (u *union) each(yield func(Config) bool) bool {
	for j, t := range u.terms {
		earlier := u.terms[:j]
		if !t.each(func(c Config) bool {
			for _, e := range earlier {
				if e.has(c) {
					return true
				}
			}
			return yield(c)
		}) {
			return false
		}
	}
	return true
}

func (u *union) has(c Config) bool {
	return slices.ContainsFunc(u.terms, func(t gen) bool { return t.has(c) })
}

func (u *union) comps(add func(Component)) {
	for _, t := range u.terms {
		t.comps(add)
	}
}

// Stream is a parsed space whose configurations are made on demand, in the
// order (and with the indices) Parse gives them.
type Stream struct {
	u *union
	n int // distinct configurations; -1 until counted
}

// Open parses a space (the grammar in doc.go; the errors of Parse) without
// expanding it.
func Open(src string, d Dims) (*Stream, error) {
	u, err := parse(src, d)
	if err != nil {
		return nil, err
	}
	return &Stream{u: u, n: -1}, nil
}

// Len is the number of distinct configurations. A single term knows it at
// once; a union of several is counted by walking it once (no memory).
func (s *Stream) Len() int {
	if s.n < 0 {
		s.n = 0
		if n, ok := termLen(s.u); ok {
			s.n = n
		} else {
			s.u.each(func(Config) bool { s.n++; return true })
		}
	}
	return s.n
}

// termLen is the size of a one-term union when it is known without walking.
func termLen(u *union) (int, bool) {
	if len(u.terms) != 1 {
		return 0, false
	}
	switch g := u.terms[0].(type) {
	case *combos:
		if g.k > len(g.set) {
			return 0, true
		}
		return int(new(big.Int).Binomial(int64(len(g.set)), int64(g.k)).Int64()), true
	case *subsets:
		return 1 << len(g.set), true
	case *list:
		return len(g.cfgs), true
	case *given:
		return termLen(g.inner)
	}
	return 0, false
}

// All yields every configuration with its index.
func (s *Stream) All() iter.Seq2[int, Config] {
	return func(yield func(int, Config) bool) {
		i := 0
		s.u.each(func(c Config) bool {
			ok := yield(i, c)
			i++
			return ok
		})
	}
}

// Source is a space a sweep runs: its size and its configurations in index
// order. *Stream is one, made on demand; Configs is one held in memory.
type Source interface {
	Len() int
	All() iter.Seq2[int, Config]
}

// Configs is a Source over configurations already in memory.
type Configs []Config

func (c Configs) Len() int { return len(c) }

func (c Configs) All() iter.Seq2[int, Config] {
	return func(yield func(int, Config) bool) {
		for i, x := range c {
			if !yield(i, x) {
				return
			}
		}
	}
}
