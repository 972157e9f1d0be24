//go:build cgo

package driver

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>

// The few CUDA types we need, defined here so that no CUDA header is needed.
typedef int CUresult;
typedef int CUdevice;
typedef void* CUcontext;
typedef void* CUmodule;
typedef void* CUfunction;
typedef void* CUstream;
typedef unsigned long long CUdeviceptr;

static void* nc_lib;
static CUresult (*p_cuInit)(unsigned);
static CUresult (*p_cuDriverGetVersion)(int*);
static CUresult (*p_cuDeviceGetCount)(int*);
static CUresult (*p_cuDeviceGet)(CUdevice*, int);
static CUresult (*p_cuDeviceGetName)(char*, int, CUdevice);
static CUresult (*p_cuDeviceTotalMem_v2)(size_t*, CUdevice);
static CUresult (*p_cuDeviceGetAttribute)(int*, int, CUdevice);
static CUresult (*p_cuDevicePrimaryCtxRetain)(CUcontext*, CUdevice);
static CUresult (*p_cuDevicePrimaryCtxRelease_v2)(CUdevice);
static CUresult (*p_cuCtxSetCurrent)(CUcontext);
static CUresult (*p_cuCtxSynchronize)(void);
static CUresult (*p_cuModuleLoadData)(CUmodule*, const void*);
static CUresult (*p_cuModuleLoadDataEx)(CUmodule*, const void*, unsigned, int*, void**);
static CUresult (*p_cuModuleUnload)(CUmodule);
static CUresult (*p_cuModuleGetFunction)(CUfunction*, CUmodule, const char*);
static CUresult (*p_cuFuncSetAttribute)(CUfunction, int, int);
static CUresult (*p_cuLaunchKernel)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
	unsigned, CUstream, void**, void**);
static CUresult (*p_cuMemAlloc_v2)(CUdeviceptr*, size_t);
static CUresult (*p_cuMemFree_v2)(CUdeviceptr);
static CUresult (*p_cuMemGetInfo_v2)(size_t*, size_t*);
static CUresult (*p_cuMemcpyHtoD_v2)(CUdeviceptr, const void*, size_t);
static CUresult (*p_cuMemcpyDtoH_v2)(void*, CUdeviceptr, size_t);
static CUresult (*p_cuMemcpyDtoDAsync_v2)(CUdeviceptr, CUdeviceptr, size_t, CUstream);
static CUresult (*p_cuMemsetD8Async)(CUdeviceptr, unsigned char, size_t, CUstream);
static CUresult (*p_cuStreamCreate)(CUstream*, unsigned);
static CUresult (*p_cuStreamDestroy_v2)(CUstream);
static CUresult (*p_cuStreamSynchronize)(CUstream);
static CUresult (*p_cuGetErrorName)(CUresult, const char**);
static CUresult (*p_cuGetErrorString)(CUresult, const char**);

static char nc_err[512];

#define NC_SYM(name) do { \
	*(void**)(&p_##name) = dlsym(nc_lib, #name); \
	if (!p_##name) { snprintf(nc_err, sizeof nc_err, "%s: no symbol %s", path, #name); \
		dlclose(nc_lib); nc_lib = 0; return nc_err; } } while (0)

// nc_load opens the library and resolves every entry point by its explicit,
// versioned name; it returns NULL or a message.
static const char* nc_load(const char* path) {
	if (nc_lib) return 0;
	nc_lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!nc_lib) {
		const char* e = dlerror();
		snprintf(nc_err, sizeof nc_err, "%s", e ? e : "dlopen failed");
		return nc_err;
	}
	NC_SYM(cuInit); NC_SYM(cuDriverGetVersion); NC_SYM(cuDeviceGetCount); NC_SYM(cuDeviceGet);
	NC_SYM(cuDeviceGetName); NC_SYM(cuDeviceTotalMem_v2); NC_SYM(cuDeviceGetAttribute);
	NC_SYM(cuDevicePrimaryCtxRetain); NC_SYM(cuDevicePrimaryCtxRelease_v2); NC_SYM(cuCtxSetCurrent);
	NC_SYM(cuCtxSynchronize); NC_SYM(cuModuleLoadData); NC_SYM(cuModuleUnload);
	NC_SYM(cuModuleGetFunction); NC_SYM(cuFuncSetAttribute); NC_SYM(cuLaunchKernel);
	NC_SYM(cuMemAlloc_v2); NC_SYM(cuMemFree_v2); NC_SYM(cuMemGetInfo_v2); NC_SYM(cuMemcpyHtoD_v2);
	NC_SYM(cuMemcpyDtoH_v2); NC_SYM(cuMemcpyDtoDAsync_v2); NC_SYM(cuMemsetD8Async);
	NC_SYM(cuStreamCreate); NC_SYM(cuStreamDestroy_v2); NC_SYM(cuStreamSynchronize);
	NC_SYM(cuGetErrorName); NC_SYM(cuGetErrorString);
	*(void**)(&p_cuModuleLoadDataEx) = dlsym(nc_lib, "cuModuleLoadDataEx");  // optional: JIT log
	return 0;
}

static void nc_errinfo(CUresult r, const char** name, const char** msg) {
	*name = "?"; *msg = "?";
	if (p_cuGetErrorName) p_cuGetErrorName(r, name);
	if (p_cuGetErrorString) p_cuGetErrorString(r, msg);
}

static CUresult nc_init(void) { return p_cuInit(0); }
static CUresult nc_version(int* v) { return p_cuDriverGetVersion(v); }
static CUresult nc_count(int* n) { return p_cuDeviceGetCount(n); }
static CUresult nc_device(CUdevice* d, int ord) { return p_cuDeviceGet(d, ord); }
static CUresult nc_name(char* s, int n, CUdevice d) { return p_cuDeviceGetName(s, n, d); }
static CUresult nc_totalmem(size_t* b, CUdevice d) { return p_cuDeviceTotalMem_v2(b, d); }
static CUresult nc_attr(int* v, int a, CUdevice d) { return p_cuDeviceGetAttribute(v, a, d); }
static CUresult nc_retain(CUcontext* c, CUdevice d) { return p_cuDevicePrimaryCtxRetain(c, d); }
static CUresult nc_release(CUdevice d) { return p_cuDevicePrimaryCtxRelease_v2(d); }

// Every call below that needs a context makes it current first, on this thread.
#define CUR(ctx) do { CUresult r_ = p_cuCtxSetCurrent(ctx); if (r_) return r_; } while (0)

static CUresult nc_stream(CUcontext c, CUstream* s) { CUR(c); return p_cuStreamCreate(s, 0); }
static CUresult nc_stream_destroy(CUcontext c, CUstream s) { CUR(c); return p_cuStreamDestroy_v2(s); }
static CUresult nc_sync(CUcontext c, CUstream s) { CUR(c); return p_cuStreamSynchronize(s); }
static CUresult nc_ctxsync(CUcontext c) { CUR(c); return p_cuCtxSynchronize(); }
static CUresult nc_load_module(CUcontext c, CUmodule* m, const void* img) { CUR(c); return p_cuModuleLoadData(m, img); }
// nc_jit_log retries a failed load with cuModuleLoadDataEx to get the JIT
// compiler's error log (CU_JIT_ERROR_LOG_BUFFER = 5, _SIZE_BYTES = 6).
static void nc_jit_log(CUcontext c, const void* img, char* log, size_t n) {
	log[0] = 0;
	if (!p_cuModuleLoadDataEx || p_cuCtxSetCurrent(c)) return;
	int opts[2] = {5, 6};
	void* vals[2] = {log, (void*)n};
	CUmodule m = 0;
	if (p_cuModuleLoadDataEx(&m, img, 2, opts, vals) == 0 && m) p_cuModuleUnload(m);
	log[n - 1] = 0;
}
static CUresult nc_unload(CUcontext c, CUmodule m) { CUR(c); return p_cuModuleUnload(m); }
static CUresult nc_func(CUcontext c, CUfunction* f, CUmodule m, const char* name) {
	CUR(c); return p_cuModuleGetFunction(f, m, name);
}
static CUresult nc_func_attr(CUcontext c, CUfunction f, int attr, int v) { CUR(c); return p_cuFuncSetAttribute(f, attr, v); }
static CUresult nc_alloc(CUcontext c, CUdeviceptr* p, size_t n) { CUR(c); return p_cuMemAlloc_v2(p, n); }
static CUresult nc_free(CUcontext c, CUdeviceptr p) { CUR(c); return p_cuMemFree_v2(p); }
static CUresult nc_meminfo(CUcontext c, size_t* fr, size_t* tot) { CUR(c); return p_cuMemGetInfo_v2(fr, tot); }
// Copies to and from the host synchronise the stream first, so they see (and
// are seen by) every launch enqueued before them. The synchronous
// cuMemcpyHtoD_v2 is used, not the Async form: its documentation promises
// that on return a pageable source has been staged, so Go memory may be
// reused at once; the Async form from pageable memory promises less.
static CUresult nc_htod(CUcontext c, CUstream s, CUdeviceptr d, const void* h, size_t n) {
	CUR(c); CUresult r = p_cuStreamSynchronize(s); if (r) return r; return p_cuMemcpyHtoD_v2(d, h, n);
}
static CUresult nc_dtoh(CUcontext c, CUstream s, void* h, CUdeviceptr d, size_t n) {
	CUR(c); CUresult r = p_cuStreamSynchronize(s); if (r) return r; return p_cuMemcpyDtoH_v2(h, d, n);
}
static CUresult nc_dtod(CUcontext c, CUstream s, CUdeviceptr d, CUdeviceptr src, size_t n) {
	CUR(c); return p_cuMemcpyDtoDAsync_v2(d, src, n, s);
}
static CUresult nc_zero(CUcontext c, CUstream s, CUdeviceptr d, size_t n) { CUR(c); return p_cuMemsetD8Async(d, 0, n, s); }
static CUresult nc_launch(CUcontext c, CUfunction f, unsigned gx, unsigned gy, unsigned gz,
	unsigned bx, unsigned by, unsigned bz, unsigned shmem, CUstream s, void** params) {
	CUR(c); return p_cuLaunchKernel(f, gx, gy, gz, bx, by, bz, shmem, s, params, 0);
}
*/
import "C"

import (
	"fmt"
	"sync"
	"unsafe"
)

// LibName is the library Open loads.
const LibName = "libcuda.so.1"

var loadMu sync.Mutex

func check(op string, r C.CUresult) error {
	if r == 0 {
		return nil
	}
	var name, msg *C.char
	C.nc_errinfo(r, &name, &msg)
	return &Error{Op: op, Code: int(r), Name: C.GoString(name), Msg: C.GoString(msg)}
}

// Context is the primary context of one device, with one stream.
type Context struct {
	dev    C.CUdevice
	ctx    C.CUcontext
	stream C.CUstream
	info   Info
	closed bool
}

// Module is loaded PTX; Function is one kernel in it.
type Module struct{ m C.CUmodule }
type Function struct{ f C.CUfunction }

// Open loads libcuda.so.1, initialises the driver and retains the primary
// context of device ordinal with one new stream.
func Open(ordinal int) (*Context, error) { return openLib(LibName, ordinal) }

func openLib(lib string, ordinal int) (*Context, error) {
	loadMu.Lock()
	defer loadMu.Unlock()
	cs := C.CString(lib)
	defer C.free(unsafe.Pointer(cs))
	if e := C.nc_load(cs); e != nil {
		return nil, fmt.Errorf("cuda: cannot load the driver library: %s", C.GoString(e))
	}
	if err := check("cuInit", C.nc_init()); err != nil {
		return nil, err
	}
	var ver, n C.int
	if err := check("cuDriverGetVersion", C.nc_version(&ver)); err != nil {
		return nil, err
	}
	if err := check("cuDeviceGetCount", C.nc_count(&n)); err != nil {
		return nil, err
	}
	if ordinal < 0 || ordinal >= int(n) {
		return nil, fmt.Errorf("cuda: device %d requested, %d present", ordinal, int(n))
	}
	c := &Context{}
	if err := check("cuDeviceGet", C.nc_device(&c.dev, C.int(ordinal))); err != nil {
		return nil, err
	}
	var name [256]C.char
	if err := check("cuDeviceGetName", C.nc_name(&name[0], 256, c.dev)); err != nil {
		return nil, err
	}
	var mem C.size_t
	if err := check("cuDeviceTotalMem_v2", C.nc_totalmem(&mem, c.dev)); err != nil {
		return nil, err
	}
	var major, minor C.int
	// CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75, _MINOR = 76.
	if err := check("cuDeviceGetAttribute", C.nc_attr(&major, 75, c.dev)); err != nil {
		return nil, err
	}
	if err := check("cuDeviceGetAttribute", C.nc_attr(&minor, 76, c.dev)); err != nil {
		return nil, err
	}
	c.info = Info{Ordinal: ordinal, Name: C.GoString(&name[0]), TotalMem: uint64(mem),
		Major: int(major), Minor: int(minor), DriverAPI: int(ver)}
	if err := check("cuDevicePrimaryCtxRetain", C.nc_retain(&c.ctx, c.dev)); err != nil {
		return nil, err
	}
	if err := check("cuStreamCreate", C.nc_stream(c.ctx, &c.stream)); err != nil {
		C.nc_release(c.dev)
		return nil, err
	}
	return c, nil
}

// Info describes the device.
func (c *Context) Info() Info { return c.info }

// Close destroys the stream and releases the primary context.
func (c *Context) Close() error {
	if c == nil || c.closed {
		return nil
	}
	c.closed = true
	err := check("cuStreamDestroy_v2", C.nc_stream_destroy(c.ctx, c.stream))
	if e := check("cuDevicePrimaryCtxRelease_v2", C.nc_release(c.dev)); err == nil {
		err = e
	}
	return err
}

// LoadModule loads a module image: a fatbin (what cuda/ ships), a cubin, or
// NUL-free PTX text, which the driver JIT-compiles. A NUL is appended (PTX
// needs one; the binary formats carry their own sizes).
func (c *Context) LoadModule(image []byte) (*Module, error) {
	img := C.CBytes(append(append([]byte(nil), image...), 0))
	defer C.free(img)
	m := &Module{}
	if err := check("cuModuleLoadData", C.nc_load_module(c.ctx, &m.m, img)); err != nil {
		var log [4096]C.char
		C.nc_jit_log(c.ctx, img, &log[0], C.size_t(len(log)))
		if s := C.GoString(&log[0]); s != "" {
			return nil, fmt.Errorf("%w; JIT log: %s", err, s)
		}
		return nil, err
	}
	return m, nil
}

// Unload releases a module.
func (c *Context) Unload(m *Module) error { return check("cuModuleUnload", C.nc_unload(c.ctx, m.m)) }

// Function looks a kernel up by its (extern "C") name.
func (c *Context) Function(m *Module, name string) (*Function, error) {
	cs := C.CString(name)
	defer C.free(unsafe.Pointer(cs))
	f := &Function{}
	if err := check("cuModuleGetFunction("+name+")", C.nc_func(c.ctx, &f.f, m.m, cs)); err != nil {
		return nil, err
	}
	return f, nil
}

// SetMaxDynamicShared allows a kernel more than 48 KiB of dynamic shared memory
// (CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8).
func (c *Context) SetMaxDynamicShared(f *Function, bytes int) error {
	return check("cuFuncSetAttribute", C.nc_func_attr(c.ctx, f.f, 8, C.int(bytes)))
}

// Alloc allocates n bytes of device memory (n > 0).
func (c *Context) Alloc(n int) (Ptr, error) {
	var p C.CUdeviceptr
	if err := check("cuMemAlloc_v2", C.nc_alloc(c.ctx, &p, C.size_t(n))); err != nil {
		return 0, err
	}
	return Ptr(p), nil
}

// Free releases device memory.
func (c *Context) Free(p Ptr) error { return check("cuMemFree_v2", C.nc_free(c.ctx, C.CUdeviceptr(p))) }

// MemInfo returns free and total device memory in bytes.
func (c *Context) MemInfo() (free, total uint64, err error) {
	var f, t C.size_t
	err = check("cuMemGetInfo_v2", C.nc_meminfo(c.ctx, &f, &t))
	return uint64(f), uint64(t), err
}

// HtoD copies n bytes from host memory src (Go memory holding no Go pointers)
// to dst, after the stream's pending work; src may be reused on return.
func (c *Context) HtoD(dst Ptr, src unsafe.Pointer, n int) error {
	if n == 0 {
		return nil
	}
	return check("cuMemcpyHtoD_v2", C.nc_htod(c.ctx, c.stream, C.CUdeviceptr(dst), src, C.size_t(n)))
}

// DtoH copies n bytes from src to host memory dst, after the stream's pending work.
func (c *Context) DtoH(dst unsafe.Pointer, src Ptr, n int) error {
	if n == 0 {
		return nil
	}
	return check("cuMemcpyDtoH_v2", C.nc_dtoh(c.ctx, c.stream, dst, C.CUdeviceptr(src), C.size_t(n)))
}

// DtoD enqueues a device-to-device copy of n bytes on the stream.
func (c *Context) DtoD(dst, src Ptr, n int) error {
	if n == 0 {
		return nil
	}
	return check("cuMemcpyDtoDAsync_v2", C.nc_dtod(c.ctx, c.stream, C.CUdeviceptr(dst), C.CUdeviceptr(src), C.size_t(n)))
}

// Zero enqueues a memset of n bytes to 0 on the stream.
func (c *Context) Zero(p Ptr, n int) error {
	if n == 0 {
		return nil
	}
	return check("cuMemsetD8Async", C.nc_zero(c.ctx, c.stream, C.CUdeviceptr(p), C.size_t(n)))
}

// Launch enqueues f on the stream with the packed arguments.
func (c *Context) Launch(f *Function, grid, block Dim3, shmem int, args *Args) error {
	return check("cuLaunchKernel", C.nc_launch(c.ctx, f.f, C.uint(grid.X), C.uint(grid.Y), C.uint(grid.Z),
		C.uint(block.X), C.uint(block.Y), C.uint(block.Z), C.uint(shmem), c.stream, (*unsafe.Pointer)(args.Params())))
}

// Sync waits for the stream; launch errors surface here.
func (c *Context) Sync() error { return check("cuStreamSynchronize", C.nc_sync(c.ctx, c.stream)) }

// NewArgs allocates an argument packer for up to max arguments, in C memory.
// It lives as long as the process (one per backend).
func NewArgs(max int) *Args {
	vals := C.calloc(C.size_t(max), 8)
	ptrs := C.calloc(C.size_t(max), C.size_t(unsafe.Sizeof(uintptr(0))))
	for i := 0; i < max; i++ {
		*(*unsafe.Pointer)(unsafe.Add(ptrs, i*int(unsafe.Sizeof(uintptr(0))))) = unsafe.Add(vals, 8*i)
	}
	return &Args{vals: vals, ptrs: ptrs, max: max}
}
