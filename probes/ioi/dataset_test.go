package ioi_test

import (
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/neoscope/neoscope/internal/fixtures"
	"github.com/neoscope/neoscope/probes/ioi"
	"github.com/neoscope/neoscope/runtime/tokenizer"
)

// gpt2Tokenizer assembles GPT-2's tokenizer from runtime/tokenizer's
// gzipped testdata in a temp dir.
func gpt2Tokenizer(t *testing.T) *tokenizer.Tokenizer {
	t.Helper()
	src := filepath.Join("..", "..", "runtime", "tokenizer", "testdata", "gpt2")
	dir := t.TempDir()
	for _, n := range []string{"vocab.json", "merges.txt"} {
		f, err := os.Open(filepath.Join(src, n+".gz"))
		if err != nil {
			t.Skipf("GPT-2 tokenizer testdata: %v", err)
		}
		zr, err := gzip.NewReader(f)
		fixtures.Must(t, err)
		data, err := io.ReadAll(zr)
		f.Close()
		fixtures.Must(t, err)
		fixtures.Must(t, os.WriteFile(filepath.Join(dir, n), data, 0o644))
	}
	tok, err := tokenizer.Load(dir)
	fixtures.Must(t, err)
	return tok
}

func TestABBA(t *testing.T) {
	got := ioi.ABBA("When {S} and {IO} went to the {PLACE}, {S} gave a {OBJECT} to")
	want := "When {IO} and {S} went to the {PLACE}, {S} gave a {OBJECT} to"
	if got != want {
		t.Errorf("ABBA = %q, want %q", got, want)
	}
	if len(ioi.Templates) != 15 {
		t.Errorf("%d templates, want Wang et al.'s 15", len(ioi.Templates))
	}
}

// TestDatasetGPT2: prompts from GPT-2's tokenizer are well formed: the
// clean text names S twice and IO once and ends in " to", the answers are
// the one-token " IO" and " S", the corrupt prompt replaces exactly the
// three name tokens by three other names, BOS (50256) leads, and batches
// hold equal-length rows covering every prompt.
func TestDatasetGPT2(t *testing.T) {
	tok := gpt2Tokenizer(t)
	names, _ := ioi.OneTokenNames(tok, ioi.Names)
	// Measured: all 100 names are one GPT-2 token with a leading space
	// (the paper chose them that way).
	if len(names) != len(ioi.Names) {
		t.Errorf("only %d one-token names in GPT-2: %v", len(names), names)
	}
	t.Logf("%d of %d names are one GPT-2 token", len(names), len(ioi.Names))
	const n = 60
	ds, err := ioi.BuildDataset(tok, n, 7, 50256)
	fixtures.Must(t, err)
	if len(ds.Prompts) != n {
		t.Fatalf("%d prompts, want %d", len(ds.Prompts), n)
	}
	abba := 0
	for i, p := range ds.Prompts {
		if p.ABBA {
			abba++
		}
		if strings.Count(p.Text, " "+p.SName+" ")+strings.Count(p.Text, " "+p.SName+",")+strings.Count(p.Text, " "+p.SName+".") < 2 ||
			!strings.Contains(p.Text, " "+p.IOName+" ") || !strings.HasSuffix(p.Text, " to") {
			t.Errorf("prompt %d %q: want S=%s twice, IO=%s once, ending in ' to'", i, p.Text, p.SName, p.IOName)
		}
		if tok.Decode([]int{int(p.IO)}) != " "+p.IOName || tok.Decode([]int{int(p.S)}) != " "+p.SName {
			t.Errorf("prompt %d: answer ids %d %d decode to %q %q", i, p.IO, p.S, tok.Decode([]int{int(p.IO)}), tok.Decode([]int{int(p.S)}))
		}
		if p.Clean[0] != 50256 || p.Corrupt[0] != 50256 {
			t.Errorf("prompt %d: no BOS", i)
		}
		ids := make([]int, len(p.Clean)-1)
		for j, id := range p.Clean[1:] {
			ids[j] = int(id)
		}
		if tok.Decode(ids) != p.Text {
			t.Errorf("prompt %d: tokens decode to %q, text %q", i, tok.Decode(ids), p.Text)
		}
		diff := 0
		for j := range p.Clean {
			if p.Clean[j] != p.Corrupt[j] {
				diff++
				if p.Corrupt[j] == p.IO || p.Corrupt[j] == p.S {
					t.Errorf("prompt %d: corrupt %q reuses IO or S", i, p.CorruptText)
				}
			}
		}
		if diff != 3 {
			t.Errorf("prompt %d: clean %q and corrupt %q differ in %d tokens, want the 3 names", i, p.Text, p.CorruptText, diff)
		}
	}
	if abba == 0 || abba == n {
		t.Errorf("%d of %d prompts are ABBA: want a mix", abba, n)
	}
	rows := 0
	for _, b := range ds.Batches() {
		if len(b.Clean) != b.B*b.T || len(b.IO) != b.B || b.Pos != b.T-1 {
			t.Errorf("batch shape B=%d T=%d: %d ids, %d IO", b.B, b.T, len(b.Clean), len(b.IO))
		}
		rows += b.B
	}
	if rows != n {
		t.Errorf("batches hold %d rows, want %d", rows, n)
	}
	again, _ := ioi.BuildDataset(tok, n, 7, 50256)
	if again.Prompts[5].Text != ds.Prompts[5].Text {
		t.Error("same seed, different prompts")
	}
	t.Logf("e.g. %q -> %q; corrupt %q", ds.Prompts[0].Text, " "+ds.Prompts[0].IOName, ds.Prompts[0].CorruptText)
}

type fakeEnc struct{}

// Encode gives one id per byte: no name is one token.
func (fakeEnc) Encode(s string) []int {
	out := make([]int, len(s))
	for i := range s {
		out[i] = int(s[i])
	}
	return out
}

func TestTooFewNames(t *testing.T) {
	_, err := ioi.BuildDataset(fakeEnc{}, 10, 1, -1)
	if err == nil || !strings.Contains(err.Error(), "one token") {
		t.Errorf("byte tokenizer: err = %v, want a clear 'only N names are one token' error", err)
	}
}
