package checkpoint

import (
	"encoding/binary"
	"fmt"
	"math"
	"runtime"
	"testing"
)

// halvesEntry is an entry of n halves of dtype dt cycling through every bit
// pattern from start, its data beginning off bytes into a fresh buffer (an
// odd off exercises the decode-each-half path).
func halvesEntry(dt string, n, start, off int) Entry {
	buf := make([]byte, off+2*n)
	for i := 0; i < n; i++ {
		binary.LittleEndian.PutUint16(buf[off+2*i:], uint16(start+i))
	}
	return Entry{Name: "w", DType: dt, Shape: []int{n}, Data: buf[off:], File: "test"}
}

// TestUpcastBitIdentical: Convert's F16 result is bit for bit the scalar
// F16ToF32 of each of the 65,536 halves (zeros, subnormals, normals, both
// infinities, quiet and signalling NaNs with their payloads), and BF16's is
// the half's bits as a float32's top 16; on the aligned (in-place []uint16)
// and odd-offset paths, on 1 to 3 goroutines (ranges of uneven length), and
// with a length that is not a multiple of the range alignment.
func TestUpcastBitIdentical(t *testing.T) {
	want := map[string]func(h uint16) uint32{
		"F16":  func(h uint16) uint32 { return math.Float32bits(F16ToF32(h)) },
		"BF16": func(h uint16) uint32 { return uint32(h) << 16 },
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, procs := range []int{1, 2, 3} {
		runtime.GOMAXPROCS(procs)
		for _, dt := range []string{"F16", "BF16"} {
			for _, off := range []int{0, 1} {
				// 1<<16 values (one goroutine), and 13 x 65,536 + 1,234 from
				// pattern 0x8000 (up to 3 goroutines, at least upcastMinChunk
				// values each; the last range is shorter).
				for _, n := range []int{1 << 16, 13<<16 + 1234} {
					start := 0
					if n > 1<<16 {
						start = 0x8000
					}
					e := halvesEntry(dt, n, start, off)
					got, err := Convert(e)
					if err != nil {
						t.Fatal(err)
					}
					name := fmt.Sprintf("%s procs=%d off=%d n=%d", dt, procs, off, n)
					bad := 0
					for i, v := range got {
						h := uint16(start + i)
						if math.Float32bits(v) != want[dt](h) {
							t.Errorf("%s: half %#04x -> %#08x, want %#08x", name, h, math.Float32bits(v), want[dt](h))
							if bad++; bad == 10 {
								t.FailNow()
							}
						}
					}
				}
			}
		}
	}
}

// TestF16TableSpotValues pins the scalar reference the table is built from
// on the classes a wrong formula would break (so both cannot be wrong alike).
func TestF16TableSpotValues(t *testing.T) {
	for _, c := range []struct {
		h    uint16
		bits uint32
	}{
		{0x0000, 0x00000000}, {0x8000, 0x80000000}, // signed zeros
		{0x0001, 0x33800000}, {0x83ff, 0xb87fc000}, // smallest and largest subnormals: 2^-24, -(1023 x 2^-24)
		{0x0400, 0x38800000}, {0x3c00, 0x3f800000}, {0x7bff, 0x477fe000}, // 2^-14, 1, 65504
		{0x7c00, 0x7f800000}, {0xfc00, 0xff800000}, // infinities
		{0x7e00, 0x7fc00000}, {0x7c01, 0x7f802000}, {0xfd55, 0xffaaa000}, // quiet NaN, signalling NaNs keep their payloads
	} {
		if got := math.Float32bits(f16Table()[c.h]); got != c.bits {
			t.Errorf("half %#04x -> %#08x, want %#08x", c.h, got, c.bits)
		}
	}
}

// BenchmarkUpcast: ns per value converted, table and shift against the
// scalar F16ToF32 loop they replace, on one goroutine and on GOMAXPROCS
// (16M values: 32 MiB in, 64 MiB out, the size of a gpt-neo-2.7B MLP
// matrix), the destination written once before timing (no page faults).
func BenchmarkUpcast(b *testing.B) {
	const n = 1 << 24
	src := make([]byte, 2*n)
	for i := 0; i < n; i++ {
		binary.LittleEndian.PutUint16(src[2*i:], uint16(i*2654435761>>7)) // scattered patterns
	}
	dst := make([]float32, n)
	for i := range dst {
		dst[i] = 1
	}
	run := func(name string, f func()) {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(2 * n)
			for i := 0; i < b.N; i++ {
				f()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/value")
		})
	}
	run("F16/scalar", func() {
		for i := range dst {
			dst[i] = F16ToF32(binary.LittleEndian.Uint16(src[2*i:]))
		}
	})
	run("F16/table-1", func() { upcastRange(dst, src, false) })
	run("F16/table-procs", func() { upcast(dst, src, false) })
	run("BF16/shift-1", func() { upcastRange(dst, src, true) })
	run("BF16/shift-procs", func() { upcast(dst, src, true) })
}
