package tokenizer

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// gunzipTo decompresses testdata file src into dst.
func gunzipTo(t testing.TB, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	zr, err := gzip.NewReader(in)
	if err != nil {
		t.Fatalf("%s: %v", src, err)
	}
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, zr); err != nil {
		t.Fatalf("%s: %v", src, err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// gpt2Dir writes GPT-2's vocab.json and merges.txt (from testdata, gzipped)
// into a temporary model directory.
func gpt2Dir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	gunzipTo(t, "testdata/gpt2/vocab.json.gz", filepath.Join(dir, VocabFile))
	gunzipTo(t, "testdata/gpt2/merges.txt.gz", filepath.Join(dir, MergesFile))
	return dir
}

var (
	gpt2Once sync.Once
	gpt2Tok  *Tokenizer
	gpt2Err  error
)

func loadGPT2(t testing.TB) *Tokenizer {
	t.Helper()
	gpt2Once.Do(func() {
		dir, err := os.MkdirTemp("", "gpt2tok")
		if err != nil {
			gpt2Err = err
			return
		}
		defer os.RemoveAll(dir)
		gunzipTo(t, "testdata/gpt2/vocab.json.gz", filepath.Join(dir, VocabFile))
		gunzipTo(t, "testdata/gpt2/merges.txt.gz", filepath.Join(dir, MergesFile))
		gpt2Tok, gpt2Err = Load(dir)
	})
	if gpt2Err != nil {
		t.Fatal(gpt2Err)
	}
	return gpt2Tok
}

type testCase struct {
	Text string `json:"text"`
	IDs  []int  `json:"ids"`
	// GPT3EncoderIDs is what gpt-3-encoder 1.1.4 gives, recorded for the
	// quirk cases only.
	GPT3EncoderIDs []int `json:"gpt3encoder_ids"`
}

func readCases(t testing.TB, path string) []testCase {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		r = zr
	}
	var cases []testCase
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var c testCase
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		cases = append(cases, c)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return cases
}

func TestGPT2Vocabulary(t *testing.T) {
	tok := loadGPT2(t)
	if got := tok.VocabSize(); got != 50257 {
		t.Errorf("VocabSize = %d, want 50257", got)
	}
	if got := len(tok.merges); got != 50000 {
		t.Errorf("merges = %d, want 50000", got)
	}
	for _, c := range []struct {
		tok string
		id  int
	}{{"!", 0}, {"Ġthe", 262}, {"Ġ", 220}, {"Ċ", 198}, {"<|endoftext|>", 50256}} {
		if id, ok := tok.ID(c.tok); !ok || id != c.id {
			t.Errorf("ID(%q) = %d, %v; want %d", c.tok, id, ok, c.id)
		}
		if got := tok.Token(c.id); got != c.tok {
			t.Errorf("Token(%d) = %q, want %q", c.id, got, c.tok)
		}
	}
	if got := tok.Token(50257); got != "" {
		t.Errorf("Token(50257) = %q, want \"\"", got)
	}
	if got := tok.Token(-1); got != "" {
		t.Errorf("Token(-1) = %q, want \"\"", got)
	}
}

// TestGPT2Conformance compares every string of testdata/gpt2_cases.jsonl.gz
// with the ids gpt-3-encoder 1.1.4 (an independent JavaScript port of
// encoder.py) gave, which were also checked equal to a reimplementation of
// OpenAI's encoder.py with Python's regex module (testdata/gen). Exact match
// is required: there is no tolerance in tokenization.
func TestGPT2Conformance(t *testing.T) {
	tok := loadGPT2(t)
	cases := readCases(t, "testdata/gpt2_cases.jsonl.gz")
	if len(cases) < 3000 {
		t.Fatalf("only %d cases in testdata", len(cases))
	}
	fails := 0
	for i, c := range cases {
		got := tok.Encode(c.Text)
		if !reflect.DeepEqual(got, c.IDs) && !(len(got) == 0 && len(c.IDs) == 0) {
			fails++
			if fails <= 10 {
				t.Errorf("case %d: Encode(%q)\n got %v\nwant %v", i, c.Text, got, c.IDs)
			}
		}
		if back := tok.Decode(got); back != c.Text {
			fails++
			if fails <= 10 {
				t.Errorf("case %d: Decode(Encode(%q)) = %q", i, c.Text, back)
			}
		}
	}
	if fails > 0 {
		t.Errorf("%d of %d cases failed", fails, len(cases))
	}
	t.Logf("%d cases match", len(cases))
}

// TestGPT2Quirks holds the strings on which gpt-3-encoder and encoder.py can
// differ: U+0085 (NEL) and U+FEFF (BOM). JavaScript's \s includes U+FEFF and
// not U+0085; Python's regex \s (and Go's unicode.IsSpace) the reverse. The
// expected ids come from the encoder.py reimplementation; for " \u0085x" and
// "Hi \ufeffthere" gpt-3-encoder's ids differ and are recorded as wrong.
func TestGPT2Quirks(t *testing.T) {
	tok := loadGPT2(t)
	cases := readCases(t, "testdata/gpt2_quirks.jsonl")
	differ := 0
	for _, c := range cases {
		if got := tok.Encode(c.Text); !reflect.DeepEqual(got, c.IDs) {
			t.Errorf("Encode(%q) = %v, want %v (encoder.py)", c.Text, got, c.IDs)
		}
		if !reflect.DeepEqual(c.IDs, c.GPT3EncoderIDs) {
			differ++
		}
	}
	if differ != 2 {
		t.Errorf("%d quirk cases where gpt-3-encoder differs, testdata records 2", differ)
	}
}

func TestEndOfTextIsText(t *testing.T) {
	tok := loadGPT2(t)
	// encoder.py: '<|endoftext|>' -> ['<|', 'endoftext', '|>'].
	want := []int{27, 91, 437, 1659, 5239, 91, 29}
	if got := tok.Encode("<|endoftext|>"); !reflect.DeepEqual(got, want) {
		t.Errorf("Encode(<|endoftext|>) = %v, want %v", got, want)
	}
	if got := tok.Decode([]int{50256}); got != "<|endoftext|>" {
		t.Errorf("Decode([50256]) = %q", got)
	}
	if got := tok.Decode([]int{31373, 50257, -3, 995}); got != "hello\uFFFD\uFFFD world" {
		t.Errorf("Decode with unknown ids = %q", got)
	}
}

func TestPretokenize(t *testing.T) {
	// Expected splits are re.findall(pat, s) with Python's regex module.
	cases := []struct {
		in   string
		want []string
	}{
		{"Hello  world\n\n  x", []string{"Hello", " ", " world", "\n\n ", " x"}},
		{"it's 'S''s", []string{"it", "'s", " '", "S", "''", "s"}},
		{" \t\n", []string{" \t\n"}},
		{"a1!é ", []string{"a", "1", "!", "é", " "}},
		{"<|endoftext|>", []string{"<|", "endoftext", "|>"}},
		{"we'll they've I'd you're", []string{"we", "'ll", " they", "'ve", " I", "'d", " you", "'re"}},
		{"x  ", []string{"x", "  "}},
		{"x \ty", []string{"x", " ", "\t", "y"}},
		{"x\n y", []string{"x", "\n", " y"}},
		{" 12 ab !? ", []string{" 12", " ab", " !?", " "}},
		{"e\u0301", []string{"e", "\u0301"}},
		{"\xff\xfeab", []string{"\xff\xfe", "ab"}},
		{"", nil},
	}
	for _, c := range cases {
		var got []string
		pretokenize(c.in, func(p string) { got = append(got, p) })
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("pretokenize(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// TestRoundTripBytes: any byte string, valid UTF-8 or not, survives
// Decode(Encode(s)).
func TestRoundTripBytes(t *testing.T) {
	tok := loadGPT2(t)
	rng := rand.New(rand.NewSource(1))
	alphabet := []byte("ab '\n\t.1\xc3\xa9\xe2\x80\x99\xf0\x9f\x98\x80\xff\x80")
	for i := 0; i < 2000; i++ {
		b := make([]byte, rng.Intn(40))
		for j := range b {
			if rng.Intn(3) == 0 {
				b[j] = byte(rng.Intn(256))
			} else {
				b[j] = alphabet[rng.Intn(len(alphabet))]
			}
		}
		if got := tok.Decode(tok.Encode(string(b))); got != string(b) {
			t.Fatalf("round trip of %q gave %q", b, got)
		}
	}
}

func TestByteLevel(t *testing.T) {
	if got := ByteLevel([]byte(" the\n")); got != "ĠtheĊ" {
		t.Errorf("ByteLevel = %q", got)
	}
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	back, err := ByteLevelBytes(ByteLevel(all))
	if err != nil || string(back) != string(all) {
		t.Errorf("ByteLevelBytes(ByteLevel(0..255)) = %v, %v", back, err)
	}
	if _, err := ByteLevelBytes("a\u4e00"); err == nil {
		t.Error("ByteLevelBytes accepted U+4E00")
	}
}

// writeVocab writes a vocab.json + merges.txt pair: the 256 byte symbols in
// byte order, then extra tokens, then <|endoftext|>.
func writeVocab(t *testing.T, dir string, extra []string, merges string) map[string]int {
	t.Helper()
	vocab := map[string]int{}
	for b := 0; b < 256; b++ {
		vocab[string(byteToRune[b])] = b
	}
	for _, e := range extra {
		vocab[e] = len(vocab)
	}
	vocab["<|endoftext|>"] = len(vocab)
	raw, err := json.Marshal(vocab)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, VocabFile), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, MergesFile), []byte(merges), 0o644); err != nil {
		t.Fatal(err)
	}
	return vocab
}

// TestSmallVocabulary: a vocabulary of another size, as a trainer of a small
// GPT-Neo would write it, with merges whose rank order matters.
func TestSmallVocabulary(t *testing.T) {
	dir := t.TempDir()
	// No final newline: the last rule must still count.
	vocab := writeVocab(t, dir, []string{"he", "ll", "hell", "hello", "Ġw", "or", "Ġwor", "ld", "Ġworld", "lo"},
		"#version: 0.2\nh e\nl l\nhe ll\nhell o\nĠ w\no r\nĠw or\nl d\nĠwor ld\nl o")
	if !Available(dir) {
		t.Fatal("Available = false")
	}
	tok, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := tok.VocabSize(); got != 267 {
		t.Errorf("VocabSize = %d, want 267", got)
	}
	// "hello": h e l l o -> he l l o -> he ll o -> hell o -> hello.
	// The whitespace run "   " is followed by 'l', so it splits as "  " and
	// " llo"; "  " has no merge (Ġ Ġ), and in " llo" = Ġ l l o the rule
	// "l l" (rank 1) beats "l o" (rank 9): Ġ ll o.
	got := tok.Encode("hello world   llo")
	want := []int{vocab["hello"], vocab["Ġworld"], vocab["Ġ"], vocab["Ġ"], vocab["Ġ"], vocab["ll"], vocab["o"]}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Encode = %v, want %v", got, want)
	}
	if got := tok.Encode("lo"); !reflect.DeepEqual(got, []int{vocab["lo"]}) {
		t.Errorf("Encode(lo) = %v, want [%d] (last merge line, no trailing newline)", got, vocab["lo"])
	}
	if id, ok := tok.ID("<|endoftext|>"); !ok || id != 266 {
		t.Errorf("ID(<|endoftext|>) = %d, %v", id, ok)
	}
	// The same rules with CRLF line ends and no "#version" line load alike.
	dir2 := t.TempDir()
	writeVocab(t, dir2, []string{"he", "ll", "hell", "hello", "Ġw", "or", "Ġwor", "ld", "Ġworld", "lo"},
		"h e\r\nl l\r\nhe ll\r\nhell o\r\nĠ w\r\no r\r\nĠw or\r\nl d\r\nĠwor ld\r\nl o\r\n\r\n")
	tok2, err := Load(dir2)
	if err != nil {
		t.Fatal(err)
	}
	if got2 := tok2.Encode("hello world   llo"); !reflect.DeepEqual(got2, got) {
		t.Errorf("CRLF merges: Encode = %v, want %v", got2, got)
	}
	if Available(t.TempDir()) {
		t.Error("Available(empty dir) = true")
	}
}

// hfJSON builds a tokenizer.json from GPT-2's vocab and merges; arrays picks
// the [["a","b"]] merges spelling instead of ["a b"].
func hfJSON(t testing.TB, vocab map[string]int, merges [][2]string, arrays bool, mutate func(map[string]any)) []byte {
	t.Helper()
	var ms []any
	for _, m := range merges {
		if arrays {
			ms = append(ms, []string{m[0], m[1]})
		} else {
			ms = append(ms, m[0]+" "+m[1])
		}
	}
	delete(vocab, "<|endoftext|>")
	doc := map[string]any{
		"version":        "1.0",
		"added_tokens":   []any{map[string]any{"id": 50256, "content": "<|endoftext|>", "special": true}},
		"normalizer":     nil,
		"pre_tokenizer":  map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
		"post_processor": map[string]any{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true},
		"decoder":        map[string]any{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
		"model": map[string]any{"type": "BPE", "dropout": nil, "unk_token": nil, "continuing_subword_prefix": "",
			"end_of_word_suffix": "", "fuse_unk": false, "byte_fallback": false, "vocab": vocab, "merges": ms},
	}
	if mutate != nil {
		mutate(doc)
	}
	raw, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func readGPT2Files(t testing.TB) (map[string]int, [][2]string) {
	dir := gpt2Dir(t)
	raw, err := os.ReadFile(filepath.Join(dir, VocabFile))
	if err != nil {
		t.Fatal(err)
	}
	var vocab map[string]int
	if err := json.Unmarshal(raw, &vocab); err != nil {
		t.Fatal(err)
	}
	mraw, err := os.ReadFile(filepath.Join(dir, MergesFile))
	if err != nil {
		t.Fatal(err)
	}
	merges, _, err := parseMerges(mraw, MergesFile)
	if err != nil {
		t.Fatal(err)
	}
	return vocab, merges
}

func TestTokenizerJSON(t *testing.T) {
	cases := readCases(t, "testdata/gpt2_cases.jsonl.gz")[:400]
	for _, arrays := range []bool{false, true} {
		vocab, merges := readGPT2Files(t)
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, TokenizerFile), hfJSON(t, vocab, merges, arrays, nil), 0o644); err != nil {
			t.Fatal(err)
		}
		if !Available(dir) {
			t.Fatal("Available = false with tokenizer.json")
		}
		tok, err := Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		if tok.VocabSize() != 50257 {
			t.Errorf("arrays=%v: VocabSize = %d", arrays, tok.VocabSize())
		}
		if id, ok := tok.ID("<|endoftext|>"); !ok || id != 50256 {
			t.Errorf("arrays=%v: ID(<|endoftext|>) = %d, %v", arrays, id, ok)
		}
		for _, c := range cases {
			if got := tok.Encode(c.Text); !reflect.DeepEqual(got, c.IDs) && len(c.IDs) > 0 {
				t.Fatalf("arrays=%v: Encode(%q) = %v, want %v", arrays, c.Text, got, c.IDs)
			}
		}
	}
}

func TestLoadErrors(t *testing.T) {
	write := func(dir, name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Each case builds a directory and expects Load to fail with an error
	// containing every string in want.
	cases := []struct {
		name  string
		setup func(t *testing.T, dir string)
		want  []string
	}{
		{"empty dir", func(t *testing.T, dir string) {}, []string{"vocab.json", "merges.txt", "tokenizer.json"}},
		{"only vocab", func(t *testing.T, dir string) { write(dir, VocabFile, "{}") }, []string{"missing merges.txt"}},
		{"vocab not json", func(t *testing.T, dir string) {
			write(dir, VocabFile, "{not json")
			write(dir, MergesFile, "#version: 0.2\n")
		}, []string{"vocab.json"}},
		{"vocab id not int", func(t *testing.T, dir string) {
			write(dir, VocabFile, `{"a": "x"}`)
			write(dir, MergesFile, "")
		}, []string{"vocab.json", "integer"}},
		{"negative id", func(t *testing.T, dir string) {
			write(dir, VocabFile, `{"a": -1}`)
			write(dir, MergesFile, "")
		}, []string{"vocab.json", `"a"`, "-1"}},
		{"duplicate id", func(t *testing.T, dir string) {
			write(dir, VocabFile, `{"a": 0, "b": 0}`)
			write(dir, MergesFile, "")
		}, []string{"vocab.json", "id 0 is used by both"}},
		{"missing byte", func(t *testing.T, dir string) {
			write(dir, VocabFile, `{"a": 0}`)
			write(dir, MergesFile, "")
		}, []string{"vocab.json", "byte 0x"}},
		{"bad merge line", func(t *testing.T, dir string) {
			writeVocab(t, dir, nil, "#version: 0.2\nh e\nhe\n")
		}, []string{"merges.txt:3", "two symbols"}},
		{"merge symbol unknown", func(t *testing.T, dir string) {
			writeVocab(t, dir, []string{"he"}, "#version: 0.2\nh e\nhe zz\n")
		}, []string{"merges.txt:3", `"zz"`, "not in", "vocab.json"}},
		{"merge result unknown", func(t *testing.T, dir string) {
			writeVocab(t, dir, nil, "h e\n")
		}, []string{"merges.txt:1", `merged symbol "he"`}},
		{"tokenizer.json not json", func(t *testing.T, dir string) { write(dir, TokenizerFile, "[") }, []string{"tokenizer.json"}},
		{"tokenizer.json wordpiece", func(t *testing.T, dir string) {
			write(dir, TokenizerFile, `{"model": {"type": "WordPiece", "vocab": {}}}`)
		}, []string{"tokenizer.json", "model.type", "WordPiece"}},
		{"tokenizer.json prefix space", func(t *testing.T, dir string) {
			write(dir, TokenizerFile, `{"pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": true}, "model": {"type": "BPE", "vocab": {}, "merges": []}}`)
		}, []string{"tokenizer.json", "add_prefix_space"}},
		{"tokenizer.json normalizer", func(t *testing.T, dir string) {
			write(dir, TokenizerFile, `{"normalizer": {"type": "NFKC"}, "pre_tokenizer": {"type": "ByteLevel"}, "model": {"type": "BPE", "vocab": {}, "merges": []}}`)
		}, []string{"tokenizer.json", "normalizer"}},
		{"tokenizer.json metaspace", func(t *testing.T, dir string) {
			write(dir, TokenizerFile, `{"pre_tokenizer": {"type": "Metaspace"}, "model": {"type": "BPE", "vocab": {}, "merges": []}}`)
		}, []string{"tokenizer.json", "Metaspace"}},
		{"tokenizer.json bad merge", func(t *testing.T, dir string) {
			write(dir, TokenizerFile, `{"pre_tokenizer": {"type": "ByteLevel"}, "model": {"type": "BPE", "vocab": {}, "merges": ["a b", 7]}}`)
		}, []string{"tokenizer.json", "model.merges", "[1]"}},
		{"tokenizer.json added id clash", func(t *testing.T, dir string) {
			write(dir, TokenizerFile, `{"added_tokens": [{"id": 3, "content": "a"}], "pre_tokenizer": {"type": "ByteLevel"}, "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}}`)
		}, []string{"tokenizer.json", `"a"`, "id 3"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			c.setup(t, dir)
			tok, err := Load(dir)
			if err == nil {
				t.Fatalf("Load succeeded (VocabSize %d), want error", tok.VocabSize())
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// TestConcurrentEncode runs Encode from several goroutines on a shared
// Tokenizer (run with -race to check the cache's locking).
func TestConcurrentEncode(t *testing.T) {
	tok := loadGPT2(t)
	cases := readCases(t, "testdata/gpt2_cases.jsonl.gz")[:600]
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := range cases {
				c := cases[(i+g*75)%len(cases)]
				if got := tok.Encode(c.Text); !reflect.DeepEqual(got, c.IDs) && len(c.IDs) > 0 {
					errs <- c.Text
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("concurrent Encode(%q) mismatch", e)
	}
}

// englishText is about 4 KB of English from the conformance cases' paragraphs.
func englishText(b *testing.B) string {
	var sb strings.Builder
	for _, c := range readCases(b, "testdata/gpt2_cases.jsonl.gz") {
		if len(c.Text) > 300 && sb.Len() < 4096 {
			sb.WriteString(c.Text)
			sb.WriteString("\n")
		}
	}
	return sb.String()
}

// BenchmarkEncode encodes ~4 KB of English: English4KB with the cache warm
// (the steady state), English4KBNoCache running BPE on every pre-token.
func BenchmarkEncode(b *testing.B) {
	tok := loadGPT2(b)
	text := englishText(b)
	for _, bc := range []struct {
		name    string
		noCache bool
	}{{"English4KB", false}, {"English4KBNoCache", true}} {
		b.Run(bc.name, func(b *testing.B) {
			tok.noCache = bc.noCache
			defer func() { tok.noCache = false }()
			b.SetBytes(int64(len(text)))
			n := 0
			for b.Loop() {
				n = len(tok.Encode(text))
			}
			b.ReportMetric(float64(n), "tokens/op")
		})
	}
}
