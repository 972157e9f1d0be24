//go:build !cgo

package driver

import (
	"errors"
	"unsafe"
)

// LibName is the library Open would load.
const LibName = "libcuda.so.1"

var errNoCgo = errors.New("cuda: built without cgo (CGO_ENABLED=0): the driver cannot be loaded")

// Context is never created without cgo.
type Context struct{}
type Module struct{}
type Function struct{}

func Open(ordinal int) (*Context, error)                    { return nil, errNoCgo }
func openLib(lib string, ordinal int) (*Context, error)     { return nil, errNoCgo }
func (c *Context) Info() Info                               { return Info{} }
func (c *Context) Close() error                             { return nil }
func (c *Context) LoadModule(image []byte) (*Module, error) { return nil, errNoCgo }
func (c *Context) Unload(m *Module) error                   { return errNoCgo }
func (c *Context) Function(m *Module, name string) (*Function, error) {
	return nil, errNoCgo
}
func (c *Context) SetMaxDynamicShared(f *Function, bytes int) error { return errNoCgo }
func (c *Context) Alloc(n int) (Ptr, error)                         { return 0, errNoCgo }
func (c *Context) Free(p Ptr) error                                 { return errNoCgo }
func (c *Context) MemInfo() (free, total uint64, err error)         { return 0, 0, errNoCgo }
func (c *Context) HtoD(dst Ptr, src unsafe.Pointer, n int) error    { return errNoCgo }
func (c *Context) DtoH(dst unsafe.Pointer, src Ptr, n int) error    { return errNoCgo }
func (c *Context) DtoD(dst, src Ptr, n int) error                   { return errNoCgo }
func (c *Context) Zero(p Ptr, n int) error                          { return errNoCgo }
func (c *Context) Sync() error                                      { return errNoCgo }
func (c *Context) Launch(f *Function, grid, block Dim3, shmem int, args *Args) error {
	return errNoCgo
}

// NewArgs allocates an argument packer in Go memory (never handed to C here).
func NewArgs(max int) *Args {
	vals := make([]uint64, max)
	ptrs := make([]unsafe.Pointer, max)
	for i := range ptrs {
		ptrs[i] = unsafe.Pointer(&vals[i])
	}
	return &Args{vals: unsafe.Pointer(&vals[0]), ptrs: unsafe.Pointer(&ptrs[0]), max: max}
}
