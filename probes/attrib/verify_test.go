package attrib_test

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/neoscope/neoscope/cpu"
	"github.com/neoscope/neoscope/internal/fixtures"
	"github.com/neoscope/neoscope/probes/attrib"
	"github.com/neoscope/neoscope/runtime/forward"
)

// TestVerify: --verify's exact values are the fixture's exact patching
// references (edge_patch_ld, noise_head_z_ld, noise_mlp_out_ld, each minus
// ld_clean) for the candidates it picked, which are the largest |estimates|.
func TestVerify(t *testing.T) {
	for _, name := range fixtures.Names {
		t.Run(name, func(t *testing.T) {
			c := loadCirc(t, name)
			var ref struct {
				EdgeLD  []float64   `json:"edge_patch_ld"`
				HeadLD  [][]float64 `json:"noise_head_z_ld"`
				MLPLD   []float64   `json:"noise_mlp_out_ld"`
				LDClean float64     `json:"ld_clean"`
			}
			b, err := os.ReadFile(filepath.Join(c.dir, "circuits.json"))
			fixtures.Must(t, err)
			fixtures.Must(t, json.Unmarshal(b, &ref))
			m, err := forward.Open(cpu.New(), c.dir)
			fixtures.Must(t, err)
			defer m.Close()
			for _, method := range []string{"atp", "eap"} {
				run := attrib.AtP
				if method == "eap" {
					run = attrib.EAP
				}
				r, err := run(m, task(c))
				fixtures.Must(t, err)
				const n = 12
				fixtures.Must(t, attrib.Verify(m, task(c), r, n))
				v := r.Verify
				if len(v.Names) != n || len(v.Exact) != n {
					t.Fatalf("%s: %d candidates verified, want %d", method, len(v.Names), n)
				}
				for i := 1; i < n; i++ {
					if math.Abs(v.Estimate[i]) > math.Abs(v.Estimate[i-1]) {
						t.Errorf("%s: candidates not in decreasing |estimate| at %d", method, i)
					}
				}
				for i, nm := range v.Names {
					var want float64
					var floor string
					switch {
					case strings.Contains(nm, ">"):
						k := -1
						for j, e := range c.json.Edges {
							if e == nm {
								k = j
							}
						}
						want, floor = ref.EdgeLD[k], "edge_patch_ld"
					case strings.HasPrefix(nm, "mlp."):
						l, _ := strconv.Atoi(nm[4:])
						want, floor = ref.MLPLD[l], "noise_mlp_out_ld"
					default:
						p := strings.Split(nm, ".")
						l, _ := strconv.Atoi(p[0])
						h, _ := strconv.Atoi(p[1])
						want, floor = ref.HeadLD[l][h], "noise_head_z_ld"
					}
					fixtures.Close(t, method+" verify "+nm, []float64{v.Exact[i]}, []float64{want - ref.LDClean},
						c.tol(t, floor)+c.tol(t, "ld_clean"))
				}
				if math.IsNaN(v.Spearman) || v.Spearman < -1 || v.Spearman > 1 || len(v.Worst) != 5 {
					t.Errorf("%s: spearman %v, worst %v", method, v.Spearman, v.Worst)
				}
				t.Logf("%s %s: top %d, Spearman %.3f, Pearson %.3f", name, method, n, v.Spearman, v.Pearson)
			}
		})
	}
}
