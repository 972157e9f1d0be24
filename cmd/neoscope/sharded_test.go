package main

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/neoscope/neoscope/cpu"
	"github.com/neoscope/neoscope/internal/fixtures"
	"github.com/neoscope/neoscope/probes/lens"
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
