package cuda

import (
	"fmt"
	"math/bits"

	"github.com/neoscope/neoscope/cuda/driver"
)

// pool is the Backend's caching device allocator. cuMemAlloc and cuMemFree
// are slow (cuMemFree also waits for the device), so a freed tensor's block
// goes to a free list by size class and the next tensor of that class takes
// it; memory goes back to the driver only when an allocation fails (then
// every cached block is released and the allocation retried once) and at
// Close.
//
// Size classes: requests are rounded up to at least 256 bytes; up to 1 MiB
// to the next power of two; above that to the next multiple of 1/8 of the
// enclosing power of two (at most 12.5% slack, so a 154 MB embedding matrix
// does not cost 268 MB). A block serves only requests of its own class.
//
// Ordering (why reuse needs no synchronisation): every kernel, memset and
// device-to-device copy of a Backend runs on its one stream, in the order
// enqueued, and host-to-device and device-to-host copies first synchronise
// that stream (cuda/driver). So work enqueued after Free that reuses the
// block runs after every enqueued use of the freed tensor: Free is
// stream-ordered even though it returns at once. Returning memory to the
// driver (release) synchronises the stream first. If the Backend ever uses
// several streams, a block must also remember its last stream and an event
// (cuEventRecord) to wait on before another stream takes it.
type pool struct {
	free   map[int][]driver.Ptr // class bytes -> cached blocks
	cached int                  // bytes in free
	live   int                  // bytes handed out (by class)
}

// sizeClass is the number of bytes a request of n bytes is given.
func sizeClass(n int) int {
	if n <= 256 {
		return 256
	}
	p := 1 << bits.Len(uint(n-1)) // next power of two >= n
	if p <= 1<<20 {
		return p
	}
	step := p / 16 // 1/8 of p/2, the power of two below n
	return (n + step - 1) / step * step
}

// allocRaw returns a block of at least n bytes with unspecified contents.
func (b *Backend) allocRaw(n int) (driver.Ptr, int, error) {
	c := sizeClass(n)
	if l := b.pool.free[c]; len(l) > 0 {
		p := l[len(l)-1]
		b.pool.free[c] = l[:len(l)-1]
		b.pool.cached -= c
		b.pool.live += c
		return p, c, nil
	}
	p, err := b.dev.alloc(c)
	if err != nil && b.pool.cached > 0 {
		if rerr := b.releaseCached(); rerr != nil {
			return 0, 0, rerr
		}
		p, err = b.dev.alloc(c)
	}
	if err != nil {
		return 0, 0, err
	}
	b.pool.live += c
	return p, c, nil
}

// freeRaw returns a block of class c to the cache (see pool: stream-ordered).
func (b *Backend) freeRaw(p driver.Ptr, c int) {
	if b.pool.free == nil {
		b.pool.free = map[int][]driver.Ptr{}
	}
	b.pool.free[c] = append(b.pool.free[c], p)
	b.pool.cached += c
	b.pool.live -= c
}

// releaseCached gives every cached block back to the driver, after the
// stream's pending work.
func (b *Backend) releaseCached() error {
	if b.pool.cached == 0 {
		return nil
	}
	if err := b.dev.sync(); err != nil {
		return fmt.Errorf("cuda: releasing cached device memory: %w", err)
	}
	for c, l := range b.pool.free {
		for _, p := range l {
			b.dev.free(p)
		}
		delete(b.pool.free, c)
	}
	b.pool.cached = 0
	return nil
}

// ReleaseCached returns the device memory cached by freed tensors to the
// driver (for another process, or before measuring free memory).
func (b *Backend) ReleaseCached() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.releaseCached()
}

// MemStats reports the bytes held by live tensors (rounded to their size
// classes) and the bytes cached for reuse. Scratch buffers are not counted.
func (b *Backend) MemStats() (live, cached int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.pool.live, b.pool.cached
}
