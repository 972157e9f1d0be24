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

// tol is the 1e-4 for every IOI figure. The fixtures' float32
// PyTorch floor is ~3e-5 for the normalised patching tables (a logit
// difference of ~50-scale logits divided by |ld_clean - ld_corrupt| >= 0.3)
// and below 1e-6 for the logit differences and DLA terms.
const tol = 1e-4

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
			fixtures.Close(t, "ioi_ld_clean", []float64{res.LDClean}, ref.Get(t, "ioi_ld_clean").F, tol)
			fixtures.Close(t, "ioi_ld_corrupt", []float64{res.LDCorrupt}, ref.Get(t, "ioi_ld_corrupt").F, tol)
			fixtures.Close(t, "patch_head_z", flat(res.PatchHeadZ), ref.Get(t, "patch_head_z").F, tol)
			fixtures.Close(t, "patch_resid_pre", flat(res.PatchResid), ref.Get(t, "patch_resid_pre").F, tol)
			fixtures.Close(t, "patch_mlp_out", res.PatchMLP, ref.Get(t, "patch_mlp_out").F, tol)
			fixtures.Close(t, "patch_attn_out", res.PatchAttn, ref.Get(t, "patch_attn_out").F, tol)
			fixtures.Close(t, "patch_head_z_pos", flat3(res.PatchHeadPos), circuitTensor(t, ref.Dir, "patch_head_z_pos"), tol)
			fixtures.Close(t, "dla_head", flat(res.DLA.Head), ref.Get(t, "dla_head").F, tol)
			fixtures.Close(t, "dla_mlp", res.DLA.MLP, ref.Get(t, "dla_mlp").F, tol)
			fixtures.Close(t, "dla_attn_bias", res.DLA.AttnBias, ref.Get(t, "dla_attn_bias").F, tol)
			fixtures.Close(t, "dla_embed", []float64{res.DLA.Embed}, ref.Get(t, "dla_embed").F, tol)
			fixtures.Close(t, "dla_ln_bias", []float64{res.DLA.LNBias}, ref.Get(t, "dla_ln_bias").F, tol)
			// The decomposition is exact in float64 except for the float32
			// rounding of the forward pass (our own ld vs our own terms).
			fixtures.Close(t, "dla sum vs ioi_ld_clean", []float64{res.DLA.Sum}, ref.Get(t, "ioi_ld_clean").F, tol)
			fixtures.Close(t, "dla sum vs own ld_clean", []float64{res.DLA.Sum}, []float64{res.LDClean}, tol)
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
	// Same arithmetic up to summation order: 1e-5.
	fixtures.Close(t, "ioi_ld_clean", []float64{res.LDClean}, ref.Get(t, "ioi_ld_clean").F, 1e-5)
	fixtures.Close(t, "patch_head_z", flat(res.PatchHeadZ), ref.Get(t, "patch_head_z").F, tol)
	fixtures.Close(t, "patch_mlp_out", res.PatchMLP, ref.Get(t, "patch_mlp_out").F, tol)
	fixtures.Close(t, "dla_head", flat(res.DLA.Head), ref.Get(t, "dla_head").F, tol)
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
