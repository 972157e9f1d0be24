package tokenizer

import (
	"unicode"
	"unicode/utf8"
)

// Character classes of GPT-2's pre-tokenization pattern
//
//	's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//
// Every rune is exactly one of them, tested in this order.
const (
	classSpace  = iota // \s: unicode.IsSpace, which is the same set as Python regex's \s
	classLetter        // \p{L}
	classNumber        // \p{N}
	classOther         // [^\s\p{L}\p{N}]; also every byte of invalid UTF-8
)

var asciiClass [128]uint8

func init() {
	for c := 0; c < 128; c++ {
		asciiClass[c] = runeClassSlow(rune(c))
	}
}

func runeClassSlow(r rune) uint8 {
	switch {
	case unicode.IsSpace(r):
		return classSpace
	case unicode.IsLetter(r):
		return classLetter
	case unicode.IsNumber(r):
		return classNumber
	}
	return classOther
}

// next decodes the rune at s[i:] and returns its class and byte length. An
// invalid UTF-8 byte is a one-byte rune of classOther (the class of U+FFFD),
// so the split never loses or rewrites bytes.
func next(s string, i int) (class uint8, size int) {
	if c := s[i]; c < utf8.RuneSelf {
		return asciiClass[c], 1
	}
	r, size := utf8.DecodeRuneInString(s[i:])
	if r == utf8.RuneError && size == 1 {
		return classOther, 1
	}
	return runeClassSlow(r), size
}

// contraction returns the length of the contraction ('s 't 're 've 'm 'll 'd,
// lower case only, ASCII apostrophe only, as in GPT-2) at the start of s, or 0.
func contraction(s string) int {
	if len(s) < 2 || s[0] != '\'' {
		return 0
	}
	switch s[1] {
	case 's', 't', 'm', 'd':
		return 2
	case 'r', 'v':
		if len(s) >= 3 && s[2] == 'e' {
			return 3
		}
	case 'l':
		if len(s) >= 3 && s[2] == 'l' {
			return 3
		}
	}
	return 0
}

// pretokenize splits text the way GPT-2's regex does (re.findall with the
// pattern above) and calls emit with each piece in order; the pieces
// concatenate to text. Go's regexp has no lookahead, so the alternatives are
// written out by hand:
//   - at a contraction, the contraction;
//   - at a space followed by a letter, number or other rune, the space plus
//     the longest run of that class (" ?\p{L}+" and its siblings);
//   - at a letter, number or other rune, the longest run of its class;
//   - at whitespace, the longest whitespace run W: all of W if it reaches the
//     end of text, else W minus its last rune when W has at least two runes
//     ("\s+(?!\S)" backtracks one rune so the next match may take " x"), else
//     the single rune ("\s+").
func pretokenize(text string, emit func(piece string)) {
	i := 0
	for i < len(text) {
		if n := contraction(text[i:]); n > 0 {
			emit(text[i : i+n])
			i += n
			continue
		}
		start := i
		cls, size := next(text, i)
		if text[i] == ' ' && i+1 < len(text) {
			if c2, _ := next(text, i+1); c2 != classSpace {
				cls = c2
				i++ // the optional leading space
				_, size = next(text, i)
			}
		}
		if cls != classSpace {
			i += size
			for i < len(text) {
				c, sz := next(text, i)
				if c != cls {
					break
				}
				i += sz
			}
			emit(text[start:i])
			continue
		}
		// Whitespace run [start, end); last is the start of its final rune.
		end, last, runes := i, i, 0
		for end < len(text) {
			c, sz := next(text, end)
			if c != classSpace {
				break
			}
			last = end
			end += sz
			runes++
		}
		if end < len(text) && runes >= 2 {
			end = last
		}
		emit(text[start:end])
		i = end
	}
}
