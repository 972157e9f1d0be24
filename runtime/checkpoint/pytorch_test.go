package checkpoint

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"

	"github.com/neoscope/neoscope/runtime/arch"
)

// The .bin inputs in testdata are written by testdata/make_pytorch_bins.py
// (torch 1.13) from the tiny-neo fixture.

const tinyNeoDir = "../../../shared/fixtures/tiny-neo"

func fixtureEntries(t *testing.T, path string) map[string]Entry {
	t.Helper()
	es, closer, err := MapSafetensors(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closer() })
	m := map[string]Entry{}
	for _, e := range es {
		m[e.Name] = e
	}
	return m
}

func sameEntry(t *testing.T, got, want Entry) {
	t.Helper()
	if got.DType != want.DType || !sameShape(got.Shape, want.Shape) {
		t.Errorf("%s: got %s %v, want %s %v", want.Name, got.DType, got.Shape, want.DType, want.Shape)
		return
	}
	if !bytes.Equal(got.Data, want.Data) {
		for i := range got.Data {
			if got.Data[i] != want.Data[i] {
				t.Errorf("%s: bytes differ from byte %d of %d", want.Name, i, len(want.Data))
				return
			}
		}
		t.Errorf("%s: %d bytes, want %d", want.Name, len(got.Data), len(want.Data))
	}
}

func TestReadPyTorchBinMatchesSafetensors(t *testing.T) {
	want := fixtureEntries(t, filepath.Join(tinyNeoDir, "model.safetensors"))
	got, err := ReadPyTorchBin("testdata/tiny-neo.bin")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want)+1 { // + lm_head.weight, tied to wte
		t.Fatalf("%d tensors, want %d", len(got), len(want)+1)
	}
	byName := map[string]Entry{}
	for _, e := range got {
		if e.File != "testdata/tiny-neo.bin" {
			t.Errorf("%s: File = %q", e.Name, e.File)
		}
		byName[e.Name] = e
	}
	for name, w := range want {
		g, ok := byName[name]
		if !ok {
			t.Errorf("missing %s", name)
			continue
		}
		sameEntry(t, g, w)
	}
	// Tied weights share one storage: same bytes, same memory.
	lm, wte := byName["lm_head.weight"], byName["transformer.wte.weight"]
	sameEntry(t, Entry{Name: "lm_head.weight", DType: lm.DType, Shape: lm.Shape, Data: lm.Data}, wte)
	if len(lm.Data) == 0 || unsafe.Pointer(&lm.Data[0]) != unsafe.Pointer(&wte.Data[0]) {
		t.Error("lm_head.weight and transformer.wte.weight do not share memory")
	}
	if got[0].Name != "transformer.h.0.attn.attention.bias" || got[len(got)-1].Name != "lm_head.weight" {
		t.Errorf("entries not in state-dict order: first %s, last %s", got[0].Name, got[len(got)-1].Name)
	}
}

// Load picks pytorch_model.bin when there is no safetensors file, and gives
// the same weights as the fixture's model.safetensors.
func TestLoadPyTorchBinDir(t *testing.T) {
	cfg, err := arch.Load(filepath.Join(tinyNeoDir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bin, err := os.ReadFile("testdata/tiny-neo.bin")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "pytorch_model.bin"), bin, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := Load(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	want, err := Load(tinyNeoDir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer want.Close()
	if len(got.Tensors) != len(want.Tensors) {
		t.Fatalf("%d tensors, want %d", len(got.Tensors), len(want.Tensors))
	}
	for n, w := range want.Tensors {
		g := got.Tensors[n]
		if g == nil || !sameShape(g.Shape, w.Shape) || len(g.Data) != len(w.Data) {
			t.Fatalf("%s: got %v", n, g)
		}
		for i := range w.Data {
			if g.Data[i] != w.Data[i] {
				t.Fatalf("%s[%d] = %v, want %v", n, i, g.Data[i], w.Data[i])
			}
		}
	}
}

// F16, BF16 and F32 tensors in non-contiguous layouts, with storage offsets
// and shared storages, against contiguous copies written by torch.
func TestReadPyTorchBinLayouts(t *testing.T) {
	want := fixtureEntries(t, "testdata/layouts-f16.expected.safetensors")
	got, err := ReadPyTorchBin("testdata/layouts-f16.bin")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d tensors, want %d", len(got), len(want))
	}
	for _, g := range got {
		w, ok := want[g.Name]
		if !ok {
			t.Errorf("unexpected %s", g.Name)
			continue
		}
		sameEntry(t, g, w)
	}
	for _, g := range got {
		if g.Name == "half.scalar" {
			v, err := Convert(g)
			if err != nil || len(v) != 1 || v[0] != -1.5 {
				t.Errorf("half.scalar = %v, %v; want [-1.5]", v, err)
			}
		}
	}
}

func TestReadPyTorchBinLegacy(t *testing.T) {
	es, err := ReadPyTorchBin("testdata/legacy.bin")
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 1 || es[0].Name != "w" || es[0].DType != "F32" || !sameShape(es[0].Shape, []int{2, 2}) {
		t.Fatalf("got %+v", es)
	}
	if v, _ := Convert(es[0]); len(v) != 4 || v[0] != 1 || v[3] != 1 {
		t.Errorf("w = %v, want ones", v)
	}

	want := fixtureEntries(t, "testdata/layouts-f16.expected.safetensors")
	got, err := ReadPyTorchBin("testdata/layouts-legacy.bin")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d tensors, want %d", len(got), len(want))
	}
	for _, g := range got {
		sameEntry(t, g, want[g.Name])
	}

	// Every way of cutting the file short is an error, not a panic.
	raw, err := os.ReadFile("testdata/layouts-legacy.bin")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "cut.bin")
	for n := 3; n < len(raw); n += 7 {
		os.WriteFile(p, raw[:n], 0o644)
		if _, err := ReadPyTorchBin(p); err == nil {
			t.Fatalf("accepted the first %d of %d bytes", n, len(raw))
		}
	}
	os.WriteFile(p, append(raw, 0), 0o644)
	if _, err := ReadPyTorchBin(p); err == nil || !strings.Contains(err.Error(), "unexpected bytes") {
		t.Errorf("trailing byte: %v", err)
	}
}

// pk builds protocol-2 pickles by hand.
type pk struct{ bytes.Buffer }

func newPK() *pk { p := &pk{}; p.WriteString("\x80\x02"); return p }

func (p *pk) global(mod, name string) *pk { p.WriteString("c" + mod + "\n" + name + "\n"); return p }
func (p *pk) mark() *pk                   { p.WriteByte('('); return p }
func (p *pk) tuple() *pk                  { p.WriteByte('t'); return p }
func (p *pk) reduce() *pk                 { p.WriteByte('R'); return p }
func (p *pk) persid() *pk                 { p.WriteByte('Q'); return p }
func (p *pk) setitems() *pk               { p.WriteByte('u'); return p }
func (p *pk) stop() []byte                { p.WriteByte('.'); return p.Bytes() }
func (p *pk) false_() *pk                 { p.WriteByte('\x89'); return p }
func (p *pk) str(s string) *pk {
	p.WriteByte('X')
	binary.Write(&p.Buffer, binary.LittleEndian, uint32(len(s)))
	p.WriteString(s)
	return p
}
func (p *pk) int(n int) *pk {
	p.WriteByte('J')
	binary.Write(&p.Buffer, binary.LittleEndian, int32(n))
	return p
}
func (p *pk) ints(ns ...int) *pk {
	p.mark()
	for _, n := range ns {
		p.int(n)
	}
	return p.tuple()
}

// tensor pushes _rebuild_tensor_v2(storage(class, key, numel), off, size, stride, False, OrderedDict()).
func (p *pk) tensor(class, key string, numel, off int, size, stride []int) *pk {
	p.global("torch._utils", "_rebuild_tensor_v2").mark()
	p.mark().str("storage").global("torch", class).str(key).str("cpu").int(numel).tuple().persid()
	p.int(off).ints(size...).ints(stride...).false_()
	p.global("collections", "OrderedDict").mark().tuple().reduce()
	return p.tuple().reduce()
}

// stateDict returns a pickle of OrderedDict([(name, tensor)]).
func stateDict(name, class, key string, numel, off int, size, stride []int) []byte {
	p := newPK().global("collections", "OrderedDict").mark().tuple().reduce()
	p.mark().str(name).tensor(class, key, numel, off, size, stride).setitems()
	return p.stop()
}

// writeZip writes records under root "archive/" into a temp file.
func writeZip(t *testing.T, records map[string][]byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "pytorch_model.bin")
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, name := range []string{"data.pkl", "version", "byteorder", "data/0", "data/1", "constants.pkl"} {
		data, ok := records[name]
		if !ok {
			continue
		}
		w, err := zw.CreateHeader(&zip.FileHeader{Name: "archive/" + name, Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func f32bytes(vs ...float32) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, vs)
	return b.Bytes()
}

func TestReadPyTorchBinHandMade(t *testing.T) {
	// A 2x3 view at offset 1 with stride (1, 2) of a 7-element storage:
	// element [i][j] = storage[1 + i + 2j].
	path := writeZip(t, map[string][]byte{
		"data.pkl": stateDict("w", "FloatStorage", "0", 7, 1, []int{2, 3}, []int{1, 2}),
		"version":  []byte("3\n"), "byteorder": []byte("little"),
		"data/0": f32bytes(0, 1, 2, 3, 4, 5, 6),
	})
	es, err := ReadPyTorchBin(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 1 || es[0].Name != "w" || !sameShape(es[0].Shape, []int{2, 3}) {
		t.Fatalf("got %+v", es)
	}
	v, _ := Convert(es[0])
	want := []float32{1, 3, 5, 2, 4, 6}
	for i := range want {
		if v[i] != want[i] {
			t.Fatalf("w = %v, want %v", v, want)
		}
	}
}

func TestReadPyTorchBinRejects(t *testing.T) {
	canary := filepath.Join(t.TempDir(), "pwned")
	osSystem := newPK().global("os", "system").mark().str("touch " + canary).tuple().reduce().stop()
	// Protocol 4 STACK_GLOBAL: builtins.eval("...")
	var evalPkl bytes.Buffer
	evalPkl.WriteString("\x80\x04")
	for _, s := range []string{"builtins", "eval"} {
		evalPkl.WriteByte('\x8c')
		evalPkl.WriteByte(byte(len(s)))
		evalPkl.WriteString(s)
	}
	evalPkl.WriteString("\x93")
	evalPkl.WriteString("(\x8c\x10__import__('os')t")
	evalPkl.WriteString("R.")
	// _rebuild_parameter wrapping a good tensor: not on the list.
	param := newPK().global("collections", "OrderedDict").mark().tuple().reduce().mark().str("w")
	param.global("torch._utils", "_rebuild_parameter").mark()
	param.tensor("FloatStorage", "0", 2, 0, []int{2}, []int{1}).false_()
	param.global("collections", "OrderedDict").mark().tuple().reduce().tuple().reduce().setitems()
	// A dict holding something other than tensors.
	notTensor := newPK().global("collections", "OrderedDict").mark().tuple().reduce().mark().str("w").int(3).setitems().stop()
	good := f32bytes(1, 2)

	cases := []struct {
		name    string
		records map[string][]byte
		want    []string
	}{
		{"os.system", map[string][]byte{"data.pkl": osSystem}, []string{"os.system", "not allowed"}},
		{"builtins.eval", map[string][]byte{"data.pkl": evalPkl.Bytes()}, []string{"builtins.eval", "not allowed"}},
		{"rebuild_parameter", map[string][]byte{"data.pkl": param.stop(), "data/0": good}, []string{"torch._utils._rebuild_parameter"}},
		{"int64 storage", map[string][]byte{"data.pkl": stateDict("w", "LongStorage", "0", 1, 0, []int{1}, []int{1}), "data/0": make([]byte, 8)}, []string{"torch.LongStorage"}},
		{"not a tensor", map[string][]byte{"data.pkl": notTensor}, []string{`"w"`, "want a tensor"}},
		{"missing storage", map[string][]byte{"data.pkl": stateDict("w", "FloatStorage", "0", 2, 0, []int{2}, []int{1})}, []string{"archive/data/0", "missing"}},
		{"short storage", map[string][]byte{"data.pkl": stateDict("w", "FloatStorage", "0", 3, 0, []int{3}, []int{1}), "data/0": good}, []string{"storage 0", "holds 8 bytes", "want 12"}},
		{"view past end", map[string][]byte{"data.pkl": stateDict("w", "FloatStorage", "0", 2, 1, []int{2}, []int{1}), "data/0": good}, []string{`tensor "w"`, "past the end"}},
		{"huge stride", map[string][]byte{"data.pkl": stateDict("w", "FloatStorage", "0", 2, 0, []int{3}, []int{1 << 30}), "data/0": good}, []string{`tensor "w"`, "past the end"}},
		{"expanded too far", map[string][]byte{"data.pkl": stateDict("w", "FloatStorage", "0", 2, 0, []int{1 << 30}, []int{0}), "data/0": good}, []string{`tensor "w"`, "expanded view"}},
		{"negative stride", map[string][]byte{"data.pkl": stateDict("w", "FloatStorage", "0", 2, 0, []int{2}, []int{-1}), "data/0": good}, []string{`tensor "w"`, "negative"}},
		{"big endian", map[string][]byte{"data.pkl": stateDict("w", "FloatStorage", "0", 2, 0, []int{2}, []int{1}), "data/0": good, "byteorder": []byte("big")}, []string{"byteorder"}},
		{"torchscript", map[string][]byte{"data.pkl": osSystem, "constants.pkl": {}}, []string{"TorchScript"}},
		{"truncated pickle", map[string][]byte{"data.pkl": osSystem[:10]}, []string{"pytorch_model.bin"}},
		{"no data.pkl", map[string][]byte{"version": []byte("3")}, []string{"no <root>/data.pkl"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := writeZip(t, c.records)
			es, err := ReadPyTorchBin(path)
			if err == nil {
				t.Fatalf("accepted: %+v", es)
			}
			msg := err.Error()
			t.Log(msg)
			if !strings.Contains(msg, path) {
				t.Errorf("error %q does not name the file", msg)
			}
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not mention %q", msg, w)
				}
			}
		})
	}
	if _, err := os.Stat(canary); err == nil {
		t.Fatal("the pickle ran a command")
	}
}

func TestReadPyTorchBinCorrupt(t *testing.T) {
	good := stateDict("w", "FloatStorage", "0", 2, 0, []int{2}, []int{1})
	path := writeZip(t, map[string][]byte{"data.pkl": good, "data/0": f32bytes(1, 2)})
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Flip a byte of the storage: the zip CRC catches it.
	i := bytes.Index(raw, f32bytes(1, 2))
	raw[i] ^= 0xff
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadPyTorchBin(path); err == nil || !strings.Contains(err.Error(), "CRC") {
		t.Errorf("err = %v, want a CRC error", err)
	}
	// Not a checkpoint at all.
	other := filepath.Join(t.TempDir(), "x.bin")
	os.WriteFile(other, []byte("hello"), 0o644)
	if _, err := ReadPyTorchBin(other); err == nil || !strings.Contains(err.Error(), "not a PyTorch checkpoint") {
		t.Errorf("err = %v", err)
	}
	// The tar format of torch < 0.4.
	tarHead := make([]byte, 1024)
	copy(tarHead, "storages")
	copy(tarHead[257:], "ustar")
	os.WriteFile(other, tarHead, 0o644)
	if _, err := ReadPyTorchBin(other); err == nil || !strings.Contains(err.Error(), "tar-based") {
		t.Errorf("tar: %v", err)
	}
	// Truncated zip.
	os.WriteFile(other, raw[:len(raw)/2], 0o644)
	if _, err := ReadPyTorchBin(other); err == nil || !strings.Contains(err.Error(), other) {
		t.Errorf("err = %v", err)
	}
}

// FuzzReadPyTorchBin: no input may panic.
func FuzzReadPyTorchBin(f *testing.F) {
	f.Add(stateDict("w", "FloatStorage", "0", 7, 1, []int{2, 3}, []int{1, 2}), f32bytes(0, 1, 2, 3, 4, 5, 6))
	f.Add(stateDict("w", "HalfStorage", "0", 4, 0, []int{2, 2}, []int{0, 1}), make([]byte, 8))
	f.Fuzz(func(t *testing.T, pkl, data []byte) {
		dir := t.TempDir()
		path := filepath.Join(dir, "f.bin")
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		w, _ := zw.CreateHeader(&zip.FileHeader{Name: "archive/data.pkl", Method: zip.Store})
		w.Write(pkl)
		w, _ = zw.CreateHeader(&zip.FileHeader{Name: "archive/data/0", Method: zip.Store})
		w.Write(data)
		zw.Close()
		os.WriteFile(path, buf.Bytes(), 0o644)
		ReadPyTorchBin(path)
	})
}

// Models written by torch at test time (skipped without torch): tiny-neo in
// the legacy format, identical to the zip one; and a whole F16 model, every
// tensor the fixture's F32 value rounded to half, as torch's .half() and
// F32ToF16 both round to nearest even.
func TestReadPyTorchBinGenerated(t *testing.T) {
	if testing.Short() {
		t.Skip("runs python and torch (seconds)")
	}
	py := "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		t.Skip("no /usr/bin/python3")
	}
	if err := exec.Command(py, "-c", "import torch, numpy").Run(); err != nil {
		t.Skip("python3 has no torch/numpy")
	}
	gen := t.TempDir()
	if b, err := exec.Command(py, "testdata/make_pytorch_bins.py", "--generated", gen).CombinedOutput(); err != nil {
		t.Fatalf("make_pytorch_bins.py --generated: %v\n%s", err, b)
	}
	// Load wants the name pytorch_model.bin.
	out := filepath.Join(gen, "pytorch_model.bin")
	if err := os.Rename(filepath.Join(gen, "half.bin"), out); err != nil {
		t.Fatal(err)
	}
	legacy := filepath.Join(gen, "legacy.bin")
	zipped, err := ReadPyTorchBin("testdata/tiny-neo.bin")
	if err != nil {
		t.Fatal(err)
	}
	old, err := ReadPyTorchBin(legacy)
	if err != nil {
		t.Fatal(err)
	}
	if len(old) != len(zipped) {
		t.Fatalf("legacy: %d tensors, want %d", len(old), len(zipped))
	}
	for i := range old {
		if old[i].Name != zipped[i].Name {
			t.Fatalf("legacy tensor %d is %s, want %s", i, old[i].Name, zipped[i].Name)
		}
		sameEntry(t, old[i], zipped[i])
	}
	want := fixtureEntries(t, filepath.Join(tinyNeoDir, "model.safetensors"))
	got, err := ReadPyTorchBin(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d tensors, want %d", len(got), len(want))
	}
	for _, g := range got {
		w := want[g.Name]
		if w.DType != "F32" {
			sameEntry(t, g, w)
			continue
		}
		if g.DType != "F16" || !sameShape(g.Shape, w.Shape) {
			t.Fatalf("%s: %s %v, want F16 %v", g.Name, g.DType, g.Shape, w.Shape)
		}
		f32, _ := Convert(w)
		for i, v := range f32 {
			if h := binary.LittleEndian.Uint16(g.Data[2*i:]); h != F32ToF16(v) {
				t.Fatalf("%s[%d]: half %#04x, want %#04x (from %v)", g.Name, i, h, F32ToF16(v), v)
			}
		}
	}
	cfg, err := arch.Load(filepath.Join(tinyNeoDir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	w, err := Load(filepath.Dir(out), cfg)
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
}

// FuzzReadPyTorchLegacy: no legacy-format input may panic.
func FuzzReadPyTorchLegacy(f *testing.F) {
	for _, p := range []string{"testdata/legacy.bin", "testdata/layouts-legacy.bin"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "f.bin")
		os.WriteFile(path, data, 0o644)
		ReadPyTorchBin(path)
	})
}
