package cuda

import (
	"regexp"
	"testing"

	"github.com/neoscope/neoscope/kernels/emu"
)

// TestKernelNames: every kernel the backend launches is in the embedded PTX
// (so cuModuleGetFunction will find it) and in the emulator's table, and the
// PTX holds nothing the backend does not know.
func TestKernelNames(t *testing.T) {
	entries := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\.visible \.entry (\w+)\(`).FindAllStringSubmatch(string(kernelsPTX), -1) {
		entries[m[1]] = true
	}
	if len(entries) != int(numKernels) {
		t.Errorf("kernels.ptx has %d entries, the backend knows %d", len(entries), numKernels)
	}
	for _, n := range kernelNames {
		if !entries[n] {
			t.Errorf("%s: not in kernels.ptx (run kernels/build-ptx.sh)", n)
		}
		if emu.Available && !emu.Has(n) {
			t.Errorf("%s: not in the emulator's table (kernels/emu/kernels.cc)", n)
		}
	}
}
