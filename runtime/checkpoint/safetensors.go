package checkpoint

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"syscall"

	"github.com/nlpodyssey/safetensors"

	"github.com/neoscope/neoscope/runtime/arch"
)

// Load reads the weights in dir for config c: model.safetensors, else the
// shards named by model.safetensors.index.json, else pytorch_model.bin.
func Load(dir string, c *arch.Config) (*Weights, error) {
	single := filepath.Join(dir, "model.safetensors")
	index := filepath.Join(dir, "model.safetensors.index.json")
	bin := filepath.Join(dir, "pytorch_model.bin")
	var files []string
	switch {
	case exists(single):
		files = []string{single}
	case exists(index):
		var err error
		if files, err = shardFiles(index); err != nil {
			return nil, err
		}
	case exists(bin):
		entries, err := ReadPyTorchBin(bin)
		if err != nil {
			return nil, err
		}
		return Assemble(c, entries)
	default:
		return nil, fmt.Errorf("%s: no model.safetensors, model.safetensors.index.json or pytorch_model.bin", dir)
	}
	var entries []Entry
	var closers []func() error
	for _, f := range files {
		es, closer, err := MapSafetensors(f)
		if err != nil {
			for _, c := range closers {
				c()
			}
			return nil, err
		}
		entries = append(entries, es...)
		closers = append(closers, closer)
	}
	w, err := Assemble(c, entries)
	if err != nil {
		for _, c := range closers {
			c()
		}
		return nil, err
	}
	w.closers = append(w.closers, closers...) // after the converted copies' own
	return w, nil
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func shardFiles(index string) ([]string, error) {
	data, err := os.ReadFile(index)
	if err != nil {
		return nil, err
	}
	var idx struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(data, &idx); err != nil {
		return nil, fmt.Errorf("%s: not valid JSON: %w", index, err)
	}
	if len(idx.WeightMap) == 0 {
		return nil, fmt.Errorf("%s: field \"weight_map\" is missing or empty", index)
	}
	seen := map[string]bool{}
	var files []string
	for _, f := range idx.WeightMap {
		if filepath.Base(f) != f {
			return nil, fmt.Errorf("%s: shard name %q must be a plain file name", index, f)
		}
		if !seen[f] {
			seen[f] = true
			files = append(files, filepath.Join(filepath.Dir(index), f))
		}
	}
	sort.Strings(files)
	return files, nil
}

// MapSafetensors memory-maps a safetensors file and returns its tensors as
// entries pointing into the map, validated by the safetensors library
// (header length, JSON, offsets within the file, no overlaps). The closer
// unmaps the file.
func MapSafetensors(path string) ([]Entry, func() error, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	size := st.Size()
	if size < 8 {
		return nil, nil, fmt.Errorf("%s: truncated: %d bytes, a safetensors file starts with an 8-byte header length", path, size)
	}
	data, err := syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_PRIVATE)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: mmap: %w", path, err)
	}
	closer := func() error { return syscall.Munmap(data) }
	entries, err := parseSafetensors(path, data)
	if err != nil {
		closer()
		return nil, nil, err
	}
	for i := range entries {
		entries[i].Mapped = true
	}
	return entries, closer, nil
}

// ParseSafetensors parses an in-memory safetensors file (used by tests and the fuzz target).
func ParseSafetensors(name string, data []byte) ([]Entry, error) { return parseSafetensors(name, data) }

func parseSafetensors(path string, data []byte) ([]Entry, error) {
	if len(data) < 8 {
		return nil, fmt.Errorf("%s: truncated: %d bytes, a safetensors file starts with an 8-byte header length", path, len(data))
	}
	hl := binary.LittleEndian.Uint64(data)
	if hl > uint64(len(data)-8) {
		return nil, fmt.Errorf("%s: header length %d is beyond the file's %d bytes (truncated or not safetensors)", path, hl, len(data))
	}
	st, err := safetensors.Deserialize(data)
	if err != nil {
		if short := shortTensor(path, data, hl); short != nil {
			return nil, short
		}
		return nil, fmt.Errorf("%s: invalid safetensors: %w", path, err)
	}
	var entries []Entry
	for _, nt := range st.Tensors() {
		v := nt.TensorView
		shape := make([]int, len(v.Shape()))
		for i, d := range v.Shape() {
			shape[i] = int(d)
		}
		entries = append(entries, Entry{Name: nt.Name, DType: v.DType().String(), Shape: shape, Data: v.Data(), File: path})
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name < entries[j].Name })
	return entries, nil
}
