package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/neoscope/neoscope/internal/fixtures"
)

type circuitFixture struct {
	dir, clean, corrupt, io, s string
	acdc                       struct {
		Threshold     float64  `json:"threshold"`
		Edges         []string `json:"edges"`
		CircuitMetric float64  `json:"circuit_metric"`
	}
}

func loadCircuitFixture(t *testing.T, name string) *circuitFixture {
	t.Helper()
	root := fixtures.Root()
	if root == "" {
		t.Fatal("reference fixtures not found (../shared/fixtures; set NEOSCOPE_FIXTURES)")
	}
	f := &circuitFixture{dir: filepath.Join(root, name)}
	var cases struct {
		Clean   [][]int32 `json:"ioi_clean"`
		Corrupt [][]int32 `json:"ioi_corrupt"`
		IO      []int32   `json:"ioi_io"`
		S       []int32   `json:"ioi_s"`
	}
	for file, v := range map[string]any{"cases.json": &cases, "acdc.json": &f.acdc} {
		b, err := os.ReadFile(filepath.Join(f.dir, file))
		fixtures.Must(t, err)
		fixtures.Must(t, json.Unmarshal(b, v))
	}
	tmp := t.TempDir()
	f.clean, f.corrupt = filepath.Join(tmp, "clean.json"), filepath.Join(tmp, "corrupt.json")
	for p, v := range map[string][][]int32{f.clean: cases.Clean, f.corrupt: cases.Corrupt} {
		b, _ := json.Marshal(v)
		fixtures.Must(t, os.WriteFile(p, b, 0o644))
	}
	f.io, f.s = joinIDs(cases.IO), joinIDs(cases.S)
	return f
}

func (f *circuitFixture) args(out string, extra ...string) []string {
	return append([]string{"circuit", "--model", f.dir, "--task", "patch", "--clean", f.clean, "--corrupt", f.corrupt,
		"--io", f.io, "--s", f.s, "--metric", "kl", "--threshold", strconv.FormatFloat(f.acdc.Threshold, 'g', -1, 64),
		"--out", out, "--threads", "1", "--per-pass", "4"}, extra...)
}

type circuitJSON struct {
	Edges       []string `json:"edges"`
	Metric      *float64 `json:"metric"`
	MetricFull  *float64 `json:"metric_full"`
	MetricEmpty *float64 `json:"metric_empty"`
	Threshold   *float64 `json:"threshold"`
	Evaluations int      `json:"evaluations"`
	Passes      int      `json:"passes"`
	Replayed    int      `json:"replayed"`
}

func readCircuit(t *testing.T, dir string) circuitJSON {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "circuit.json"))
	fixtures.Must(t, err)
	var c circuitJSON
	fixtures.Must(t, json.Unmarshal(b, &c))
	if c.Metric == nil || c.MetricFull == nil || c.MetricEmpty == nil || c.Threshold == nil || c.Evaluations == 0 || c.Passes == 0 {
		t.Fatalf("%s/circuit.json lacks a key: %s", dir, b)
	}
	return c
}

func journalLines(path string) int {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	n := 0
	for sc := bufio.NewScanner(f); sc.Scan(); {
		n++
	}
	return n
}

// The command reproduces acdc.json on every family's fixture and writes
// every output.
func TestCircuitCLI(t *testing.T) {
	for _, name := range patchCLIFixtures {
		f := loadCircuitFixture(t, name)
		out := filepath.Join(t.TempDir(), "c")
		stdout, stderr, code := runCLI(t, f.args(out, "--sweep-thresholds", "0.01,0.1")...)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", name, code, stderr)
		}
		c := readCircuit(t, out)
		if strings.Join(c.Edges, " ") != strings.Join(f.acdc.Edges, " ") {
			t.Errorf("%s: edges %v, acdc.json %v", name, c.Edges, f.acdc.Edges)
		} else if d := *c.Metric - f.acdc.CircuitMetric; d > 1e-3*f.acdc.CircuitMetric || -d > 1e-3*f.acdc.CircuitMetric {
			t.Errorf("%s: metric %.7g, acdc.json circuit_metric %.7g", name, *c.Metric, f.acdc.CircuitMetric)
		}
		for _, file := range []string{"circuit.dot", "circuit.svg", "circuit.png", "faithfulness.json", "faithfulness.png"} {
			st, err := os.Stat(filepath.Join(out, file))
			if err != nil || st.Size() < 100 {
				t.Errorf("%s: %s missing or tiny (%v)", name, file, err)
			}
		}
		dot, _ := os.ReadFile(filepath.Join(out, "circuit.dot"))
		for _, e := range c.Edges {
			s, r, _ := strings.Cut(e, ">")
			if s2, _, ok := strings.Cut(r, ".q"); ok && !strings.HasPrefix(r, "mlp") {
				r = s2
			}
			r = strings.TrimSuffix(strings.TrimSuffix(r, ".k"), ".v")
			if !bytes.Contains(dot, []byte(strconv.Quote(s)+" -> "+strconv.Quote(r))) {
				t.Errorf("%s: circuit.dot has no edge %s -> %s", name, s, r)
			}
		}
		if !strings.Contains(stdout, "edges") {
			t.Errorf("%s: stdout %q", name, stdout)
		}
	}
}

// A run killed with SIGKILL resumes from its journal to the same circuit;
// a journal is never silently overwritten, and a resume with other inputs is
// refused.
func TestCircuitKillResume(t *testing.T) {
	f := loadCircuitFixture(t, "tiny-gpt2")
	dir := t.TempDir()
	whole := filepath.Join(dir, "whole")
	if _, stderr, code := runCLI(t, f.args(whole)...); code != 0 {
		t.Fatal(stderr)
	}
	want := readCircuit(t, whole)
	out := filepath.Join(dir, "killed")
	journal := filepath.Join(out, "journal.jsonl")
	cmd := exec.Command(neoscopeBin, f.args(out)...)
	cmd.Env = append(os.Environ(), "NEOSCOPE_QUIET=1")
	fixtures.Must(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	killed := false
wait:
	for {
		select {
		case <-exited:
			break wait
		case <-time.After(time.Millisecond):
			if journalLines(journal) >= 40 {
				cmd.Process.Signal(syscall.SIGKILL)
				<-exited
				killed = true
				break wait
			}
		}
	}
	if !killed {
		t.Fatal("the run finished before 40 decisions were journaled")
	}
	n := journalLines(journal)
	if _, err := os.Stat(filepath.Join(out, "circuit.json")); err == nil {
		t.Fatal("circuit.json written by a killed run")
	}
	// Without --resume the journal is not overwritten.
	if _, stderr, code := runCLI(t, f.args(out)...); code != 2 || !strings.Contains(stderr, "--resume") {
		t.Fatalf("rerun without --resume: exit %d, %s", code, stderr)
	}
	// A resume with the clean and corrupt prompts swapped is refused.
	swapped := f.args(out, "--resume")
	for i, a := range swapped {
		if a == f.clean {
			swapped[i] = f.corrupt
		} else if a == f.corrupt {
			swapped[i] = f.clean
		}
	}
	if _, stderr, code := runCLI(t, swapped...); code != 2 || !strings.Contains(stderr, "different run") {
		t.Fatalf("resume with other inputs: exit %d, %s", code, stderr)
	}
	// So is one with another threshold.
	other := f.args(out, "--resume")
	for i := range other {
		if other[i] == "--threshold" {
			other[i+1] = "0.01"
		}
	}
	if _, stderr, code := runCLI(t, other...); code != 2 || !strings.Contains(stderr, "threshold") {
		t.Fatalf("resume with another threshold: exit %d, %s", code, stderr)
	}
	// A torn last line (killed mid-write) is dropped.
	jf, err := os.OpenFile(journal, os.O_APPEND|os.O_WRONLY, 0)
	fixtures.Must(t, err)
	jf.WriteString(`{"e":12,"v":0.0`)
	jf.Close()
	if _, stderr, code := runCLI(t, f.args(out, "--resume")...); code != 0 {
		t.Fatalf("resume: exit %d: %s", code, stderr)
	}
	got := readCircuit(t, out)
	if strings.Join(got.Edges, " ") != strings.Join(want.Edges, " ") || *got.Metric != *want.Metric {
		t.Errorf("resumed: %v metric %v, uninterrupted %v metric %v", got.Edges, *got.Metric, want.Edges, *want.Metric)
	}
	if got.Replayed != n-1 {
		t.Errorf("resumed run replayed %d decisions, the journal held %d", got.Replayed, n-1)
	}
	t.Logf("killed after %d journal lines; resumed with %d replayed decisions", n, got.Replayed)
}

func TestCircuitCLIErrors(t *testing.T) {
	f := loadCircuitFixture(t, "tiny-neo")
	out := filepath.Join(t.TempDir(), "c")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"circuit", "--model", f.dir, "--clean", f.clean, "--corrupt", f.corrupt, "--out", out}, "required"},
		{f.args(out, "--task", "induction"), "--task induction"},
		{f.args(out, "--metric", "loss"), "metric"},
		{f.args(out, "--task", "ioi"), "--task"},
		{f.args(out, "--per-pass", "-1"), "--per-pass"},
		{f.args(out, "--sweep-thresholds", "0.1,x"), "sweep-thresholds"},
		{f.args(out, "--io", "1,2"), "--io"},
		{f.args(out, "--clean", f.dir+"/config.json"), "config.json"},
	} {
		_, stderr, code := runCLI(t, c.args...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q (want 2 and %q)", c.args[len(c.args)-2:], code, stderr, c.want)
		}
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("a failed run left %s behind", out)
	}
}

// `neoscope report --circuit DIR` shows a circuit: its facts, its drawing
// and its strongest edges; a folder without a circuit is bad input.
func TestCircuitInReport(t *testing.T) {
	f := loadCircuitFixture(t, "tiny-neo")
	dir := t.TempDir()
	circ := filepath.Join(dir, "c")
	if _, stderr, code := runCLI(t, f.args(circ)...); code != 0 {
		t.Fatal(stderr)
	}
	out := filepath.Join(dir, "report")
	if _, stderr, code := runCLI(t, "report", "--model", f.dir, "--out", out, "--backend", "cpu", "--rep-batch", "2",
		"--rep-period", "8", "--ioi-prompts", "0", "--circuit", circ); code != 0 {
		t.Fatalf("report: exit %d: %s", code, stderr)
	}
	page, err := os.ReadFile(filepath.Join(out, "index.html"))
	fixtures.Must(t, err)
	for _, want := range []string{"Circuit discovery (ACDC)", "circuit-1.png", "data:image/png;base64,",
		fmt.Sprintf("%d of %d", len(f.acdc.Edges), 479), "embed&gt;"} {
		if !bytes.Contains(page, []byte(want)) {
			t.Errorf("index.html lacks %q", want)
		}
	}
	if st, err := os.Stat(filepath.Join(out, "circuit-1.png")); err != nil || st.Size() < 1000 {
		t.Errorf("circuit-1.png: %v", err)
	}
	_, stderr, code := runCLI(t, "report", "--model", f.dir, "--out", filepath.Join(dir, "r2"), "--circuit", dir)
	if code != 2 || !strings.Contains(stderr, "circuit.json") {
		t.Errorf("--circuit without a circuit: exit %d, %s", code, stderr)
	}
}
