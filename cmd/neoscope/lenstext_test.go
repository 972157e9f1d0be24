package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/neoscope/neoscope/internal/fixtures"
)

// TestTextWindows (issue 18 item 4): every token of a long text is in some
// row; the last row is the final seq tokens.
func TestTextWindows(t *testing.T) {
	ids := make([]int, 360)
	for i := range ids {
		ids[i] = i
	}
	rows, overlap, err := textWindows(ids, 0, 128)
	fixtures.Must(t, err)
	if len(rows) != 3 || overlap != 3*128-360 {
		t.Fatalf("360 tokens in rows of 128: %d rows, overlap %d; want 3 rows, overlap 24", len(rows), overlap)
	}
	seen := map[int32]bool{}
	for _, r := range rows {
		for _, id := range r {
			seen[id] = true
		}
	}
	if len(seen) != 360 || rows[2][127] != 359 || rows[2][0] != 232 {
		t.Fatalf("covered %d of 360 tokens; last row %d..%d", len(seen), rows[2][0], rows[2][127])
	}
	if rows, overlap, _ = textWindows(ids[:256], 128, 128); len(rows) != 2 || overlap != 0 {
		t.Fatalf("256 tokens: %d rows, overlap %d", len(rows), overlap)
	}
	if _, _, err = textWindows(ids[:1], 0, 128); err == nil {
		t.Fatal("one token accepted")
	}
}

// TestLensLongText: lens --text on a text longer than the context reads
// every token (B*T >= the token count) and says how rows overlap.
func TestLensLongText(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "long.txt")
	fixtures.Must(t, os.WriteFile(text, []byte(strings.Repeat("In the beginning God created the heaven and the earth. ", 40)), 0o644))
	ids, stderr, code := runCLI(t, "tokenize", "--text", text, "--json")
	if code != 0 {
		t.Fatalf("tokenize: %d %s", code, stderr)
	}
	var tk struct{ IDs []int }
	fixtures.Must(t, json.Unmarshal([]byte(ids), &tk))
	stdout, stderr, code := runCLI(t, "lens", "--backend", "cpu", "--text", text, "--json")
	if code != 0 {
		t.Fatalf("lens --text: exit %d: %s", code, stderr)
	}
	var res struct{ B, T int }
	fixtures.Must(t, json.Unmarshal([]byte(stdout), &res))
	if res.B*res.T < len(tk.IDs) || res.T > 128 {
		t.Fatalf("%d tokens read as %d x %d", len(tk.IDs), res.B, res.T)
	}
	if len(tk.IDs)%res.T != 0 && !strings.Contains(stderr, "overlaps") {
		t.Fatalf("no note on the overlapping last row: %s", stderr)
	}
}
