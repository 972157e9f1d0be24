package outfile

import (
	"os"
	"path/filepath"
	"testing"
)

// TestCheckRerun: CheckRerun lets a command replace a safetensors file it
// wrote itself (its producer); Check, and CheckRerun for another producer,
// refuse every existing file without force (a foreign safetensors file and
// another command's output included); an input is refused even with force.
func TestCheckRerun(t *testing.T) {
	dir := t.TempDir()
	own := filepath.Join(dir, "own.safetensors")
	if err := Safetensors(own, map[string]F32{"x": {ShapeOf: []int{2}, Values: []float32{1, 2}}}, map[string]string{"producer": "neoscope run"}); err != nil {
		t.Fatal(err)
	}
	if !Produced(own, "neoscope run") || Produced(own, "neoscope grad") {
		t.Fatal("Produced does not tell the producer")
	}
	if err := CheckRerun("--out", own, false, "neoscope run"); err != nil {
		t.Errorf("re-run onto its own output refused: %v", err)
	}
	if err := CheckRerun("--out", own, false, "neoscope grad"); err == nil {
		t.Error("another command's output replaced without --force")
	}
	if err := Check("--out", own, false); err == nil {
		t.Error("Check replaced an existing file without --force")
	}
	if err := CheckRerun("--out", own, true, "neoscope run", own); err == nil {
		t.Error("an input accepted as the output")
	}
	foreign := filepath.Join(dir, "foreign.safetensors")
	hdr := `{"__metadata__":{"producer":"torch"},"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`
	b := append([]byte{byte(len(hdr)), 0, 0, 0, 0, 0, 0, 0}, hdr...)
	b = append(b, 0, 0, 128, 63)
	for name, data := range map[string][]byte{foreign: b, filepath.Join(dir, "keep.safetensors"): []byte("keep\n")} {
		if err := os.WriteFile(name, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := CheckRerun("--out", name, false, "neoscope run"); err == nil {
			t.Errorf("%s replaced without --force", name)
		}
	}
}
