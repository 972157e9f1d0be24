package tokenizer

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// byteToRune and runeToByte are GPT-2's bytes_to_unicode table and its
// inverse: the 188 printable bytes ('!'..'~', '¡'..'¬', '®'..'ÿ') map to the
// rune of the same value, the other 68 bytes map, in byte order, to
// U+0100, U+0101, ... so that every byte has a visible, non-space stand-in
// (space 0x20 becomes 'Ġ' U+0120, '\n' becomes 'Ċ' U+010A).
var (
	byteToRune [256]rune
	runeToByte map[rune]byte
)

func init() {
	n := 0
	runeToByte = make(map[rune]byte, 256)
	for b := 0; b < 256; b++ {
		printable := (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)
		if printable {
			byteToRune[b] = rune(b)
		} else {
			byteToRune[b] = rune(256 + n)
			n++
		}
		runeToByte[byteToRune[b]] = byte(b)
	}
}

// ByteLevel returns the byte-level spelling of raw bytes: each byte replaced
// by its GPT-2 stand-in rune, the form in which vocab.json and merges.txt
// store tokens. ByteLevel([]byte(" the")) is "Ġthe". A program that writes its
// own vocabulary (a BPE trainer) uses it to spell tokens.
func ByteLevel(b []byte) string {
	var sb strings.Builder
	sb.Grow(2 * len(b))
	for _, c := range b {
		sb.WriteRune(byteToRune[c])
	}
	return sb.String()
}

// ByteLevelBytes inverts ByteLevel: it returns the raw bytes spelled by a
// byte-level token string, or an error naming the first rune that is not one
// of the 256 stand-ins (as in a special token such as "<|endoftext|>" it never
// fails, since '<', '|' and letters stand for themselves).
func ByteLevelBytes(s string) ([]byte, error) {
	out := make([]byte, 0, len(s))
	for i, r := range s {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				return nil, fmt.Errorf("tokenizer: byte-level string %q: invalid UTF-8 at byte %d", s, i)
			}
		}
		b, ok := runeToByte[r]
		if !ok {
			return nil, fmt.Errorf("tokenizer: byte-level string %q: rune %U at byte %d is not a byte stand-in", s, r, i)
		}
		out = append(out, b)
	}
	return out, nil
}
