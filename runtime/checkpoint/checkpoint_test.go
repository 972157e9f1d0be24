package checkpoint_test

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nlpodyssey/safetensors"

	"github.com/neoscope/neoscope/internal/fixtures"
	"github.com/neoscope/neoscope/runtime/arch"
	"github.com/neoscope/neoscope/runtime/checkpoint"
)

type raw struct {
	dt    safetensors.DType
	shape []uint64
	data  []byte
}

func (r raw) DType() safetensors.DType { return r.dt }
func (r raw) Shape() []uint64          { return r.shape }
func (r raw) Data() []byte             { return r.data }
func (r raw) DataLen() uint64          { return uint64(len(r.data)) }

// fixtureEntries reads a fixture's weights as raw entries.
func fixtureEntries(t *testing.T, name string) (string, *arch.Config, []checkpoint.Entry) {
	dir := fixtures.Dir(t, name)
	cfg, err := arch.Load(filepath.Join(dir, "config.json"))
	fixtures.Must(t, err)
	data, err := os.ReadFile(filepath.Join(dir, "model.safetensors"))
	fixtures.Must(t, err)
	es, err := checkpoint.ParseSafetensors("model.safetensors", data)
	fixtures.Must(t, err)
	return dir, cfg, es
}

// writeModel writes config.json (copied) and a model.safetensors of entries,
// each converted by conv (name, dtype, data) to what is stored.
func writeModel(t *testing.T, srcDir string, es []checkpoint.Entry, conv func(e checkpoint.Entry) (string, raw, bool)) string {
	dir := t.TempDir()
	cfg, err := os.ReadFile(filepath.Join(srcDir, "config.json"))
	fixtures.Must(t, err)
	fixtures.Must(t, os.WriteFile(filepath.Join(dir, "config.json"), cfg, 0o644))
	m := map[string]raw{}
	for _, e := range es {
		shape := make([]uint64, len(e.Shape))
		for i, d := range e.Shape {
			shape[i] = uint64(d)
		}
		dt, err := safetensors.ParseDType(e.DType)
		fixtures.Must(t, err)
		r := raw{dt, shape, e.Data}
		name := e.Name
		keep := true
		if conv != nil {
			name, r, keep = conv(e)
		}
		if keep {
			m[name] = r
		}
	}
	buf, err := safetensors.Serialize(m, nil)
	fixtures.Must(t, err)
	fixtures.Must(t, os.WriteFile(filepath.Join(dir, "model.safetensors"), buf, 0o644))
	return dir
}

func f32s(b []byte) []float32 {
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

// TestDtypesAndPrefixes: F16 and BF16 weights load upcast exactly; names with
// and without the "transformer." prefix load alike.
//
// The "transformer." prefix is GPT-Neo's and GPT-2's; GPT-NeoX's prefix,
// buffers and dtypes are neox_test.go's.
func TestDtypesAndPrefixes(t *testing.T) {
	for _, name := range []string{"tiny-neo", "tiny-gpt2"} {
		src, cfg, es := fixtureEntries(t, name)
		for _, dt := range []string{"F16", "BF16"} {
			dir := writeModel(t, src, es, func(e checkpoint.Entry) (string, raw, bool) {
				r := raw{shape: shapeU(e.Shape)}
				if e.DType != "F32" {
					r.dt, _ = safetensors.ParseDType(e.DType)
					r.data = e.Data
				} else if dt == "F16" {
					r.dt = safetensors.F16
					for _, v := range f32s(e.Data) {
						r.data = binary.LittleEndian.AppendUint16(r.data, checkpoint.F32ToF16(v))
					}
				} else {
					r.dt = safetensors.BF16
					for _, v := range f32s(e.Data) {
						r.data = binary.LittleEndian.AppendUint16(r.data, uint16(math.Float32bits(v)>>16))
					}
				}
				n := e.Name
				if strings.HasPrefix(n, "transformer.") {
					n = strings.TrimPrefix(n, "transformer.")
				} else {
					n = "transformer." + n
				}
				return n, r, true
			})
			w, err := checkpoint.Load(dir, cfg)
			if err != nil {
				t.Fatalf("%s %s: %v", name, dt, err)
			}
			wte := w.Get("wte.weight")
			orig := f32s(findEntry(es, "wte.weight").Data)
			for i, v := range orig {
				var want float32
				if dt == "F16" {
					want = checkpoint.F16ToF32(checkpoint.F32ToF16(v))
				} else {
					want = math.Float32frombits(math.Float32bits(v) &^ 0xffff)
				}
				if wte.Data[i] != want {
					t.Fatalf("%s %s: wte[%d] = %v, want %v", name, dt, i, wte.Data[i], want)
				}
				if dt == "F16" && math.Abs(float64(want-v)) > 1e-3*math.Abs(float64(v))+1e-7 {
					t.Fatalf("F16 round trip of %v gave %v", v, want)
				}
			}
			w.Close()
		}
	}
}

func shapeU(s []int) []uint64 {
	out := make([]uint64, len(s))
	for i, d := range s {
		out[i] = uint64(d)
	}
	return out
}

func findEntry(es []checkpoint.Entry, canon string) checkpoint.Entry {
	for _, e := range es {
		if checkpoint.Canonical(e.Name) == canon {
			return e
		}
	}
	return checkpoint.Entry{}
}

func TestF16Exhaustive(t *testing.T) {
	for h := 0; h < 1<<16; h++ {
		f := checkpoint.F16ToF32(uint16(h))
		if math.IsNaN(float64(f)) {
			continue
		}
		if back := checkpoint.F32ToF16(f); back != uint16(h) {
			t.Fatalf("half %#04x -> %v -> %#04x", h, f, back)
		}
	}
}

// TestBadCheckpoints: each defect gives an error naming the file and the
// tensor or field, never a panic.
func TestBadCheckpoints(t *testing.T) {
	src, cfg, es := fixtureEntries(t, "tiny-neo")
	cases := []struct {
		name string
		conv func(e checkpoint.Entry) (string, raw, bool)
		want []string
	}{
		{"missing", func(e checkpoint.Entry) (string, raw, bool) {
			return e.Name, rawOf(e), e.Name != "transformer.h.1.mlp.c_fc.bias"
		}, []string{"missing tensor", "h.1.mlp.c_fc.bias"}},
		{"extra", func(e checkpoint.Entry) (string, raw, bool) {
			if e.Name == "transformer.ln_f.bias" {
				return "transformer.h.9.ln_1.bias", rawOf(e), true
			}
			return e.Name, rawOf(e), true
		}, []string{"unexpected tensor", "h.9.ln_1.bias"}},
		{"shape", func(e checkpoint.Entry) (string, raw, bool) {
			r := rawOf(e)
			if e.Name == "transformer.h.0.attn.attention.q_proj.weight" {
				r.shape = []uint64{32, 128}
			}
			return e.Name, r, true
		}, []string{"q_proj.weight", "shape [32 128]", "want [64 64]"}},
		{"dtype", func(e checkpoint.Entry) (string, raw, bool) {
			r := rawOf(e)
			if e.Name == "transformer.wpe.weight" {
				r.dt = safetensors.I32
			}
			return e.Name, r, true
		}, []string{"wpe.weight", "dtype I32"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := writeModel(t, src, es, c.conv)
			_, err := checkpoint.Load(dir, cfg)
			if err == nil {
				t.Fatal("loaded a bad checkpoint")
			}
			for _, w := range append(c.want, "model.safetensors") {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	// Byte-level damage.
	good, err := os.ReadFile(filepath.Join(src, "model.safetensors"))
	fixtures.Must(t, err)
	hl := binary.LittleEndian.Uint64(good)
	damage := map[string][]byte{
		"truncated":        good[:len(good)-100],
		"tiny":             good[:5],
		"header too long":  append(binary.LittleEndian.AppendUint64(nil, uint64(len(good))), good[8:]...),
		"header not json":  append(append([]byte{}, good[:8]...), append([]byte("{{{{"), good[12:]...)...),
		"offsets past end": []byte(strings.Replace(string(good[:8+hl]), `"data_offsets":[0,`, `"data_offsets":[99999999,`, 1) + string(good[8+hl:])),
	}
	for what, data := range damage {
		t.Run(what, func(t *testing.T) {
			dir := t.TempDir()
			cfgData, _ := os.ReadFile(filepath.Join(src, "config.json"))
			os.WriteFile(filepath.Join(dir, "config.json"), cfgData, 0o644)
			os.WriteFile(filepath.Join(dir, "model.safetensors"), data, 0o644)
			_, err := checkpoint.Load(dir, cfg)
			if err == nil {
				t.Fatal("loaded a damaged file")
			}
			if !strings.Contains(err.Error(), "model.safetensors") {
				t.Errorf("error %q does not name the file", err)
			}
			t.Log(err)
		})
	}
}

func rawOf(e checkpoint.Entry) raw {
	dt, _ := safetensors.ParseDType(e.DType)
	return raw{dt, shapeU(e.Shape), e.Data}
}

// FuzzParseSafetensors: arbitrary bytes never panic the reader, and whatever
// it accepts converts or errors cleanly.
func FuzzParseSafetensors(f *testing.F) {
	if r := fixtures.Root(); r != "" {
		if data, err := os.ReadFile(filepath.Join(r, "tiny-gpt2", "model.safetensors")); err == nil {
			f.Add(data[:min(len(data), 4096)])
		}
	}
	f.Add([]byte{})
	f.Add([]byte("\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}    \x00\x00\x80\x3f"))
	f.Fuzz(func(t *testing.T, data []byte) {
		es, err := checkpoint.ParseSafetensors("fuzz.safetensors", data)
		if err != nil {
			return
		}
		for _, e := range es {
			checkpoint.Convert(e)
		}
	})
}
