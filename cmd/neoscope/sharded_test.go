package main

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	goruntime "runtime"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/neoscope/neoscope/cpu"
	"github.com/neoscope/neoscope/internal/fixtures"
	"github.com/neoscope/neoscope/probes/lens"
	"github.com/neoscope/neoscope/runtime/arch"
	"github.com/neoscope/neoscope/runtime/checkpoint"
	"github.com/neoscope/neoscope/runtime/forward"
)

// stTensor is one tensor to write by hand as safetensors.
type stTensor struct {
	name, dtype string
	shape       []int
	data        []byte
}

// writeST writes tensors as a safetensors file (8-byte header length, JSON
// header with data_offsets, then the data in name order).
func writeST(t *testing.T, path string, ts []stTensor) {
	t.Helper()
	sort.Slice(ts, func(i, j int) bool { return ts[i].name < ts[j].name })
	head := map[string]any{}
	off := 0
	for _, x := range ts {
		head[x.name] = map[string]any{"dtype": x.dtype, "shape": x.shape, "data_offsets": []int{off, off + len(x.data)}}
		off += len(x.data)
	}
	hj, err := json.Marshal(head)
	fixtures.Must(t, err)
	for len(hj)%8 != 0 {
		hj = append(hj, ' ')
	}
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(hj)))
	out = append(out, hj...)
	for _, x := range ts {
		out = append(out, x.data...)
	}
	fixtures.Must(t, os.WriteFile(path, out, 0o644))
}

// TestShardedF16 builds, from the tiny-neo fixture, a sharded F16 checkpoint
// (model.safetensors.index.json + 2 shards, as save_pretrained writes them)
// and a single-file F32 checkpoint holding the same values rounded to
// float16, then checks end to end (load, forward pass, logit-lens probe):
//   - the sharded F16 model gives what the rounded F32 model gives (the
//     upcast is exact, so only float32 arithmetic differs: 10x the fixture's
//     float32 floor);
//   - both differ from the F32 original by no more than float16 rounding
//     explains: every weight moves by at most u = 2^-11 relatively; the
//     logits may move by 4u x max|logit| and the lens losses by 4u
//     relatively (measured: 0.5u x max|logit| = 0.0146 on max|logit| 58.6);
//     the difference is also checked to be non-zero, so the F16 path is
//     really taken.
func TestShardedF16(t *testing.T) {
	src := fixtures.Dir(t, "tiny-neo")
	ref := fixtures.Load(t, "tiny-neo")
	entries, closer, err := checkpoint.MapSafetensors(filepath.Join(src, "model.safetensors"))
	fixtures.Must(t, err)
	defer closer()
	cfg, err := os.ReadFile(filepath.Join(src, "config.json"))
	fixtures.Must(t, err)
	tmp := t.TempDir()
	d16, dR := filepath.Join(tmp, "f16-sharded"), filepath.Join(tmp, "f32-rounded")
	for _, d := range []string{d16, dR} {
		fixtures.Must(t, os.MkdirAll(d, 0o755))
		fixtures.Must(t, os.WriteFile(filepath.Join(d, "config.json"), cfg, 0o644))
	}
	var half, rounded []stTensor
	nF16 := 0
	for _, e := range entries {
		if e.DType != "F32" {
			half = append(half, stTensor{e.Name, e.DType, e.Shape, e.Data})
			rounded = append(rounded, stTensor{e.Name, e.DType, e.Shape, e.Data})
			continue
		}
		v, err := checkpoint.Convert(e)
		fixtures.Must(t, err)
		h := make([]byte, 2*len(v))
		r := make([]byte, 4*len(v))
		for i, x := range v {
			b := checkpoint.F32ToF16(x)
			binary.LittleEndian.PutUint16(h[2*i:], b)
			binary.LittleEndian.PutUint32(r[4*i:], math.Float32bits(checkpoint.F16ToF32(b)))
		}
		half = append(half, stTensor{e.Name, "F16", e.Shape, h})
		rounded = append(rounded, stTensor{e.Name, "F32", e.Shape, r})
		nF16++
	}
	if nF16 == 0 {
		t.Fatal("tiny-neo has no F32 tensors to convert")
	}
	// Two shards, names split in order, and the index naming each tensor's shard.
	sort.Slice(half, func(i, j int) bool { return half[i].name < half[j].name })
	n := len(half) / 2
	weightMap := map[string]string{}
	for i, part := range [][]stTensor{half[:n], half[n:]} {
		name := fmt.Sprintf("model-%05d-of-00002.safetensors", i+1)
		writeST(t, filepath.Join(d16, name), part)
		for _, x := range part {
			weightMap[x.name] = name
		}
	}
	idx, _ := json.Marshal(map[string]any{"metadata": map[string]any{}, "weight_map": weightMap})
	fixtures.Must(t, os.WriteFile(filepath.Join(d16, "model.safetensors.index.json"), idx, 0o644))
	writeST(t, filepath.Join(dR, "model.safetensors"), rounded)

	rows := ref.Get(t, "tokens").Rows()
	type out struct {
		logits []float32
		lens   *lens.Result
	}
	run := func(dir string) out {
		m, err := forward.Open(cpu.New(), dir)
		if err != nil {
			t.Fatalf("loading %s: %v", dir, err)
		}
		defer m.Close()
		tokens, B, T, err := m.CheckTokens(rows)
		fixtures.Must(t, err)
		s, logits, err := m.Run(tokens, B, T, nil, true)
		fixtures.Must(t, err)
		s.Close()
		lr, err := lens.Run(m, tokens, B, T, lens.Options{})
		fixtures.Must(t, err)
		return out{logits, lr}
	}
	orig, f16, rnd := run(src), run(d16), run(dR)
	floor := ref.Cases["float32_torch_max_abs_dev"].(map[string]any)
	fixtures.Close(t, "sharded F16 logits vs F16-rounded F32", fixtures.F32(f16.logits), fixtures.F32(rnd.logits), 10*floor["logits"].(float64))
	fixtures.Close(t, "sharded F16 logit-lens loss vs F16-rounded F32", f16.lens.Loss, rnd.lens.Loss, 10*floor["logit_lens_loss"].(float64))
	fixtures.Close(t, "sharded F16 logit-lens KL vs F16-rounded F32", f16.lens.KL, rnd.lens.KL, 10*floor["logit_lens_kl"].(float64))

	u := math.Ldexp(1, -11)
	maxLogit, maxDiff := 0.0, 0.0
	for i, x := range orig.logits {
		maxLogit = math.Max(maxLogit, math.Abs(float64(x)))
		maxDiff = math.Max(maxDiff, math.Abs(float64(x-f16.logits[i])))
	}
	tol := 4 * u * maxLogit
	if maxDiff > tol || maxDiff == 0 {
		t.Fatalf("sharded F16 logits differ from the F32 original by %.3g (max |logit| %.3g): want 0 < diff <= 4u max|logit| = %.3g", maxDiff, maxLogit, tol)
	}
	for l := range orig.lens.Loss {
		if d := math.Abs(orig.lens.Loss[l] - f16.lens.Loss[l]); d > 4*u*orig.lens.Loss[l] {
			t.Fatalf("layer %d logit-lens loss: F16 %.6f vs F32 %.6f, beyond 4u relative", l, f16.lens.Loss[l], orig.lens.Loss[l])
		}
	}
	t.Logf("F16 vs F32 original: max |logit diff| %.3g (max |logit| %.3g, bound %.3g)", maxDiff, maxLogit, tol)
}

// mappedRSSKiB sums the resident set (the Rss: lines of /proc/self/smaps, in
// KiB) of this process's mappings of the file at path; ok is false where
// there is no smaps file (not Linux) or no mapping of path.
func mappedRSSKiB(t *testing.T, path string) (kib int, ok bool) {
	t.Helper()
	real, err := filepath.EvalSymlinks(path)
	fixtures.Must(t, err)
	data, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return 0, false
	}
	in := false
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) >= 5 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":") {
			// A mapping's first line: range perms offset dev inode [path].
			in = len(f) >= 6 && f[5] == real
			if in {
				ok = true
			}
			continue
		}
		if in && len(f) == 3 && f[0] == "Rss:" {
			n, err := strconv.Atoi(f[1])
			fixtures.Must(t, err)
			kib += n
		}
	}
	return kib, ok
}

// TestShardedF16PagesReleased writes a GPT-Neo-shaped checkpoint (d_model
// 512, vocabulary 8192, 2 layers: 20 MB of F16 with tensors of 0.5-8 MB,
// random weights) as model.safetensors.index.json + 2 F16 shards, opens it
// with the forward pass, and checks what the small fixture cannot:
//   - the mapped F16 pages are dropped once upcast (releasePages): after
//     loading, each shard's mapping may keep resident only the pages not
//     wholly inside one tensor plus the kernel's read fault-around (at most
//     16 pages around a fault, counted once per tensor), a small fraction
//     of the file, where without the release every page read by the upcast
//     stays resident;
//   - the upcast is exact (W_E equals the written halves converted) and a
//     forward pass gives finite logits.
func TestShardedF16PagesReleased(t *testing.T) {
	if _, err := os.Stat("/proc/self/smaps"); err != nil {
		t.Skip("no /proc/self/smaps: resident pages per mapping cannot be read here")
	}
	dir := t.TempDir()
	cfgJSON := `{"model_type": "gpt_neo", "architectures": ["GPTNeoForCausalLM"], "activation_function": "gelu_new",
  "hidden_size": 512, "num_layers": 2, "num_heads": 8, "vocab_size": 8192, "max_position_embeddings": 512,
  "attention_layers": ["global", "local"], "attention_types": [[["global", "local"], 1]], "window_size": 256,
  "layer_norm_epsilon": 1e-05, "intermediate_size": null, "bos_token_id": 0, "eos_token_id": 0}`
	fixtures.Must(t, os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfgJSON), 0o644))
	cfg, err := arch.Parse([]byte(cfgJSON))
	fixtures.Must(t, err)
	names := make([]string, 0)
	shapes := cfg.Tensors()
	for n := range shapes {
		names = append(names, n)
	}
	sort.Strings(names)
	r := rand.New(rand.NewPCG(1, 2))
	var ts []stTensor
	halves := map[string][]uint16{}
	for _, n := range names {
		size := 1
		for _, d := range shapes[n] {
			size *= d
		}
		h := make([]uint16, size)
		b := make([]byte, 2*size)
		for i := range h {
			h[i] = checkpoint.F32ToF16(float32(r.NormFloat64() * 0.02))
			if strings.Contains(n, "ln_") && strings.HasSuffix(n, ".weight") {
				h[i] = checkpoint.F32ToF16(1)
			}
			binary.LittleEndian.PutUint16(b[2*i:], h[i])
		}
		halves[n] = h
		ts = append(ts, stTensor{"transformer." + n, "F16", shapes[n], b})
	}
	// Two shards, the embedding (8 MB) alone in the first, and the index.
	sort.SliceStable(ts, func(i, j int) bool { return ts[i].name == "transformer.wte.weight" && ts[j].name != ts[i].name })
	weightMap := map[string]string{}
	var shardPaths []string
	for i, part := range [][]stTensor{ts[:1], ts[1:]} {
		name := fmt.Sprintf("model-%05d-of-00002.safetensors", i+1)
		p := filepath.Join(dir, name)
		writeST(t, p, part)
		shardPaths = append(shardPaths, p)
		for _, x := range part {
			weightMap[x.name] = name
		}
	}
	idx, _ := json.Marshal(map[string]any{"metadata": map[string]any{}, "weight_map": weightMap})
	fixtures.Must(t, os.WriteFile(filepath.Join(dir, "model.safetensors.index.json"), idx, 0o644))

	// The float32 copies live outside Go's heap (checkpoint's offHeap), so
	// that gigabytes of weights do not set the collector's pace: loading
	// leaves the live heap grown by a small part of their size.
	var before, after goruntime.MemStats
	goruntime.GC()
	goruntime.ReadMemStats(&before)
	m, err := forward.Open(cpu.New(), dir)
	fixtures.Must(t, err)
	defer m.Close()
	goruntime.GC()
	goruntime.ReadMemStats(&after)
	f32 := 0
	for _, h := range halves {
		f32 += 4 * len(h)
	}
	if grown := int64(after.HeapAlloc) - int64(before.HeapAlloc); grown > int64(f32/10) {
		t.Errorf("loading grew Go's live heap by %d bytes, against %d bytes of float32 weights (want them outside the heap)", grown, f32)
	}
	ps := os.Getpagesize() / 1024
	allowed := 0 // KiB: per tensor 2 partial pages and 16 pages of fault-around, plus the header pages
	total := 0
	for i, p := range shardPaths {
		n := 1
		if i == 1 {
			n = len(ts) - 1
		}
		st, err := os.Stat(p)
		fixtures.Must(t, err)
		kib, ok := mappedRSSKiB(t, p)
		if !ok {
			t.Fatalf("%s is not mapped after loading: the checkpoint was not read through the index and mmap", p)
		}
		bound := n*18*ps + 2*ps + 1 // + the JSON header (at most a page here)
		t.Logf("%s: %d KiB resident of %d KiB mapped (%d tensors; bound %d KiB)", filepath.Base(p), kib, st.Size()/1024, n, bound)
		if kib > bound {
			t.Errorf("%s: %d KiB of the F16 file still resident after the upcast, want <= %d KiB: its pages were not released", filepath.Base(p), kib, bound)
		}
		allowed += bound
		total += int(st.Size() / 1024)
	}
	if 4*allowed > total {
		t.Fatalf("test too weak: the bound (%d KiB) is over a quarter of the files (%d KiB)", allowed, total)
	}

	// The upcast is exact, and a forward pass runs.
	we := m.WE()
	for i, h := range halves["wte.weight"] {
		if we[i] != checkpoint.F16ToF32(h) {
			t.Fatalf("W_E[%d] = %v, want the written half %#04x = %v", i, we[i], h, checkpoint.F16ToF32(h))
		}
	}
	tokens := make([]int32, 2*16)
	for i := range tokens {
		tokens[i] = int32(r.IntN(cfg.Vocab))
	}
	s, logits, err := m.Run(tokens, 2, 16, nil, true)
	fixtures.Must(t, err)
	s.Close()
	for i, x := range logits {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			t.Fatalf("logit %d is %v", i, x)
		}
	}
}
