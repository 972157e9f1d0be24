package checkpoint

// Reading pytorch_model.bin (torch.save's zip format).
//
// Since torch 1.6, torch.save writes a zip archive with one top-level folder
// (named after the file, or "archive"):
//
//	<root>/data.pkl     a pickle of the state dict; tensors are
//	                    torch._utils._rebuild_tensor_v2(storage, offset, size,
//	                    stride, requires_grad, backward_hooks[, metadata])
//	<root>/data/<key>   the raw little-endian bytes of storage <key>, referenced
//	                    from data.pkl by a persistent id
//	                    ("storage", torch.<T>Storage, key, location, numel)
//	<root>/version      format version; <root>/byteorder ("little") since torch 2.1
//
// Decisions:
//   - data.pkl is unpickled with github.com/nlpodyssey/gopickle's pickle
//     package, which never runs Python code; on top of that the class resolver
//     admits only what a state dict needs: _rebuild_tensor_v2 and the storage
//     classes below (gopickle itself resolves collections.OrderedDict and two
//     inert helpers, __builtin__.object and copy_reg._reconstructor). Any other
//     global (os.system, builtins.eval, torch._utils._rebuild_parameter, ...)
//     stops the read with an error naming it, and the unpickled value must be
//     a dict of name -> tensor, so inert objects are rejected too.
//     gopickle's own pytorch package is not used: it admits every class (as a
//     generic object), and converts storages to Go slices instead of giving
//     the raw bytes with offset and strides.
//   - Storage classes admitted: Float (F32), Half (F16), BFloat16 (BF16),
//     Double (F64), Byte (U8) and Bool (BOOL). The last two are there because
//     real GPT-Neo checkpoints store their attention-mask buffers as uint8
//     (Assemble drops those buffers by name); Convert rejects U8/BOOL for a
//     parameter.
//   - A contiguous tensor's Data is a sub-slice of its storage, so tensors
//     that share a storage (tied weights, views) share memory; callers must
//     not write to Data. A non-contiguous tensor (transposed, strided,
//     expanded with stride 0) is copied into row-major order.
//   - Storages are read into memory (ReadPyTorchBin has no closer to unmap
//     with); the zip's CRC-32 of each storage is checked.
//   - The legacy format (torch < 1.6, or _use_new_zipfile_serialization=False:
//     pickles back to back, then the storages; see readLegacyPyTorch) is read
//     with the same restrictions. The older tar format (torch < 0.4) and
//     TorchScript archives are rejected with an error saying so.

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"os"
	"strings"

	"github.com/nlpodyssey/gopickle/pickle"
	"github.com/nlpodyssey/gopickle/types"
)

// maxPickleBytes bounds data.pkl, which holds only names and tensor metadata
// (a few hundred bytes per tensor).
const maxPickleBytes = 256 << 20

// torchStorage describes one admitted torch.<T>Storage class.
type torchStorage struct {
	class string // e.g. "torch.HalfStorage"
	dtype string // Entry.DType
	size  int    // bytes per element
}

var torchStorages = map[string]torchStorage{}

func init() {
	for _, s := range []torchStorage{
		{"torch.FloatStorage", "F32", 4},
		{"torch.HalfStorage", "F16", 2},
		{"torch.BFloat16Storage", "BF16", 2},
		{"torch.DoubleStorage", "F64", 8},
		{"torch.ByteStorage", "U8", 1},
		{"torch.BoolStorage", "BOOL", 1},
	} {
		torchStorages[s.class] = s
	}
}

// pickledStorage is what a storage persistent id resolves to.
type pickledStorage struct {
	typ   torchStorage
	key   string
	numel int
	data  []byte // numel*typ.size bytes
}

// pickledTensor is what _rebuild_tensor_v2 returns.
type pickledTensor struct {
	storage *pickledStorage
	offset  int
	size    []int
	stride  []int
}

// rebuildTensorV2 stands for torch._utils._rebuild_tensor_v2.
type rebuildTensorV2 struct{}

func (rebuildTensorV2) Call(args ...interface{}) (interface{}, error) {
	if len(args) != 6 && len(args) != 7 {
		return nil, fmt.Errorf("_rebuild_tensor_v2 called with %d arguments, want 6 or 7", len(args))
	}
	st, ok := args[0].(*pickledStorage)
	if !ok {
		return nil, fmt.Errorf("_rebuild_tensor_v2: argument 1 is %T, want a storage", args[0])
	}
	off, err := pyInt(args[1], "storage offset")
	if err != nil {
		return nil, err
	}
	size, err := intTuple(args[2], "size")
	if err != nil {
		return nil, err
	}
	stride, err := intTuple(args[3], "stride")
	if err != nil {
		return nil, err
	}
	if len(size) != len(stride) {
		return nil, fmt.Errorf("_rebuild_tensor_v2: size %v and stride %v differ in rank", size, stride)
	}
	if _, ok := args[4].(bool); !ok {
		return nil, fmt.Errorf("_rebuild_tensor_v2: requires_grad is %T, want bool", args[4])
	}
	switch h := args[5].(type) {
	case *types.OrderedDict:
		if h.Len() != 0 {
			return nil, fmt.Errorf("_rebuild_tensor_v2: backward hooks are not supported")
		}
	case *types.Dict:
		if h.Len() != 0 {
			return nil, fmt.Errorf("_rebuild_tensor_v2: backward hooks are not supported")
		}
	case nil:
	default:
		return nil, fmt.Errorf("_rebuild_tensor_v2: backward hooks are %T, want an empty OrderedDict", args[5])
	}
	// args[6], when present, is a dict of Python-level tensor attributes; ignored.
	return &pickledTensor{storage: st, offset: off, size: size, stride: stride}, nil
}

func pyInt(v interface{}, what string) (int, error) {
	switch n := v.(type) {
	case int:
		return n, nil
	case *big.Int:
		if n.IsInt64() && n.Int64() >= math.MinInt && n.Int64() <= math.MaxInt {
			return int(n.Int64()), nil
		}
		return 0, fmt.Errorf("%s %v is out of range", what, n)
	}
	return 0, fmt.Errorf("%s is %T, want an int", what, v)
}

func intTuple(v interface{}, what string) ([]int, error) {
	t, ok := v.(*types.Tuple)
	if !ok {
		return nil, fmt.Errorf("_rebuild_tensor_v2: %s is %T, want a tuple", what, v)
	}
	out := make([]int, t.Len())
	for i := range out {
		n, err := pyInt(t.Get(i), what)
		if err != nil {
			return nil, fmt.Errorf("_rebuild_tensor_v2: %w", err)
		}
		out[i] = n
	}
	return out, nil
}

// ReadPyTorchBin reads the tensors of a pytorch_model.bin written by
// torch.save (the zip format of torch >= 1.6, or the legacy format before
// it), in the order the state dict lists them. See the comment at the top of
// this file for what is admitted.
func ReadPyTorchBin(path string) ([]Entry, error) {
	legacy, err := sniffPyTorch(path)
	if err != nil {
		return nil, err
	}
	if legacy {
		return readLegacyPyTorch(path)
	}
	zr, err := zip.OpenReader(path)
	if err != nil {
		return nil, fmt.Errorf("%s: not a readable zip archive: %w", path, err)
	}
	defer zr.Close()
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	root, records, err := torchRecords(path, zr.File)
	if err != nil {
		return nil, err
	}
	if bo, ok := records[root+"byteorder"]; ok {
		b, err := readRecord(path, bo, 16, st.Size())
		if err != nil {
			return nil, err
		}
		if string(b) != "little" {
			return nil, fmt.Errorf("%s: byteorder is %q; only little-endian checkpoints are supported", path, b)
		}
	}
	pkl, err := readRecord(path, records[root+"data.pkl"], maxPickleBytes, st.Size())
	if err != nil {
		return nil, err
	}

	storages := map[string]*pickledStorage{}
	obj, _, err := unpickle(pkl, func(id interface{}) (interface{}, error) {
		return loadStorage(path, root, records, storages, id, st.Size())
	})
	if err != nil {
		return nil, fmt.Errorf("%s: data.pkl: %w", path, err)
	}
	return stateDictEntries(path, obj, st.Size())
}

// unpickle loads the first pickle in p with the restricted class resolver;
// persistent ids go to persistent (nil: none allowed). It returns the value
// and the length of the pickle.
//
// A malformed pickle must give an error, not crash the program: gopickle is
// not hardened against hostile input (it allocates whatever length a string
// opcode claims), so the opcode stream is checked first and a panic is
// turned into an error.
func unpickle(p []byte, persistent func(interface{}) (interface{}, error)) (obj interface{}, n int, err error) {
	n, err = scanPickle(p)
	if err != nil {
		return nil, 0, err
	}
	defer func() {
		if r := recover(); r != nil {
			obj, n, err = nil, 0, fmt.Errorf("malformed pickle (%v)", r)
		}
	}()
	u := pickle.NewUnpickler(bytes.NewReader(p[:n]))
	u.FindClass = func(module, name string) (interface{}, error) {
		full := module + "." + name
		if full == "torch._utils._rebuild_tensor_v2" {
			return rebuildTensorV2{}, nil
		}
		if s, ok := torchStorages[full]; ok {
			return s, nil
		}
		return nil, fmt.Errorf("refers to %s, which is not allowed: a checkpoint may only rebuild tensors "+
			"(torch._utils._rebuild_tensor_v2, collections.OrderedDict, torch.{Float,Half,BFloat16,Double,Byte,Bool}Storage)", full)
	}
	u.PersistentLoad = func(id interface{}) (interface{}, error) {
		if persistent == nil {
			return nil, fmt.Errorf("unexpected persistent id %v", id)
		}
		return persistent(id)
	}
	obj, err = u.Load()
	if err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			err = errors.New("ends early (truncated)")
		}
		return nil, 0, err
	}
	return obj, n, nil
}

// sniffPyTorch tells a zip checkpoint from the legacy format (legacy true)
// and from things that are not checkpoints at all.
func sniffPyTorch(path string) (legacy bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	head := make([]byte, 262)
	n, _ := io.ReadFull(f, head)
	head = head[:n]
	switch {
	case len(head) >= 262 && string(head[257:262]) == "ustar":
		return false, fmt.Errorf("%s: tar-based torch.save format (torch < 0.4) is not supported; "+
			"re-save it with a newer torch or convert it to safetensors", path)
	case bytes.HasPrefix(head, []byte("PK\x03\x04")):
		return false, nil
	case len(head) >= 3 && head[0] == 0x80 && head[1] <= 5 && head[2] == 0x8a:
		// a pickle starting with LONG1: torch's legacy magic number 0x1950a86a20f9469cfc6c
		return true, nil
	}
	return false, fmt.Errorf("%s: not a PyTorch checkpoint (expected a zip archive written by torch.save)", path)
}

// torchRecords finds the archive's root folder (with trailing slash) and
// indexes its records by name.
func torchRecords(path string, files []*zip.File) (string, map[string]*zip.File, error) {
	records := make(map[string]*zip.File, len(files))
	root := ""
	for _, f := range files {
		records[f.Name] = f
		if strings.HasSuffix(f.Name, "/data.pkl") && strings.Count(f.Name, "/") == 1 {
			if root != "" {
				return "", nil, fmt.Errorf("%s: two data.pkl records (%sdata.pkl, %s); not a single torch.save archive", path, root, f.Name)
			}
			root = strings.TrimSuffix(f.Name, "data.pkl")
		}
	}
	if root == "" {
		return "", nil, fmt.Errorf("%s: zip archive has no <root>/data.pkl record; not written by torch.save", path)
	}
	if _, ok := records[root+"constants.pkl"]; ok {
		return "", nil, fmt.Errorf("%s: a TorchScript archive (torch.jit.save), not a state dict saved with torch.save", path)
	}
	return root, records, nil
}

// readRecord reads a whole zip record of at most max bytes and checks its CRC.
func readRecord(path string, f *zip.File, max int64, fileSize int64) ([]byte, error) {
	if f.UncompressedSize64 > uint64(max) {
		return nil, fmt.Errorf("%s: record %s is %d bytes, more than the %d allowed", path, f.Name, f.UncompressedSize64, max)
	}
	// Bound what a record can make us allocate by what the file holds:
	// deflate expands at most 1032:1.
	if f.CompressedSize64 > uint64(fileSize) ||
		(f.Method == zip.Store && f.UncompressedSize64 > f.CompressedSize64) ||
		f.UncompressedSize64 > f.CompressedSize64*1100+1024 {
		return nil, fmt.Errorf("%s: record %s claims %d bytes (%d stored) in a file of %d bytes (truncated or corrupt)",
			path, f.Name, f.UncompressedSize64, f.CompressedSize64, fileSize)
	}
	r, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("%s: record %s: %w", path, f.Name, err)
	}
	defer r.Close()
	buf := make([]byte, f.UncompressedSize64)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, fmt.Errorf("%s: record %s: %w", path, f.Name, err)
	}
	// Reading to EOF makes archive/zip check the CRC-32.
	if n, err := r.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		if errors.Is(err, zip.ErrChecksum) {
			return nil, fmt.Errorf("%s: record %s is corrupt (CRC-32 mismatch)", path, f.Name)
		}
		return nil, fmt.Errorf("%s: record %s: longer than its declared %d bytes (%v)", path, f.Name, len(buf), err)
	}
	return buf, nil
}

// loadStorage resolves a persistent id ("storage", class, key, location, numel).
func loadStorage(path, root string, records map[string]*zip.File, cache map[string]*pickledStorage, id interface{}, fileSize int64) (interface{}, error) {
	t, ok := id.(*types.Tuple)
	if !ok || t.Len() != 5 {
		return nil, fmt.Errorf("persistent id %v: want (\"storage\", class, key, location, numel)", id)
	}
	if kind, _ := t.Get(0).(string); kind != "storage" {
		return nil, fmt.Errorf("persistent id of kind %v; only \"storage\" is supported", t.Get(0))
	}
	typ, ok := t.Get(1).(torchStorage)
	if !ok {
		return nil, fmt.Errorf("persistent id: storage class is %T, want a torch.<T>Storage", t.Get(1))
	}
	key, ok := t.Get(2).(string)
	if !ok {
		return nil, fmt.Errorf("persistent id: storage key is %T, want a string", t.Get(2))
	}
	numel, err := pyInt(t.Get(4), "storage numel")
	if err != nil {
		return nil, fmt.Errorf("storage %s: %w", key, err)
	}
	if s, ok := cache[key]; ok {
		if s.typ != typ || s.numel != numel {
			return nil, fmt.Errorf("storage %s is used as %s[%d] and as %s[%d]", key, s.typ.class, s.numel, typ.class, numel)
		}
		return s, nil
	}
	rec, ok := records[root+"data/"+key]
	if !ok {
		return nil, fmt.Errorf("storage %s: record %sdata/%s is missing", key, root, key)
	}
	if numel < 0 || numel > math.MaxInt/typ.size {
		return nil, fmt.Errorf("storage %s: bad element count %d", key, numel)
	}
	want := uint64(numel) * uint64(typ.size)
	if rec.UncompressedSize64 != want {
		return nil, fmt.Errorf("storage %s (%s, %d elements) holds %d bytes in %s, want %d", key, typ.class, numel, rec.UncompressedSize64, rec.Name, want)
	}
	data, err := readRecord(path, rec, int64(want), fileSize)
	if err != nil {
		return nil, err
	}
	s := &pickledStorage{typ: typ, key: key, numel: numel, data: data}
	cache[key] = s
	return s, nil
}

// stateDictEntries turns the unpickled state dict into entries.
func stateDictEntries(path string, obj interface{}, fileSize int64) ([]Entry, error) {
	type kv struct {
		k, v interface{}
	}
	var items []kv
	switch d := obj.(type) {
	case *types.OrderedDict:
		for e := d.List.Front(); e != nil; e = e.Next() {
			ent := e.Value.(*types.OrderedDictEntry)
			items = append(items, kv{ent.Key, ent.Value})
		}
	case *types.Dict:
		for _, ent := range *d {
			items = append(items, kv{ent.Key, ent.Value})
		}
	default:
		return nil, fmt.Errorf("%s: data.pkl holds a %T, want a state dict (name -> tensor)", path, obj)
	}
	entries := make([]Entry, 0, len(items))
	for _, it := range items {
		name, ok := it.k.(string)
		if !ok {
			return nil, fmt.Errorf("%s: state dict key %v is %T, want a string", path, it.k, it.k)
		}
		t, ok := it.v.(*pickledTensor)
		if !ok {
			return nil, fmt.Errorf("%s: state dict entry %q is %T, want a tensor", path, name, it.v)
		}
		data, err := t.contiguous(fileSize)
		if err != nil {
			return nil, fmt.Errorf("%s: tensor %q: %w", path, name, err)
		}
		entries = append(entries, Entry{Name: name, DType: t.storage.typ.dtype, Shape: append([]int(nil), t.size...), Data: data, File: path})
	}
	return entries, nil
}

// maxExpandBytes is how much larger than the file a copied (non-contiguous)
// tensor may be. Transposed and strided views are never larger than their
// storage; only stride-0 (expanded) views are, and a hostile file must not
// make a few bytes expand into gigabytes.
const maxExpandBytes = 64 << 20

// contiguous returns the tensor's bytes in row-major order: a sub-slice of
// the storage when the layout already is row-major, else a copy.
func (t *pickledTensor) contiguous(fileSize int64) ([]byte, error) {
	es := t.storage.typ.size
	numel := t.storage.numel
	if t.offset < 0 {
		return nil, fmt.Errorf("negative storage offset %d", t.offset)
	}
	n := 1
	for i, d := range t.size {
		if d < 0 || t.stride[i] < 0 {
			return nil, fmt.Errorf("size %v / stride %v: negative entries", t.size, t.stride)
		}
		if d != 0 && n > math.MaxInt/d {
			return nil, fmt.Errorf("size %v overflows", t.size)
		}
		n *= d
	}
	if n == 0 {
		return []byte{}, nil
	}
	if t.offset >= numel {
		return nil, fmt.Errorf("storage offset %d is past the end of storage %s (%d elements)", t.offset, t.storage.key, numel)
	}
	// Highest element index touched: offset + sum (size-1)*stride, which must
	// lie inside the storage. Checked term by term against overflow.
	last := t.offset
	for i, d := range t.size {
		if d > 1 && t.stride[i] > (numel-last)/(d-1) {
			return nil, fmt.Errorf("view (offset %d, size %v, stride %v) reaches past the end of storage %s (%d elements)",
				t.offset, t.size, t.stride, t.storage.key, numel)
		}
		last += (d - 1) * t.stride[i]
	}
	if last >= numel {
		return nil, fmt.Errorf("view (offset %d, size %v, stride %v) reaches past the end of storage %s (%d elements)",
			t.offset, t.size, t.stride, t.storage.key, numel)
	}
	rowMajor, want := true, 1
	for i := len(t.size) - 1; i >= 0; i-- {
		if t.size[i] != 1 && t.stride[i] != want {
			rowMajor = false
			break
		}
		want *= t.size[i]
	}
	src := t.storage.data
	if rowMajor {
		return src[t.offset*es : (t.offset+n)*es : (t.offset+n)*es], nil
	}
	if n > math.MaxInt/es || int64(n*es) > fileSize+maxExpandBytes {
		return nil, fmt.Errorf("expanded view (size %v, stride %v) would take %d elements, far more than the file holds", t.size, t.stride, n)
	}
	out := make([]byte, n*es)
	idx := make([]int, len(t.size))
	pos := t.offset
	for k := 0; k < n; k++ {
		copy(out[k*es:(k+1)*es], src[pos*es:(pos+1)*es])
		for d := len(idx) - 1; d >= 0; d-- { // odometer over the dims, last fastest
			idx[d]++
			pos += t.stride[d]
			if idx[d] < t.size[d] {
				break
			}
			pos -= idx[d] * t.stride[d]
			idx[d] = 0
		}
	}
	return out, nil
}

// scanPickle walks a pickle's opcodes (the table of Python's pickletools) and
// checks that every length-prefixed argument fits in the input, so that the
// unpickler never allocates more than the pickle's own size. It does not
// interpret anything.
func scanPickle(p []byte) (int, error) {
	const (
		line   = -1 // argument ends at '\n'
		line2  = -2 // two such arguments
		len1   = -3 // 1-byte length, then that many bytes
		len4   = -4 // 4-byte little-endian length, then that many bytes
		len8   = -8 // 8-byte length, then that many bytes
		frame8 = -9 // 8-byte length of the frame that follows
	)
	var arg [256]int
	for i := range arg {
		arg[i] = -100 // unknown
	}
	for _, op := range []byte("(.0123NRabd}el]ost)uQ\x81\x85\x86\x87\x88\x89\x8f\x90\x91\x92\x93\x94\x97\x98") {
		arg[op] = 0
	}
	for _, op := range []byte("FILSVPgp") {
		arg[op] = line
	}
	arg['i'], arg['c'] = line2, line2
	for op, n := range map[byte]int{'J': 4, 'K': 1, 'M': 2, 'G': 8, 'h': 1, 'j': 4, 'q': 1, 'r': 4, 0x82: 1, 0x83: 2, 0x84: 4, 0x80: 1} {
		arg[op] = n
	}
	for op, n := range map[byte]int{'U': len1, 'C': len1, 0x8c: len1, 0x8a: len1, 'T': len4, 'B': len4, 'X': len4, 0x8b: len4, 0x8e: len8, 0x8d: len8, 0x96: len8, 0x95: frame8} {
		arg[op] = n
	}
	pos := 0
	for pos < len(p) {
		op := p[pos]
		pos++
		rest := len(p) - pos
		switch a := arg[op]; {
		case op == '.':
			return pos, nil
		case a >= 0:
			if a > rest {
				return 0, errors.New("ends early (truncated)")
			}
			pos += a
		case a == line || a == line2:
			for k := 0; k < -a; k++ {
				nl := bytes.IndexByte(p[pos:], '\n')
				if nl < 0 {
					return 0, errors.New("ends early (truncated)")
				}
				pos += nl + 1
			}
		case a == len1 || a == len4 || a == len8 || a == frame8:
			w := map[int]int{len1: 1, len4: 4, len8: 8, frame8: 8}[a]
			if w > rest {
				return 0, errors.New("ends early (truncated)")
			}
			var n uint64
			for k := w - 1; k >= 0; k-- {
				n = n<<8 | uint64(p[pos+k])
			}
			pos += w
			if n > uint64(len(p)-pos) {
				return 0, fmt.Errorf("opcode 0x%02x at byte %d claims %d bytes, more than the %d left", op, pos-w-1, n, len(p)-pos)
			}
			if a != frame8 {
				pos += int(n)
			}
		default:
			return 0, fmt.Errorf("unknown opcode 0x%02x at byte %d", op, pos-1)
		}
	}
	return 0, errors.New("ends early (no STOP opcode)")
}

// readLegacyPyTorch reads torch.save's format before torch 1.6 (still written
// with _use_new_zipfile_serialization=False): five pickles back to back (the
// magic number 0x1950a86a20f9469cfc6c, the protocol version 1001, a system
// info dict, the state dict, the sorted list of storage keys), then for each
// key in that order an int64 element count and the storage's raw bytes. The
// persistent ids are ("storage", class, key, location, numel, view_metadata)
// with view_metadata None (storage views, from torch < 0.4, are rejected).
// The file is read whole and tensors point into it.
func readLegacyPyTorch(path string) ([]Entry, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pos := 0
	next := func(what string, persistent func(interface{}) (interface{}, error)) (interface{}, error) {
		obj, n, err := unpickle(data[pos:], persistent)
		if err != nil {
			return nil, fmt.Errorf("%s: legacy PyTorch format: %s at byte %d: %w", path, what, pos, err)
		}
		pos += n
		return obj, nil
	}
	magic, err := next("magic number", nil)
	if err != nil {
		return nil, err
	}
	if m, ok := magic.(*big.Int); !ok || m.Text(16) != "1950a86a20f9469cfc6c" {
		return nil, fmt.Errorf("%s: not a PyTorch checkpoint (no torch.save magic number)", path)
	}
	version, err := next("protocol version", nil)
	if err != nil {
		return nil, err
	}
	if v, ok := version.(int); !ok || v != 1001 {
		return nil, fmt.Errorf("%s: legacy PyTorch format: protocol version %v, want 1001", path, version)
	}
	info, err := next("system info", nil)
	if err != nil {
		return nil, err
	}
	if d, ok := info.(*types.Dict); ok {
		if le, ok := d.Get("little_endian"); ok && le != true {
			return nil, fmt.Errorf("%s: saved on a big-endian machine; only little-endian checkpoints are supported", path)
		}
	}
	storages := map[string]*pickledStorage{}
	obj, err := next("state dict", func(id interface{}) (interface{}, error) {
		t, ok := id.(*types.Tuple)
		if !ok || t.Len() != 6 {
			return nil, fmt.Errorf("persistent id %v: want (\"storage\", class, key, location, numel, view_metadata)", id)
		}
		if kind, _ := t.Get(0).(string); kind != "storage" {
			return nil, fmt.Errorf("persistent id of kind %v; only \"storage\" is supported", t.Get(0))
		}
		typ, ok := t.Get(1).(torchStorage)
		if !ok {
			return nil, fmt.Errorf("persistent id: storage class is %T, want a torch.<T>Storage", t.Get(1))
		}
		key, ok := t.Get(2).(string)
		if !ok {
			return nil, fmt.Errorf("persistent id: storage key is %T, want a string", t.Get(2))
		}
		numel, err := pyInt(t.Get(4), "storage numel")
		if err != nil {
			return nil, fmt.Errorf("storage %s: %w", key, err)
		}
		if t.Get(5) != nil {
			return nil, fmt.Errorf("storage %s is a view of another storage (torch < 0.4); not supported", key)
		}
		if numel < 0 || numel > math.MaxInt/typ.size {
			return nil, fmt.Errorf("storage %s: bad element count %d", key, numel)
		}
		if s, ok := storages[key]; ok {
			if s.typ != typ || s.numel != numel {
				return nil, fmt.Errorf("storage %s is used as %s[%d] and as %s[%d]", key, s.typ.class, s.numel, typ.class, numel)
			}
			return s, nil
		}
		s := &pickledStorage{typ: typ, key: key, numel: numel}
		storages[key] = s
		return s, nil
	})
	if err != nil {
		return nil, err
	}
	keysObj, err := next("storage key list", nil)
	if err != nil {
		return nil, err
	}
	keys, ok := keysObj.(*types.List)
	if !ok {
		return nil, fmt.Errorf("%s: legacy PyTorch format: storage key list is a %T, want a list", path, keysObj)
	}
	for _, k := range *keys {
		key, ok := k.(string)
		if !ok {
			return nil, fmt.Errorf("%s: legacy PyTorch format: storage key %v is a %T, want a string", path, k, k)
		}
		s, ok := storages[key]
		if !ok {
			return nil, fmt.Errorf("%s: storage %s is listed but no tensor uses it", path, key)
		}
		if s.data != nil {
			return nil, fmt.Errorf("%s: storage %s is listed twice", path, key)
		}
		if len(data)-pos < 8 {
			return nil, fmt.Errorf("%s: truncated before storage %s", path, key)
		}
		n := int64(binary.LittleEndian.Uint64(data[pos:]))
		pos += 8
		if n != int64(s.numel) {
			return nil, fmt.Errorf("%s: storage %s (%s) holds %d elements, the state dict says %d", path, key, s.typ.class, n, s.numel)
		}
		size := s.numel * s.typ.size
		if len(data)-pos < size {
			return nil, fmt.Errorf("%s: truncated in storage %s (%d of %d bytes)", path, key, len(data)-pos, size)
		}
		s.data = data[pos : pos+size : pos+size]
		pos += size
	}
	for key, s := range storages {
		if s.data == nil {
			return nil, fmt.Errorf("%s: storage %s is used but its data is missing", path, key)
		}
	}
	if pos != len(data) {
		return nil, fmt.Errorf("%s: %d unexpected bytes after the last storage", path, len(data)-pos)
	}
	return stateDictEntries(path, obj, int64(len(data)))
}
