package plot

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// scatterPoints: n points near y = x, with three far off it named far0..2.
func scatterPoints(n int) []Point {
	pts := make([]Point, n)
	for i := range pts {
		x := math.Sin(float64(i)) * 2
		pts[i] = Point{Name: fmt.Sprintf("p%d", i), X: x, Y: x + 0.05*math.Cos(float64(3*i))}
	}
	pts[1] = Point{Name: "far0", X: 1, Y: -1.5}
	pts[n/2] = Point{Name: "far1", X: -1.8, Y: 0.9}
	pts[n-1] = Point{Name: "far2", X: 0.3, Y: 1.9}
	pts = append(pts, Point{Name: "nan", X: math.NaN(), Y: 1})
	return pts
}

func TestScatter(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []int{20, 500} {
		for _, ext := range []string{".png", ".svg"} {
			p := filepath.Join(dir, fmt.Sprintf("scatter%d%s", n, ext))
			if err := Scatter(p, "AtP vs exact patching", "exact change of LD", "AtP estimate", scatterPoints(n), 3); err != nil {
				t.Fatal(err)
			}
			checkFile(t, p, 500, 450) // 6 x 5.5 in at 96 dpi = 576 x 528
			if ext == ".svg" {
				// The three worst points are named; a point near y = x is not.
				b, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				for _, want := range []string{"far0", "far1", "far2", "y = x"} {
					if !bytes.Contains(b, []byte(want)) {
						t.Errorf("%s: no %q label", p, want)
					}
				}
				if bytes.Contains(b, []byte(">p2<")) {
					t.Errorf("%s: a point on y = x is labelled", p)
				}
			}
		}
		if out := os.Getenv("NEOSCOPE_PLOT_OUT"); out != "" {
			Scatter(filepath.Join(out, fmt.Sprintf("scatter%d.png", n)), "AtP vs exact patching", "exact", "AtP", scatterPoints(n), 3)
		}
	}
	// The worst points are drawn in red: the PNG has strongly red pixels.
	img := readPNG(t, filepath.Join(dir, "scatter20.png"))
	red := 0
	for y := img.Bounds().Min.Y; y < img.Bounds().Max.Y; y++ {
		for x := img.Bounds().Min.X; x < img.Bounds().Max.X; x++ {
			r, g, bb, _ := img.At(x, y).RGBA()
			if r > 0xc000 && g < 0x5000 && bb < 0x5000 {
				red++
			}
		}
	}
	if red < 20 {
		t.Errorf("%d red pixels: the worst points are not drawn", red)
	}
	// A single point, and one constant coordinate, still draw.
	one := filepath.Join(dir, "one.png")
	if err := Scatter(one, "", "", "", []Point{{Name: "a", X: 1, Y: 1}}, 5); err != nil {
		t.Fatal(err)
	}
	checkFile(t, one, 100, 100)
}

func TestScatterErrors(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		err  error
		want string
	}{
		{Scatter(filepath.Join(dir, "x.jpg"), "", "", "", []Point{{X: 1, Y: 1}}, 1), "unsupported file type"},
		{Scatter(filepath.Join(dir, "x.png"), "", "", "", nil, 1), "no finite points"},
		{Scatter(filepath.Join(dir, "x.png"), "", "", "", []Point{{X: math.Inf(1), Y: 1}}, 1), "no finite points"},
	} {
		if c.err == nil || !strings.Contains(c.err.Error(), c.want) {
			t.Errorf("error %v, want one containing %q", c.err, c.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "x.png")); err == nil {
		t.Error("a failed scatter left x.png behind")
	}
}
