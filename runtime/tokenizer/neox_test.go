package tokenizer

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestNeoXTokenizerJSON: a tokenizer.json in GPT-NeoX-20B's configuration
// (Pythia's): normalizer NFC, pre_tokenizer ByteLevel without use_regex,
// special added tokens (not matched in text) and non-special whitespace runs
// (matched leftmost-longest before the split). Built from GPT-2's vocabulary,
// so the expected ids are GPT-2's encodings of the pieces between matches.
func TestNeoXTokenizerJSON(t *testing.T) {
	vocab, merges := readGPT2Files(t)
	raw := hfJSON(t, vocab, merges, false, func(doc map[string]any) {
		doc["normalizer"] = map[string]any{"type": "NFC"}
		doc["pre_tokenizer"] = map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true}
		doc["added_tokens"] = []any{
			map[string]any{"id": 50256, "content": "<|endoftext|>", "special": true, "normalized": false},
			map[string]any{"id": 50257, "content": "<|padding|>", "special": true, "normalized": false},
			map[string]any{"id": 50258, "content": "    ", "special": false, "normalized": true},
			map[string]any{"id": 50259, "content": "   ", "special": false, "normalized": true},
			map[string]any{"id": 50260, "content": "  ", "special": false, "normalized": true},
		}
	})
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, TokenizerFile), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	tok, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	gpt2 := loadGPT2(t)
	enc := func(parts ...any) []int { // strings through GPT-2, ints as ids
		var ids []int
		for _, p := range parts {
			switch p := p.(type) {
			case string:
				ids = append(ids, gpt2.Encode(p)...)
			case int:
				ids = append(ids, p)
			}
		}
		return ids
	}
	cases := []struct {
		text string
		want []int
	}{
		{"Hello world", enc("Hello world")},
		{"Hello  world", enc("Hello", 50260, "world")},
		{"a   b", enc("a", 50259, "b")},
		{"a     b", enc("a", 50258, " b")}, // 5 spaces: the 4-space run, then " b"
		{"  x", enc(50260, "x")},
		{"x  ", enc("x", 50260)},
		{"caf\u0065\u0301 ok", enc("caf\u00e9 ok")}, // NFC composes e + combining acute
		{"<|padding|> <|endoftext|>", enc("<|padding|> <|endoftext|>")},
		{"def f():\n        return 1", enc("def f():\n", 50258, 50258, "return 1")},
	}
	for _, c := range cases {
		if got := tok.Encode(c.text); !reflect.DeepEqual(got, c.want) {
			t.Errorf("Encode(%q) = %v, want %v", c.text, got, c.want)
		}
	}
	if id, ok := tok.ID("<|padding|>"); !ok || id != 50257 {
		t.Errorf("ID(<|padding|>) = %d, %v", id, ok)
	}
	if got := tok.Decode(tok.Encode("a   b")); got != "a   b" {
		t.Errorf("Decode(Encode) = %q", got)
	}
	if tok.VocabSize() != 50261 {
		t.Errorf("VocabSize = %d, want 50261", tok.VocabSize())
	}
	// An unsupported option on a non-special added token is refused.
	raw = hfJSON(t, vocab, merges, false, func(doc map[string]any) {
		doc["added_tokens"] = []any{map[string]any{"id": 50257, "content": "  ", "special": false, "lstrip": true}}
	})
	if err := os.WriteFile(filepath.Join(dir, TokenizerFile), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "added_tokens[0]") {
		t.Errorf("lstrip added token: error %v, want one naming added_tokens[0]", err)
	}
}
