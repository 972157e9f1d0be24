package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/neoscope/neoscope/internal/fixtures"
	"github.com/neoscope/neoscope/runtime/checkpoint"
)

// TestRunCLI: `neoscope run` writes logits and the cached hooks that match
// the fixture's reference, under TransformerLens names and shapes.
func TestRunCLI(t *testing.T) {
	for _, name := range fixtures.Names {
		t.Run(name, func(t *testing.T) {
			ref := fixtures.Load(t, name)
			dir := t.TempDir()
			tokFile := filepath.Join(dir, "tokens.json")
			rows := ref.Get(t, "tokens").Rows()
			data, _ := json.Marshal(rows)
			fixtures.Must(t, os.WriteFile(tokFile, data, 0o644))
			out := filepath.Join(dir, "acts.safetensors")
			_, stderr, code := runCLI(t, "run", "--model", ref.Dir, "--backend", "cpu", "--tokens", tokFile, "--out", out,
				"--cache", "blocks.*.hook_resid_pre,blocks.*.attn.hook_pattern")
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			raw, err := os.ReadFile(out)
			fixtures.Must(t, err)
			es, err := checkpoint.ParseSafetensors(out, raw)
			fixtures.Must(t, err)
			got := map[string]checkpoint.Entry{}
			for _, e := range es {
				got[e.Name] = e
			}
			B, T := len(rows), len(rows[0])
			check := func(name string, shape []int, want []float64, key string) {
				e, ok := got[name]
				if !ok {
					t.Fatalf("output lacks %q", name)
				}
				if fmt.Sprint(e.Shape) != fmt.Sprint(shape) {
					t.Fatalf("%s has shape %v, want %v", name, e.Shape, shape)
				}
				v, err := checkpoint.Convert(e)
				fixtures.Must(t, err)
				ref.CheckAgainst(t, name, fixtures.F32(v), want, key)
			}
			check("logits", []int{B, T, 512}, ref.Get(t, "logits").F, "logits")
			resid := ref.Get(t, "resid").F
			n := B * T * 64
			check("blocks.2.hook_resid_pre", []int{B, T, 64}, resid[2*n:3*n], "resid")
			pat := ref.Get(t, "attn_pattern").F
			np := B * 4 * T * T
			check("blocks.1.attn.hook_pattern", []int{B, 4, T, T}, pat[np:2*np], "attn_pattern")
			if len(got) != 1+4+4 {
				t.Errorf("output has %d tensors, want logits + 4 resid_pre + 4 patterns", len(got))
			}
		})
	}
}

// TestRunErrors: bad input exits 2 with a message naming the problem, and
// leaves no output file behind.
func TestRunErrors(t *testing.T) {
	ref := fixtures.Dir(t, "tiny-neo")
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		fixtures.Must(t, os.WriteFile(p, []byte(s), 0o644))
		return p
	}
	long := make([]int, 65)
	longJSON, _ := json.Marshal([][]int{long})
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--tokens", write("ragged.json", "[[1,2,3],[4,5]]")}, "row 1 has 2 tokens"},
		{[]string{"--tokens", write("range.json", "[[1,2,512]]")}, "id 512 is outside the vocabulary"},
		{[]string{"--tokens", write("neg.json", "[[1,-2]]")}, "out of range"},
		{[]string{"--tokens", write("long.json", string(longJSON))}, "exceed the model's context of 64"},
		{[]string{"--tokens", write("bad.json", "{")}, "want a JSON array of arrays"},
		{[]string{"--tokens", write("ok.json", "[[1,2]]"), "--cache", "blocks.*.hook_nothing"}, "matches no hook point"},
	}
	for _, c := range cases {
		out := filepath.Join(dir, "out.safetensors")
		args := append([]string{"run", "--model", ref, "--backend", "cpu", "--out", out}, c.args...)
		_, stderr, code := runCLI(t, args...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 mentioning %q", c.args, code, stderr, c.want)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("%v: left an output file", c.args)
		}
	}
	// A config that does not add up names the field.
	bad := t.TempDir()
	cfg, _ := os.ReadFile(filepath.Join(ref, "config.json"))
	os.WriteFile(filepath.Join(bad, "config.json"), []byte(strings.Replace(string(cfg), `"num_layers": 4`, `"num_layers": 5`, 1)), 0o644)
	_, stderr, code := runCLI(t, "info", "--model", bad)
	if code == 0 || !strings.Contains(stderr, "attention_types") {
		t.Errorf("inconsistent config: exit %d, %q", code, stderr)
	}
}

// TestBackendSelection: without a usable GPU, --backend cuda fails with the
// driver's reason and --backend auto runs on the CPU and says so.
func TestBackendSelection(t *testing.T) {
	ref := fixtures.Dir(t, "tiny-neo")
	tok := filepath.Join(t.TempDir(), "t.json")
	fixtures.Must(t, os.WriteFile(tok, []byte("[[1,2,3]]"), 0o644))
	out := filepath.Join(t.TempDir(), "o.safetensors")
	_, stderr, code := runCLI(t, "run", "--backend", "cuda", "--model", ref, "--tokens", tok, "--out", out)
	if code == 0 {
		t.Skip("a usable GPU is present: the no-GPU behaviour cannot be checked here")
	}
	if code != 1 || !strings.Contains(stderr, "--backend cuda: cuda:") {
		t.Errorf("--backend cuda without a GPU: exit %d, stderr %q; want exit 1 with the driver's reason", code, stderr)
	}
	// runCLI sets NEOSCOPE_QUIET; run auto without it to see the notice.
	cmd := exec.Command(neoscopeBin, "run", "--model", ref, "--tokens", tok, "--out", out)
	msg, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("--backend auto: %v: %s", err, msg)
	}
	if !strings.Contains(string(msg), "running on the CPU") {
		t.Errorf("--backend auto did not say it fell back to the CPU: %q", msg)
	}
}
