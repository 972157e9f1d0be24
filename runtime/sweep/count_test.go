package sweep

import (
	"math/big"
	"strings"
	"testing"
)

// TestCount (issue 18 item 7): spaces are counted without expansion (2^24
// subsets, C(1200, 4) on GPT-2 XL's heads) and Count agrees with Parse
// where nothing is listed twice; empty spaces and negative indices are
// errors that say why.
func TestCount(t *testing.T) {
	small := Dims{Layers: 4, Heads: 4}
	for _, s := range []string{"singles(heads)", "pairs(heads)", "k(3, 0.*, 1.*)", "subsets(0.0,0.1,2.3)", "given(1.1; singles(0.*))", "2.1+3.0 | none", "singles(attn, mlp)"} {
		n, err := Count(s, small)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		cfgs, err := Parse(s, small)
		if err != nil {
			t.Fatal(err)
		}
		if n.Int64() != int64(len(cfgs)) {
			t.Errorf("%s: Count %v, Parse %d", s, n, len(cfgs))
		}
	}
	n, err := Count("subsets(heads)", Dims{Layers: 4, Heads: 6})
	if err != nil || n.Cmp(big.NewInt(1<<24)) != 0 {
		t.Errorf("subsets of 24 heads: %v, %v; want 2^24", n, err)
	}
	n, err = Count("k(4, heads) | subsets(heads)", Dims{Layers: 48, Heads: 25})
	want := new(big.Int).Binomial(1200, 4)
	want.Add(want, new(big.Int).Lsh(big.NewInt(1), 1200))
	if err != nil || n.Cmp(want) != 0 {
		t.Errorf("k(4) and subsets of 1200 heads: %v, %v", n, err)
	}
	for s, msg := range map[string]string{
		"pairs(2.1)":     "no configurations",
		"k(3, 2.1, 2.2)": "no configurations",
		"singles(2.-1)":  "no negative indices",
		"singles(-1.0)":  "no negative indices",
	} {
		if _, err := Count(s, small); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("Count(%s): %v, want %q", s, err, msg)
		}
		if _, err := Parse(s, small); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("Parse(%s): %v, want %q", s, err, msg)
		}
	}
}
