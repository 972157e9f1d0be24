package plot

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDrawGraph(t *testing.T) {
	dir := t.TempDir()
	g := Graph{Title: "a circuit", Legend: []string{"legend"},
		Nodes: []GraphNode{{"embed", 0, -1}, {"0.1", 1, 0}, {"mlp.0", 2, 0}, {"logits", 3, -1}},
		Edges: []GraphEdge{{From: 0, To: 1, Port: -1, Weight: 1}, {From: 1, To: 2, Weight: 0.2}, {From: 2, To: 3, Port: 1, Weight: 0.5}}}
	for _, ext := range []string{"png", "svg"} {
		p := filepath.Join(dir, "g."+ext)
		if err := DrawGraph(p, g); err != nil {
			t.Fatal(err)
		}
		checkFile(t, p, 400, 300)
	}
	svg, _ := os.ReadFile(filepath.Join(dir, "g.svg"))
	for _, n := range g.Nodes {
		if !strings.Contains(string(svg), n.Name) {
			t.Errorf("svg lacks node %q", n.Name)
		}
	}
	for _, bad := range []Graph{{}, {Nodes: g.Nodes, Edges: []GraphEdge{{From: 0, To: 9}}}, {Nodes: []GraphNode{{"x", -1, 0}}}} {
		if err := DrawGraph(filepath.Join(dir, "bad.png"), bad); err == nil {
			t.Errorf("%+v: want an error", bad)
		}
	}
	if err := DrawGraph(filepath.Join(dir, "g.jpg"), g); err == nil {
		t.Error(".jpg: want an error")
	}
	if _, err := os.Stat(filepath.Join(dir, "bad.png")); err == nil {
		t.Error("a failed drawing left a file")
	}
}
