package tokenizer

import (
	"fmt"
	"strings"
	"sync"

	"golang.org/x/text/unicode/norm"
)

// maxID bounds the ids a vocabulary may use, so a typo such as 5000000000 in
// vocab.json is an error instead of a giant allocation. 16M is far above any
// GPT-2/GPT-Neo vocabulary (50257).
const maxID = 1 << 24

// cacheLimit bounds the per-Tokenizer cache of pre-token -> ids. When it is
// full it is cleared and refilled; each entry is a short string and a few ids.
const cacheLimit = 1 << 16

// addedToken is a non-special tokenizer.json added token: text matched
// literally before pre-tokenization.
type addedToken struct {
	content string
	id      int
}

// merge is one merges.txt rule as seen from a pair of adjacent symbol ids.
type merge struct {
	rank int32 // line order in merges.txt: lower merges first
	id   int32 // id of the merged symbol
}

// Tokenizer is a GPT-2 byte-level BPE tokenizer. It is safe for concurrent use.
type Tokenizer struct {
	vocab  map[string]int // raw token string ("Ġthe") -> id
	tokens []string       // id -> raw token string
	known  []bool         // id -> present in the vocabulary
	bytes  [][]byte       // id -> the bytes Decode writes for it
	byteID [256]int32     // byte -> id of its one-byte symbol
	merges map[uint64]merge
	rules  [][2]int32 // rank -> the pair it merges (for bpeLong's checks)

	// From tokenizer.json: NFC normalisation before everything (GPT-NeoX),
	// and the non-special added tokens, matched in the text before the
	// split (GPT-NeoX's whitespace runs).
	nfc   bool
	added []addedToken

	mu      sync.Mutex
	cache   map[string][]int
	noCache bool // for benchmarks of the uncached path
}

func pairKey(a, b int32) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

// build checks a vocabulary and merge list and assembles a Tokenizer. vocabFile
// and mergesFile name the sources in errors; mergeLine[k] is the line of merge k.
func build(vocab map[string]int, pairs [][2]string, mergeLine []int, vocabFile, mergesFile string) (*Tokenizer, error) {
	if len(vocab) == 0 {
		return nil, fmt.Errorf("tokenizer: %s: empty vocabulary", vocabFile)
	}
	size := 0
	for tok, id := range vocab {
		if id < 0 || id >= maxID {
			return nil, fmt.Errorf("tokenizer: %s: token %q has id %d, want 0 <= id < %d", vocabFile, tok, id, maxID)
		}
		if id+1 > size {
			size = id + 1
		}
	}
	t := &Tokenizer{
		vocab:  vocab,
		tokens: make([]string, size),
		known:  make([]bool, size),
		bytes:  make([][]byte, size),
		merges: make(map[uint64]merge, len(pairs)),
		rules:  make([][2]int32, len(pairs)),
		cache:  make(map[string][]int),
	}
	for tok, id := range vocab {
		if t.known[id] {
			return nil, fmt.Errorf("tokenizer: %s: id %d is used by both %q and %q", vocabFile, id, t.tokens[id], tok)
		}
		t.known[id] = true
		t.tokens[id] = tok
		if b, err := ByteLevelBytes(tok); err == nil {
			t.bytes[id] = b
		} else {
			// Not spelled in the byte alphabet (an added special token with,
			// say, CJK in it): decode it as its own UTF-8, as Hugging Face's
			// ByteLevel decoder does.
			t.bytes[id] = []byte(tok)
		}
	}
	for b := 0; b < 256; b++ {
		s := string(byteToRune[b])
		id, ok := vocab[s]
		if !ok {
			return nil, fmt.Errorf("tokenizer: %s: byte-level vocabulary lacks the symbol %q for byte 0x%02x (all 256 are required so that any text encodes)", vocabFile, s, b)
		}
		t.byteID[b] = int32(id)
	}
	for k, p := range pairs {
		a, okA := vocab[p[0]]
		b, okB := vocab[p[1]]
		ab, okAB := vocab[p[0]+p[1]]
		switch {
		case !okA:
			return nil, fmt.Errorf("tokenizer: %s:%d: symbol %q is not in %s", mergesFile, mergeLine[k], p[0], vocabFile)
		case !okB:
			return nil, fmt.Errorf("tokenizer: %s:%d: symbol %q is not in %s", mergesFile, mergeLine[k], p[1], vocabFile)
		case !okAB:
			return nil, fmt.Errorf("tokenizer: %s:%d: merged symbol %q is not in %s", mergesFile, mergeLine[k], p[0]+p[1], vocabFile)
		}
		// A repeated pair keeps its last rank, as encoder.py's
		// dict(zip(merges, range(len(merges)))) and Hugging Face do.
		t.merges[pairKey(int32(a), int32(b))] = merge{rank: int32(k), id: int32(ab)}
		t.rules[k] = [2]int32{int32(a), int32(b)}
	}
	return t, nil
}

// VocabSize is one more than the largest id in the vocabulary: the number of
// rows an embedding matrix needs (50257 for GPT-2). Ids below it that no token
// uses (a sparse vocabulary) are unknown to Token and Decode.
func (t *Tokenizer) VocabSize() int { return len(t.tokens) }

// Token returns the raw vocabulary string of id ("Ġthe" for 262 in GPT-2),
// or "" when id is not in the vocabulary.
func (t *Tokenizer) Token(id int) string {
	if id < 0 || id >= len(t.tokens) {
		return ""
	}
	return t.tokens[id]
}

// ID returns the id of a raw vocabulary string ("Ġthe", "<|endoftext|>").
func (t *Tokenizer) ID(tok string) (int, bool) {
	id, ok := t.vocab[tok]
	return id, ok
}

// Encode returns the token ids of text, exactly as GPT-2's encoder.py does.
// Special tokens are not recognised: the text "<|endoftext|>" is encoded as the
// ordinary characters it is made of (7 ids in GPT-2), as encoder.py does; a
// caller who wants the end-of-text token appends the id from
// ID("<|endoftext|>"). Invalid UTF-8 is kept byte for byte (each bad byte is
// an "other" character for the split), so Decode(Encode(s)) == s for every s.
//
// A tokenizer.json may add two steps, as Hugging Face's tokenizers library
// does them: NFC normalisation of the whole text first (GPT-NeoX; then
// Decode(Encode(s)) is NFC(s)), and non-special added tokens (GPT-NeoX's runs
// of 2 to 24 spaces) matched in the normalised text leftmost-longest before
// the split, the text between them encoded as above. Special added tokens
// are not matched, as said.
func (t *Tokenizer) Encode(text string) []int {
	if t.nfc {
		text = norm.NFC.String(text)
	}
	ids := make([]int, 0, len(text)/3+1)
	emit := func(piece string) { ids = t.appendBPE(ids, piece) }
	if len(t.added) == 0 {
		pretokenize(text, emit)
		return ids
	}
	start := 0
	for i := 0; i < len(text); {
		best := -1
		for k, a := range t.added {
			if strings.HasPrefix(text[i:], a.content) && (best < 0 || len(a.content) > len(t.added[best].content)) {
				best = k
			}
		}
		if best < 0 {
			i++
			continue
		}
		pretokenize(text[start:i], emit)
		ids = append(ids, t.added[best].id)
		i += len(t.added[best].content)
		start = i
	}
	pretokenize(text[start:], emit)
	return ids
}

// appendBPE appends the ids of one pre-token, from the cache when it can.
func (t *Tokenizer) appendBPE(dst []int, piece string) []int {
	if !t.noCache {
		t.mu.Lock()
		cached, ok := t.cache[piece]
		t.mu.Unlock()
		if ok {
			return append(dst, cached...)
		}
	}
	ids := t.bpe(piece)
	if !t.noCache {
		t.mu.Lock()
		if len(t.cache) >= cacheLimit {
			clear(t.cache)
		}
		t.cache[strings.Clone(piece)] = ids
		t.mu.Unlock()
	}
	return append(dst, ids...)
}

// Decode returns the text of ids: the bytes each token stands for, joined.
// The result is the raw bytes, not repaired: a sequence that ends inside a
// multi-byte character (one token of an emoji) yields invalid UTF-8, where
// encoder.py would write U+FFFD (errors="replace"); use
// strings.ToValidUTF8(s, "\uFFFD") to get that. An id outside the vocabulary
// (a padded embedding row, say) decodes to U+FFFD.
func (t *Tokenizer) Decode(ids []int) string {
	var sb strings.Builder
	for _, id := range ids {
		if id < 0 || id >= len(t.tokens) || !t.known[id] {
			sb.WriteString("\uFFFD")
			continue
		}
		sb.Write(t.bytes[id])
	}
	return sb.String()
}
