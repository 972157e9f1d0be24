package cuda

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/neoscope/neoscope/cpu"
	"github.com/neoscope/neoscope/runtime/arch"
	"github.com/neoscope/neoscope/runtime/backend"
	"github.com/neoscope/neoscope/runtime/checkpoint"
	"github.com/neoscope/neoscope/runtime/forward"
)

// GPU benchmarks, named by shape (gonum style); they skip without a device.
// benchmarks/gpu-check.sh runs them and compares with torch.matmul.

// neo125m is EleutherAI/gpt-neo-125m's config (as ../shared/bench/make_bench_model.py writes it).
const neo125m = `{"activation_function": "gelu_new", "architectures": ["GPTNeoForCausalLM"],
"attention_layers": ["global", "local", "global", "local", "global", "local", "global", "local", "global", "local", "global", "local"],
"attention_types": [[["global", "local"], 6]], "bos_token_id": 50256, "eos_token_id": 50256,
"hidden_size": 768, "intermediate_size": null, "layer_norm_epsilon": 1e-05, "max_position_embeddings": 2048,
"model_type": "gpt_neo", "num_heads": 12, "num_layers": 12, "vocab_size": 50257, "window_size": 256}`

// randomWeights fills every tensor cfg expects with N(0, 0.02^2) values
// (LayerNorm weights 1): values do not matter for speed, only shapes.
func randomWeights(cfg *arch.Config, seed uint64) *checkpoint.Weights {
	r := rand.New(rand.NewPCG(seed, 1))
	w := &checkpoint.Weights{Tensors: map[string]*checkpoint.Tensor{}}
	for name, shape := range checkpoint.Expected(cfg) {
		n := 1
		for _, s := range shape {
			n *= s
		}
		d := make([]float32, n)
		for i := range d {
			d[i] = float32(r.NormFloat64() * 0.02)
		}
		if len(shape) == 1 && (name[len(name)-7:] == ".weight") {
			for i := range d {
				d[i] = 1
			}
		}
		w.Tensors[name] = &checkpoint.Tensor{Shape: shape, Data: d}
	}
	return w
}

// forwardOnce runs the forward pass with logits and waits for the result
// (one value downloaded), as `neoscope bench` does.
func forwardOnce(m *forward.Model, tokens []int32, B, T int) error {
	s, _, err := m.Run(tokens, B, T, nil, false)
	if err != nil {
		return err
	}
	defer s.Close()
	lt, err := m.LogitsTensor(s, nil)
	if err != nil {
		return err
	}
	defer m.BE.Free(lt)
	var probe [1]float32
	return m.BE.DownloadMat(probe[:], backend.Mat{T: lt, Rows: 1, Cols: 1, Stride: 1})
}

// TestRandomModelCPU checks the benchmark's model builder and forward loop
// on the CPU backend with a small GPT-Neo config (the GPU benchmark cannot
// run here).
func TestRandomModelCPU(t *testing.T) {
	cfg, err := arch.Parse([]byte(`{"model_type": "gpt_neo", "num_layers": 2, "num_heads": 2, "hidden_size": 16,
		"attention_layers": ["global", "local"], "attention_types": [[["global", "local"], 1]], "max_position_embeddings": 32, "vocab_size": 40, "window_size": 4}`))
	if err != nil {
		t.Fatal(err)
	}
	m, err := forward.New(cpu.New(), cfg, randomWeights(cfg, 1))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := forwardOnce(m, make([]int32, 2*8), 2, 8); err != nil {
		t.Fatal(err)
	}
}

func openOrSkip(b *testing.B) *Backend {
	be, err := Open()
	if err != nil {
		b.Skipf("no CUDA device: %v", err)
	}
	return be
}

// BenchmarkMatMul times the kernel on GPT-Neo-125M's shapes for B*T = 1024
// rows (nn.Linear weights [out, in], so transB) and reports TFLOP/s.
func BenchmarkMatMul(b *testing.B) {
	be := openOrSkip(b)
	defer be.Close()
	for _, s := range []struct {
		name    string
		M, N, K int
	}{
		{"QKV_1024x768x768", 1024, 768, 768},
		{"MLPIn_1024x3072x768", 1024, 3072, 768},
		{"MLPOut_1024x768x3072", 1024, 768, 3072},
		{"Unembed_1024x50257x768", 1024, 50257, 768},
		{"Square_4096", 4096, 4096, 4096},
	} {
		b.Run(s.name, func(b *testing.B) {
			r := rand.New(rand.NewPCG(1, 1))
			rnd := func(n int) []float32 {
				v := make([]float32, n)
				for i := range v {
					v[i] = float32(r.NormFloat64())
				}
				return v
			}
			a := must(be.Upload(rnd(s.M*s.K), s.M, s.K))
			w := must(be.Upload(rnd(s.N*s.K), s.N, s.K))
			c := must(be.New(s.M, s.N))
			defer be.Free(a)
			defer be.Free(w)
			defer be.Free(c)
			run := func() {
				if err := be.MatMul(backend.Whole(c), backend.Whole(a), backend.Whole(w), true, nil, false); err != nil {
					b.Fatal(err)
				}
			}
			run()
			if err := be.Sync(); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			t0 := time.Now()
			for i := 0; i < b.N; i++ {
				run()
			}
			if err := be.Sync(); err != nil {
				b.Fatal(err)
			}
			sec := time.Since(t0).Seconds() / float64(b.N)
			b.ReportMetric(2*float64(s.M)*float64(s.N)*float64(s.K)/sec/1e12, "TFLOP/s")
		})
	}
}

// BenchmarkForward times whole forward passes (with logits) of a
// random-weight GPT-Neo-125M and reports tokens/s.
func BenchmarkForward(b *testing.B) {
	be := openOrSkip(b)
	defer be.Close()
	cfg, err := arch.Parse([]byte(neo125m))
	if err != nil {
		b.Fatal(err)
	}
	m, err := forward.New(be, cfg, randomWeights(cfg, 1))
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	for _, sh := range [][2]int{{1, 128}, {8, 128}, {32, 128}, {4, 512}, {1, 2048}} {
		B, T := sh[0], sh[1]
		b.Run(fmt.Sprintf("%dx%d", B, T), func(b *testing.B) {
			tokens := make([]int32, B*T)
			r := rand.New(rand.NewPCG(2, 2))
			for i := range tokens {
				tokens[i] = int32(r.IntN(cfg.Vocab))
			}
			if err := forwardOnce(m, tokens, B, T); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			t0 := time.Now()
			for i := 0; i < b.N; i++ {
				if err := forwardOnce(m, tokens, B, T); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(B*T*b.N)/time.Since(t0).Seconds(), "tokens/s")
		})
	}
}
