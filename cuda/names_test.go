package cuda

import (
	"strings"
	"testing"

	"github.com/neoscope/neoscope/kernels/emu"
)

// TestKernelNames: every kernel the backend launches is in the embedded
// fatbin (its entry list, kernels.names, which make ptx-check keeps current:
// so cuModuleGetFunction will find it) and in the emulator's table, and the
// fatbin holds nothing the backend does not know.
func TestKernelNames(t *testing.T) {
	entries := map[string]bool{}
	for _, n := range strings.Fields(kernelsList) {
		entries[n] = true
	}
	if len(entries) != int(numKernels) {
		t.Errorf("kernels.fatbin has %d entries, the backend knows %d", len(entries), numKernels)
	}
	for _, n := range kernelNames {
		if !entries[n] {
			t.Errorf("%s: not in kernels.fatbin (run kernels/build-ptx.sh)", n)
		}
		if emu.Available && !emu.Has(n) {
			t.Errorf("%s: not in the emulator's table (kernels/emu/kernels.cc)", n)
		}
	}
}
