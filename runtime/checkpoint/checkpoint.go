// Package checkpoint reads weights in Hugging Face layout (model.safetensors,
// a sharded model.safetensors.index.json, or a legacy pytorch_model.bin) and
// checks every tensor against the architecture description (runtime/arch):
// which tensors a family has, their shapes, the prefixes its names may carry
// ("transformer.", "gpt_neox.") and the buffers to ignore.
//
// safetensors files are memory-mapped: F32 tensors whose data is 4-byte
// aligned are used in place (no copy); F16 and BF16 are upcast exactly to
// float32. Tensor names are canonicalised by dropping the family's prefix,
// so hub files with and without it load alike.
package checkpoint

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"syscall"
	"unsafe"

	"github.com/neoscope/neoscope/runtime/arch"
)

// Entry is one stored tensor before conversion: little-endian bytes.
type Entry struct {
	Name  string // as stored
	DType string // "F32", "F16", "BF16", ...
	Shape []int
	Data  []byte
	File  string // for error messages
	// Mapped: Data lies in a read-only file mapping (MapSafetensors), so its
	// pages can be dropped once converted (see releasePages).
	Mapped bool
}

// Tensor is a float32 weight tensor in the layout it was stored in.
type Tensor struct {
	Shape []int
	Data  []float32
}

// Weights holds a model's parameters by canonical name (the family's prefix
// dropped), e.g. "h.3.attn.attention.q_proj.weight" or
// "layers.3.attention.query_key_value.weight".
type Weights struct {
	Tensors map[string]*Tensor
	// Stored maps a canonical name to the name the file stores it under
	// (with or without the family's prefix), for outputs that must use the
	// checkpoint's own names (neoscope grad).
	Stored  map[string]string
	closers []func() error
}

// StoredName is the name canonical name n is stored under in the
// checkpoint (n itself when unknown).
func (w *Weights) StoredName(n string) string {
	if s, ok := w.Stored[n]; ok {
		return s
	}
	return n
}

// offHeap allocates the float32 copy of a converted tensor (F16, BF16 or F64
// upcast, or unaligned F32) in an anonymous mapping of its own, released by
// Close like the file mappings, rather than in Go's heap. In the heap,
// gigabytes of weights set the collector's pace: with GOGC=100 it let
// garbage grow to the weights' size before collecting (830 MB of it on a
// gpt2-xl sweep, issue 17); outside it, collections follow what the work
// itself allocates. The pages come zeroed from the kernel, as Go's would.
// Should the mapping fail, the copy goes to the heap instead.
func (w *Weights) offHeap(n int) []float32 {
	if n == 0 {
		return nil
	}
	b, err := syscall.Mmap(-1, 0, 4*n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		return make([]float32, n)
	}
	w.closers = append(w.closers, func() error { return syscall.Munmap(b) })
	return unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), n)
}

// Close releases memory maps. Tensors must not be used afterwards.
func (w *Weights) Close() error {
	var first error
	for _, c := range w.closers {
		if err := c(); err != nil && first == nil {
			first = err
		}
	}
	w.closers = nil
	return first
}

// Get returns the tensor with canonical name n (nil if absent).
func (w *Weights) Get(n string) *Tensor { return w.Tensors[n] }

// Canonical drops the "transformer." prefix (GPT-Neo and GPT-2 names); the
// prefixes of every family are in its arch.Spec.
func Canonical(name string) string { return strings.TrimPrefix(name, "transformer.") }

// Expected lists every parameter tensor a model of this architecture must
// have, with its stored shape (arch.Config.Tensors: the family's description).
func Expected(c *arch.Config) map[string][]int { return c.Tensors() }

// Assemble converts entries into Weights and checks them against c: every
// expected tensor present exactly once with its shape, nothing unexpected
// besides mask buffers and an optional tied lm_head.weight.
func Assemble(c *arch.Config, entries []Entry) (_ *Weights, err error) {
	want := Expected(c)
	from := map[string]string{}
	w := &Weights{Tensors: map[string]*Tensor{}, Stored: from}
	defer func() {
		if err != nil {
			w.Close() // the converted copies made so far
		}
	}()
	for _, e := range entries {
		canon := c.Spec.Canonical(e.Name)
		if c.Spec.IsBuffer(canon) {
			continue
		}
		shape, ok := want[canon]
		if !ok {
			if canon == c.Spec.Names.TiedUnembed && c.TiedUnembed {
				continue // tied: the unembedding is W_E
			}
			return nil, fmt.Errorf("%s: unexpected tensor %q (not a %s parameter for this config)", e.File, e.Name, c.Family)
		}
		if prev, dup := from[canon]; dup {
			return nil, fmt.Errorf("%s: tensor %q appears twice (also as %q)", e.File, e.Name, prev)
		}
		from[canon] = e.Name
		if !sameShape(shape, e.Shape) {
			return nil, fmt.Errorf("%s: tensor %q has shape %v, want %v from config", e.File, e.Name, e.Shape, shape)
		}
		data, err := convertInto(e, w.offHeap)
		if err != nil {
			return nil, err
		}
		if e.Mapped && e.DType != "F32" {
			releasePages(e.Data) // upcast copy made: the F16/BF16 file pages are not needed
		}
		w.Tensors[canon] = &Tensor{Shape: shape, Data: data}
	}
	var missing []string
	for n := range want {
		if _, ok := w.Tensors[n]; !ok {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		sortStrings(missing)
		more := ""
		if len(missing) > 5 {
			more = fmt.Sprintf(" and %d more", len(missing)-5)
			missing = missing[:5]
		}
		src := "checkpoint"
		if len(entries) > 0 {
			src = entries[0].File
		}
		return nil, fmt.Errorf("%s: missing tensor(s) %s%s for a %d-layer %s config", src, strings.Join(missing, ", "), more, c.Layers, c.Family)
	}
	return w, nil
}

func sameShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// Convert returns e's data as float32: in place for aligned little-endian
// F32, converted otherwise (F16 and BF16 over GOMAXPROCS goroutines, see
// upcast.go) into a new Go slice.
func Convert(e Entry) ([]float32, error) {
	return convertInto(e, func(n int) []float32 { return make([]float32, n) })
}

// convertInto is Convert with the converted copy's memory from alloc.
func convertInto(e Entry, alloc func(n int) []float32) ([]float32, error) {
	n := 1
	for _, d := range e.Shape {
		n *= d
	}
	var size int
	switch e.DType {
	case "F32":
		size = 4
	case "F16", "BF16":
		size = 2
	case "F64":
		size = 8
	default:
		return nil, fmt.Errorf("%s: tensor %q has dtype %s; want F32, F16 or BF16", e.File, e.Name, e.DType)
	}
	if len(e.Data) != n*size {
		return nil, fmt.Errorf("%s: tensor %q holds %d bytes, want %d for %s %v", e.File, e.Name, len(e.Data), n*size, e.DType, e.Shape)
	}
	out := make([]float32, 0)
	switch e.DType {
	case "F32":
		if n > 0 && uintptr(unsafe.Pointer(&e.Data[0]))%4 == 0 {
			return unsafe.Slice((*float32)(unsafe.Pointer(&e.Data[0])), n), nil
		}
		out = alloc(n)
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(e.Data[4*i:]))
		}
	case "F16", "BF16":
		out = alloc(n)
		upcast(out, e.Data, e.DType == "BF16") // upcast.go: table lookup, parallel
	case "F64":
		out = alloc(n)
		for i := range out {
			out[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(e.Data[8*i:])))
		}
	}
	return out, nil
}

// F16ToF32 converts an IEEE half to float32 exactly.
func F16ToF32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0 && mant == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal: value = mant * 2^-24
		f := float32(mant) * (1.0 / (1 << 24))
		if sign != 0 {
			f = -f
		}
		return f
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	}
	return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
}

// F32ToF16 rounds to nearest even half precision (used when writing F16).
func F32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int((b>>23)&0xff) - 127 + 15
	mant := b & 0x7fffff
	if (b>>23)&0xff == 0xff {
		if mant != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	}
	if exp >= 0x1f {
		return sign | 0x7c00
	}
	if exp <= 0 {
		if exp < -10 {
			return sign
		}
		mant |= 0x800000
		shift := uint32(14 - exp)
		half := mant >> shift
		rem := mant & (1<<shift - 1)
		mid := uint32(1) << (shift - 1)
		if rem > mid || (rem == mid && half&1 == 1) {
			half++
		}
		return sign | uint16(half)
	}
	half := uint16(exp)<<10 | uint16(mant>>13)
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && half&1 == 1) {
		half++
	}
	return sign | half
}
