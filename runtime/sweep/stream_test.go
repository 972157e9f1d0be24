package sweep

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestStreamUnions checks the lazy union's repeat removal against the
// definition: the terms expanded one by one (each a one-term space), joined
// in order, every configuration kept at its first occurrence (a table of
// everything seen, which the stream does without). Terms overlap on
// purpose: singles inside pairs' sets, subsets containing literals, given
// with a fixed component inside its inner space (expanded) and outside it
// (lazy), nested givens, files with repeated lines.
func TestStreamUnions(t *testing.T) {
	d := Dims{Layers: 3, Heads: 3}
	f := filepath.Join(t.TempDir(), "cfgs.txt")
	if err := os.WriteFile(f, []byte("0.1+1.1\n\n0.1\n1.1+0.1\nmlp.2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	pool := []string{
		"singles(0.*)", "pairs(0.0, 0.1, 1.1, mlp.2)", "k(3, 0.1, 1.*, attn.0)", "subsets(0.1, 1.1, mlp.2)",
		"none", "0.1", "1.1+0.1", "mlp.2 | 0.0", "given(0.1; singles(0.*, 1.1))", "given(2.2; pairs(0.*))",
		"given(1.1; subsets(1.1, 0.0))", "given(0.0+mlp.2; given(1.1; singles(2.*)) | none)", "file(" + f + ")",
		"singles(heads)", "singles(attn, mlp)",
	}
	rng := rand.New(rand.NewPCG(18, 7))
	for trial := 0; trial < 300; trial++ {
		n := 1 + rng.IntN(5)
		var terms []string
		for range n {
			terms = append(terms, pool[rng.IntN(len(pool))])
		}
		src := strings.Join(terms, " | ")
		var want []string
		seen := map[string]bool{}
		for _, term := range terms {
			s, err := Open(term, d)
			if err != nil {
				t.Fatalf("%s: %v", term, err)
			}
			for _, c := range s.All() {
				if k := c.String(); !seen[k] {
					seen[k] = true
					want = append(want, k)
				}
			}
		}
		s, err := Open(src, d)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		var got []string
		for i, c := range s.All() {
			if i != len(got) {
				t.Fatalf("%s: index %d at position %d", src, i, len(got))
			}
			got = append(got, c.String())
		}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Fatalf("%s:\n got %q\nwant %q", src, got, want)
		}
		if s.Len() != len(want) {
			t.Fatalf("%s: Len %d, %d configurations", src, s.Len(), len(want))
		}
		cfgs, err := Parse(src, d)
		if err != nil || len(cfgs) != len(want) {
			t.Fatalf("%s: Parse gives %d configurations (%v), want %d", src, len(cfgs), err, len(want))
		}
	}
}

// TestStreamMemory (issue 18 item 7): a space of 2.8 million configurations
// is read as a stream in bounded memory. Expanded, its configurations
// alone take about 0.9 GB (3 components of 96 bytes each, plus the slice);
// the stream holds a handful at a time, whatever the space's size.
func TestStreamMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("walks 2.8 million configurations")
	}
	d := Dims{Layers: 16, Heads: 16} // 256 heads
	src := "pairs(heads) | k(3, heads)"
	s, err := Open(src, d)
	if err != nil {
		t.Fatal(err)
	}
	const want = 256*255/2 + 256*255*254/6
	if n, err := Count(src, d); err != nil || n.Int64() != want {
		t.Fatalf("Count %v, %v; want %d", n, err, want)
	}
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	before := ms.HeapAlloc
	var peak uint64
	n := 0
	for i, c := range s.All() {
		if i != n || len(c) < 2 {
			t.Fatalf("configuration %d at position %d: %v", i, n, c)
		}
		n++
		if n%500_000 == 0 {
			runtime.GC()
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc)
		}
	}
	if n != want || s.Len() != want {
		t.Fatalf("%d configurations streamed, Len %d, want %d", n, s.Len(), want)
	}
	if grew := int64(peak) - int64(before); grew > 8<<20 {
		t.Errorf("the live heap grew by %d MB while streaming %d configurations; want it bounded (< 8 MB)", grew>>20, n)
	}
}

// TestPatchItemStream: on a stream PatchItem reads the terms' components,
// with the same answer as a walk of the configurations.
func TestPatchItemStream(t *testing.T) {
	d := Dims{Layers: 4, Heads: 4, T: 6}
	for src, want := range map[string]bool{
		"singles(heads) | pairs(attn, mlp)": false,
		"singles(heads) | 1.1@3":            true,
		"given(0.0; singles(resid.*@2))":    true,
		"k(0, 1.1@2) | singles(0.*)":        false,
		"edges(mlp.1)":                      true,
	} {
		s, err := Open(src, d)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		cfgs, _ := Parse(src, d)
		_, got := PatchItem(s)
		_, walked := PatchItem(Configs(cfgs))
		if got != want || walked != want {
			t.Errorf("%s: PatchItem %v on the stream, %v on the configurations; want %v", src, got, walked, want)
		}
	}
}
