package attrib_test

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/neoscope/neoscope/cpu"
	"github.com/neoscope/neoscope/internal/fixtures"
	"github.com/neoscope/neoscope/probes/attrib"
	"github.com/neoscope/neoscope/runtime/forward"
)

// TestCompare: every node's and edge's estimate is the fixture's atp_head_z /
// atp_mlp_out / eap_edge and its exact value the fixture's noise_head_z_ld /
// noise_mlp_out_ld / edge_patch_ld minus ld_clean; the correlations and the
// worst disagreements follow from those. Split into two tasks (the rows in
// two batches), the row-weighted combination gives the same values.
// The fixtures are those of TestVerify (fixtures.Names): the exact values
// need edge patching, which runtime/sweep does not yet do on GPT-NeoX.
func TestCompare(t *testing.T) {
	for _, name := range fixtures.Names {
		t.Run(name, func(t *testing.T) {
			c := loadCirc(t, name)
			var ref struct {
				EdgeLD []float64   `json:"edge_patch_ld"`
				HeadLD [][]float64 `json:"noise_head_z_ld"`
				MLPLD  []float64   `json:"noise_mlp_out_ld"`
			}
			b, err := os.ReadFile(filepath.Join(c.dir, "circuits.json"))
			fixtures.Must(t, err)
			fixtures.Must(t, json.Unmarshal(b, &ref))
			if ref.EdgeLD == nil || ref.HeadLD == nil || ref.MLPLD == nil {
				t.Fatal("circuits.json lacks edge_patch_ld, noise_head_z_ld or noise_mlp_out_ld")
			}
			m, err := forward.Open(cpu.New(), c.dir)
			fixtures.Must(t, err)
			defer m.Close()
			const k = 4
			a, err := attrib.Compare(m, []attrib.Task{task(c)}, k, 0)
			fixtures.Must(t, err)

			var estN, exN []float64
			var names []string
			for l, row := range ref.HeadLD {
				for h, v := range row {
					names = append(names, fmt.Sprintf("%d.%d", l, h))
					estN = append(estN, c.json.AtPHead[l][h])
					exN = append(exN, v-c.json.LDClean)
				}
			}
			nh := len(names)
			for l, v := range ref.MLPLD {
				names = append(names, fmt.Sprintf("mlp.%d", l))
				estN = append(estN, c.json.AtPMLP[l])
				exN = append(exN, v-c.json.LDClean)
			}
			if fmt.Sprint(a.Nodes.Names) != fmt.Sprint(names) {
				t.Fatalf("node names %v, want %v", a.Nodes.Names, names)
			}
			if fmt.Sprint(a.Edges.Names) != fmt.Sprint(c.json.Edges) {
				t.Fatalf("edge names differ from circuits.json's edges")
			}
			fixtures.Close(t, "atp_head_z", a.Nodes.Estimate[:nh], estN[:nh], c.tol(t, "atp_head_z"))
			fixtures.Close(t, "atp_mlp_out", a.Nodes.Estimate[nh:], estN[nh:], c.tol(t, "atp_mlp_out"))
			fixtures.Close(t, "noise_head_z_ld - ld_clean", a.Nodes.Exact[:nh], exN[:nh], c.tol(t, "noise_head_z_ld")+c.tol(t, "ld_clean"))
			fixtures.Close(t, "noise_mlp_out_ld - ld_clean", a.Nodes.Exact[nh:], exN[nh:], c.tol(t, "noise_mlp_out_ld")+c.tol(t, "ld_clean"))
			fixtures.Close(t, "eap_edge", a.Edges.Estimate, c.json.EAP, c.tol(t, "eap_edge"))
			exE := make([]float64, len(ref.EdgeLD))
			for i, v := range ref.EdgeLD {
				exE[i] = v - c.json.LDClean
			}
			fixtures.Close(t, "edge_patch_ld - ld_clean", a.Edges.Exact, exE, c.tol(t, "edge_patch_ld")+c.tol(t, "ld_clean"))
			fixtures.Close(t, "ld_clean", []float64{a.LDClean}, []float64{c.json.LDClean}, c.tol(t, "ld_clean"))

			// The statistics against ones computed here from the reference.
			for _, s := range []struct {
				what     string
				v        *attrib.Verification
				est, exa []float64
			}{{"nodes", a.Nodes, estN, exN}, {"edges", a.Edges, c.json.EAP, exE}} {
				if got, want := s.v.Pearson, pearsonRef(s.est, s.exa); math.Abs(got-want) > 1e-3 {
					t.Errorf("%s: Pearson %.6f, reference %.6f", s.what, got, want)
				}
				if got, want := s.v.Spearman, spearmanRef(s.est, s.exa); math.Abs(got-want) > 0.05 {
					t.Errorf("%s: Spearman %.6f, reference %.6f", s.what, got, want)
				}
				if len(s.v.Worst) != k {
					t.Fatalf("%s: %d worst, want %d", s.what, len(s.v.Worst), k)
				}
				// The worst are the largest reference |est - exact| (allowing
				// near-ties within the tolerance).
				gap := func(i int) float64 { return math.Abs(s.est[i] - s.exa[i]) }
				kth := gap(s.v.Worst[k-1])
				for i := range s.est {
					in := false
					for _, w := range s.v.Worst {
						in = in || w == i
					}
					if !in && gap(i) > kth+1e-4 {
						t.Errorf("%s: %s (|est - exact| %.5f) is not among the worst %v (k-th %.5f)", s.what, s.v.Names[i], gap(i), s.v.Worst, kth)
					}
				}
				t.Logf("%s %s: %d points, Pearson %.3f, Spearman %.3f, worst %s", name, s.what, len(s.v.Names), s.v.Pearson, s.v.Spearman, s.v.Names[s.v.Worst[0]])
			}

			if a.GraphEdges != len(c.json.Edges) || a.EdgesSampled {
				t.Errorf("all edges: graph_edges %d, sampled %v", a.GraphEdges, a.EdgesSampled)
			}

			// A cap of 100 edges: the 50 largest |EAP| and 50 others, in
			// canonical order, each with the reference exact value.
			capped, err := attrib.Compare(m, []attrib.Task{task(c)}, k, 100)
			fixtures.Must(t, err)
			if len(capped.Edges.Names) != 100 || !capped.EdgesSampled || capped.GraphEdges != len(c.json.Edges) {
				t.Fatalf("capped: %d edges of %d, sampled %v", len(capped.Edges.Names), capped.GraphEdges, capped.EdgesSampled)
			}
			pos := map[string]int{}
			for i, e := range c.json.Edges {
				pos[e] = i
			}
			var capRef []float64
			last := -1
			for _, e := range capped.Edges.Names {
				i, ok := pos[e]
				if !ok || i <= last {
					t.Fatalf("capped: %s unknown or out of canonical order", e)
				}
				last = i
				capRef = append(capRef, exE[i])
			}
			fixtures.Close(t, "capped edge_patch_ld - ld_clean", capped.Edges.Exact, capRef, c.tol(t, "edge_patch_ld")+c.tol(t, "ld_clean"))
			// Every reference edge with |eap_edge| clearly above the 50th
			// largest is kept.
			mags := make([]float64, len(c.json.EAP))
			for i, v := range c.json.EAP {
				mags[i] = math.Abs(v)
			}
			sort.Sort(sort.Reverse(sort.Float64Slice(mags)))
			kept := map[string]bool{}
			for _, e := range capped.Edges.Names {
				kept[e] = true
			}
			for i, v := range c.json.EAP {
				if math.Abs(v) > mags[49]+c.tol(t, "eap_edge") && !kept[c.json.Edges[i]] {
					t.Errorf("capped: %s (|EAP| %.5f, 50th largest %.5f) dropped", c.json.Edges[i], math.Abs(v), mags[49])
				}
			}

			// Two batches of the same rows: the same values.
			tk := task(c)
			if tk.B >= 2 {
				h := tk.B / 2
				n := h * tk.T
				t1 := attrib.Task{Clean: tk.Clean[:n], Corrupt: tk.Corrupt[:n], B: h, T: tk.T, Pos: tk.Pos, IO: tk.IO[:h], S: tk.S[:h]}
				t2 := attrib.Task{Clean: tk.Clean[n:], Corrupt: tk.Corrupt[n:], B: tk.B - h, T: tk.T, Pos: tk.Pos, IO: tk.IO[h:], S: tk.S[h:]}
				a2, err := attrib.Compare(m, []attrib.Task{t1, t2}, k, 0)
				fixtures.Must(t, err)
				fixtures.Close(t, "split nodes exact", a2.Nodes.Exact, a.Nodes.Exact, 1e-5)
				fixtures.Close(t, "split edges exact", a2.Edges.Exact, a.Edges.Exact, 1e-5)
				fixtures.Close(t, "split edges estimate", a2.Edges.Estimate, a.Edges.Estimate, 1e-5)
				if a2.Prompts != tk.B {
					t.Errorf("split: %d prompts, want %d", a2.Prompts, tk.B)
				}
			}
		})
	}
	if _, err := attrib.Compare(nil, nil, 3, 0); err == nil {
		t.Error("Compare with no tasks: no error")
	}
}

// pearsonRef and spearmanRef: plain textbook formulas (ranks without tie
// handling: the reference values have no ties).
func pearsonRef(x, y []float64) float64 {
	var mx, my float64
	for i := range x {
		mx += x[i] / float64(len(x))
		my += y[i] / float64(len(x))
	}
	var a, b, c float64
	for i := range x {
		a += (x[i] - mx) * (y[i] - my)
		b += (x[i] - mx) * (x[i] - mx)
		c += (y[i] - my) * (y[i] - my)
	}
	return a / math.Sqrt(b*c)
}

func spearmanRef(x, y []float64) float64 {
	rank := func(v []float64) []float64 {
		r := make([]float64, len(v))
		for i := range v {
			for j := range v {
				if v[j] < v[i] {
					r[i]++
				}
			}
		}
		return r
	}
	return pearsonRef(rank(x), rank(y))
}
