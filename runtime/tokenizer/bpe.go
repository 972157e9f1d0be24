package tokenizer

// shortPiece is the length (bytes) up to which bpe uses the plain quadratic
// loop; longer pieces use bpeLong. Both give identical results
// (TestBPEAlgorithmsAgree); the plain loop is faster on short words, while
// on a 50 KB run of random letters it took 10 s against bpeLong's
// milliseconds.
const shortPiece = 64

// bpe returns the ids of one pre-token.
func (t *Tokenizer) bpe(piece string) []int {
	if len(piece) <= shortPiece {
		return t.bpeShort(piece)
	}
	return t.bpeLong(piece)
}

// bpeShort is encoder.py's bpe() on ids: start from one symbol per byte;
// while some adjacent pair has a merge rule, take the pair of lowest rank and
// merge every occurrence of it, scanning left to right without overlap.
// O(len(piece)) map lookups per merge applied.
func (t *Tokenizer) bpeShort(piece string) []int {
	word := make([]int32, len(piece))
	for i := 0; i < len(piece); i++ {
		word[i] = t.byteID[piece[i]]
	}
	for len(word) > 1 {
		best := merge{rank: -1}
		var first, second int32
		for i := 0; i+1 < len(word); i++ {
			m, ok := t.merges[pairKey(word[i], word[i+1])]
			if ok && (best.rank < 0 || m.rank < best.rank) {
				best, first, second = m, word[i], word[i+1]
			}
		}
		if best.rank < 0 {
			break
		}
		// In-place: the write index never passes the read index.
		out := word[:0]
		for i := 0; i < len(word); {
			if i+1 < len(word) && word[i] == first && word[i+1] == second {
				out = append(out, best.id)
				i += 2
			} else {
				out = append(out, word[i])
				i++
			}
		}
		word = out
	}
	ids := make([]int, len(word))
	for i, w := range word {
		ids[i] = int(w)
	}
	return ids
}

// bpeLong computes exactly what bpeShort does in O(n log n): symbols are a
// linked list over the piece's byte positions, and a min-heap holds
// (rank, left position) for every adjacency that has a rule. Each round pops
// every entry of the lowest rank r (these are all current occurrences of r's
// pair, in position order; entries made stale by earlier merges are dropped
// by checking the pair is still there), merges them left to right skipping
// any whose left symbol the previous merge consumed (the overlap rule of
// encoder.py), and only then pushes the new adjacencies. Pushing after the
// round matters: a new pair may rank below r, and encoder.py finishes every
// occurrence of r's pair before looking again. A new pair can never rank r
// itself, since it contains the merged symbol, which is longer than either
// half of r's pair.
func (t *Tokenizer) bpeLong(piece string) []int {
	n := len(piece)
	id := make([]int32, n)
	next := make([]int32, n) // -1: end
	prev := make([]int32, n) // -1: start
	dead := make([]bool, n)  // consumed as the right half of a merge
	for i := 0; i < n; i++ {
		id[i] = t.byteID[piece[i]]
		next[i] = int32(i + 1)
		prev[i] = int32(i - 1)
	}
	next[n-1] = -1
	var h heap64
	push := func(left int32) {
		if left < 0 || next[left] < 0 {
			return
		}
		r := next[left]
		if m, ok := t.merges[pairKey(id[left], id[r])]; ok {
			h.push(uint64(uint32(m.rank))<<32 | uint64(uint32(left)))
		}
	}
	for i := 0; i+1 < n; i++ {
		push(int32(i))
	}
	var round, merged []int32
	for len(h) > 0 {
		rank := int32(h[0] >> 32)
		rule := t.rules[rank]
		round = round[:0]
		last := int32(-1)
		for len(h) > 0 && int32(h[0]>>32) == rank {
			pos := int32(uint32(h.pop()))
			if pos == last {
				continue // duplicate entry
			}
			last = pos
			if !dead[pos] && next[pos] >= 0 && id[pos] == rule[0] && id[next[pos]] == rule[1] {
				round = append(round, pos)
			}
		}
		if len(round) == 0 {
			continue
		}
		newID := t.merges[pairKey(rule[0], rule[1])].id
		merged = merged[:0]
		for _, pos := range round {
			r := next[pos]
			// Skip an occurrence whose symbols the previous merge of this
			// round changed (only possible when both halves are the same
			// symbol: "a a a").
			if dead[pos] || r < 0 || id[pos] != rule[0] || id[r] != rule[1] {
				continue
			}
			id[pos] = newID
			dead[r] = true
			next[pos] = next[r]
			if next[r] >= 0 {
				prev[next[r]] = pos
			}
			merged = append(merged, pos)
		}
		for _, pos := range merged {
			if dead[pos] {
				continue
			}
			if prev[pos] >= 0 {
				push(prev[pos])
			}
			push(pos)
		}
	}
	var ids []int
	for i := int32(0); i >= 0; i = next[i] {
		ids = append(ids, int(id[i]))
	}
	return ids
}

// heap64 is a binary min-heap of uint64 (rank in the high half, position in
// the low half, so ties in rank pop in position order).
type heap64 []uint64

func (h *heap64) push(v uint64) {
	*h = append(*h, v)
	s := *h
	for i := len(s) - 1; i > 0; {
		p := (i - 1) / 2
		if s[p] <= s[i] {
			break
		}
		s[p], s[i] = s[i], s[p]
		i = p
	}
}

func (h *heap64) pop() uint64 {
	s := *h
	top := s[0]
	last := len(s) - 1
	s[0] = s[last]
	s = s[:last]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < len(s) && s[l] < s[m] {
			m = l
		}
		if r < len(s) && s[r] < s[m] {
			m = r
		}
		if m == i {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
	*h = s
	return top
}
