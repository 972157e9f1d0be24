package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/neoscope/neoscope/internal/fixtures"
)

func joinIDs(x []int32) string {
	s := make([]string, len(x))
	for i, v := range x {
		s[i] = fmt.Sprint(v)
	}
	return strings.Join(s, ",")
}

// TestPatchCLI: `neoscope patch --json` on the fixture's IOI pair gives the
// logit differences, every patching table and every DLA term (at the
// fixture's tolerances).
func TestPatchCLI(t *testing.T) {
	ref := fixtures.Load(t, "tiny-neo")
	clean, corrupt := probeTokens(t, ref, "ioi_clean"), probeTokens(t, ref, "ioi_corrupt")
	var res struct {
		LDClean   float64     `json:"ioi_ld_clean"`
		LDCorrupt float64     `json:"ioi_ld_corrupt"`
		HeadZ     [][]float64 `json:"patch_head_z"`
		Resid     [][]float64 `json:"patch_resid_pre"`
		MLP       []float64   `json:"patch_mlp_out"`
		Attn      []float64   `json:"patch_attn_out"`
		DLAHead   [][]float64 `json:"dla_head"`
		DLAMLP    []float64   `json:"dla_mlp"`
		DLABias   []float64   `json:"dla_attn_bias"`
		DLAEmbed  float64     `json:"dla_embed"`
		DLALN     float64     `json:"dla_ln_bias"`
		Summary   struct {
			Answer string `json:"answer"`
		} `json:"summary"`
	}
	probeJSON(t, &res, "patch", "--model", ref.Dir, "--backend", "cpu", "--clean", clean, "--corrupt", corrupt,
		"--io", joinIDs(ref.Get(t, "ioi_io").Ints()), "--s", joinIDs(ref.Get(t, "ioi_s").Ints()), "--json")
	ref.Check(t, "ioi_ld_clean", []float64{res.LDClean}, "ioi_ld_clean")
	ref.Check(t, "ioi_ld_corrupt", []float64{res.LDCorrupt}, "ioi_ld_corrupt")
	ref.Check(t, "patch_head_z", flat2(res.HeadZ), "patch_head_z")
	ref.Check(t, "patch_resid_pre", flat2(res.Resid), "patch_resid_pre")
	ref.Check(t, "patch_mlp_out", res.MLP, "patch_mlp_out")
	ref.Check(t, "patch_attn_out", res.Attn, "patch_attn_out")
	ref.Check(t, "dla_head", flat2(res.DLAHead), "dla_head")
	ref.Check(t, "dla_mlp", res.DLAMLP, "dla_mlp")
	ref.Check(t, "dla_attn_bias", res.DLABias, "dla_attn_bias")
	ref.Check(t, "dla_embed", []float64{res.DLAEmbed}, "dla_embed")
	ref.Check(t, "dla_ln_bias", []float64{res.DLALN}, "dla_ln_bias")
	if !strings.Contains(res.Summary.Answer, "heads carry") {
		t.Errorf("summary %q", res.Summary.Answer)
	}
}

func TestPatchCLIErrors(t *testing.T) {
	ref := fixtures.Load(t, "tiny-neo")
	clean, corrupt, tok := probeTokens(t, ref, "ioi_clean"), probeTokens(t, ref, "ioi_corrupt"), probeTokens(t, ref, "tokens")
	base := []string{"patch", "--model", ref.Dir, "--backend", "cpu", "--clean", clean}
	expectUsage(t, "required", base...)
	expectUsage(t, "4 rows", append(base, "--corrupt", corrupt, "--io", "1,2", "--s", "3,4,5,6")...)
	expectUsage(t, "not a token id", append(base, "--corrupt", corrupt, "--io", "1,2,x,4", "--s", "3,4,5,6")...)
	expectUsage(t, "outside the vocabulary", append(base, "--corrupt", corrupt, "--io", "1,2,3,999", "--s", "5,6,7,8")...)
	expectUsage(t, "has 4 rows but", append(base, "--corrupt", tok, "--io", "1,2,3,4", "--s", "5,6,7,8")...)
	expectUsage(t, "--pos 12", append(base, "--corrupt", corrupt, "--io", "1,2,3,4", "--s", "5,6,7,8", "--pos", "12")...)
	expectUsage(t, "IO and S are the same", append(base, "--corrupt", corrupt, "--io", "1,2,3,4", "--s", "1,6,7,8")...)
}
