package checkpoint

import (
	"encoding/binary"
	"math"
	"runtime"
	"sync"
	"unsafe"
)

// Upcasting F16 and BF16 to float32 at load: the one pass over every weight
// of a half-precision checkpoint (2.7e9 values on gpt-neo-2.7B).
//
// The scalar F16ToF32 (a switch on the exponent, then a call per element)
// ran at about 3 ns per value on this machine's 2 cores, single-threaded:
// 7.9 s of user time for gpt-neo-2.7B, beside the kernel's time to fault in
// and zero 10 GB of float32 destination. Here each half is one load from a
// 256 KiB table of all 65,536 results (built from F16ToF32, so exact by
// construction, NaN payloads and signalling NaNs included, which F16C's
// VCVTPH2PS would quiet; plain Go, so the gonum build without cgo gets it
// too), BF16 is a shift, and a tensor is split over GOMAXPROCS goroutines
// (the --threads setting) that write straight into the one destination:
// 0.75 ns per value on one goroutine, 0.36 on two (BenchmarkUpcast; a
// four-at-a-time variant reading uint64s gained 8% and was left out). What
// is left of a big load is mostly the kernel zeroing the fresh destination
// pages (see README, "Load time").

// f16Table is F16ToF32 of every half bit pattern, built on first use.
var f16Table = sync.OnceValue(func() *[1 << 16]float32 {
	t := new([1 << 16]float32)
	for h := range t {
		t[h] = F16ToF32(uint16(h))
	}
	return t
})

// littleEndianHost: the file's little-endian halves can be read in place
// as []uint16 (every platform Go ships for but s390x and big-endian ppc64/mips).
var littleEndianHost = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// upcastMinChunk is the least number of values a goroutine is given (1 MiB
// of float32 output): below it a tensor is converted by the caller alone.
const upcastMinChunk = 1 << 18

// upcast converts the little-endian halves in src (F16, or BF16 when bf16)
// into dst, len(src) == 2*len(dst), split into contiguous ranges over
// GOMAXPROCS goroutines. Range starts are multiples of 1024 values, so no
// two goroutines write one 4 KiB page of dst.
func upcast(dst []float32, src []byte, bf16 bool) {
	n := len(dst)
	if len(src) != 2*n {
		panic("checkpoint: upcast: source and destination lengths differ")
	}
	workers := min(runtime.GOMAXPROCS(0), n/upcastMinChunk)
	if workers <= 1 {
		upcastRange(dst, src, bf16)
		return
	}
	per := (n/workers + 1023) &^ 1023
	var wg sync.WaitGroup
	for lo := 0; lo < n; lo += per {
		hi := min(lo+per, n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			upcastRange(dst[lo:hi], src[2*lo:2*hi], bf16)
		}()
	}
	wg.Wait()
}

// upcastRange converts one range on the calling goroutine.
func upcastRange(dst []float32, src []byte, bf16 bool) {
	if len(dst) == 0 {
		return
	}
	if littleEndianHost && uintptr(unsafe.Pointer(&src[0]))%2 == 0 {
		h := unsafe.Slice((*uint16)(unsafe.Pointer(&src[0])), len(dst))
		if bf16 {
			bf16Halves(dst, h)
		} else {
			f16Halves(dst, h, f16Table())
		}
		return
	}
	// Odd offset in the file, or a big-endian host: decode each half.
	if bf16 {
		for i := range dst {
			dst[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(src[2*i:])) << 16)
		}
		return
	}
	tab := f16Table()
	for i := range dst {
		dst[i] = tab[binary.LittleEndian.Uint16(src[2*i:])]
	}
}

// f16Halves: dst[i] = F16ToF32(h[i]) by table; the uint16 index needs no
// bounds check and the reslice lifts dst's out of the loop.
func f16Halves(dst []float32, h []uint16, tab *[1 << 16]float32) {
	dst = dst[:len(h)]
	for i, x := range h {
		dst[i] = tab[x]
	}
}

// bf16Halves: dst[i] is h[i]'s bits as the top half of a float32.
func bf16Halves(dst []float32, h []uint16) {
	dst = dst[:len(h)]
	for i, x := range h {
		dst[i] = math.Float32frombits(uint32(x) << 16)
	}
}
