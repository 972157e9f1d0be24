package checkpoint

import (
	"encoding/json"
	"fmt"
)

// shortTensor names the first tensor (by data offset) whose bytes lie past
// the end of a safetensors file, and by how much, for a file whose header
// is intact but whose data was cut (a copy or download stopped early). It
// returns nil when every tensor's bytes are present or the header cannot be
// read (the full parser then says what is wrong).
func shortTensor(path string, data []byte, headerLen uint64) error {
	var header map[string]json.RawMessage
	if err := json.Unmarshal(data[8:8+headerLen], &header); err != nil {
		return nil
	}
	have := uint64(len(data)) - 8 - headerLen
	var name string
	var start, end uint64
	for n, raw := range header {
		if n == "__metadata__" {
			continue
		}
		var t struct {
			Offsets []uint64 `json:"data_offsets"`
		}
		if json.Unmarshal(raw, &t) != nil || len(t.Offsets) != 2 {
			continue
		}
		if t.Offsets[1] > have && (name == "" || t.Offsets[0] < start) {
			name, start, end = n, t.Offsets[0], t.Offsets[1]
		}
	}
	if name == "" {
		return nil
	}
	got := uint64(0)
	if have > start {
		got = have - start
	}
	return fmt.Errorf("%s: truncated: tensor %q has %d of its %d bytes (%d bytes short; the file's data section ends at byte %d of %d)",
		path, name, got, end-start, end-have, have, maxEnd(header))
}

// maxEnd is the end of the data section the header describes.
func maxEnd(header map[string]json.RawMessage) uint64 {
	var m uint64
	for n, raw := range header {
		if n == "__metadata__" {
			continue
		}
		var t struct {
			Offsets []uint64 `json:"data_offsets"`
		}
		if json.Unmarshal(raw, &t) == nil && len(t.Offsets) == 2 && t.Offsets[1] > m {
			m = t.Offsets[1]
		}
	}
	return m
}
