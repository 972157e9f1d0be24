package ioi_test

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/neoscope/neoscope/cpu"
	"github.com/neoscope/neoscope/internal/fixtures"
	"github.com/neoscope/neoscope/probes/ioi"
	"github.com/neoscope/neoscope/runtime/checkpoint"
	"github.com/neoscope/neoscope/runtime/forward"
)

func flat(x [][]float64) []float64 {
	var out []float64
	for _, r := range x {
		out = append(out, r...)
	}
	return out
}

func flat3(x [][][]float64) []float64 {
	var out []float64
	for _, r := range x {
		out = append(out, flat(r)...)
	}
	return out
}

// circuitTensor reads a float32 tensor of the fixture's circuits.safetensors.
func circuitTensor(t *testing.T, dir, name string) []float64 {
	data, err := os.ReadFile(filepath.Join(dir, "circuits.safetensors"))
	fixtures.Must(t, err)
	entries, err := checkpoint.ParseSafetensors("circuits.safetensors", data)
	fixtures.Must(t, err)
	for _, e := range entries {
		if e.Name == name && e.DType == "F32" {
			out := make([]float64, len(e.Data)/4)
			for i := range out {
				out[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(e.Data[4*i:])))
			}
			return out
		}
	}
	t.Fatalf("%s/circuits.safetensors: no F32 tensor %s", dir, name)
	return nil
}

func fixtureBatch(t *testing.T, ref *fixtures.Ref) ioi.Batch {
	clean := ref.Get(t, "ioi_clean")
	B, T := clean.Shape[0], clean.Shape[1]
	return ioi.Batch{Clean: clean.Ints(), Corrupt: ref.Get(t, "ioi_corrupt").Ints(), B: B, T: T, Pos: T - 1,
		IO: ref.Get(t, "ioi_io").Ints(), S: ref.Get(t, "ioi_s").Ints()}
}

// TestGolden: logit differences, every patching table and every DLA term
// on both fixtures; the DLA terms sum to ioi_ld_clean.
func TestGolden(t *testing.T) {
	for _, name := range fixtures.Names {
		t.Run(name, func(t *testing.T) {
			ref := fixtures.Load(t, name)
			m, err := forward.Open(cpu.New(), ref.Dir)
			fixtures.Must(t, err)
			defer m.Close()
			res, err := ioi.Run(m, []ioi.Batch{fixtureBatch(t, ref)}, ioi.Options{Patch: ioi.All})
			fixtures.Must(t, err)
			ref.Check(t, "ioi_ld_clean", []float64{res.LDClean}, "ioi_ld_clean")
			ref.Check(t, "ioi_ld_corrupt", []float64{res.LDCorrupt}, "ioi_ld_corrupt")
			ref.Check(t, "patch_head_z", flat(res.PatchHeadZ), "patch_head_z")
			ref.Check(t, "patch_resid_pre", flat(res.PatchResid), "patch_resid_pre")
			ref.Check(t, "patch_mlp_out", res.PatchMLP, "patch_mlp_out")
			ref.Check(t, "patch_attn_out", res.PatchAttn, "patch_attn_out")
			fixtures.CloseTol(t, "patch_head_z_pos", flat3(res.PatchHeadPos), circuitTensor(t, ref.Dir, "patch_head_z_pos"),
				fixtures.TolFor(t, ref.Dir, "circuits.json", "patch_head_z_pos"))
			ref.Check(t, "dla_head", flat(res.DLA.Head), "dla_head")
			ref.Check(t, "dla_mlp", res.DLA.MLP, "dla_mlp")
			ref.Check(t, "dla_attn_bias", res.DLA.AttnBias, "dla_attn_bias")
			ref.Check(t, "dla_embed", []float64{res.DLA.Embed}, "dla_embed")
			ref.Check(t, "dla_ln_bias", []float64{res.DLA.LNBias}, "dla_ln_bias")
			// The decomposition is exact in float64 except for the float32
			// rounding of the forward pass (our own ld vs our own terms).
			ref.Check(t, "dla sum vs ioi_ld_clean", []float64{res.DLA.Sum}, "ioi_ld_clean")
			ref.CheckAgainst(t, "dla sum vs own ld_clean", []float64{res.DLA.Sum}, []float64{res.LDClean}, "ioi_ld_clean")
			// Clean and corrupt agree except at positions 2 and 5, so patching
			// blocks.0.hook_resid_pre (the embedding) anywhere else changes
			// nothing: exactly 0 up to float32 rounding of the same pass (1e-6).
			for tt, v := range res.PatchResid[0] {
				if tt != 2 && tt != 5 && (v > 1e-6 || v < -1e-6) {
					t.Errorf("patch_resid_pre[0][%d] = %g, want 0 (tokens identical there)", tt, v)
				}
			}
		})
	}
}

// TestBatchesAverage: splitting the fixture batch into two batches of two
// rows gives the same LD, head and MLP patching and DLA (means over all
// prompts), which is how the dataset's length groups are combined.
func TestBatchesAverage(t *testing.T) {
	ref := fixtures.Load(t, "tiny-neo")
	m, err := forward.Open(cpu.New(), ref.Dir)
	fixtures.Must(t, err)
	defer m.Close()
	b := fixtureBatch(t, ref)
	T := b.T
	half := func(r0 int) ioi.Batch {
		return ioi.Batch{Clean: b.Clean[r0*T : (r0+2)*T], Corrupt: b.Corrupt[r0*T : (r0+2)*T], B: 2, T: T, Pos: T - 1,
			IO: b.IO[r0 : r0+2], S: b.S[r0 : r0+2]}
	}
	w := ioi.What{Heads: true, MLP: true, Attn: true}
	res, err := ioi.Run(m, []ioi.Batch{half(0), half(2)}, ioi.Options{Patch: w})
	fixtures.Must(t, err)
	// The same arithmetic in two batches, up to summation order: at the
	// fixture's tolerances.
	ref.Check(t, "ioi_ld_clean", []float64{res.LDClean}, "ioi_ld_clean")
	ref.Check(t, "patch_head_z", flat(res.PatchHeadZ), "patch_head_z")
	ref.Check(t, "patch_mlp_out", res.PatchMLP, "patch_mlp_out")
	ref.Check(t, "dla_head", flat(res.DLA.Head), "dla_head")
	if res.PatchResid != nil {
		t.Error("resid patching ran though not asked for")
	}
}

func TestErrors(t *testing.T) {
	ref := fixtures.Load(t, "tiny-neo")
	m, err := forward.Open(cpu.New(), ref.Dir)
	fixtures.Must(t, err)
	defer m.Close()
	good := fixtureBatch(t, ref)
	for name, edit := range map[string]func(b *ioi.Batch){
		"short corrupt": func(b *ioi.Batch) { b.Corrupt = b.Corrupt[1:] },
		"io count":      func(b *ioi.Batch) { b.IO = b.IO[:1] },
		"io range":      func(b *ioi.Batch) { b.IO = []int32{1, 2, 3, 512} },
		"pos":           func(b *ioi.Batch) { b.Pos = b.T },
		"io == s":       func(b *ioi.Batch) { b.S = append([]int32(nil), b.IO...) },
		"same prompts":  func(b *ioi.Batch) { b.Corrupt = b.Clean },
	} {
		b := good
		edit(&b)
		if _, err := ioi.Run(m, []ioi.Batch{b}, ioi.Options{Patch: ioi.All}); err == nil {
			t.Errorf("%s: no error", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}
