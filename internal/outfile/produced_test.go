package outfile

import (
	"os"
	"path/filepath"
	"testing"
)

// TestProducedOnly: Check lets a re-run replace a safetensors file neoscope
// wrote, and refuses any other existing file (a foreign safetensors file
// included) without force, and an input even with force.
func TestProducedOnly(t *testing.T) {
	dir := t.TempDir()
	own := filepath.Join(dir, "own.safetensors")
	if err := Safetensors(own, map[string]F32{"x": {ShapeOf: []int{2}, Values: []float32{1, 2}}}, nil); err != nil {
		t.Fatal(err)
	}
	if !Produced(own) {
		t.Fatal("Produced: false for neoscope's own output")
	}
	if err := Check("--out", own, false); err != nil {
		t.Errorf("re-run onto its own output refused: %v", err)
	}
	if err := Check("--out", own, true, own); err == nil {
		t.Error("an input accepted as the output")
	}
	foreign := filepath.Join(dir, "foreign.safetensors")
	// A valid safetensors file with other metadata.
	hdr := `{"__metadata__":{"producer":"torch"},"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`
	b := append([]byte{byte(len(hdr)), 0, 0, 0, 0, 0, 0, 0}, hdr...)
	b = append(b, 0, 0, 128, 63)
	for name, data := range map[string][]byte{foreign: b, filepath.Join(dir, "keep.safetensors"): []byte("keep\n")} {
		if err := os.WriteFile(name, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if Produced(name) {
			t.Errorf("Produced(%s): true", name)
		}
		if err := Check("--out", name, false); err == nil {
			t.Errorf("%s replaced without --force", name)
		}
	}
}
