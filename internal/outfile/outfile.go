// Package outfile writes result files so that a reader never sees a
// half-written file: data goes to a temporary file beside the target, is
// synced, then renamed over it.
package outfile

import (
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"unsafe"

	"github.com/nlpodyssey/safetensors"
)

// Write creates path atomically from what fill writes.
func Write(path string, fill func(w io.Writer) error) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("%s: cannot create its directory: %v", path, unwrapPath(err))
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		// Name the file asked for, not the temporary one.
		return fmt.Errorf("%s: cannot write in %s: %v", path, dir, unwrapPath(err))
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err = fill(f); err != nil {
		return fmt.Errorf("%s: %w", path, hideTemp{err, f.Name()})
	}
	if err = f.Chmod(0o644); err != nil { // CreateTemp makes 0600 files
		return fmt.Errorf("%s: %v", path, unwrapPath(err))
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("%s: %v", path, unwrapPath(err))
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("%s: %v", path, unwrapPath(err))
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("%s: %v", path, unwrapPath(err))
	}
	return nil
}

// F32 is a float32 tensor for safetensors output.
type F32 struct {
	ShapeOf []int
	Values  []float32
}

func (t F32) DType() safetensors.DType { return safetensors.F32 }
func (t F32) Shape() []uint64 {
	s := make([]uint64, len(t.ShapeOf))
	for i, d := range t.ShapeOf {
		s[i] = uint64(d)
	}
	return s
}
func (t F32) Data() []byte {
	if len(t.Values) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&t.Values[0])), 4*len(t.Values))
}
func (t F32) DataLen() uint64 { return uint64(4 * len(t.Values)) }

// Safetensors writes float32 tensors atomically as a safetensors file with
// meta as its metadata (meta["producer"] names the command that wrote it, see
// CheckRerun).
func Safetensors(path string, tensors map[string]F32, meta map[string]string) error {
	for n, t := range tensors {
		want := 1
		for _, d := range t.ShapeOf {
			want *= d
		}
		if want != len(t.Values) {
			return fmt.Errorf("%s: tensor %q has %d values for shape %v", path, n, len(t.Values), t.ShapeOf)
		}
	}
	return Write(path, func(w io.Writer) error { return safetensors.SerializeToWriter(tensors, meta, w) })
}

// Round rounds x to 9 significant digits for JSON output (float32 results
// carry no more).
func Round(x float64) float64 {
	if x == 0 || math.IsNaN(x) || math.IsInf(x, 0) {
		return x
	}
	return roundSig(x, 9)
}

func roundSig(x float64, n int) float64 {
	p := math.Pow(10, float64(n)-math.Ceil(math.Log10(math.Abs(x))))
	return math.Round(x*p) / p
}

// hideTemp is an error of the temporary file's writer, told without the
// temporary file's name (the caller names the file asked for).
type hideTemp struct {
	err error
	tmp string
}

func (h hideTemp) Error() string { return strings.ReplaceAll(h.err.Error(), " "+h.tmp, "") }
func (h hideTemp) Unwrap() error { return h.err }
