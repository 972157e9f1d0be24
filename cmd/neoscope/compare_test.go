package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/neoscope/neoscope/internal/fixtures"
)

// TestCompareEqualsOwnJSON: for every probe, `compare --json` holds under
// each --models entry exactly (after JSON decoding) what that probe's own
// --json prints for that model with the same inputs, and --plot writes one
// chart.
func TestCompareEqualsOwnJSON(t *testing.T) {
	a, b := fixtures.Dir(t, "tiny-neo"), fixtures.Dir(t, "tiny-gpt2")
	tmp := t.TempDir()
	tok := writeRefTokens(t, fixtures.Load(t, "tiny-neo"), "tokens", tmp)
	cases := []struct {
		probe string
		own   []string // the probe's command and flags, without --model/--json
		extra []string // compare's flags for the same inputs
	}{
		{"embed", []string{"embed"}, nil},
		{"embed", []string{"embed", "--seed", "3"}, []string{"--seed", "3"}},
		{"lens", []string{"lens", "--tokens", tok}, []string{"--tokens", tok}},
		{"ablate", []string{"ablate", "--tokens", tok, "--each", "head,mlp", "--mode", "mean"}, []string{"--tokens", tok, "--each", "head,mlp", "--mode", "mean"}},
		{"induction", []string{"induction", "--period", "6", "--batch", "4"}, []string{"--period", "6", "--batch", "4"}},
	}
	for i, c := range cases {
		plotPath := filepath.Join(tmp, fmt.Sprintf("%s-%d.png", c.probe, i))
		args := append([]string{"compare", "--models", a + "," + b, "--probe", c.probe, "--json", "--plot", plotPath}, c.extra...)
		out, errs, code := runCLI(t, args...)
		if code != 0 {
			t.Fatalf("case %d: neoscope %v: exit %d: %s", i, args, code, errs)
		}
		var got map[string]any
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("case %d: compare --json is not JSON: %v", i, err)
		}
		if len(got) != 2 {
			t.Fatalf("case %d: compare --json has keys %v, want exactly the two --models entries", i, reflect.ValueOf(got).MapKeys())
		}
		for _, m := range []string{a, b} {
			own, errs, code := runCLI(t, append(c.own, "--model", m, "--json")...)
			if code != 0 {
				t.Fatalf("case %d: neoscope %v --model %s: exit %d: %s", i, c.own, m, code, errs)
			}
			var want any
			if err := json.Unmarshal([]byte(own), &want); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got[m], want) {
				g, _ := json.Marshal(got[m])
				t.Fatalf("case %d (%s): compare's entry for %s differs from its own --json:\ncompare: %.400s\nown:     %.400s", i, c.probe, m, g, own)
			}
		}
		if st, err := os.Stat(plotPath); err != nil || st.Size() == 0 {
			t.Fatalf("case %d: --plot %s not written: %v", i, plotPath, err)
		}
		if !strings.Contains(errs, "the same") {
			t.Errorf("case %d: stderr does not say the inputs were the same token ids: %q", i, errs)
		}
	}
	// The table: a column per model.
	out, errs, code := runCLI(t, "compare", "--models", a+","+b, "--probe", "lens", "--tokens", tok)
	if code != 0 {
		t.Fatalf("compare --probe lens: exit %d: %s", code, errs)
	}
	if !strings.Contains(out, "tiny-neo loss") || !strings.Contains(out, "tiny-gpt2 KL") || !strings.Contains(out, "same 3 x 24 token ids") {
		t.Fatalf("compare table lacks a column per model or the inputs line:\n%s", out)
	}
}

func TestCompareUsage(t *testing.T) {
	a, b := fixtures.Dir(t, "tiny-neo"), fixtures.Dir(t, "tiny-gpt2")
	for _, args := range [][]string{
		{"compare", "--models", a, "--probe", "embed"},
		{"compare", "--models", a + "," + a, "--probe", "embed"},
		{"compare", "--models", a + ",," + b, "--probe", "embed"},
		{"compare", "--models", a + "," + b, "--probe", "ioi"},
		{"compare", "--models", a + "," + b, "--probe", "lens"},
		{"compare", "--models", a + "," + b, "--probe", "induction", "--prompt", "x"},
		{"compare", "--models", a + "," + b, "--probe", "embed", "--plot", "x.pdf"},
		{"compare", "--models", a + "," + filepath.Join(t.TempDir(), "none"), "--probe", "embed"},
	} {
		_, errs, code := runCLI(t, args...)
		if code != 2 {
			t.Errorf("neoscope %v: exit %d, want 2 (bad input): %s", args, code, errs)
		}
	}
}

// TestInputsNote: the output says so when the models ran on different ids.
func TestInputsNote(t *testing.T) {
	r := []*compareRun{{Label: "a", Tokens: []int32{1, 2}, B: 1, T: 2}, {Label: "b", Tokens: []int32{1, 2}, B: 1, T: 2}}
	if n := inputsNote(r, &inputFlags{}); !strings.Contains(n, "same 1 x 2") {
		t.Fatalf("same ids: %q", n)
	}
	r[1].Tokens, r[1].T = []int32{1, 5, 7}, 3
	n := inputsNote(r, &inputFlags{Prompt: []string{"hi"}})
	if !strings.Contains(n, "tokenised per model") || !strings.Contains(n, "differ") || !strings.Contains(n, "b 1x3") {
		t.Fatalf("different ids: %q", n)
	}
}

// TestReportCompareSeveral: report --compare takes a comma-separated list;
// every model gets its column and charts, the line charts hold them all.
func TestReportCompareSeveral(t *testing.T) {
	a, b := fixtures.Dir(t, "tiny-neo"), fixtures.Dir(t, "tiny-gpt2")
	// A third model: tiny-neo's files under another name.
	c := filepath.Join(t.TempDir(), "neo-copy")
	fixtures.Must(t, os.MkdirAll(c, 0o755))
	for _, f := range []string{"config.json", "model.safetensors"} {
		fixtures.Must(t, os.Symlink(filepath.Join(a, f), filepath.Join(c, f)))
	}
	out := filepath.Join(t.TempDir(), "rep")
	if _, errs, code := runCLI(t, "report", "--backend", "cpu", "--model", a, "--compare", b+","+c, "--out", out, "--ioi-prompts", "0"); code != 0 {
		t.Fatalf("report --compare A,B: exit %d: %s", code, errs)
	}
	page, err := os.ReadFile(filepath.Join(out, "index.html"))
	fixtures.Must(t, err)
	for _, want := range []string{"tiny-neo", "tiny-gpt2", "neo-copy"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("report page does not name %s", want)
		}
	}
	if _, err := os.Stat(filepath.Join(out, "m3-induction.png")); err != nil {
		t.Errorf("no charts for the third model: %v", err)
	}
	if _, errs, code := runCLI(t, "report", "--model", a, "--compare", b+",", "--out", filepath.Join(t.TempDir(), "r2")); code != 2 {
		t.Errorf("report --compare with an empty entry: exit %d, want 2 (%s)", code, errs)
	}
}

// TestCompareDisplayNames (issue 18, charts): a model in the Hugging Face
// cache layout is named by its hub id in compare's columns and charts, not
// by its snapshot directory (a revision hash).
func TestCompareDisplayNames(t *testing.T) {
	ref := fixtures.Load(t, "tiny-neo")
	tmp := t.TempDir()
	snap := filepath.Join(tmp, "hub", "models--acme--tiny-neo-hub", "snapshots", "0123456789abcdef0123456789abcdef01234567")
	fixtures.Must(t, os.MkdirAll(snap, 0o755))
	for _, f := range []string{"config.json", "model.safetensors"} {
		fixtures.Must(t, os.Symlink(filepath.Join(ref.Dir, f), filepath.Join(snap, f)))
	}
	tok := writeRefTokens(t, ref, "tokens", tmp)
	out, errs, code := runCLI(t, "compare", "--models", snap+","+fixtures.Dir(t, "tiny-gpt2"), "--probe", "lens", "--tokens", tok)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if !strings.Contains(out, "acme/tiny-neo-hub loss") || strings.Contains(out, "0123456789abcdef") {
		t.Errorf("the snapshot's column is not named by its hub id:\n%s", out)
	}
}
