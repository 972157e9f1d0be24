package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/neoscope/neoscope/internal/fixtures"
	"github.com/neoscope/neoscope/runtime/arch"
	"github.com/neoscope/neoscope/runtime/checkpoint"
)

// TestHooksTransformerLens: `neoscope hooks` lists TransformerLens's
// hook_scale points and attn.hook_result in execution order on every family.
func TestHooksTransformerLens(t *testing.T) {
	for _, name := range fixtures.All {
		t.Run(name, func(t *testing.T) {
			stdout, stderr, code := runCLI(t, "hooks", "--model", fixtures.Dir(t, name))
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			got := strings.Fields(stdout)
			order := []string{"blocks.0.hook_resid_pre", "blocks.0.ln1.hook_scale", "blocks.0.ln1.hook_normalized",
				"blocks.0.attn.hook_z", "blocks.0.attn.hook_result", "blocks.0.hook_attn_out",
				"blocks.0.ln2.hook_scale", "blocks.0.ln2.hook_normalized", "blocks.0.mlp.hook_pre",
				"blocks.3.attn.hook_result", "blocks.3.hook_resid_post", "ln_final.hook_scale", "ln_final.hook_normalized", "logits"}
			last := -1
			for _, n := range order {
				i := slices.Index(got, n)
				if i <= last {
					t.Fatalf("%s at %d, after %d in the listing:\n%s", n, i, last, stdout)
				}
				last = i
			}
		})
	}
}

// TestRunCacheTLHooks: `neoscope run --cache` writes attn.hook_result
// [B,T,NH,C] and the hook_scale points [B,T,1]: sum over heads of
// hook_result + b_O equals the hook_attn_out of the same file, and
// ln_final.hook_scale is sqrt(var + eps) of the fixture's final residual.
func TestRunCacheTLHooks(t *testing.T) {
	for _, name := range fixtures.All {
		t.Run(name, func(t *testing.T) {
			ref := fixtures.Load(t, name)
			dir := t.TempDir()
			rows := ref.Get(t, "tokens").Rows()
			data, _ := json.Marshal(rows)
			tokFile := filepath.Join(dir, "tokens.json")
			fixtures.Must(t, os.WriteFile(tokFile, data, 0o644))
			out := filepath.Join(dir, "acts.safetensors")
			_, stderr, code := runCLI(t, "run", "--model", ref.Dir, "--backend", "cpu", "--tokens", tokFile, "--out", out,
				"--cache", "blocks.*.attn.hook_result,*.hook_scale,blocks.2.hook_attn_out")
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			raw, err := os.ReadFile(out)
			fixtures.Must(t, err)
			es, err := checkpoint.ParseSafetensors(out, raw)
			fixtures.Must(t, err)
			got := map[string][]float32{}
			for _, e := range es {
				v, err := checkpoint.Convert(e)
				fixtures.Must(t, err)
				got[e.Name] = v
				if strings.HasSuffix(e.Name, "hook_scale") && fmt.Sprint(e.Shape) != fmt.Sprint([]int{len(rows), len(rows[0]), 1}) {
					t.Errorf("%s shape %v", e.Name, e.Shape)
				}
			}
			// logits + 4 layers x (result, ln1 and ln2 scale) + ln_final scale + one attn_out
			if len(got) != 1+4*3+1+1 {
				t.Errorf("%d tensors in the output, want 15", len(got))
			}
			cfg := struct{ C, NH int }{64, 4}
			B, T := len(rows), len(rows[0])
			var shape []int
			for _, e := range es {
				if e.Name == "blocks.2.attn.hook_result" {
					shape = e.Shape
				}
			}
			if fmt.Sprint(shape) != fmt.Sprint([]int{B, T, cfg.NH, cfg.C}) {
				t.Fatalf("blocks.2.attn.hook_result shape %v, want [%d %d %d %d]", shape, B, T, cfg.NH, cfg.C)
			}
			// b_O from the checkpoint, by the family's name for it.
			ac, err := arch.Load(filepath.Join(ref.Dir, "config.json"))
			fixtures.Must(t, err)
			w, err := checkpoint.Load(ref.Dir, ac)
			fixtures.Must(t, err)
			defer w.Close()
			var bO []float32
			if nm := ac.Spec.Names; nm.OBias != "" {
				bO = w.Get(ac.Spec.LayerName(2, nm.OBias)).Data
			}
			res, ao := got["blocks.2.attn.hook_result"], got["blocks.2.hook_attn_out"]
			sum := make([]float64, len(ao))
			for i := range sum {
				r, c := i/cfg.C, i%cfg.C
				for hd := 0; hd < cfg.NH; hd++ {
					sum[i] += float64(res[(r*cfg.NH+hd)*cfg.C+c])
				}
				if bO != nil {
					sum[i] += float64(bO[c])
				}
			}
			fixtures.Close(t, "sum_h hook_result + b_O = hook_attn_out", sum, fixtures.F32(ao), 1e-5)
			resid := ref.Get(t, "resid").F
			n := B * T * cfg.C
			final := resid[4*n : 5*n]
			eps := float64(float32(ac.LNEps))
			want := make([]float64, B*T)
			for r := range want {
				mean, v := 0.0, 0.0
				for _, x := range final[r*cfg.C : (r+1)*cfg.C] {
					mean += x
				}
				mean /= float64(cfg.C)
				for _, x := range final[r*cfg.C : (r+1)*cfg.C] {
					v += (x - mean) * (x - mean)
				}
				want[r] = math.Sqrt(v/float64(cfg.C) + eps)
			}
			ref.CheckAgainst(t, "ln_final.hook_scale", fixtures.F32(got["ln_final.hook_scale"]), want, "resid")
		})
	}
}
