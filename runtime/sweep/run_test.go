package sweep_test

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/neoscope/neoscope/cpu"
	"github.com/neoscope/neoscope/internal/fixtures"
	"github.com/neoscope/neoscope/runtime/forward"
	"github.com/neoscope/neoscope/runtime/sweep"
)

// TestRunWindows runs a streamed space a few configurations at a time
// (Window 7, so 18 windows and their boundaries) against the same space
// run as one window: the same rows in index order, handed to Row in that
// order, values equal within float32 rounding (chunks differ only at the
// window boundaries); the same as 3 shards. Then a journal cut mid-way,
// mid-line, resumes to a file byte-identical to the uninterrupted windowed
// run.
func TestRunWindows(t *testing.T) {
	ref := fixtures.Load(t, "tiny-neo")
	m, err := forward.Open(cpu.New(), ref.Dir)
	fixtures.Must(t, err)
	defer m.Close()
	tok := ref.Get(t, "tokens")
	task := sweep.Task{Tokens: tok.Ints(), B: tok.Shape[0], T: tok.Shape[1]}
	e, err := sweep.New(m, task, sweep.Options{Chunk: 5})
	fixtures.Must(t, err)
	defer e.Close()
	const space = "pairs(heads) | singles(attn) | given(mlp.1; singles(0.*)) | none"
	dims := sweep.DimsOf(m.Cfg)
	dir := t.TempDir()
	run := func(out string, window int, resume bool, shard ...int) ([]sweep.Row, int) {
		t.Helper()
		s, err := sweep.Open(space, dims)
		fixtures.Must(t, err)
		var rows []sweep.Row
		meta := sweep.Meta{Space: space, Model: ref.Dir, Metric: "loss"}
		if len(shard) == 2 {
			meta.Shard, meta.Shards = shard[0], shard[1]
		}
		n, err := sweep.Run(e, s, sweep.RunOptions{Out: out, Format: sweep.CSV, Window: window, Resume: resume,
			Meta: meta,
			Row:  func(r sweep.Row) error { rows = append(rows, r); return nil }})
		fixtures.Must(t, err)
		return rows, n
	}
	whole, n := run(filepath.Join(dir, "whole.csv"), 0, false)
	const total = 120 + 4 + 4 + 1
	if n != total || len(whole) != total {
		t.Fatalf("%d rows (%d handed over), want %d", n, len(whole), total)
	}
	out := filepath.Join(dir, "win.csv")
	win, _ := run(out, 7, false)
	got, want := make([]float64, total), make([]float64, total)
	for i := range whole {
		if whole[i].Index != i || win[i].Index != i || win[i].Config != whole[i].Config {
			t.Fatalf("row %d: index %d / %d, %q / %q", i, whole[i].Index, win[i].Index, win[i].Config, whole[i].Config)
		}
		got[i], want[i] = win[i].Value, whole[i].Value
	}
	fixtures.Close(t, "windows of 7 vs one window", got, want, tolSelf)

	// Shards of a windowed run: each holds its indices i mod 3, in order,
	// with the configurations and values of the whole run.
	seen := 0
	for i := 0; i < 3; i++ {
		rows, n := run(filepath.Join(dir, fmt.Sprintf("part.%d.csv", i)), 7, false, i, 3)
		if n != sweep.ShardLen(total, i, 3) || len(rows) != n {
			t.Fatalf("shard %d/3: %d rows, want %d", i, n, sweep.ShardLen(total, i, 3))
		}
		for k, r := range rows {
			if r.Index != i+3*k || r.Config != whole[r.Index].Config || math.Abs(r.Value-whole[r.Index].Value) > tolSelf {
				t.Fatalf("shard %d/3, row %d: %+v, whole run %+v", i, k, r, whole[r.Index])
			}
		}
		seen += n
	}
	if seen != total {
		t.Errorf("3 shards hold %d rows, want %d", seen, total)
	}

	data, err := os.ReadFile(out)
	fixtures.Must(t, err)
	// The finished file is also a valid journal (each window's rows
	// together, in any order): a resume must accept any prefix of it.
	lines := bytes.SplitAfter(data, []byte("\n"))
	for _, cut := range []int{1, 9, 40, len(lines) - 3} {
		part := append([]byte{}, bytes.Join(lines[:cut], nil)...)
		part = append(part, lines[cut][:len(lines[cut])/2]...) // a torn last line
		resumed := filepath.Join(dir, "resumed.csv")
		fixtures.Must(t, os.WriteFile(resumed, part, 0o644))
		meta, err := os.ReadFile(sweep.MetaPath(out))
		fixtures.Must(t, err)
		fixtures.Must(t, os.WriteFile(sweep.MetaPath(resumed), bytes.Replace(meta, []byte(`"complete": true`), []byte(`"complete": false`), 1), 0o644))
		rows, _ := run(resumed, 7, true)
		again, err := os.ReadFile(resumed)
		fixtures.Must(t, err)
		if !bytes.Equal(again, data) || len(rows) != total {
			t.Errorf("journal cut after %d lines: resumed file differs from the uninterrupted run (%d rows)", cut, len(rows))
		}
	}
}
