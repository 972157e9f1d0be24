package attrib_test

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/neoscope/neoscope/cpu"
	"github.com/neoscope/neoscope/internal/fixtures"
	"github.com/neoscope/neoscope/probes/attrib"
	"github.com/neoscope/neoscope/runtime/backend"
	"github.com/neoscope/neoscope/runtime/checkpoint"
	"github.com/neoscope/neoscope/runtime/forward"
	"github.com/neoscope/neoscope/runtime/graph"
)

// Tolerance: 10x the float32 floor recorded in circuits.json for each
// tensor (how far PyTorch float32 landed from the float64 reference), with
// no relative slack: every value here is O(1) or smaller, so the absolute
// floor is the binding one.

type circ struct {
	dir    string
	tens   map[string][]float64
	shapes map[string][]int
	json   struct {
		Edges     []string           `json:"edges"`
		EAP       []float64          `json:"eap_edge"`
		AtPHead   [][]float64        `json:"atp_head_z"`
		AtPMLP    []float64          `json:"atp_mlp_out"`
		LDClean   float64            `json:"ld_clean"`
		LDCorrupt float64            `json:"ld_corrupt"`
		Floor     map[string]float64 `json:"float32_torch_max_abs_dev"`
		GFloor    map[string]float64 `json:"grads_float32_torch_max_abs_dev"`
	}
	cases struct {
		Clean   [][]int32 `json:"ioi_clean"`
		Corrupt [][]int32 `json:"ioi_corrupt"`
		IO      []int32   `json:"ioi_io"`
		S       []int32   `json:"ioi_s"`
		Tokens  [][]int32 `json:"tokens"`
	}
}

func readST(t *testing.T, path string) (map[string][]float64, map[string][]int) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("ground truth missing: %v", err)
	}
	es, err := checkpoint.ParseSafetensors(path, data)
	fixtures.Must(t, err)
	out, shapes := map[string][]float64{}, map[string][]int{}
	for _, e := range es {
		if e.DType != "F32" {
			t.Fatalf("%s: %s is %s, want F32", path, e.Name, e.DType)
		}
		f := make([]float64, len(e.Data)/4)
		for i := range f {
			f[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(e.Data[4*i:])))
		}
		out[e.Name], shapes[e.Name] = f, e.Shape
	}
	return out, shapes
}

func loadCirc(t *testing.T, name string) *circ {
	t.Helper()
	root := fixtures.Root()
	if root == "" {
		t.Fatal("ground truth missing: ../shared/fixtures not found (set NEOSCOPE_FIXTURES)")
	}
	c := &circ{dir: filepath.Join(root, name)}
	c.tens, c.shapes = readST(t, filepath.Join(c.dir, "circuits.safetensors"))
	for f, v := range map[string]any{"circuits.json": &c.json, "cases.json": &c.cases} {
		b, err := os.ReadFile(filepath.Join(c.dir, f))
		fixtures.Must(t, err)
		fixtures.Must(t, json.Unmarshal(b, v))
	}
	return c
}

func (c *circ) tol(t *testing.T, key string) float64 {
	f, ok := c.json.Floor[key]
	if !ok {
		t.Fatalf("circuits.json has no float32 floor for %s", key)
	}
	return 10 * f
}

func flat(rows [][]int32) []int32 {
	var out []int32
	for _, r := range rows {
		out = append(out, r...)
	}
	return out
}

func task(c *circ) attrib.Task {
	B, T := len(c.cases.Clean), len(c.cases.Clean[0])
	return attrib.Task{Clean: flat(c.cases.Clean), Corrupt: flat(c.cases.Corrupt), B: B, T: T, Pos: T - 1, IO: c.cases.IO, S: c.cases.S}
}

// bothModes runs f with activations kept by Record and recomputed by Backward.
func bothModes(t *testing.T, f func(t *testing.T)) {
	defer func(k float64) { forward.KeepLimit = k }(forward.KeepLimit)
	for _, mode := range []struct {
		name  string
		limit float64
	}{{"kept", 1e9}, {"recomputed", 0}} {
		forward.KeepLimit = mode.limit
		t.Run(mode.name, f)
	}
}

// gradFixtures are the fixtures of the gradient tests: all three families
// (GPT-Neo, GPT-2, GPT-NeoX).
var gradFixtures = fixtures.All

// TestGradients: grad_z, grad_mlp_out, grad_resid_pre and
// grad_receiver_input of M = mean LD on the clean run.
func TestGradients(t *testing.T) {
	for _, name := range gradFixtures {
		t.Run(name, func(t *testing.T) {
			bothModes(t, func(t *testing.T) {
				c := loadCirc(t, name)
				m, err := forward.Open(cpu.New(), c.dir)
				fixtures.Must(t, err)
				defer m.Close()
				tk := task(c)
				tp, err := m.Record(tk.Clean, tk.B, tk.T, nil)
				fixtures.Must(t, err)
				defer tp.Close()
				gr := graph.New(m.Cfg.Layers, m.Cfg.Heads, m.Cfg.ParallelAt)
				N := tk.B * tk.T * m.Cfg.DModel
				recv := make([]float64, len(gr.Receivers)*N)
				seen := 0
				h := (&forward.Hooks{}).Observe("blocks.*.attn.hook_z", "blocks.*.hook_mlp_out", "blocks.*.hook_resid_pre")
				g, err := tp.Backward(forward.LogitDiff(tk.Pos, tk.IO, tk.S), forward.BackwardOptions{Hooks: h,
					Receiver: func(r graph.Node, gm backend.Mat) error {
						ri, ok := gr.ReceiverIndex(r.String())
						if !ok {
							return fmt.Errorf("unknown receiver %s", r)
						}
						buf := make([]float32, N)
						if err := m.BE.DownloadMat(buf, gm); err != nil {
							return err
						}
						copy(recv[ri*N:], fixtures.F32(buf))
						seen++
						return nil
					}})
				fixtures.Must(t, err)
				if seen != len(gr.Receivers) {
					t.Fatalf("%d receiver gradients, want %d", seen, len(gr.Receivers))
				}
				fixtures.Close(t, "ld_clean", []float64{g.Value}, []float64{c.json.LDClean}, c.tol(t, "ld_clean"))
				for key, hook := range map[string]string{"grad_z": "attn.hook_z", "grad_mlp_out": "hook_mlp_out", "grad_resid_pre": "hook_resid_pre"} {
					var got []float64
					for l := 0; l < m.Cfg.Layers; l++ {
						got = append(got, fixtures.F32(h.Cache[fmt.Sprintf("blocks.%d.%s", l, hook)].Data)...)
					}
					want, ok := c.tens[key]
					if !ok {
						t.Fatalf("circuits.safetensors has no %s", key)
					}
					fixtures.Close(t, key, got, want, c.tol(t, key))
				}
				fixtures.Close(t, "grad_receiver_input", recv, c.tens["grad_receiver_input"], c.tol(t, "grad_receiver_input"))
			})
		})
	}
}

// TestAtPEAP: atp_head_z, atp_mlp_out and eap_edge through the probe.
func TestAtPEAP(t *testing.T) {
	for _, name := range gradFixtures {
		t.Run(name, func(t *testing.T) {
			c := loadCirc(t, name)
			m, err := forward.Open(cpu.New(), c.dir)
			fixtures.Must(t, err)
			defer m.Close()
			r, err := attrib.EAP(m, task(c))
			fixtures.Must(t, err)
			var got, want []float64
			for l := range r.HeadZ {
				got = append(got, r.HeadZ[l]...)
				want = append(want, c.json.AtPHead[l]...)
			}
			fixtures.Close(t, "atp_head_z", got, want, c.tol(t, "atp_head_z"))
			fixtures.Close(t, "atp_mlp_out", r.MLPOut, c.json.AtPMLP, c.tol(t, "atp_mlp_out"))
			fixtures.Close(t, "ld_corrupt", []float64{r.LDCorrupt}, []float64{c.json.LDCorrupt}, c.tol(t, "ld_corrupt"))
			if len(r.Edges) != len(c.json.Edges) {
				t.Fatalf("%d edges, want %d", len(r.Edges), len(c.json.Edges))
			}
			for i, e := range r.Edges {
				if e != c.json.Edges[i] {
					t.Fatalf("edge %d is %s, want %s", i, e, c.json.Edges[i])
				}
			}
			fixtures.Close(t, "eap_edge", r.EAP, c.json.EAP, c.tol(t, "eap_edge"))
			// The same scores when G holds only one layer's receivers (the
			// fixtures' gradients otherwise fit one flush).
			defer func(b int64) { attrib.GatherBytes = b }(attrib.GatherBytes)
			attrib.GatherBytes = 0
			r1, err := attrib.EAP(m, task(c))
			fixtures.Must(t, err)
			fixtures.Close(t, "eap_edge (flush per 3*NH+1 receivers)", r1.EAP, c.json.EAP, c.tol(t, "eap_edge"))
			// The position scores sum to the head scores.
			for l := range r.HeadZPos {
				for h, row := range r.HeadZPos[l] {
					var s float64
					for _, v := range row {
						s += v
					}
					if math.Abs(s-r.HeadZ[l][h]) > 1e-9 {
						t.Errorf("atp_head_z_pos[%d][%d] sums to %g, head score %g", l, h, s, r.HeadZ[l][h])
					}
				}
			}
		})
	}
}

// TestParamGrads: every tensor of grads.safetensors (mean next-token loss on
// cases.json tokens), within 10x its float32 floor.
func TestParamGrads(t *testing.T) {
	for _, name := range gradFixtures {
		t.Run(name, func(t *testing.T) {
			bothModes(t, func(t *testing.T) {
				c := loadCirc(t, name)
				ref, shapes := readST(t, filepath.Join(c.dir, "grads.safetensors"))
				m, err := forward.Open(cpu.New(), c.dir)
				fixtures.Must(t, err)
				defer m.Close()
				B, T := len(c.cases.Tokens), len(c.cases.Tokens[0])
				// With receiver gradients asked for too, ln_1's input
				// gradient comes from the receivers' products (LNStats' sum)
				// instead of the whole q, k, v products: the same figures.
				for _, receivers := range []bool{false, true} {
					tp, err := m.Record(flat(c.cases.Tokens), B, T, nil)
					fixtures.Must(t, err)
					defer tp.Close()
					opt := forward.BackwardOptions{Params: true}
					seen := 0
					if receivers {
						opt.Receiver = func(graph.Node, backend.Mat) error { seen++; return nil }
					}
					g, err := tp.Backward(forward.NextTokenLoss(0), opt)
					fixtures.Must(t, err)
					if gr := graph.New(m.Cfg.Layers, m.Cfg.Heads, m.Cfg.ParallelAt); receivers && seen != len(gr.Receivers) {
						t.Fatalf("%d receiver gradients, want %d", seen, len(gr.Receivers))
					}
					// The loss Backward reports (from the logits of its own
					// pass) is MeanLoss's on the recorded pass.
					wantLoss, err := m.MeanLoss(tp.State(), 0)
					fixtures.Must(t, err)
					if d := math.Abs(g.Value - wantLoss); d > 1e-5*(1+math.Abs(wantLoss)) {
						t.Errorf("Backward's loss %g, MeanLoss %g", g.Value, wantLoss)
					}
					for key, want := range ref {
						k := m.Cfg.Spec.Canonical(key)
						got, ok := g.Params[k]
						if !ok {
							t.Errorf("no gradient for %s", key)
							continue
						}
						if fmt.Sprint(got.Shape) != fmt.Sprint(shapes[key]) {
							t.Errorf("%s: shape %v, want %v", key, got.Shape, shapes[key])
							continue
						}
						f, ok := c.json.GFloor[key]
						if !ok {
							t.Fatalf("circuits.json has no float32 floor for %s", key)
						}
						fixtures.Close(t, key, fixtures.F32(got.Data), want, 10*f)
					}
					if len(g.Params) != len(ref) {
						t.Errorf("%d parameter gradients, reference has %d", len(g.Params), len(ref))
					}
				}
			})
		})
	}
}
