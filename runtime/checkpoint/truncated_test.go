package checkpoint_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/neoscope/neoscope/internal/fixtures"
	"github.com/neoscope/neoscope/runtime/checkpoint"
)

// TestTruncatedNamesTensor: a safetensors file cut in its data section is
// reported with the tensor whose bytes are short and by how much, not the
// library's "metadata incomplete buffer".
func TestTruncatedNamesTensor(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(fixtures.Dir(t, "tiny-neo"), "model.safetensors"))
	fixtures.Must(t, err)
	_, err = checkpoint.ParseSafetensors("m.safetensors", data[:100000])
	if err == nil {
		t.Fatal("a truncated file parsed")
	}
	msg := err.Error()
	if !strings.Contains(msg, "truncated: tensor \"") || !strings.Contains(msg, "bytes short") || strings.Contains(msg, "incomplete buffer") {
		t.Fatalf("message %q does not name the short tensor", msg)
	}
	if _, err := checkpoint.ParseSafetensors("m.safetensors", data); err != nil {
		t.Fatalf("the whole file: %v", err)
	}
}
