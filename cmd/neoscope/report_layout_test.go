package main

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/neoscope/neoscope/internal/fixtures"
)

// TestReportLayoutInChromium (issue 18 item 6): in the single-model report
// (the bundled model, IOI, attribution and a circuit included) at 1400 and
// 1920 px and in compare reports (without and with IOI), every image
// renders at least 200 px wide, and a full-page screenshot shows every
// chart: each image's box lies inside the shot and holds a drawing (several
// colours), not a blank or squeezed area. Together they cover every kind of
// chart the report draws.
func TestReportLayoutInChromium(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium not on PATH (Debian: apt-get install chromium): the report's layout cannot be checked")
	}
	// Every kind of chart the report draws: the three head heat maps, IOI
	// patching and DLA, the two attribution scatters, the lens, embedding
	// and layer charts, and a circuit (--circuit).
	circ := filepath.Join(t.TempDir(), "circuit")
	if _, stderr, code := runCLI(t, "circuit", "--task", "induction", "--threshold", "0.05", "--out", circ, "--backend", "cpu"); code != 0 {
		t.Fatalf("circuit: exit %d: %s", code, stderr)
	}
	single := filepath.Join(t.TempDir(), "single")
	if _, stderr, code := runCLI(t, "report", "--out", single, "--backend", "cpu", "--rep-batch", "2", "--rep-period", "8", "--ioi-prompts", "8", "--circuit", circ); code != 0 {
		t.Fatalf("report: exit %d: %s", code, stderr)
	}
	// Item 5: where the IOI gap is within the noise the page gives no verdict.
	page, err := os.ReadFile(filepath.Join(single, "index.html"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := os.ReadFile(filepath.Join(single, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(res), `"no_verdict": true`) && (!strings.Contains(string(page), "no verdict") || strings.Contains(string(page), "mostly")) {
		t.Error("results.json says no_verdict, the page gives a verdict")
	}
	compare := makeReport(t)
	// Compare mode with IOI and attribution charts in one column (a model
	// with a tokenizer beside one without).
	compareIOI := filepath.Join(t.TempDir(), "compare-ioi")
	if _, stderr, code := runCLI(t, "report", "--model", ioiTestModel(t), "--compare", fixtures.Dir(t, "tiny-gpt2"), "--out", compareIOI,
		"--backend", "cpu", "--rep-batch", "2", "--rep-period", "8", "--ioi-prompts", "8"); code != 0 {
		t.Fatalf("report --compare: exit %d: %s", code, stderr)
	}
	for _, c := range []struct {
		dir    string
		width  int
		images int
	}{{single, 1400, 11}, {single, 1920, 11}, {compare, 1400, 9}, {compareIOI, 1400, 13}, {compareIOI, 1920, 13}} {
		t.Run(fmt.Sprintf("%s-%d", filepath.Base(c.dir), c.width), func(t *testing.T) {
			checkLayout(t, chromium, c.dir, c.width, c.images)
		})
	}
}

func checkLayout(t *testing.T, chromium, dir string, width, nimg int) {
	url := "file://" + filepath.Join(dir, "index.html")
	run := func(args ...string) string {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, chromium, append([]string{"--headless=new", "--no-sandbox", "--disable-gpu",
			"--no-first-run", "--hide-scrollbars", "--force-device-scale-factor=1", "--user-data-dir=" + t.TempDir()}, args...)...)
		var so, se bytes.Buffer
		cmd.Stdout, cmd.Stderr = &so, &se
		if err := cmd.Run(); err != nil {
			t.Fatalf("chromium %v: %v\n%s", args, err, se.String())
		}
		return so.String()
	}
	dom := run(fmt.Sprintf("--window-size=%d,3000", width), "--virtual-time-budget=5000", "--dump-dom", url)
	body := regexp.MustCompile(`<body[^>]*>`).FindString(dom)
	attr := func(name string) string {
		m := regexp.MustCompile(` ` + name + `="([^"]*)"`).FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("no %s on <body> (the page's check did not run): %.300s", name, body)
		}
		return m[1]
	}
	var pageW, pageH int
	if _, err := fmt.Sscanf(attr("data-page-size"), "%d,%d", &pageW, &pageH); err != nil {
		t.Fatal(err)
	}
	type box struct {
		file       string
		x, y, w, h int
	}
	var boxes []box
	for _, s := range strings.Split(attr("data-image-boxes"), ";") {
		file, nums, _ := strings.Cut(s, ":")
		var b box
		b.file = file
		v := strings.Split(nums, ",")
		if len(v) != 4 {
			t.Fatalf("bad box %q", s)
		}
		p := []*int{&b.x, &b.y, &b.w, &b.h}
		for i := range v {
			*p[i], _ = strconv.Atoi(v[i])
		}
		boxes = append(boxes, b)
	}
	if len(boxes) != nimg {
		t.Fatalf("%d images on the page, want %d", len(boxes), nimg)
	}
	for _, b := range boxes {
		if b.w < 200 || b.h < 100 {
			t.Errorf("%s renders at %d x %d px at a %d px wide window, want at least 200 px wide", b.file, b.w, b.h, width)
		}
	}
	shot := filepath.Join(t.TempDir(), "shot.png")
	if keep := os.Getenv("NEOSCOPE_REPORT_SHOT"); keep != "" {
		shot = strings.TrimSuffix(keep, ".png") + fmt.Sprintf("-%s-%d.png", filepath.Base(dir), width)
	}
	run(fmt.Sprintf("--window-size=%d,%d", width, pageH), "--screenshot="+shot, url)
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	bounds := img.Bounds()
	for _, b := range boxes {
		r := image.Rect(b.x, b.y, b.x+b.w, b.y+b.h)
		if !r.In(bounds) {
			t.Errorf("%s at %v lies outside the %v screenshot", b.file, r, bounds)
			continue
		}
		colours := map[[3]uint32]bool{}
		for y := r.Min.Y; y < r.Max.Y; y += 3 {
			for x := r.Min.X; x < r.Max.X; x += 3 {
				cr, cg, cb, _ := img.At(x, y).RGBA()
				colours[[3]uint32{cr >> 12, cg >> 12, cb >> 12}] = true
			}
		}
		if len(colours) < 8 {
			t.Errorf("%s: its %v box in the screenshot holds %d colours: not a visible chart", b.file, r, len(colours))
		}
	}
}
