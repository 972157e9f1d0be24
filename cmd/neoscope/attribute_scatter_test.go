package main

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/neoscope/neoscope/internal/fixtures"
)

// attribute --verify N --plot-scatter FILE draws the verified estimates
// against their exact values (the values themselves are probes/attrib's
// TestVerify); without --verify, or with another file type, it is a usage
// error and nothing is written.
func TestAttributePlotScatter(t *testing.T) {
	g := loadGradFixture(t, "tiny-neo")
	dir := t.TempDir()
	base := []string{"attribute", "--model", g.dir, "--backend", "cpu", "--task", "patch",
		"--clean", writeJSON(t, filepath.Join(dir, "c.json"), g.cases.Clean),
		"--corrupt", writeJSON(t, filepath.Join(dir, "k.json"), g.cases.Corrupt),
		"--io", joinInts(g.cases.IO), "--s", joinInts(g.cases.S), "--metric", "ld"}
	for _, method := range []string{"atp", "eap"} {
		p := filepath.Join(dir, method+".png")
		if _, stderr, code := runCLI(t, append(base, "--method", method, "--verify", "12", "--plot-scatter", p)...); code != 0 {
			t.Fatalf("%s: exit %d: %s", method, code, stderr)
		}
		b, err := os.ReadFile(p)
		fixtures.Must(t, err)
		cfg, err := png.DecodeConfig(bytes.NewReader(b))
		if err != nil || cfg.Width < 500 || cfg.Height < 450 {
			t.Errorf("%s: %v (%dx%d)", p, err, cfg.Width, cfg.Height)
		}
	}
	svg := filepath.Join(dir, "eap.svg")
	if _, stderr, code := runCLI(t, append(base, "--method", "eap", "--verify", "8", "--plot-scatter", svg)...); code != 0 {
		t.Fatalf("svg: exit %d: %s", code, stderr)
	}
	if b, _ := os.ReadFile(svg); !bytes.Contains(b, []byte("y = x")) || !bytes.Contains(b, []byte("&gt;")) {
		t.Errorf("%s: no y = x line or no edge name", svg)
	}
	expectUsage(t, "needs --verify", append(base, "--plot-scatter", filepath.Join(dir, "x.png"))...)
	expectUsage(t, "want a .png or .svg", append(base, "--verify", "3", "--plot-scatter", filepath.Join(dir, "x.gif"))...)
	// An existing chart is kept without --force.
	before, _ := os.ReadFile(svg)
	expectUsage(t, "exists: pass --force", append(base, "--verify", "3", "--plot-scatter", svg)...)
	if after, _ := os.ReadFile(svg); !bytes.Equal(before, after) {
		t.Error("a refused run changed the existing chart")
	}
	if _, err := os.Stat(filepath.Join(dir, "x.png")); err == nil {
		t.Error("a refused run wrote x.png")
	}
}

// report --attrib-edges refuses a negative count before any work.
func TestReportAttribEdgesFlag(t *testing.T) {
	out := filepath.Join(t.TempDir(), "r")
	expectUsage(t, "--attrib-edges must be 0", "report", "--out", out, "--backend", "cpu", "--attrib-edges", "-1")
	if _, err := os.Stat(out); err == nil {
		t.Error("a refused report wrote its folder")
	}
}
