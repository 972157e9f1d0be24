package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/neoscope/neoscope/internal/fixtures"
	"github.com/neoscope/neoscope/runtime/checkpoint"
)

// The CLI tests of attribute, grad and run --grad hold the commands to the
// fixtures' circuits.json / grads.safetensors at 10x their float32 floors
// (the library-level tests in probes/attrib cover every tensor in detail).

type gradFixture struct {
	dir   string
	circ  map[string]json.RawMessage
	cases struct {
		Clean   [][]int32 `json:"ioi_clean"`
		Corrupt [][]int32 `json:"ioi_corrupt"`
		IO      []int     `json:"ioi_io"`
		S       []int     `json:"ioi_s"`
		Tokens  [][]int32 `json:"tokens"`
	}
}

func loadGradFixture(t *testing.T, name string) *gradFixture {
	t.Helper()
	root := fixtures.Root()
	if root == "" {
		t.Fatal("ground truth missing: ../shared/fixtures not found")
	}
	g := &gradFixture{dir: filepath.Join(root, name)}
	for f, v := range map[string]any{"circuits.json": &g.circ, "cases.json": &g.cases} {
		b, err := os.ReadFile(filepath.Join(g.dir, f))
		fixtures.Must(t, err)
		fixtures.Must(t, json.Unmarshal(b, v))
	}
	return g
}

func (g *gradFixture) get(t *testing.T, key string, v any) {
	t.Helper()
	raw, ok := g.circ[key]
	if !ok {
		t.Fatalf("circuits.json has no %s", key)
	}
	fixtures.Must(t, json.Unmarshal(raw, v))
}

func (g *gradFixture) floor(t *testing.T, table, key string) float64 {
	t.Helper()
	var m map[string]float64
	g.get(t, table, &m)
	f, ok := m[key]
	if !ok {
		t.Fatalf("circuits.json %s has no %s", table, key)
	}
	return 10 * f
}

func writeJSON(t *testing.T, path string, v any) string {
	data, err := json.Marshal(v)
	fixtures.Must(t, err)
	fixtures.Must(t, os.WriteFile(path, data, 0o644))
	return path
}

func readTensors(t *testing.T, path string) (map[string][]float64, map[string][]int) {
	t.Helper()
	raw, err := os.ReadFile(path)
	fixtures.Must(t, err)
	es, err := checkpoint.ParseSafetensors(path, raw)
	fixtures.Must(t, err)
	vals, shapes := map[string][]float64{}, map[string][]int{}
	for _, e := range es {
		v, err := checkpoint.Convert(e)
		fixtures.Must(t, err)
		vals[e.Name], shapes[e.Name] = fixtures.F32(v), e.Shape
	}
	return vals, shapes
}

func joinInts(x []int) string {
	s := ""
	for i, v := range x {
		if i > 0 {
			s += ","
		}
		s += strconv.Itoa(v)
	}
	return s
}

func TestAttributeCLI(t *testing.T) {
	for _, name := range fixtures.All { // GPT-Neo, GPT-2 and GPT-NeoX
		t.Run(name, func(t *testing.T) {
			g := loadGradFixture(t, name)
			dir := t.TempDir()
			base := []string{"attribute", "--model", g.dir, "--backend", "cpu", "--task", "patch",
				"--clean", writeJSON(t, filepath.Join(dir, "c.json"), g.cases.Clean),
				"--corrupt", writeJSON(t, filepath.Join(dir, "k.json"), g.cases.Corrupt),
				"--io", joinInts(g.cases.IO), "--s", joinInts(g.cases.S), "--metric", "ld"}
			stdout, stderr, code := runCLI(t, append(base, "--method", "atp", "--json")...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			var got struct {
				Head [][]float64 `json:"atp_head_z"`
				MLP  []float64   `json:"atp_mlp_out"`
			}
			fixtures.Must(t, json.Unmarshal([]byte(stdout), &got))
			var head [][]float64
			var mlp []float64
			g.get(t, "atp_head_z", &head)
			g.get(t, "atp_mlp_out", &mlp)
			fixtures.Close(t, "atp_head_z", flat2(got.Head), flat2(head), g.floor(t, "float32_torch_max_abs_dev", "atp_head_z"))
			fixtures.Close(t, "atp_mlp_out", got.MLP, mlp, g.floor(t, "float32_torch_max_abs_dev", "atp_mlp_out"))

			out := filepath.Join(dir, "eap.csv")
			if _, stderr, code := runCLI(t, append(base, "--method", "eap", "--format", "csv", "--out", out)...); code != 0 {
				t.Fatalf("eap: exit %d: %s", code, stderr)
			}
			f, err := os.Open(out)
			fixtures.Must(t, err)
			rows, err := csv.NewReader(f).ReadAll()
			f.Close()
			fixtures.Must(t, err)
			var edges []string
			var eap []float64
			g.get(t, "edges", &edges)
			g.get(t, "eap_edge", &eap)
			if len(rows) != len(edges)+1 || rows[0][0] != "config" || rows[0][1] != "eap" {
				t.Fatalf("eap csv: %d rows, header %v; want %d edges under config,eap", len(rows), rows[0], len(edges))
			}
			vals := make([]float64, len(edges))
			for i, r := range rows[1:] {
				if r[0] != edges[i] {
					t.Fatalf("row %d is %s, want %s", i, r[0], edges[i])
				}
				vals[i], err = strconv.ParseFloat(r[1], 64)
				fixtures.Must(t, err)
			}
			fixtures.Close(t, "eap_edge", vals, eap, g.floor(t, "float32_torch_max_abs_dev", "eap_edge"))

			expectUsage(t, "zero gradient", append(append([]string{}, base[:len(base)-1]...), "kl")...)
			expectUsage(t, "--method", append(base, "--method", "magic")...)
			expectUsage(t, "--verify", append(base, "--verify", "-1")...)
			// --verify N prints the exact values beside the estimates (their
			// agreement with the fixture is probes/attrib's TestVerify).
			var jr struct {
				Verify struct {
					Names []string  `json:"names"`
					Exact []float64 `json:"exact"`
				} `json:"verify"`
			}
			vout, _, vcode := runCLI(t, append(base, "--verify", "5", "--json")...)
			if vcode != 0 {
				t.Fatalf("--verify 5 --json: exit %d", vcode)
			}
			fixtures.Must(t, json.Unmarshal([]byte(vout), &jr))
			if len(jr.Verify.Names) != 5 || len(jr.Verify.Exact) != 5 {
				t.Errorf("--verify 5: %d names, %d exact values in %s", len(jr.Verify.Names), len(jr.Verify.Exact), vout)
			}
			expectUsage(t, "is an input of this run", append(base, "--method", "eap", "--format", "csv", "--out", filepath.Join(dir, "c.json"))...)
		})
	}
}

func TestGradCLI(t *testing.T) {
	for _, name := range fixtures.All { // GPT-Neo, GPT-2 and GPT-NeoX
		t.Run(name, func(t *testing.T) {
			g := loadGradFixture(t, name)
			dir := t.TempDir()
			tok := writeJSON(t, filepath.Join(dir, "t.json"), g.cases.Tokens)
			out := filepath.Join(dir, "g.safetensors")
			if _, stderr, code := runCLI(t, "grad", "--model", g.dir, "--backend", "cpu", "--tokens", tok, "--out", out); code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			got, gotShapes := readTensors(t, out)
			ref, refShapes := readTensors(t, filepath.Join(g.dir, "grads.safetensors"))
			// The reference names every tensor as model.safetensors stores it; so must grad.
			for key, want := range ref {
				if _, ok := got[key]; !ok {
					t.Fatalf("%s: missing from the output", key)
				}
				if fmt.Sprint(gotShapes[key]) != fmt.Sprint(refShapes[key]) {
					t.Fatalf("%s: shape %v, want %v", key, gotShapes[key], refShapes[key])
				}
				fixtures.Close(t, key, got[key], want, g.floor(t, "grads_float32_torch_max_abs_dev", key))
			}
			if len(got) != len(ref) {
				t.Errorf("%d tensors, reference %d", len(got), len(ref))
			}

			// run --grad: summed over rows, the gradient at hook_pos_embed is
			// wpe's gradient; without a position embedding (GPT-NeoX, untied),
			// the gradient at hook_embed scattered by token is embed_in's.
			acts := filepath.Join(dir, "acts.safetensors")
			hook, key := "hook_pos_embed", "wpe.weight"
			if _, ok := ref["gpt_neox.embed_in.weight"]; ok {
				hook, key = "hook_embed", "gpt_neox.embed_in.weight"
			} else if _, ok := ref["transformer.wpe.weight"]; ok {
				key = "transformer.wpe.weight"
			}
			if _, stderr, code := runCLI(t, "run", "--model", g.dir, "--backend", "cpu", "--tokens", tok, "--out", acts, "--grad", hook); code != 0 {
				t.Fatalf("run --grad: exit %d: %s", code, stderr)
			}
			rg, rs := readTensors(t, acts)
			pe, ok := rg["grad."+hook]
			if !ok {
				t.Fatalf("run --grad wrote no grad.%s", hook)
			}
			B, T, C := rs["grad."+hook][0], rs["grad."+hook][1], rs["grad."+hook][2]
			want := ref[key]
			sum := make([]float64, len(want))
			for i, v := range pe {
				if hook == "hook_embed" { // row i/C of [B*T, C] holds token tokens[b][t]
					sum[int(g.cases.Tokens[i/C/T][(i/C)%T])*C+i%C] += v
				} else {
					sum[i%(T*C)] += v
				}
			}
			if hook == "hook_pos_embed" {
				sum, want = sum[:T*C], want[:T*C]
			}
			fixtures.Close(t, fmt.Sprintf("sum over %d rows of grad.%s", B, hook), sum, want, g.floor(t, "grads_float32_torch_max_abs_dev", key))
			expectUsage(t, "no gradient", "run", "--model", g.dir, "--backend", "cpu", "--tokens", tok, "--out", acts, "--grad", "blocks.*.attn.hook_pattern")
		})
	}
}

// TestAttributeIDsChecked: attribute refuses bad --io/--s ids with patch's
// own checks and messages (exit 2): out of the vocabulary either way, and
// IO equal to S, whose logit difference is 0 whatever the model does.
func TestAttributeIDsChecked(t *testing.T) {
	g := loadGradFixture(t, "tiny-neo")
	dir := t.TempDir()
	c := writeJSON(t, filepath.Join(dir, "c.json"), g.cases.Clean)
	k := writeJSON(t, filepath.Join(dir, "k.json"), g.cases.Corrupt)
	rows := len(g.cases.IO)
	ids := func(v int) string {
		s := make([]int, rows)
		for i := range s {
			s[i] = v
		}
		return joinInts(s)
	}
	for _, tc := range []struct{ io, s, want string }{
		{ids(1 << 20), joinInts(g.cases.S), "outside the vocabulary"},
		{joinInts(g.cases.IO), ids(-1), "is not a token id"},
		{ids(7), ids(7), "IO and S are the same id"},
	} {
		for _, cmd := range []string{"attribute", "patch"} {
			expectUsage(t, tc.want, cmd, "--model", g.dir, "--backend", "cpu", "--clean", c, "--corrupt", k, "--io", tc.io, "--s", tc.s)
		}
	}
}
