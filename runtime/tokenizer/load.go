package tokenizer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// File names in a model directory (Hugging Face layout).
const (
	VocabFile     = "vocab.json"
	MergesFile    = "merges.txt"
	TokenizerFile = "tokenizer.json"
)

func isFile(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular()
}

// Available reports whether dir holds a tokenizer Load would try to read:
// vocab.json and merges.txt, or tokenizer.json. It does not parse them.
func Available(dir string) bool {
	return (isFile(filepath.Join(dir, VocabFile)) && isFile(filepath.Join(dir, MergesFile))) ||
		isFile(filepath.Join(dir, TokenizerFile))
}

// Load reads the tokenizer of a model directory: vocab.json + merges.txt when
// both are present, else tokenizer.json. Errors name the file (and line, for
// merges.txt) at fault.
func Load(dir string) (*Tokenizer, error) {
	vocabPath := filepath.Join(dir, VocabFile)
	mergesPath := filepath.Join(dir, MergesFile)
	if isFile(vocabPath) && isFile(mergesPath) {
		return loadVocabMerges(vocabPath, mergesPath)
	}
	tokPath := filepath.Join(dir, TokenizerFile)
	if isFile(tokPath) {
		return loadTokenizerJSON(tokPath)
	}
	var missing []string
	for _, p := range []string{vocabPath, mergesPath} {
		if !isFile(p) {
			missing = append(missing, filepath.Base(p))
		}
	}
	return nil, fmt.Errorf("tokenizer: %s has neither %s + %s nor %s (missing %s)",
		dir, VocabFile, MergesFile, TokenizerFile, strings.Join(missing, ", "))
}

func loadVocabMerges(vocabPath, mergesPath string) (*Tokenizer, error) {
	raw, err := os.ReadFile(vocabPath)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	var vocab map[string]int
	if err := json.Unmarshal(raw, &vocab); err != nil {
		return nil, fmt.Errorf("tokenizer: %s: want a JSON object of token -> integer id: %w", vocabPath, err)
	}
	mraw, err := os.ReadFile(mergesPath)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	pairs, lines, err := parseMerges(mraw, mergesPath)
	if err != nil {
		return nil, err
	}
	return build(vocab, pairs, lines, vocabPath, mergesPath)
}

// parseMerges reads merges.txt: an optional first line starting with
// "#version", then one rule "a b" per line (the two symbols separated by one
// space; byte-level symbols never contain a space). Empty lines are skipped
// and a trailing '\r' is dropped. Unlike encoder.py, which drops the last line
// unconditionally (bpe_data.split("\n")[1:-1]), a file without a final newline
// keeps its last rule, as Hugging Face does.
func parseMerges(raw []byte, name string) (pairs [][2]string, lineNos []int, err error) {
	for n, line := range bytes.Split(raw, []byte("\n")) {
		s := strings.TrimSuffix(string(line), "\r")
		if (n == 0 && strings.HasPrefix(s, "#version")) || s == "" {
			continue
		}
		a, b, ok := strings.Cut(s, " ")
		if !ok || a == "" || b == "" || strings.Contains(b, " ") {
			return nil, nil, fmt.Errorf("tokenizer: %s:%d: want two symbols separated by one space, got %q", name, n+1, s)
		}
		pairs = append(pairs, [2]string{a, b})
		lineNos = append(lineNos, n+1)
	}
	return pairs, lineNos, nil
}

// hfTokenizer is the part of a Hugging Face tokenizer.json that Load reads.
type hfTokenizer struct {
	AddedTokens []struct {
		ID         *int   `json:"id"`
		Content    string `json:"content"`
		Special    bool   `json:"special"`
		SingleWord bool   `json:"single_word"`
		LStrip     bool   `json:"lstrip"`
		RStrip     bool   `json:"rstrip"`
	} `json:"added_tokens"`
	Normalizer   json.RawMessage `json:"normalizer"`
	PreTokenizer json.RawMessage `json:"pre_tokenizer"`
	Model        *struct {
		Type                    string          `json:"type"`
		Vocab                   map[string]int  `json:"vocab"`
		Merges                  json.RawMessage `json:"merges"`
		Dropout                 *float64        `json:"dropout"`
		ContinuingSubwordPrefix *string         `json:"continuing_subword_prefix"`
		EndOfWordSuffix         *string         `json:"end_of_word_suffix"`
		ByteFallback            bool            `json:"byte_fallback"`
		IgnoreMerges            bool            `json:"ignore_merges"`
	} `json:"model"`
}

func isNull(m json.RawMessage) bool {
	return len(bytes.TrimSpace(m)) == 0 || string(bytes.TrimSpace(m)) == "null"
}

// loadTokenizerJSON reads a tokenizer.json whose model is BPE and whose
// pre-tokenizer is GPT-2's ByteLevel (add_prefix_space false, use_regex true)
// with no normalizer: the configuration that tokenizes exactly as GPT-2.
// Anything else is refused with an error naming the field, rather than
// tokenized differently. added_tokens join the vocabulary (for ID, Token and
// Decode) but, as with vocab.json, Encode does not split them out of text.
// The decoder and post_processor fields are not read: Decode is always
// byte-level.
func loadTokenizerJSON(path string) (*Tokenizer, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	var f hfTokenizer
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w", path, err)
	}
	m := f.Model
	switch {
	case m == nil:
		return nil, fmt.Errorf("tokenizer: %s: no \"model\" object", path)
	case m.Type != "BPE":
		return nil, fmt.Errorf("tokenizer: %s: model.type is %q, only \"BPE\" is supported", path, m.Type)
	case m.Dropout != nil && *m.Dropout != 0:
		return nil, fmt.Errorf("tokenizer: %s: model.dropout is %g, only null or 0 is supported", path, *m.Dropout)
	case m.ContinuingSubwordPrefix != nil && *m.ContinuingSubwordPrefix != "":
		return nil, fmt.Errorf("tokenizer: %s: model.continuing_subword_prefix %q is not supported", path, *m.ContinuingSubwordPrefix)
	case m.EndOfWordSuffix != nil && *m.EndOfWordSuffix != "":
		return nil, fmt.Errorf("tokenizer: %s: model.end_of_word_suffix %q is not supported", path, *m.EndOfWordSuffix)
	case m.ByteFallback:
		return nil, fmt.Errorf("tokenizer: %s: model.byte_fallback true is not supported", path)
	case m.IgnoreMerges:
		return nil, fmt.Errorf("tokenizer: %s: model.ignore_merges true is not GPT-2 behaviour and is not supported", path)
	}
	nfc, err := checkNormalizer(f.Normalizer)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w", path, err)
	}
	if err := checkPreTokenizer(f.PreTokenizer); err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w", path, err)
	}
	vocab := m.Vocab
	if vocab == nil {
		vocab = map[string]int{}
	}
	var added []addedToken
	for k, at := range f.AddedTokens {
		if at.ID == nil {
			return nil, fmt.Errorf("tokenizer: %s: added_tokens[%d] (%q) has no id", path, k, at.Content)
		}
		if !at.Special {
			if at.Content == "" || at.SingleWord || at.LStrip || at.RStrip {
				return nil, fmt.Errorf("tokenizer: %s: added_tokens[%d] %q: empty, or single_word/lstrip/rstrip set; not supported for a non-special added token", path, k, at.Content)
			}
			added = append(added, addedToken{at.Content, *at.ID})
		}
		if old, ok := vocab[at.Content]; ok && old != *at.ID {
			return nil, fmt.Errorf("tokenizer: %s: added_tokens[%d] %q has id %d but model.vocab gives %d", path, k, at.Content, *at.ID, old)
		}
		vocab[at.Content] = *at.ID
	}
	pairs, err := parseJSONMerges(m.Merges)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %s: model.merges: %w", path, err)
	}
	lines := make([]int, len(pairs))
	for k := range lines {
		lines[k] = k
	}
	// Merge positions are reported as "tokenizer.json:K", K the 0-based index
	// in model.merges.
	t, err := build(vocab, pairs, lines, path+" (model.vocab + added_tokens)", path+" model.merges")
	if err != nil {
		return nil, err
	}
	t.nfc, t.added = nfc, added
	return t, nil
}

// checkNormalizer accepts no normalizer (GPT-2) or Unicode NFC (GPT-NeoX /
// Pythia's tokenizer.json); anything else is refused naming the field.
func checkNormalizer(raw json.RawMessage) (nfc bool, err error) {
	if isNull(raw) {
		return false, nil
	}
	var n struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(raw, &n); err != nil || n.Type != "NFC" {
		return false, fmt.Errorf("normalizer must be null (GPT-2) or {\"type\": \"NFC\"} (GPT-NeoX), got %s", raw)
	}
	return true, nil
}

// parseJSONMerges accepts both spellings of model.merges: ["a b", ...] (older
// files) and [["a", "b"], ...] (tokenizers >= 0.20).
func parseJSONMerges(raw json.RawMessage) ([][2]string, error) {
	if isNull(raw) {
		return nil, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, fmt.Errorf("want an array: %w", err)
	}
	pairs := make([][2]string, 0, len(items))
	for k, it := range items {
		var s string
		if err := json.Unmarshal(it, &s); err == nil {
			a, b, ok := strings.Cut(s, " ")
			if !ok || a == "" || b == "" || strings.Contains(b, " ") {
				return nil, fmt.Errorf("[%d]: want \"a b\", got %q", k, s)
			}
			pairs = append(pairs, [2]string{a, b})
			continue
		}
		var p []string
		if err := json.Unmarshal(it, &p); err != nil || len(p) != 2 || p[0] == "" || p[1] == "" {
			return nil, fmt.Errorf("[%d]: want \"a b\" or [\"a\", \"b\"], got %s", k, it)
		}
		pairs = append(pairs, [2]string{p[0], p[1]})
	}
	return pairs, nil
}

// checkPreTokenizer accepts GPT-2's pre-tokenizer: {"type": "ByteLevel",
// "add_prefix_space": false, "use_regex": true (or absent)}.
func checkPreTokenizer(raw json.RawMessage) error {
	if isNull(raw) {
		return errors.New("pre_tokenizer is null; GPT-2 byte-level BPE needs ByteLevel")
	}
	var p struct {
		Type           string `json:"type"`
		AddPrefixSpace bool   `json:"add_prefix_space"`
		UseRegex       *bool  `json:"use_regex"`
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return fmt.Errorf("pre_tokenizer: %w", err)
	}
	switch {
	case p.Type != "ByteLevel":
		return fmt.Errorf("pre_tokenizer.type is %q, only \"ByteLevel\" (GPT-2) is supported", p.Type)
	case p.AddPrefixSpace:
		return errors.New("pre_tokenizer.add_prefix_space true is not supported (GPT-2 uses false)")
	case p.UseRegex != nil && !*p.UseRegex:
		return errors.New("pre_tokenizer.use_regex false is not supported (GPT-2 splits with its regex)")
	}
	return nil
}
