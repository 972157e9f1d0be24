package checkpoint_test

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nlpodyssey/safetensors"

	"github.com/neoscope/neoscope/internal/fixtures"
	"github.com/neoscope/neoscope/runtime/checkpoint"
)

// GPT-NeoX loading: tiny-neox's file holds Pythia's buffers (attention.bias
// BOOL, masked_bias, rotary_emb.inv_freq) beside gpt_neox.* names and an
// unprefixed embed_out.weight. Every variant below is written from it into a
// temp dir at test time.

func TestNeoXLoadFixture(t *testing.T) {
	dir, cfg, es := fixtureEntries(t, "tiny-neox")
	var buffers int
	for _, e := range es {
		if cfg.Spec.IsBuffer(cfg.Spec.Canonical(e.Name)) {
			buffers++
		}
	}
	if buffers != 3*cfg.Layers {
		t.Fatalf("tiny-neox holds %d buffers, want 3 per layer (the test relies on them)", buffers)
	}
	w, err := checkpoint.Load(dir, cfg)
	fixtures.Must(t, err)
	defer w.Close()
	if len(w.Tensors) != len(cfg.Tensors()) {
		t.Errorf("%d tensors loaded, want %d parameters (buffers must be dropped)", len(w.Tensors), len(cfg.Tensors()))
	}
	for _, n := range []string{"embed_in.weight", "embed_out.weight", "final_layer_norm.bias", "layers.3.attention.query_key_value.weight"} {
		if w.Get(n) == nil {
			t.Errorf("canonical tensor %s missing", n)
		}
	}
	if got := w.Get("layers.0.attention.query_key_value.weight").Shape; got[0] != 3*cfg.DModel || got[1] != cfg.DModel {
		t.Errorf("query_key_value shape %v, want [3C, C]", got)
	}
}

// TestNeoXDtypesPrefixBuffers: F16 and BF16 upcast exactly; names without the
// gpt_neox. prefix load alike; files without the buffers load alike.
func TestNeoXDtypesPrefixBuffers(t *testing.T) {
	src, cfg, es := fixtureEntries(t, "tiny-neox")
	orig := f32s(findNeoX(es, "gpt_neox.layers.2.mlp.dense_4h_to_h.weight").Data)
	for _, dt := range []string{"F32", "F16", "BF16"} {
		dir := writeModel(t, src, es, func(e checkpoint.Entry) (string, raw, bool) {
			r := rawOf(e)
			if e.DType == "F32" && len(e.Shape) > 0 && !strings.HasSuffix(e.Name, "inv_freq") {
				r.data = nil
				switch dt {
				case "F32":
					r.data = e.Data
				case "F16":
					r.dt = safetensors.F16
					for _, v := range f32s(e.Data) {
						r.data = binary.LittleEndian.AppendUint16(r.data, checkpoint.F32ToF16(v))
					}
				case "BF16":
					r.dt = safetensors.BF16
					for _, v := range f32s(e.Data) {
						r.data = binary.LittleEndian.AppendUint16(r.data, uint16(math.Float32bits(v)>>16))
					}
				}
			}
			isBuf := cfg.Spec.IsBuffer(cfg.Spec.Canonical(e.Name))
			// F16 drops the prefix; BF16 drops the buffers.
			name := e.Name
			if dt == "F16" {
				name = strings.TrimPrefix(name, "gpt_neox.")
			}
			return name, r, !(dt == "BF16" && isBuf)
		})
		w, err := checkpoint.Load(dir, cfg)
		if err != nil {
			t.Fatalf("%s: %v", dt, err)
		}
		got := w.Get("layers.2.mlp.dense_4h_to_h.weight").Data
		for i, v := range orig {
			want := v
			switch dt {
			case "F16":
				want = checkpoint.F16ToF32(checkpoint.F32ToF16(v))
			case "BF16":
				want = math.Float32frombits(math.Float32bits(v) &^ 0xffff)
			}
			if got[i] != want {
				t.Fatalf("%s: dense_4h_to_h[%d] = %v, want %v", dt, i, got[i], want)
			}
		}
		w.Close()
	}
}

// TestNeoXSharded: the weights split over two shards named by
// model.safetensors.index.json load as the single file does.
func TestNeoXSharded(t *testing.T) {
	src, cfg, es := fixtureEntries(t, "tiny-neox")
	dir := t.TempDir()
	data, err := os.ReadFile(filepath.Join(src, "config.json"))
	fixtures.Must(t, err)
	fixtures.Must(t, os.WriteFile(filepath.Join(dir, "config.json"), data, 0o644))
	shards := []map[string]raw{{}, {}}
	index := map[string]string{}
	for i, e := range es {
		k := i % 2
		shards[k][e.Name] = rawOf(e)
		index[e.Name] = []string{"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}[k]
	}
	for k, s := range shards {
		buf, err := safetensors.Serialize(s, nil)
		fixtures.Must(t, err)
		name := []string{"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}[k]
		fixtures.Must(t, os.WriteFile(filepath.Join(dir, name), buf, 0o644))
	}
	idx, _ := json.Marshal(map[string]any{"metadata": map[string]any{}, "weight_map": index})
	fixtures.Must(t, os.WriteFile(filepath.Join(dir, "model.safetensors.index.json"), idx, 0o644))
	w, err := checkpoint.Load(dir, cfg)
	fixtures.Must(t, err)
	defer w.Close()
	one, err := checkpoint.Load(src, cfg)
	fixtures.Must(t, err)
	defer one.Close()
	if len(w.Tensors) != len(one.Tensors) {
		t.Fatalf("sharded: %d tensors, single file %d", len(w.Tensors), len(one.Tensors))
	}
	for n, a := range one.Tensors {
		b := w.Get(n)
		if b == nil || len(b.Data) != len(a.Data) {
			t.Fatalf("sharded: %s missing or resized", n)
		}
		for i := range a.Data {
			if a.Data[i] != b.Data[i] {
				t.Fatalf("sharded: %s[%d] differs", n, i)
			}
		}
	}
}

// TestNeoXBadCheckpoints: a missing unembedding, an unknown tensor and a
// wrong fused-qkv shape are errors that name the tensor.
func TestNeoXBadCheckpoints(t *testing.T) {
	src, cfg, es := fixtureEntries(t, "tiny-neox")
	cases := []struct {
		name string
		conv func(e checkpoint.Entry) (string, raw, bool)
		want string
	}{
		{"no embed_out", func(e checkpoint.Entry) (string, raw, bool) {
			return e.Name, rawOf(e), e.Name != "embed_out.weight"
		}, "embed_out.weight"},
		{"unknown", func(e checkpoint.Entry) (string, raw, bool) {
			if e.Name == "gpt_neox.layers.1.attention.masked_bias" {
				return "gpt_neox.layers.1.attention.extra_bias", rawOf(e), true
			}
			return e.Name, rawOf(e), true
		}, "gpt_neox.layers.1.attention.extra_bias"},
		{"qkv shape", func(e checkpoint.Entry) (string, raw, bool) {
			r := rawOf(e)
			if e.Name == "gpt_neox.layers.0.attention.query_key_value.weight" {
				r.shape = []uint64{uint64(cfg.DModel), uint64(3 * cfg.DModel)}
			}
			return e.Name, r, true
		}, "query_key_value.weight"},
	}
	for _, c := range cases {
		dir := writeModel(t, src, es, c.conv)
		_, err := checkpoint.Load(dir, cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to name %s", c.name, err, c.want)
		}
	}
}

func findNeoX(es []checkpoint.Entry, name string) checkpoint.Entry {
	for _, e := range es {
		if e.Name == name {
			return e
		}
	}
	return checkpoint.Entry{}
}
