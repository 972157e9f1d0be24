package sweep

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var dims = Dims{Layers: 12, Heads: 12}

func TestParseSpaces(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "cfgs.txt")
	if err := os.WriteFile(f, []byte("6.1+6.0\n\nmlp.3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		src  string
		want string // configurations joined by " ", "_" for the empty one
		n    int    // or just the count when want is ""
	}{
		// Bit k of index m set = k-th listed component; names canonical.
		{"subsets(6.11,6.1)", "_ 6.11 6.1 6.1+6.11", 0},
		{"singles(6.*)", "6.0 6.1 6.2 6.3 6.4 6.5 6.6 6.7 6.8 6.9 6.10 6.11", 0},
		{"singles(heads)", "", 144},
		{"pairs(heads)", "", 10296},
		{"k(3, heads)", "", 143 * 144 * 142 / 6},
		{"k(2, 6.*)", "", 66},
		{"pairs(0.0, 0.1, 1.0)", "0.0+0.1 0.0+1.0 0.1+1.0", 0},
		{"singles(attn)", "attn.0 attn.1 attn.2 attn.3 attn.4 attn.5 attn.6 attn.7 attn.8 attn.9 attn.10 attn.11", 0},
		{"singles(mlp.0, mlp.11)", "mlp.0 mlp.11", 0},
		{"singles(*.3)", "", 12},
		{"given(6.1; singles(6.0, 6.1, attn.2))", "6.0+6.1 6.1 attn.2+6.1", 0},
		{"given(6.1+7.2; none)", "6.1+7.2", 0},
		// Unions with '|' or ',' at top level; duplicates dropped, first kept.
		{"singles(6.0,6.1) | 6.1, none, 6.0+mlp.6, mlp.6+6.0", "6.0 6.1 _ 6.0+mlp.6", 0},
		{"file(" + f + ") | singles(mlp.3)", "6.0+6.1 _ mlp.3", 0},
	} {
		got, err := Parse(c.src, dims)
		if err != nil {
			t.Errorf("%s: %v", c.src, err)
			continue
		}
		if c.want == "" {
			if len(got) != c.n {
				t.Errorf("%s: %d configurations, want %d", c.src, len(got), c.n)
			}
			continue
		}
		g := make([]string, len(got))
		for i, c := range got {
			g[i] = c.String()
			if g[i] == "" {
				g[i] = "_"
			}
		}
		if s := strings.Join(g, " "); s != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.src, s, c.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, c := range []struct{ src, want string }{
		{"singles(heads", "column 14: expected ')' to close singles(, got the end of the space"},
		{"singles(12.0)", `column 9: "12.0": layer 12 out of range (the model has layers 0..11)`},
		{"singles(6.12)", `column 9: "6.12": head 12 out of range`},
		{"twos(heads)", `column 1: unknown space function "twos"`},
		{"k(x, heads)", "column 3: expected a number"},
		{"k(2 heads)", "column 5: expected ',' after the set size"},
		{"singles(heads) & pairs(heads)", "column 16: expected '|', ',' or the end of the space, got '&'"},
		{"given(6.1, singles(heads))", `column 12: "singles" is not a component`},
		{"given(6.1 singles(heads))", "column 11: expected ';'"},
		{"", "column 1: expected a space"},
		{"subsets(heads)", "at most 26 components"},
		{"k(5, heads) | k(5, heads)", "more than 50000000 configurations"},
		{"file(/nonexistent/x)", "column 6: open /nonexistent/x"},
		{"foo.bar", `"foo.bar": "foo" is not a layer number`},
	} {
		_, err := Parse(c.src, dims)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want it to contain %q", c.src, err, c.want)
		}
	}
	dir := t.TempDir()
	f := filepath.Join(dir, "bad.txt")
	os.WriteFile(f, []byte("6.1\n6.1+x.2\n"), 0o644)
	if _, err := Parse("file("+f+")", dims); err == nil || !strings.Contains(err.Error(), f+":2:") {
		t.Errorf("bad config file: error %v, want it to name %s:2", err, f)
	}
}

func TestShards(t *testing.T) {
	for _, c := range []struct {
		s    string
		i, n int
		ok   bool
	}{{"0/4", 0, 4, true}, {"3/4", 3, 4, true}, {"4/4", 0, 0, false}, {"-1/4", 0, 0, false}, {"1", 0, 0, false}, {"0/0", 0, 0, false}} {
		i, n, err := ParseShard(c.s)
		if (err == nil) != c.ok || i != c.i || n != c.n {
			t.Errorf("ParseShard(%q) = %d, %d, %v", c.s, i, n, err)
		}
	}
	env := func(kv ...string) func(string) string {
		m := map[string]string{}
		for k := 0; k < len(kv); k += 2 {
			m[kv[k]] = kv[k+1]
		}
		return func(k string) string { return m[k] }
	}
	for _, c := range []struct {
		env     func(string) string
		i, n    int
		ok, bad bool
	}{
		{env(), 0, 0, false, false},
		{env("SLURM_ARRAY_TASK_ID", "2", "SLURM_ARRAY_TASK_COUNT", "4"), 2, 4, true, false},
		{env("SLURM_ARRAY_TASK_ID", "12", "SLURM_ARRAY_TASK_MIN", "10", "SLURM_ARRAY_TASK_MAX", "13"), 2, 4, true, false},
		{env("SLURM_ARRAY_TASK_ID", "4", "SLURM_ARRAY_TASK_MIN", "0", "SLURM_ARRAY_TASK_MAX", "6", "SLURM_ARRAY_TASK_COUNT", "4"), 0, 0, false, true}, // --array=0-6:2
		{env("SLURM_ARRAY_TASK_ID", "1"), 0, 0, false, true},
	} {
		i, n, ok, err := ShardFromEnv(c.env)
		if i != c.i || n != c.n || ok != c.ok || (err != nil) != c.bad {
			t.Errorf("ShardFromEnv: %d/%d ok=%v err=%v, want %d/%d ok=%v bad=%v", i, n, ok, err, c.i, c.n, c.ok, c.bad)
		}
	}
	var all []int
	for i := 0; i < 3; i++ {
		all = append(all, ShardIndices(10, i, 3)...)
	}
	if len(all) != 10 {
		t.Errorf("3 shards of 10 hold %d configurations", len(all))
	}
}

func TestInteractions(t *testing.T) {
	comps, ok := SubsetsOf("subsets(6.0, 6.1, mlp.2)", dims)
	if !ok || len(comps) != 3 {
		t.Fatalf("SubsetsOf: %v %v", comps, ok)
	}
	if _, ok := SubsetsOf("subsets(6.0) | singles(6.1)", dims); ok {
		t.Error("a union is not a subsets space")
	}
	// v(S) = sum of per-component effects, plus 1 when both 6.0 and 6.1 are
	// ablated (6.1 matters only once 6.0 is gone: a backup head).
	eff := []float64{0.5, 0, 2}
	v := make([]float64, 8)
	for m := range v {
		for j := 0; j < 3; j++ {
			if m>>j&1 == 1 {
				v[m] += eff[j]
			}
		}
		if m&3 == 3 {
			v[m]++
		}
	}
	it, err := Interactions(comps, v)
	if err != nil {
		t.Fatal(err)
	}
	if it.Sets[0] != "none" || it.Sets[5] != "6.0+mlp.2" {
		t.Errorf("sets %v", it.Sets)
	}
	if it.Effect[0][1] != 0 || it.Effect[1][1] != 1 || it.Effect[5][1] != 1 || it.Effect[0][2] != 2 {
		t.Errorf("effects %v", it.Effect)
	}
	if !math.IsNaN(it.Effect[1][0]) {
		t.Errorf("effect of 6.0 given 6.0: %v, want NaN", it.Effect[1][0])
	}
	_, rows := it.Summary()
	if want := []float64{0, 1, 0, 0.5, 1}; !slices.Equal(rows[1], want) {
		t.Errorf("summary of 6.1: %v, want %v", rows[1], want)
	}
}
