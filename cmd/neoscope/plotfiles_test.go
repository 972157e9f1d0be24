package main

import (
	"bytes"
	"encoding/xml"
	"image"
	_ "image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/neoscope/neoscope/internal/fixtures"
)

// checkChart fails unless path is a non-empty, decodable PNG or SVG chart.
func checkChart(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil || len(data) == 0 {
		t.Errorf("chart %s not written: %v", path, err)
		return
	}
	switch filepath.Ext(path) {
	case ".png":
		cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
		if err != nil || format != "png" || cfg.Width < 200 || cfg.Height < 100 {
			t.Errorf("%s: not a readable PNG chart: %s %dx%d %v", path, format, cfg.Width, cfg.Height, err)
		}
	case ".svg":
		dec := xml.NewDecoder(bytes.NewReader(data))
		root := ""
		for root == "" {
			tok, err := dec.Token()
			if err != nil {
				t.Errorf("%s: not an SVG document: %v", path, err)
				return
			}
			if se, ok := tok.(xml.StartElement); ok {
				root = se.Name.Local
			}
		}
		for {
			if _, err := dec.Token(); err != nil {
				if err.Error() != "EOF" {
					t.Errorf("%s: malformed SVG: %v", path, err)
				}
				break
			}
		}
		if root != "svg" {
			t.Errorf("%s: root element <%s>, want <svg>", path, root)
		}
	}
}

// plotFilesCase runs a command whose --plot FILE writes FILE and variants
// beside it, and checks the rules of every output: each file written and a
// valid chart; a variant already there is refused without --force (exit 2,
// nothing written, before the work) and replaced with it; a variant that
// cannot be written (a directory of that name) is refused before the work.
func plotFilesCase(t *testing.T, args []string, ext string, suffixes ...string) {
	dir := t.TempDir()
	main := filepath.Join(dir, "chart"+ext)
	files := []string{main}
	for _, s := range suffixes {
		files = append(files, filepath.Join(dir, "chart-"+s+ext))
	}
	run := func(extra ...string) (string, int) {
		_, stderr, code := runCLI(t, append(append(append([]string{}, args...), "--plot", main), extra...)...)
		return stderr, code
	}
	if stderr, code := run(); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, f := range files {
		checkChart(t, f)
	}
	for _, f := range files[1:] {
		// Only the variant is there: it must not be replaced silently.
		for _, g := range files {
			os.Remove(g)
		}
		fixtures.Must(t, os.WriteFile(f, []byte("keep"), 0o644))
		stderr, code := run()
		if code != 2 || string(fileBytes(t, f)) != "keep" || !strings.Contains(stderr, filepath.Base(f)) {
			t.Errorf("%s exists: exit %d, want 2 naming it and the file kept: %s", filepath.Base(f), code, stderr)
		}
		if _, err := os.Stat(main); err == nil {
			t.Errorf("%s exists: %s was written before the refusal", filepath.Base(f), filepath.Base(main))
		}
		if stderr, code := run("--force"); code != 0 {
			t.Errorf("--force: exit %d: %s", code, stderr)
		}
		for _, g := range files {
			checkChart(t, g)
		}
		// A directory where the variant goes: refused before the work.
		for _, g := range files {
			os.Remove(g)
		}
		fixtures.Must(t, os.Mkdir(f, 0o755))
		stderr, code = run("--force")
		if code != 2 || !strings.Contains(stderr, "is a directory") {
			t.Errorf("%s is a directory: exit %d, want 2: %s", filepath.Base(f), code, stderr)
		}
		if _, err := os.Stat(main); err == nil {
			t.Errorf("%s is a directory: %s was written before the refusal", filepath.Base(f), filepath.Base(main))
		}
		os.Remove(f)
	}
	// Not a chart format: refused at once.
	if _, stderr, code := runCLI(t, append(append([]string{}, args...), "--plot", filepath.Join(dir, "chart.txt"))...); code != 2 || !strings.Contains(stderr, ".png or .svg") {
		t.Errorf("--plot chart.txt: exit %d: %s", code, stderr)
	}
}

// TestPlotVariantFiles (issue 18, outputs): induction --plot FILE writes
// FILE, FILE-prev and FILE-ablation; ioi and patch --plot FILE write FILE
// and FILE-dla. Every one obeys --force and is checked before the work.
func TestPlotVariantFiles(t *testing.T) {
	ref := fixtures.Dir(t, "tiny-neo")
	t.Run("induction", func(t *testing.T) {
		plotFilesCase(t, []string{"induction", "--model", ref, "--backend", "cpu", "--period", "5", "--batch", "2", "--seed", "2"},
			".png", "prev", "ablation")
	})
	t.Run("induction-svg-no-ablation", func(t *testing.T) {
		plotFilesCase(t, []string{"induction", "--model", ref, "--backend", "cpu", "--period", "5", "--batch", "2", "--no-ablation"},
			".svg", "prev")
	})
	t.Run("ioi", func(t *testing.T) {
		dir := ioiTestModel(t)
		plotFilesCase(t, []string{"ioi", "--model", dir, "--backend", "cpu", "--n", "4", "--no-resid"}, ".svg", "dla")
	})
}
