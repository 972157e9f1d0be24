package cuda

import (
	"sort"
	"strings"
	"testing"

	"github.com/neoscope/neoscope/kernels/emu"
)

// TestKernelNames: every kernel the backend launches is in the embedded
// fatbin (its entry list, kernels.names, which make ptx-check keeps current:
// so cuModuleGetFunction will find it) and in the emulator's table; and
// every entry of the fatbin is known to the backend or, for kernels compiled
// and emulator-tested before the backend launches them (the backward ops),
// at least to the emulator: an entry neither knows is a stale or stray kernel.
func TestKernelNames(t *testing.T) {
	entries := map[string]bool{}
	for _, n := range strings.Fields(kernelsList) {
		entries[n] = true
	}
	known := map[string]bool{}
	for _, n := range kernelNames {
		known[n] = true
		if !entries[n] {
			t.Errorf("%s: not in kernels.fatbin (run kernels/build-ptx.sh)", n)
		}
		if emu.Available && !emu.Has(n) {
			t.Errorf("%s: not in the emulator's table (kernels/emu/kernels.cc)", n)
		}
	}
	var unlaunched []string
	for n := range entries {
		switch {
		case known[n]:
		case emu.Available && emu.Has(n):
			unlaunched = append(unlaunched, n)
		default:
			t.Errorf("%s: in kernels.fatbin but neither the backend nor the emulator knows it", n)
		}
	}
	if len(unlaunched) > 0 {
		sort.Strings(unlaunched)
		t.Logf("in the fatbin and the emulator, not launched by the backend yet: %v", unlaunched)
	}
}
