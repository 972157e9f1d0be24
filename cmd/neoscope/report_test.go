package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/neoscope/neoscope/internal/fixtures"
)

// makeReport runs `neoscope report` on the two fixtures (small induction
// batch, to stay fast) and returns the output folder.
func makeReport(t *testing.T) string {
	t.Helper()
	neo, gpt := fixtures.Dir(t, "tiny-neo"), fixtures.Dir(t, "tiny-gpt2")
	out := filepath.Join(t.TempDir(), "report")
	stdout, stderr, code := runCLI(t, "report", "--model", neo, "--compare", gpt, "--out", out,
		"--backend", "cpu", "--rep-batch", "2", "--rep-period", "8")
	if code != 0 {
		t.Fatalf("report exited %d: %s", code, stderr)
	}
	index := filepath.Join(out, "index.html")
	if strings.TrimSpace(stdout) != "report: "+index {
		t.Errorf("stdout %q, want the page's path", stdout)
	}
	return out
}

// The page loads in headless Chromium with every image decoded and no script
// error (the page's own check writes both into <body>'s attributes, read
// from the dumped DOM), and nothing is logged as an uncaught error.
func TestReportInChromium(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium not on PATH (Debian: apt-get install chromium): the page is not checked in a browser")
	}
	out := makeReport(t)
	url := "file://" + filepath.Join(out, "index.html")
	run := func(args ...string) (string, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, chromium, append([]string{"--headless=new", "--no-sandbox", "--disable-gpu",
			"--no-first-run", "--user-data-dir=" + t.TempDir(), "--enable-logging=stderr", "--v=0"}, args...)...)
		var so, se bytes.Buffer
		cmd.Stdout, cmd.Stderr = &so, &se
		if err := cmd.Run(); err != nil {
			t.Fatalf("chromium %v: %v\n%s", args, err, se.String())
		}
		return so.String(), se.String()
	}
	dom, log := run("--virtual-time-budget=5000", "--dump-dom", url)
	body := regexp.MustCompile(`<body[^>]*>`).FindString(dom)
	if body == "" {
		t.Fatalf("no <body> in chromium's DOM dump:\n%.2000s\n%s", dom, log)
	}
	attr := func(name string) (string, bool) {
		m := regexp.MustCompile(` ` + name + `="([^"]*)"`).FindStringSubmatch(body)
		if m == nil {
			return "", false
		}
		return m[1], true
	}
	if ok, _ := attr("data-images-ok"); ok != "true" {
		bad, _ := attr("data-images-bad")
		t.Errorf("images not all rendered: %s (failed: %q)", body, bad)
	}
	if n, _ := attr("data-images"); n != "9" {
		t.Errorf("page has %s images, want 9", n)
	}
	if errs, found := attr("data-errors"); !found || errs != "" {
		t.Errorf("script errors in the page (or the check did not run): %q", errs)
	}
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "Uncaught") || (strings.Contains(line, "CONSOLE") && strings.Contains(line, "rror")) {
			t.Errorf("chromium log: %s", line)
		}
	}

	// A screenshot for a person to look at (kept when NEOSCOPE_REPORT_SHOT
	// names a file), checked here only for being a real PNG.
	shot := os.Getenv("NEOSCOPE_REPORT_SHOT")
	if shot == "" {
		shot = filepath.Join(t.TempDir(), "report.png")
	}
	run("--hide-scrollbars", "--window-size=1280,4000", "--screenshot="+shot, url)
	b, err := os.ReadFile(shot)
	if err != nil || len(b) < 10000 || !bytes.HasPrefix(b, []byte("\x89PNG")) {
		t.Errorf("screenshot %s: %v, %d bytes", shot, err, len(b))
	}
}

// Bad input exits 2 before any work and leaves nothing behind; an existing
// folder that is not a report is never replaced.
func TestReportErrors(t *testing.T) {
	neo := fixtures.Dir(t, "tiny-neo")
	dir := t.TempDir()
	foreign := filepath.Join(dir, "mine")
	fixtures.Must(t, os.MkdirAll(foreign, 0o755))
	fixtures.Must(t, os.WriteFile(filepath.Join(foreign, "notes.txt"), []byte("keep"), 0o644))
	badTokens := filepath.Join(dir, "bad.json")
	fixtures.Must(t, os.WriteFile(badTokens, []byte(`[[1,2,3],[4,5]]`), 0o644))
	bigTokens := filepath.Join(dir, "big.json")
	fixtures.Must(t, os.WriteFile(bigTokens, []byte(`[[1,2,9999]]`), 0o644))
	fresh := filepath.Join(dir, "fresh")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--model", neo}, "--out DIR is required"},
		{[]string{"--model", neo, "--out", foreign}, "refusing to replace"},
		{[]string{"--model", neo, "--out", fresh, "--tokens", badTokens}, "row"},
		{[]string{"--model", neo, "--out", fresh, "--tokens", bigTokens}, "9999"},
		{[]string{"--model", neo, "--out", fresh, "--rep-period", "1"}, "--rep-period"},
		{[]string{"--model", neo, "--out", fresh, "--compare", filepath.Join(dir, "nope")}, "no such model"},
		{[]string{"--model", neo, "--out", fresh, "--text", filepath.Join(dir, "t.txt")}, "tokenizer"},
	} {
		_, stderr, code := runCLI(t, append([]string{"report", "--backend", "cpu"}, tc.args...)...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, code, stderr, tc.want)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(foreign, "notes.txt")); string(b) != "keep" {
		t.Error("foreign folder touched")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 3 {
		t.Errorf("left behind in %s: %v", dir, ents)
	}
}

// --tokens replaces the repeated tokens in the lens and ablation sections,
// and results.json holds the same numbers as the page.
func TestReportTokens(t *testing.T) {
	ref := fixtures.Load(t, "tiny-neo")
	dir := t.TempDir()
	tokFile := filepath.Join(dir, "batch.json")
	data, err := json.Marshal(ref.Get(t, "tokens").Rows())
	fixtures.Must(t, err)
	fixtures.Must(t, os.WriteFile(tokFile, data, 0o644))
	out := filepath.Join(dir, "r")
	_, stderr, code := runCLI(t, "report", "--model", ref.Dir, "--out", out, "--tokens", tokFile,
		"--backend", "cpu", "--rep-batch", "2", "--rep-period", "8", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	page, err := os.ReadFile(filepath.Join(out, "index.html"))
	fixtures.Must(t, err)
	if n := strings.Count(string(page), "--tokens batch.json: 3 row(s) of 24 tokens"); n != 2 {
		t.Errorf("page names the --tokens input %d times, want 2 (lens, ablation)", n)
	}
	var res struct {
		Models []struct {
			Ablation struct {
				Baseline float64 `json:"baseline_loss"`
			} `json:"ablation"`
		} `json:"models"`
	}
	b, err := os.ReadFile(filepath.Join(out, "results.json"))
	fixtures.Must(t, err)
	fixtures.Must(t, json.Unmarshal(b, &res))
	want := ref.Cases["scalars"].(map[string]any)["loss"].(float64)
	ref.CheckAgainst(t, "baseline", []float64{res.Models[0].Ablation.Baseline}, []float64{want}, "loss")
	if !strings.Contains(string(page), fmt.Sprintf("%.4f", res.Models[0].Ablation.Baseline)) {
		t.Error("baseline loss of results.json not on the page")
	}
}
