package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/neoscope/neoscope/internal/fixtures"
	"github.com/neoscope/neoscope/runtime/sweep"
)

// writeTokens stores a [B,T] reference tensor as a --tokens JSON file.
func writeTokens(t *testing.T, ref *fixtures.Ref, name, path string) {
	t.Helper()
	data, err := json.Marshal(ref.Get(t, name).Rows())
	fixtures.Must(t, err)
	fixtures.Must(t, os.WriteFile(path, data, 0o644))
}

// readResult reads a sweep's CSV into config -> row.
func readResult(t *testing.T, path, col string) map[string]sweep.Row {
	t.Helper()
	rows, err := sweep.ReadRows(path, sweep.CSV, col)
	fixtures.Must(t, err)
	out := map[string]sweep.Row{}
	for _, r := range rows {
		out[r.Config] = r
	}
	return out
}

func fixtureSweep(t *testing.T, ref *fixtures.Ref, res map[string]sweep.Row, names []string, key string) {
	t.Helper()
	got := make([]float64, len(names))
	for i, n := range names {
		r, ok := res[n]
		if !ok {
			t.Fatalf("%s: no row for configuration %q", key, n)
		}
		got[i] = r.Value
	}
	ref.Check(t, key, got, key)
}

// TestSweepCLIGolden runs the command on tiny-neo and checks every ablation
// table of the fixture: subsets, single heads, MLPs and attention layers in
// one union space; the repeated-token second-half loss with --loss-from;
// mean ablation.
func TestSweepCLIGolden(t *testing.T) {
	ref := fixtures.Load(t, "tiny-neo")
	dir := t.TempDir()
	tok, rep := filepath.Join(dir, "tok.json"), filepath.Join(dir, "rep.json")
	writeTokens(t, ref, "tokens", tok)
	writeTokens(t, ref, "rep_tokens", rep)
	L, H := 4, 4
	var heads, mlps, attns []string
	for l := 0; l < L; l++ {
		for h := 0; h < H; h++ {
			heads = append(heads, fmt.Sprintf("%d.%d", l, h))
		}
		mlps = append(mlps, fmt.Sprintf("mlp.%d", l))
		attns = append(attns, fmt.Sprintf("attn.%d", l))
	}
	subsets := make([]string, 16)
	for m := range subsets {
		var p []string
		for k := 0; k < 4; k++ {
			if m>>k&1 == 1 {
				p = append(p, fmt.Sprintf("2.%d", k))
			}
		}
		subsets[m] = strings.Join(p, "+")
	}
	run := func(out string, args ...string) map[string]sweep.Row {
		args = append([]string{"sweep", "--model", ref.Dir, "--threads", "1", "--out", out, "--chunk", "5"}, args...)
		_, stderr, code := runCLI(t, args...)
		if code != 0 {
			t.Fatalf("neoscope %v: exit %d: %s", args, code, stderr)
		}
		return readResult(t, out, "loss")
	}
	res := run(filepath.Join(dir, "all.csv"), "--tokens", tok, "--metric", "loss", "--format", "csv",
		"--space", "subsets(2.0,2.1,2.2,2.3) | singles(heads) | singles(mlp) | singles(attn)")
	fixtureSweep(t, ref, res, subsets, "subset_ablation_loss")
	fixtureSweep(t, ref, res, heads, "head_ablation_loss")
	fixtureSweep(t, ref, res, mlps, "mlp_ablation_loss")
	fixtureSweep(t, ref, res, attns, "attn_layer_ablation_loss")
	if r := res[""]; r.Delta != 0 || r.NAblated != 0 {
		t.Errorf("unablated row: %+v, want delta 0", r)
	}
	if r := res["2.0+2.3"]; r.NAblated != 2 || r.Delta != r.Value-res[""].Value {
		t.Errorf("row 2.0+2.3: %+v (baseline %v)", r, res[""].Value)
	}
	head, err := os.ReadFile(filepath.Join(dir, "all.csv"))
	fixtures.Must(t, err)
	if !strings.HasPrefix(string(head), "config,n_ablated,loss,delta,") {
		t.Errorf("CSV header %q", strings.SplitN(string(head), "\n", 2)[0])
	}

	res = run(filepath.Join(dir, "rep.csv"), "--tokens", rep, "--loss-from", "10", "--space", "subsets(2.0,2.1,2.2,2.3)")
	fixtureSweep(t, ref, res, subsets, "rep_subset_ablation_loss")

	res = run(filepath.Join(dir, "mean.csv"), "--tokens", tok, "--mode", "mean", "--space", "singles(heads) | singles(mlp) | singles(attn)")
	fixtureSweep(t, ref, res, heads, "head_mean_ablation_loss")
	fixtureSweep(t, ref, res, mlps, "mlp_mean_ablation_loss")
	fixtureSweep(t, ref, res, attns, "attn_layer_mean_ablation_loss")

	// IOI: the unablated logit difference at the last position.
	clean := filepath.Join(dir, "clean.json")
	writeTokens(t, ref, "ioi_clean", clean)
	ids := func(name string) string {
		var p []string
		for _, v := range ref.Get(t, name).Ints() {
			p = append(p, fmt.Sprint(v))
		}
		return strings.Join(p, ",")
	}
	out := filepath.Join(dir, "ioi.csv")
	args := []string{"sweep", "--model", ref.Dir, "--task", "ioi", "--clean", clean, "--io", ids("ioi_io"), "--s", ids("ioi_s"),
		"--space", "none | singles(attn)", "--out", out}
	if _, stderr, code := runCLI(t, args...); code != 0 {
		t.Fatalf("neoscope %v: exit %d: %s", args, code, stderr)
	}
	ld := readResult(t, out, "logit_diff")
	fixtureSweep(t, ref, ld, []string{""}, "ioi_ld_clean")
	if len(ld) != 5 {
		t.Errorf("ioi sweep: %d rows, want 5", len(ld))
	}
}

func TestSweepCLIBadInput(t *testing.T) {
	ref := fixtures.Load(t, "tiny-neo")
	dir := t.TempDir()
	tok := filepath.Join(dir, "tok.json")
	writeTokens(t, ref, "tokens", tok)
	out := filepath.Join(dir, "r.csv")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--space", "singles(heads"}, "column 14: expected ')'"},
		{[]string{"--space", "singles(4.0)"}, "layer 4 out of range"},
		{[]string{"--space", "singles(heads)", "--mode", "resample"}, "--mode"},
		{[]string{"--space", "singles(heads)", "--shard", "4/4"}, "--shard"},
		{[]string{"--space", "singles(heads)", "--loss-from", "23"}, "--loss-from 23"},
		{[]string{"--space", "singles(heads)", "--max-memory", "lots"}, "--max-memory"},
		// A budget below one configuration's activations: refused, naming both figures.
		{[]string{"--space", "singles(heads)", "--max-memory", "1KiB"}, "--max-memory 1024B is below the activations of one configuration"},
		{[]string{"--space", "singles(heads)", "--max-memory", "1KiB"}, "allow at least 459264B"},
		{[]string{"--space", "singles(heads)", "--format", "xlsx"}, "--format"},
	} {
		args := append([]string{"sweep", "--model", ref.Dir, "--tokens", tok, "--out", out}, c.args...)
		stdout, stderr, code := runCLI(t, args...)
		if code != 2 || !strings.Contains(stderr, c.want) || stdout != "" {
			t.Errorf("%v: exit %d, stderr %q, stdout %q; want exit 2 naming %q", c.args, code, stderr, stdout, c.want)
		}
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("bad input left %s behind", out)
	}
	// An existing output is not overwritten without --force or --resume.
	args := []string{"sweep", "--model", ref.Dir, "--tokens", tok, "--out", out, "--space", "singles(mlp)"}
	if _, stderr, code := runCLI(t, args...); code != 0 {
		t.Fatal(stderr)
	}
	if _, stderr, code := runCLI(t, args...); code != 2 || !strings.Contains(stderr, "--resume") {
		t.Errorf("second run over an existing output: exit %d, %q", code, stderr)
	}
	// Resuming with a different space is refused.
	args[len(args)-1] = "singles(attn)"
	if _, stderr, code := runCLI(t, append(args, "--resume")...); code != 2 || !strings.Contains(stderr, "different sweep") {
		t.Errorf("resume with another space: exit %d, %q", code, stderr)
	}
	// A damaged journal (a row that is not in the space, a line that is not
	// a row) or sidecar is bad input: exit 2, naming the file.
	args[len(args)-1] = "singles(mlp)"
	meta := fileBytes(t, sweep.MetaPath(out))
	incomplete := bytes.Replace(meta, []byte(`"complete": true`), []byte(`"complete": false`), 1)
	good := fileBytes(t, out)
	for _, c := range []struct {
		journal, sidecar []byte
		want             string
	}{
		{append(append([]byte{}, good...), "mlp.0,1,9.1,0.1,77\n"...), incomplete, "configuration 77"},
		{append(append([]byte{}, good...), "not,a,row\n"...), incomplete, "r.csv:"},
		{good, []byte("{not json"), "meta.json"},
	} {
		fixtures.Must(t, os.WriteFile(out, c.journal, 0o644))
		fixtures.Must(t, os.WriteFile(sweep.MetaPath(out), c.sidecar, 0o644))
		if _, stderr, code := runCLI(t, append(args, "--resume")...); code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("resume from a damaged file: exit %d, want 2 naming %q: %s", code, c.want, stderr)
		}
	}
}

// TestSweepKillResume SIGKILLs a sweep at random moments, resumes it each
// time, and checks the result is byte-identical to an uninterrupted run:
// every configuration once, the same numbers (chunks are re-formed from the
// same plan, so the arithmetic is the same).
func TestSweepKillResume(t *testing.T) {
	ref := fixtures.Load(t, "tiny-neo")
	dir := t.TempDir()
	tok := filepath.Join(dir, "tok.json")
	writeTokens(t, ref, "tokens", tok)
	space := "k(3, heads) | pairs(heads) | singles(attn) | singles(mlp)" // 688 configurations, ~2 s
	// JSONL is the Parquet journal's format, so these two cover all three.
	for _, format := range []string{"csv", "parquet"} {
		t.Run(format, func(t *testing.T) {
			args := func(out string) []string {
				return []string{"sweep", "--model", ref.Dir, "--tokens", tok, "--threads", "1", "--chunk", "4",
					"--space", space, "--out", out, "--format", format}
			}
			whole := filepath.Join(dir, "whole."+format)
			start := time.Now()
			if _, stderr, code := runCLI(t, args(whole)...); code != 0 {
				t.Fatal(stderr)
			}
			took := time.Since(start)
			out := filepath.Join(dir, "killed."+format)
			journal := out
			if format == "parquet" {
				journal = out + ".journal.jsonl"
			}
			seed := uint64(time.Now().UnixNano())
			rng := rand.New(rand.NewPCG(seed, 1))
			kills := 0
			for try := 0; try < 4; try++ {
				cmd := exec.Command(neoscopeBin, append(args(out), "--resume")...)
				cmd.Env = append(os.Environ(), "NEOSCOPE_QUIET=1")
				var errb bytes.Buffer
				cmd.Stderr = &errb
				exited := make(chan error, 1)
				fixtures.Must(t, cmd.Start())
				go func() { exited <- cmd.Wait() }()
				// The first kill lands at a random early moment (within a
				// tenth of a whole run: start-up or the first chunks); the
				// others once the journal has
				// grown to a random row count short of the end, polled every
				// millisecond, so they hit chunks being computed or written,
				// however loaded the machine is.
				before := journalRows(journal)
				target := before + 1 + rng.IntN(max(1, (688-before)*4/5))
				deadline := time.After(time.Duration(rng.Float64() * float64(took) / 10))
				var err error
			wait:
				for {
					select {
					case err = <-exited:
						break wait
					case <-deadline:
						if try == 0 {
							cmd.Process.Signal(syscall.SIGKILL)
						}
					case <-time.After(time.Millisecond):
						if try > 0 && journalRows(journal) >= target {
							cmd.Process.Signal(syscall.SIGKILL)
						}
					}
				}
				if err == nil {
					t.Logf("try %d: finished before the kill", try)
					break
				}
				kills++
				t.Logf("try %d: killed with %d complete rows in the journal (%d before)", try, journalRows(journal), before)
			}
			if _, stderr, code := runCLI(t, append(args(out), "--resume")...); code != 0 {
				t.Fatalf("final resume: %s", stderr)
			}
			if kills < 2 {
				t.Fatalf("only %d runs were killed before finishing (seed %d)", kills, seed)
			}
			a, err := os.ReadFile(whole)
			fixtures.Must(t, err)
			b, err := os.ReadFile(out)
			fixtures.Must(t, err)
			rows, err := sweep.ReadRows(out, sweep.Format(format), "loss")
			fixtures.Must(t, err)
			seen := map[int]bool{}
			for _, r := range rows {
				if seen[r.Index] {
					t.Errorf("configuration %d (%s) twice", r.Index, r.Config)
				}
				seen[r.Index] = true
			}
			if len(seen) != 688 {
				t.Errorf("%d configurations after %d kills and resumes, want 688", len(seen), kills)
			}
			if !bytes.Equal(a, b) {
				t.Errorf("killed %d times and resumed: %s differs from the uninterrupted run", kills, out)
			}
			if _, err := os.Stat(out + ".journal.jsonl"); err == nil {
				t.Errorf("journal left behind after completion")
			}
		})
	}
}

// TestSweepShardsMerge runs a sweep as 3 shards (one from Slurm's
// environment variables), merges them, and compares with the unsharded run;
// then checks that merge refuses missing, repeated and incomplete shards.
func TestSweepShardsMerge(t *testing.T) {
	ref := fixtures.Load(t, "tiny-neo")
	dir := t.TempDir()
	tok := filepath.Join(dir, "tok.json")
	writeTokens(t, ref, "tokens", tok)
	base := []string{"sweep", "--model", ref.Dir, "--tokens", tok, "--threads", "1", "--space", "pairs(heads) | singles(mlp) | none"}
	whole := filepath.Join(dir, "whole.csv")
	if _, stderr, code := runCLI(t, append(base, "--out", whole)...); code != 0 {
		t.Fatal(stderr)
	}
	var parts []string
	for i := 0; i < 3; i++ {
		p := filepath.Join(dir, fmt.Sprintf("part.%d.jsonl", i))
		parts = append(parts, p)
		args := append(base, "--out", p)
		var cmd *exec.Cmd
		if i == 1 { // the shard from a job array's environment
			cmd = exec.Command(neoscopeBin, args...)
			cmd.Env = append(os.Environ(), "NEOSCOPE_QUIET=1", "SLURM_ARRAY_TASK_ID=11", "SLURM_ARRAY_TASK_MIN=10", "SLURM_ARRAY_TASK_MAX=12", "SLURM_ARRAY_TASK_COUNT=3")
			if o, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%v: %s", err, o)
			}
			m, err := sweep.ReadMeta(p)
			fixtures.Must(t, err)
			if m.Shard != 1 || m.Shards != 3 {
				t.Fatalf("shard from SLURM_ARRAY_TASK_ID=11 of 10-12: %d/%d, want 1/3", m.Shard, m.Shards)
			}
			continue
		}
		if _, stderr, code := runCLI(t, append(args, "--shard", fmt.Sprintf("%d/3", i))...); code != 0 {
			t.Fatal(stderr)
		}
	}
	merged := filepath.Join(dir, "merged.csv")
	stdout, stderr, code := runCLI(t, append([]string{"merge", merged, "--json"}, parts...)...)
	if code != 0 {
		t.Fatal(stderr)
	}
	var summary struct {
		Out            string `json:"out"`
		Configurations int    `json:"configurations"`
		Shards         int    `json:"shards"`
	}
	if err := json.Unmarshal([]byte(stdout), &summary); err != nil || summary.Out != merged || summary.Configurations != 125 || summary.Shards != 3 {
		t.Errorf("merge --json: %v %+v (%s)", err, summary, stdout)
	}
	a := readResult(t, whole, "loss")
	b := readResult(t, merged, "loss")
	if len(a) != 120+4+1 || len(a) != len(b) {
		t.Fatalf("merged %d rows, unsharded %d", len(b), len(a))
	}
	var got, want []float64
	for k, r := range a {
		if b[k].Index != r.Index {
			t.Fatalf("%s: index %d merged, %d unsharded", k, b[k].Index, r.Index)
		}
		got, want = append(got, b[k].Value), append(want, r.Value)
	}
	// Shards batch different configurations together; float32 sums may be
	// blocked differently: within float32 rounding of losses ~9.
	fixtures.Close(t, "merged vs unsharded", got, want, 2e-5)

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{parts[0], parts[2]}, "missing shard(s) 1/3"},
		{[]string{parts[0], parts[1], parts[1], parts[2]}, "overlapping shards"},
		{[]string{parts[0], whole}, "not shards of the same sweep"},
	} {
		_, stderr, code := runCLI(t, append([]string{"merge", filepath.Join(dir, "bad.csv")}, c.args...)...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("merge %v: exit %d, %q; want exit 2 naming %q", c.args, code, stderr, c.want)
		}
	}
	// An incomplete shard: cut its last line and mark the sidecar unfinished.
	m, err := sweep.ReadMeta(parts[2])
	fixtures.Must(t, err)
	m.Complete = false
	data, _ := json.Marshal(m)
	fixtures.Must(t, os.WriteFile(sweep.MetaPath(parts[2]), data, 0o644))
	_, stderr, code = runCLI(t, append([]string{"merge", filepath.Join(dir, "bad.csv")}, parts...)...)
	if code != 2 || !strings.Contains(stderr, "shard 2/3 is incomplete") {
		t.Errorf("merge with an incomplete shard: exit %d, %q", code, stderr)
	}
}

// journalRows counts the complete lines of a sweep journal (0 if none).
func journalRows(path string) int {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	return bytes.Count(data, []byte("\n"))
}

// TestSweepInductionPrompts checks that --task induction draws the prompts
// of `neoscope induction` (same --batch, --period, --seed): the unablated
// second-half loss of both agree.
func TestSweepInductionPrompts(t *testing.T) {
	ref := fixtures.Load(t, "tiny-neo")
	dir := t.TempDir()
	common := []string{"--model", ref.Dir, "--batch", "5", "--period", "7", "--seed", "3"}
	stdout, stderr, code := runCLI(t, append([]string{"induction", "--no-ablation", "--json"}, common...)...)
	if code != 0 {
		t.Fatal(stderr)
	}
	var ind struct {
		Loss float64 `json:"rep_loss_second_half"`
	}
	fixtures.Must(t, json.Unmarshal([]byte(stdout), &ind))
	out := filepath.Join(dir, "ind.csv")
	if _, stderr, code := runCLI(t, append([]string{"sweep", "--task", "induction", "--space", "none", "--out", out}, common...)...); code != 0 {
		t.Fatal(stderr)
	}
	// Both are float32 passes over the same prompts, the sweep's cut to the
	// positions the loss reads: equal to float32 rounding of a loss ~9, so
	// within rep_loss_second_half's tolerance of each other.
	r, ok := readResult(t, out, "loss")[""]
	if !ok {
		t.Fatal("sweep result has no row for the empty configuration")
	}
	ref.CheckAgainst(t, "induction baseline vs neoscope induction", []float64{r.Value}, []float64{ind.Loss}, "rep_loss_second_half")
}
