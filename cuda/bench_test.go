package cuda

import (
	"fmt"
	"math"
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
// run here): forwardOnce succeeds on a batch of 8 tokens, and the logits of
// the first position of each row, where causal attention sees only that
// token (pattern 1, z = v), equal a float64 computation from the random
// weights: embedding, then per layer ln_1, v_proj, out_proj (+ bias), the
// residual add, ln_2, c_fc, gelu_new, c_proj, the residual add; ln_f and
// the tied unembedding. Bound 1e-6 absolute + 1e-5 relative: float32
// rounding of sums of <= 64 terms; a transposed or missing weight is off by
// O(0.01) on logits of O(0.1).
func TestRandomModelCPU(t *testing.T) {
	cfg, err := arch.Parse([]byte(`{"model_type": "gpt_neo", "num_layers": 2, "num_heads": 2, "hidden_size": 16,
		"attention_layers": ["global", "local"], "attention_types": [[["global", "local"], 1]], "max_position_embeddings": 32, "vocab_size": 40, "window_size": 4}`))
	if err != nil {
		t.Fatal(err)
	}
	w := randomWeights(cfg, 1)
	for name, shape := range checkpoint.Expected(cfg) {
		if w.Tensors[name] == nil || fmt.Sprint(w.Tensors[name].Shape) != fmt.Sprint(shape) {
			t.Fatalf("randomWeights: %s missing or not %v", name, shape)
		}
	}
	m, err := forward.New(cpu.New(), cfg, w)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	const B, T = 3, 8
	tokens := make([]int32, B*T)
	for i := range tokens {
		tokens[i] = int32((i*7 + 3) % cfg.Vocab)
	}
	if err := forwardOnce(m, tokens, B, T); err != nil {
		t.Fatal(err)
	}
	s, logits, err := m.Run(tokens, B, T, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	C, F, V := cfg.DModel, cfg.DMLP, cfg.Vocab
	get := func(n string) []float32 { return w.Tensors[n].Data }
	// linear: x [in] @ W^T (W [out, in], nn.Linear) + b.
	linear := func(x []float64, W []float32, b []float32, out int) []float64 {
		y := make([]float64, out)
		for o := range y {
			for i, xv := range x {
				y[o] += xv * float64(W[o*len(x)+i])
			}
			if b != nil {
				y[o] += float64(b[o])
			}
		}
		return y
	}
	ln := func(x []float64, p string) []float64 {
		mean, v := 0.0, 0.0
		for _, xv := range x {
			mean += xv
		}
		mean /= float64(len(x))
		for _, xv := range x {
			v += (xv - mean) * (xv - mean)
		}
		v /= float64(len(x))
		wt, bs := get(p+".weight"), get(p+".bias")
		y := make([]float64, len(x))
		for i, xv := range x {
			y[i] = (xv-mean)/math.Sqrt(v+cfg.LNEps)*float64(wt[i]) + float64(bs[i])
		}
		return y
	}
	worst := 0.0
	for b := 0; b < B; b++ {
		tok := int(tokens[b*T])
		x := make([]float64, C)
		for c := range x {
			x[c] = float64(get("wte.weight")[tok*C+c]) + float64(get("wpe.weight")[c])
		}
		for l := 0; l < cfg.Layers; l++ {
			p := fmt.Sprintf("h.%d.", l)
			a := p + "attn.attention."
			v := linear(ln(x, p+"ln_1"), get(a+"v_proj.weight"), nil, C)
			att := linear(v, get(a+"out_proj.weight"), get(a+"out_proj.bias"), C)
			for c := range x {
				x[c] += att[c]
			}
			h := linear(ln(x, p+"ln_2"), get(p+"mlp.c_fc.weight"), get(p+"mlp.c_fc.bias"), F)
			for i, u := range h {
				h[i] = 0.5 * u * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(u+0.044715*u*u*u)))
			}
			mo := linear(h, get(p+"mlp.c_proj.weight"), get(p+"mlp.c_proj.bias"), C)
			for c := range x {
				x[c] += mo[c]
			}
		}
		want := linear(ln(x, "ln_f"), get("wte.weight"), nil, V)
		for j, wv := range want {
			g := float64(logits[(b*T)*V+j])
			d := math.Abs(g - wv)
			if !(d <= 1e-6+1e-5*math.Abs(wv)) {
				t.Fatalf("row %d position 0 logit %d = %.8g, float64 %.8g (|diff| %.3g)", b, j, g, wv, d)
			}
			worst = math.Max(worst, d)
		}
	}
	t.Logf("position-0 logits vs float64: max |diff| %.3g", worst)
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
