package cuda

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/neoscope/neoscope/cuda/driver"
	"github.com/neoscope/neoscope/kernels/emu"
	"github.com/neoscope/neoscope/runtime/backend"
	"github.com/neoscope/neoscope/runtime/backend/conformance"
)

// The CUDA backend runs the shared conformance suite
// (runtime/backend/conformance): every op against float64 on odd shapes and
// strided views, whole forward passes, every hook and the ablation figures
// against the fixtures. Emulated (kernels/emu: the kernels' source run on
// the CPU through the whole backend) in the default test run; on a real GPU
// when cuda.Open succeeds.

func needEmu(t *testing.T) {
	t.Helper()
	if !emu.Available {
		// A cgo-less build has no emulator; make test builds with cgo.
		t.Skip("kernel emulator not built (needs cgo)")
	}
}

// TestConformanceEmu: the emulated device. The fixture-driven parts run one
// batch row per fixture (rows are independent; the CPU backend runs all of
// them) so that the default test run stays short; see the timing below.
// The ops run again with the 128x128 matmul kernel forced.
func TestConformanceEmu(t *testing.T) {
	needEmu(t)
	conformance.Run(t, func() backend.Backend { return newEmu() }, conformance.Options{Rows: []int{1}, ForwardRepOnly: true, NoSweep: true})
	t.Run("big-tiles", func(t *testing.T) {
		be := newEmu()
		defer be.Close()
		be.bigTiles = 1
		conformance.Ops(t, be, "matmul/", false)
	})
}

// TestSweepEmu: the ablation figures through the sweep engine on the
// emulated device: tiny-neo, mean ablation (the fill path of AblateHeads) of
// each head of the last layer, whose configurations start from the cached
// residual before it. The whole table runs on the CPU backend and on a GPU;
// emulated it took 140 s (2 shared cores), too long for every test run.
func TestSweepEmu(t *testing.T) {
	needEmu(t)
	conformance.Sweep(t, func() backend.Backend { return newEmu() }, conformance.Options{
		Fixtures: []string{"tiny-neo"}, SweepLastLayer: true, SweepKeys: []string{"head_mean_ablation_loss"}})
}

// TestConformanceGPU: the whole suite, all rows, on a real device.
func TestConformanceGPU(t *testing.T) {
	be, err := Open()
	if err != nil {
		t.Skipf("no CUDA device: %v", err)
	}
	t.Logf("device: %s", be.Name())
	be.Close()
	open := func() backend.Backend {
		b, err := Open()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	conformance.Run(t, open, conformance.Options{DeviceMath: true})
	t.Run("big-tiles", func(t *testing.T) {
		b := open().(*Backend)
		defer b.Close()
		b.bigTiles = 1
		conformance.Ops(t, b, "matmul/", true)
	})
}

// TestOpenError: Open either gives a working backend (a device is present:
// a small upload and download round-trips) or a non-empty error and no
// backend, naming what failed.
func TestOpenError(t *testing.T) {
	be, err := Open()
	if err != nil {
		if be != nil {
			t.Fatalf("Open failed (%v) but returned a backend", err)
		}
		if err.Error() == "" {
			t.Fatal("Open failed with an empty error")
		}
		t.Logf("no device: %v", err)
		return
	}
	defer be.Close()
	x := []float32{1, -2, 3.5}
	dev, err := be.Upload(x, 3)
	if err != nil {
		t.Fatalf("device %s: upload: %v", be.Name(), err)
	}
	got := make([]float32, 3)
	if err := be.Download(got, dev); err != nil {
		t.Fatalf("device %s: download: %v", be.Name(), err)
	}
	for i := range x {
		if got[i] != x[i] {
			t.Fatalf("device %s: round trip %v, want %v", be.Name(), got, x)
		}
	}
	t.Logf("device present: %s", be.Name())
}

// TestOutOfMemory: an allocation the device cannot satisfy is a returned
// error (4 TiB: beyond the emulator's host and any GPU).
func TestOutOfMemory(t *testing.T) {
	needEmu(t)
	bes := []*Backend{newEmu()}
	if g, err := Open(); err == nil {
		defer g.Close()
		bes = append(bes, g)
	}
	for _, be := range bes {
		_, err := be.New(1<<20, 1<<20)
		if err == nil {
			t.Fatalf("%s: 4 TiB allocation succeeded", be.Name())
		}
		t.Logf("%s: %v", be.Name(), err)
		if _, isGPU := be.dev.(*gpu); isGPU && !driver.IsOutOfMemory(err) {
			t.Errorf("%s: want CUDA_ERROR_OUT_OF_MEMORY, got %v", be.Name(), err)
		}
	}
}

// Helpers of the package's other tests (TF32, benchmarks).

func randVec(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func download(be backend.Backend, t backend.Tensor) []float32 {
	out := make([]float32, t.Len())
	if err := be.Download(out, t); err != nil {
		panic(err)
	}
	return out
}

// maxRelErr is max |got-want| / (abs + rel|want|) over the values: <= 1
// means every value is within the bound.
func maxRelErr(got []float32, want []float64, abs, rel float64) (float64, error) {
	if len(got) != len(want) {
		return 0, errors.New("length mismatch")
	}
	worst := 0.0
	for i := range got {
		d := math.Abs(float64(got[i]) - want[i])
		if math.IsNaN(d) {
			return math.Inf(1), nil
		}
		worst = math.Max(worst, d/(abs+rel*math.Abs(want[i])))
	}
	return worst, nil
}
