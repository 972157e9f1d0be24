package main

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/neoscope/neoscope/probes/induction"
	"github.com/neoscope/neoscope/probes/plot"
	"github.com/neoscope/neoscope/runtime/forward"
	"github.com/neoscope/neoscope/runtime/identity"
	"github.com/neoscope/neoscope/runtime/sweep"
)

// sweepFlags are the flags of `neoscope sweep`.
type sweepFlags struct {
	model              modelFlags
	tokens             string
	task, metric       string
	lossFrom           int
	batch, period      int
	seed               uint64
	clean, ioIDs, sIDs string
	corrupt, pos       string
	space, mode        string
	out, format        string
	resume, force      bool
	shard              string
	maxMemory          string
	chunk              int
	noShare            bool
	plotPath           string
	top                int
	maxConfigs         int64
}

func init() {
	var f sweepFlags
	c := &cobra.Command{
		Use:   "sweep",
		Short: "Batched ablation sweep over a space of configurations",
		Long: `sweep evaluates every ablation configuration of --space (heads 6.1, attention
layers attn.6, MLPs mlp.0; spaces subsets(...), singles(...), pairs(...),
k(N, ...), given(FIXED; SPACE), file(PATH), unions with '|' or ',') and writes
one row per configuration: config, n_ablated, the metric (loss or logit_diff),
delta (change from the unablated model) and index (position in the space).
A configuration listed twice runs once (the first occurrence keeps its
index); a space is counted first, and one of more than --max-configs
configurations is refused at once; below that it is read as a stream,
65,536 configurations at a time, so memory does not grow with its size.

Configurations are evaluated many at a time: the unablated residual stream is
computed once, configurations share every layer before they differ (a prefix
tree), and each pass holds as many configurations as --max-memory allows.

Tasks:
  --tokens FILE [--loss-from P]          mean next-token loss (predictions at P..T-2)
  --task induction [--batch B --period P --seed S]
                                         P random distinct tokens repeated once;
                                         loss of the second half (predictions P..2P-2)
  --task ioi --clean FILE --io IDS --s IDS
                                         mean logit difference io - s at the last position
  --task patch --clean FILE --corrupt FILE --io IDS --s IDS --mode noise|denoise [--metric ld|kl] [--pos P]
                                         patching: noise runs the clean prompts with values taken
                                         from the corrupt ones, denoise the reverse; items 6.1,
                                         6.1@9, attn.6, mlp.0, resid.6@9 and edges S>R (mlp.0>6.1.k);
                                         spaces also heads@*, resid.*@*, edges, edges(R); ld adds a
                                         normalised column, kl is KL(p_clean || p_run) at the last position

Rows are written as they are computed; a killed sweep continues with --resume
and ends with exactly the rows of an uninterrupted run. --shard i/n (or a Slurm
job array) runs the configurations with index i mod n; neoscope merge joins
the shard files. OUT.meta.json beside the output records what was swept.`,
		Example: `  neoscope sweep --tokens batch.json --space 'subsets(6.0,6.1,6.6,6.11)' --out r.csv --plot r.png
  neoscope sweep --task induction --batch 8 --period 10 --space 'singles(heads)' --out heads.csv
  neoscope sweep --tokens batch.json --space 'pairs(heads)' --mode mean --out pairs.parquet
  neoscope sweep --task patch --clean c.json --corrupt k.json --io 12,34 --s 56,78 --mode noise --space edges --out edges.csv
  sbatch --array=0-3 examples/sweep.sbatch    # then: neoscope merge all.csv part.*.csv`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return runSweep(&f) },
	}
	f.model.register(c)
	fl := c.Flags()
	fl.StringVar(&f.tokens, "tokens", "", "JSON file with equal-length arrays of token ids (the prompts)")
	fl.StringVar(&f.task, "task", "", "tokens (with --tokens), induction, ioi or patch")
	fl.StringVar(&f.metric, "metric", "", "loss (tokens, induction), logit_diff (ioi), ld or kl (patch); default by task")
	fl.IntVar(&f.lossFrom, "loss-from", 0, "loss: first predicting position (loss over predictions at P..T-2)")
	fl.IntVar(&f.batch, "batch", 8, "induction: number of prompts")
	fl.IntVar(&f.period, "period", 10, "induction: random tokens before the repeat")
	fl.Uint64Var(&f.seed, "seed", 1, "induction: random seed (the prompts of neoscope induction with the same --batch, --period, --seed)")
	fl.StringVar(&f.clean, "clean", "", "ioi: JSON token file of the prompts")
	fl.StringVar(&f.ioIDs, "io", "", "ioi: comma-separated answer ids, one per prompt")
	fl.StringVar(&f.sIDs, "s", "", "ioi: comma-separated counterfactual (subject) ids, one per prompt")
	fl.StringVar(&f.corrupt, "corrupt", "", "patch: JSON token file of the corrupted prompts (the shape of --clean)")
	fl.StringVar(&f.pos, "pos", "", "patch, metric ld: the position read (default: the last)")
	fl.StringVar(&f.space, "space", "", "configuration space, e.g. 'singles(heads)' or 'subsets(6.0,6.1,6.6,6.11)' (required)")
	fl.StringVar(&f.mode, "mode", "zero", "ablation: zero, or mean (per-position mean over the prompts in the unablated run); --task patch: noise or denoise")
	fl.StringVar(&f.out, "out", "", "result file (required); OUT.meta.json is written beside it")
	fl.StringVar(&f.format, "format", "", "csv, jsonl or parquet (default: from the --out extension)")
	fl.BoolVar(&f.resume, "resume", false, "continue an interrupted sweep in --out (starts one if there is none)")
	fl.BoolVar(&f.force, "force", false, "overwrite an existing --out")
	fl.StringVar(&f.shard, "shard", "", "run shard i/n (configurations with index i mod n); default from SLURM_ARRAY_TASK_ID/COUNT in a job array")
	fl.StringVar(&f.maxMemory, "max-memory", "2GiB", "activation memory budget of one pass, on top of the weights (sets configurations per pass; a budget below one configuration is refused, naming the minimum): e.g. 512MiB, 2GB")
	fl.IntVar(&f.chunk, "chunk", 0, "configurations per pass (overrides --max-memory)")
	fl.BoolVar(&f.noShare, "no-share", false, "run each configuration from the embedding, no prefix sharing (with --chunk 1: one configuration per pass, for comparison)")
	fl.StringVar(&f.plotPath, "plot", "", "draw a heatmap (.png or .svg): the interaction table of a subsets space, or the [layer, head] deltas of single heads")
	fl.IntVar(&f.top, "top", 10, "print the N configurations with the largest |delta|")
	fl.Int64Var(&f.maxConfigs, "max-configs", 10_000_000, fmt.Sprintf("refuse, before any work, a space of more configurations than this (counted without expanding it; at most %d)", sweep.MaxConfigs))
	rootCmd.AddCommand(c)
}

// parseBytes reads a size: a number with an optional suffix K, M, G, T
// (powers of 1000, also KB...) or KiB, MiB, GiB, TiB (powers of 1024).
func parseBytes(s string) (int64, error) {
	t := strings.TrimSpace(s)
	mult := 1.0
	for _, u := range []struct {
		suf string
		m   float64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
		{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"K", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12}, {"B", 1}} {
		if strings.HasSuffix(strings.ToUpper(t), strings.ToUpper(u.suf)) {
			t, mult = strings.TrimSpace(t[:len(t)-len(u.suf)]), u.m
			break
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v <= 0 || math.IsInf(v*mult, 0) {
		return 0, fmt.Errorf("--max-memory %q: want a size like 2GiB, 512MB or 1e9", s)
	}
	return int64(v * mult), nil
}

func parseIDs(flag, s string, n int) ([]int32, error) {
	var out []int32
	for _, p := range strings.Split(s, ",") {
		v, err := strconv.ParseInt(strings.TrimSpace(p), 10, 32)
		if err != nil || v < 0 {
			return nil, usagef("--%s %q: want comma-separated token ids", flag, s)
		}
		out = append(out, int32(v))
	}
	if len(out) != n {
		return nil, usagef("--%s: %d ids for %d prompts (one per prompt)", flag, len(out), n)
	}
	return out, nil
}

// buildTask turns the task flags into a sweep.Task and its description.
func (f *sweepFlags) buildTask(m *forward.Model) (sweep.Task, string, error) {
	task := f.task
	if task == "" {
		switch {
		case f.tokens != "":
			task = "tokens"
		case f.clean != "":
			task = "ioi"
		default:
			return sweep.Task{}, "", usagef("give the prompts: --tokens FILE, --task induction, or --task ioi --clean FILE --io IDS --s IDS")
		}
	}
	var t sweep.Task
	var desc string
	rowsOf := func(path, flag string) error {
		if path == "" {
			return usagef("--task %s needs --%s FILE", task, flag)
		}
		rows, err := readTokenFile(path)
		if err != nil {
			return err
		}
		flat, B, T, err := m.CheckTokens(rows)
		if err != nil {
			return usagef("%s: %v", path, err)
		}
		t.Tokens, t.B, t.T = flat, B, T
		return nil
	}
	switch task {
	case "tokens":
		if err := rowsOf(f.tokens, "tokens"); err != nil {
			return t, "", err
		}
		desc = "tokens"
	case "induction":
		if f.tokens != "" {
			return t, "", usagef("--task induction makes its own prompts; use --tokens FILE --loss-from P for given ones")
		}
		if 2*f.period > m.Cfg.Context {
			return t, "", usagef("--period %d: 2x%d tokens exceed the model's context of %d", f.period, f.period, m.Cfg.Context)
		}
		// The same prompts as `neoscope induction` draws for the same
		// --batch, --period and --seed (probes/induction's generator and
		// candidate ids).
		keep, what := candidateFilter(f.model.Model, m.Cfg.Vocab)
		rows, err := induction.RepeatedTokens(induction.Candidates(m.Cfg.Vocab, keep), f.batch, f.period, f.seed)
		if err != nil {
			return t, "", usageError{err}
		}
		flat, B, T, err := m.CheckTokens(rows)
		if err != nil {
			return t, "", err
		}
		t.Tokens, t.B, t.T = flat, B, T
		t.LossFrom = f.period
		desc = fmt.Sprintf("induction batch=%d period=%d seed=%d (%s)", f.batch, f.period, f.seed, what)
	case "patch":
		return f.buildPatchTask(m, rowsOf, &t)
	case "ioi":
		if err := rowsOf(f.clean, "clean"); err != nil {
			return t, "", err
		}
		var err error
		if t.A, err = parseIDs("io", f.ioIDs, t.B); err != nil {
			return t, "", err
		}
		if t.C, err = parseIDs("s", f.sIDs, t.B); err != nil {
			return t, "", err
		}
		t.Metric = sweep.LogitDiff
		t.Pos = t.T - 1
		desc = "ioi"
	default:
		return t, "", usagef("--task %q: want tokens, induction or ioi", f.task)
	}
	switch f.metric {
	case "":
	case "loss":
		if t.Metric != sweep.Loss {
			return t, "", usagef("--metric loss: the ioi task measures logit_diff")
		}
	case "logit_diff":
		if t.Metric != sweep.LogitDiff {
			return t, "", usagef("--metric logit_diff needs --task ioi (answer ids)")
		}
	default:
		return t, "", usagef("--metric %q: want loss or logit_diff", f.metric)
	}
	if t.Metric == sweep.Loss && task != "induction" {
		if f.lossFrom < 0 || f.lossFrom > t.T-2 {
			return t, "", usagef("--loss-from %d leaves no prediction in sequences of %d tokens (want 0..%d)", f.lossFrom, t.T, t.T-2)
		}
		t.LossFrom = f.lossFrom
	}
	return t, desc, nil
}

func inputsHash(t sweep.Task) string {
	h := sha256.New()
	binary.Write(h, binary.LittleEndian, []int64{int64(t.B), int64(t.T), int64(t.Pos)})
	for _, s := range [][]int32{t.Tokens, t.A, t.C, t.Corrupt} {
		binary.Write(h, binary.LittleEndian, int64(len(s)))
		binary.Write(h, binary.LittleEndian, s)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

func runSweep(f *sweepFlags) error {
	if f.space == "" {
		return usagef("--space is required, e.g. --space 'singles(heads)'")
	}
	if f.out == "" {
		return usagef("--out is required")
	}
	format, err := sweep.FormatOf(f.out, f.format)
	if err != nil {
		return usageError{err}
	}
	var mode sweep.Mode
	switch f.mode {
	case "zero":
	case "mean":
		mode = sweep.Mean
	case "noise":
		mode = sweep.Noise
	case "denoise":
		mode = sweep.Denoise
	default:
		return usagef("--mode %q: want zero or mean (knock-outs), noise or denoise (--task patch)", f.mode)
	}
	budget, err := parseBytes(f.maxMemory)
	if err != nil {
		return usageError{err}
	}
	if f.chunk < 0 {
		return usagef("--chunk %d: want a positive number of configurations", f.chunk)
	}
	shard, shards := 0, 1
	if f.shard != "" {
		if shard, shards, err = sweep.ParseShard(f.shard); err != nil {
			return usageError{err}
		}
	} else if i, n, ok, err := sweep.ShardFromEnv(os.Getenv); err != nil {
		return usageError{err}
	} else if ok {
		shard, shards = i, n
		logf("sweep: Slurm job array task: shard %d/%d", shard, shards)
	}
	if f.maxConfigs < 1 || f.maxConfigs > sweep.MaxConfigs {
		return usagef("--max-configs %d: want 1..%d", f.maxConfigs, sweep.MaxConfigs)
	}
	if f.resume && f.force {
		return usagef("--resume and --force contradict each other")
	}

	dir, err := resolveModel(f.model.Model)
	if err != nil {
		return err
	}
	f.model.Model = dir
	// sweep.Run decides about an existing --out (--resume, --force); here:
	// never an input, and --plot like every output.
	ins := []string{dir, f.tokens, f.clean, f.corrupt}
	if err := checkOutput("--out", f.out, true, ins...); err != nil {
		return err
	}
	if err := checkOutput("--plot", f.plotPath, f.force || f.resume, append(ins, f.out)...); err != nil {
		return err
	}
	m, err := f.model.open()
	if err != nil {
		return err
	}
	defer m.Close()
	task, desc, err := f.buildTask(m)
	if err != nil {
		return err
	}
	if (f.task == "patch") != (mode == sweep.Noise || mode == sweep.Denoise) {
		return usagef("--mode %s: --task patch takes --mode noise or denoise, knock-out tasks zero or mean", f.mode)
	}
	if f.task == "patch" && f.plotPath != "" {
		return usagef("--plot draws knock-out sweeps only; plot a patching sweep from its result file")
	}
	dims := sweep.DimsOf(m.Cfg)
	if f.task == "patch" {
		dims.T = task.T
	}
	count, err := sweep.Count(f.space, dims)
	if err != nil {
		return usageError{err}
	}
	if count.Cmp(big.NewInt(f.maxConfigs)) > 0 {
		return usagef("--space %q has %s configurations on this model (%d layers x %d heads), more than --max-configs %d: narrow the space or raise --max-configs", f.space, count, m.Cfg.Layers, m.Cfg.Heads, f.maxConfigs)
	}
	// The space is read as a stream (sweep.Open): configurations are made
	// a window at a time, never all held (issue 18 item 7).
	space, err := sweep.Open(f.space, dims)
	if err != nil {
		return usageError{err}
	}
	if x, ok := sweep.PatchItem(space); ok && f.task != "patch" {
		return usagef("--space: %s (a position or an edge) needs a patching sweep: --task patch --mode noise|denoise", x)
	}
	if f.task != "patch" {
		if err := f.checkPlottable(space, dims, shards); err != nil {
			return err
		}
	}
	e, err := sweep.New(m, task, sweep.Options{Mode: mode, Chunk: f.chunk, MaxMemory: budget, NoShare: f.noShare})
	if err != nil {
		var te *sweep.TaskError
		if errors.As(err, &te) {
			return usageError{err}
		}
		return err
	}
	defer e.Close()
	if math.IsNaN(e.Baseline) || math.IsInf(e.Baseline, 0) {
		return usagef("--model %s: the unablated %s is %v (NaN or infinite weights?): a sweep would measure nothing", dir, task.Metric.Column(), e.Baseline)
	}
	abs, _ := filepath.Abs(dir)
	modelID, err := identity.Model(dir)
	if err != nil {
		return usageError{fmt.Errorf("--model: %w", err)}
	}
	meta := sweep.Meta{
		Space: f.space, Model: abs, ModelSHA256: modelID, NeoscopeVersion: version(), Task: desc, Inputs: inputsHash(task),
		Metric: task.Metric.Column(), LossFrom: task.LossFrom, Mode: mode.String(),
		Shard: shard, Shards: shards,
	}
	n := sweep.ShardLen(space.Len(), shard, shards)
	logf("sweep: %d configurations (shard %d/%d of %d), %d prompts x %d tokens, %d per pass, baseline %s %.6f",
		n, shard, shards, space.Len(), task.B, task.T, e.K, task.Metric.Column(), e.Baseline)
	sum := f.newSummary(m, dims, shards)
	p := newProgress(n, "sweep configs")
	rows, err := sweep.Run(e, space, sweep.RunOptions{
		Out: f.out, Format: format, Resume: f.resume, Force: f.force, Meta: meta, Progress: p.Callback(), Row: sum.add,
	})
	p.Finish()
	if err != nil {
		var fe *sweep.FileError
		if errors.As(err, &fe) {
			return usageError{err}
		}
		return err
	}
	logf("sweep: wrote %s (%d rows, %s) and %s", f.out, rows, format, sweep.MetaPath(f.out))
	sum.warnNaN(task.Metric.Column())
	if gap, ok := e.Gap(); ok {
		return f.reportPatch(sum, e.Baseline, task.Metric.Column(), gap)
	}
	return f.report(m, sum, e.Baseline, task.Metric.Column())
}

// sweepSummary is what the report needs from a sweep's rows, gathered as
// sweep.Run hands them over in index order; the rows themselves are not
// kept, so a sweep of millions of configurations reports in bounded memory.
type sweepSummary struct {
	n   int
	max int         // how many top rows to keep
	top []sweep.Row // the largest |delta| first, ties in index order
	nan int         // rows whose metric is NaN or infinite
	bad []string    // the first five of them
	// values holds the metric by index when the space is one unsharded
	// subsets(...) (the interaction table); nil otherwise.
	values []float64
	comps  []sweep.Component
	// grid holds single heads' deltas [layer][head] (NaN where not swept)
	// for --plot; other is a configuration that is not a single head.
	grid  [][]float64
	other string
	dims  sweep.Dims
}

func (f *sweepFlags) newSummary(m *forward.Model, dims sweep.Dims, shards int) *sweepSummary {
	s := &sweepSummary{max: max(f.top, 0), dims: dims}
	if comps, ok := sweep.SubsetsOf(f.space, dims); ok && shards == 1 {
		s.comps = comps
		s.values = make([]float64, 1<<len(comps))
	}
	if f.plotPath != "" {
		s.grid = make([][]float64, m.Cfg.Layers)
		for l := range s.grid {
			s.grid[l] = make([]float64, m.Cfg.Heads)
			for h := range s.grid[l] {
				s.grid[l][h] = math.NaN()
			}
		}
	}
	return s
}

func (s *sweepSummary) add(r sweep.Row) error {
	s.n++
	if math.IsNaN(r.Value) || math.IsInf(r.Value, 0) {
		s.nan++
		if len(s.bad) < 5 {
			name := r.Config
			if name == "" {
				name = "(none)"
			}
			s.bad = append(s.bad, fmt.Sprintf("%s (index %d)", name, r.Index))
		}
	}
	// Insert after every kept row with |delta| >= this one's (a stable
	// sort by |delta|, descending, of the rows in index order).
	if s.max > 0 {
		d := math.Abs(r.Delta)
		at := sort.Search(len(s.top), func(i int) bool { return math.Abs(s.top[i].Delta) < d })
		if at < s.max {
			s.top = slices.Insert(s.top, at, r)
			if len(s.top) > s.max {
				s.top = s.top[:s.max]
			}
		}
	}
	if s.values != nil && r.Index < len(s.values) {
		s.values[r.Index] = r.Value
	}
	if s.grid != nil && r.NAblated > 0 && s.other == "" {
		c, err := sweep.ParseConfig(r.Config, s.dims)
		if err != nil || len(c) != 1 || c[0].Kind != sweep.Head {
			if s.other == "" {
				s.other = r.Config
			}
		} else {
			s.grid[c[0].Layer][c[0].Head] = r.Delta
		}
	}
	return nil
}

// warnNaN says which configurations gave a NaN or infinite metric (a
// diverged or corrupt checkpoint): their rows hold NaN (CSV) or null (JSONL).
func (s *sweepSummary) warnNaN(col string) {
	if s.nan > 0 {
		more := ""
		if s.nan > len(s.bad) {
			more = ", ..."
		}
		logf("warning: %d of %d configurations give a %s that is not a number: %s%s", s.nan, s.n, col, strings.Join(s.bad, ", "), more)
	}
}

// checkPlottable refuses --plot, before any work, for a space report
// cannot draw: it draws the interaction table of an unsharded subsets(...)
// space or the [layer, head] deltas of single heads.
func (f *sweepFlags) checkPlottable(space sweep.Source, dims sweep.Dims, shards int) error {
	if f.plotPath == "" {
		return nil
	}
	if _, ok := sweep.SubsetsOf(f.space, dims); ok && shards == 1 {
		return nil
	}
	for _, c := range space.All() {
		if len(c) > 1 || (len(c) == 1 && c[0].Kind != sweep.Head) {
			return usagef("--plot: draws the interaction table of an unsharded subsets(...) space or the deltas of single heads; this space has %q", c.String())
		}
	}
	return nil
}

// report prints the most affecting configurations, the interaction table of
// a subsets space, and draws --plot.
func (f *sweepFlags) report(m *forward.Model, sum *sweepSummary, base float64, col string) error {
	var inter *sweep.Interaction
	if sum.values != nil && sum.n == len(sum.values) {
		var err error
		if inter, err = sweep.Interactions(sum.comps, sum.values); err != nil {
			return err
		}
	}
	top := sum.top
	if f.model.JSON {
		out := map[string]any{"out": f.out, "rows": sum.n, "baseline": base, "metric": col, "top": top}
		if inter != nil {
			effects := make([][]*float64, len(inter.Effect))
			for i, r := range inter.Effect {
				for _, v := range r {
					v := v
					if math.IsNaN(v) {
						effects[i] = append(effects[i], nil)
					} else {
						effects[i] = append(effects[i], &v)
					}
				}
			}
			names := make([]string, len(inter.Components))
			for i, c := range inter.Components {
				names[i] = c.String()
			}
			out["interactions"] = map[string]any{"components": names, "given": inter.Sets, "effect": effects}
		}
		if err := printJSON(os.Stdout, out); err != nil {
			return err
		}
	} else {
		fmt.Printf("baseline %s %.6f; %d configurations\n", col, base, sum.n)
		fmt.Printf("%-32s %9s %12s %12s\n", "config", "n_ablated", col, "delta")
		for _, r := range top {
			name := r.Config
			if name == "" {
				name = "(none)"
			}
			fmt.Printf("%-32s %9d %12.6f %+12.6f\n", name, r.NAblated, r.Value, r.Delta)
		}
		if inter != nil {
			fmt.Println()
			if len(inter.Components) <= sweep.MaxTable {
				inter.Print(os.Stdout, col)
			} else {
				inter.PrintSummary(os.Stdout, col)
			}
		}
	}
	if f.plotPath == "" {
		return nil
	}
	if inter != nil {
		names := make([]string, len(inter.Components))
		for i, c := range inter.Components {
			names[i] = c.String()
		}
		if len(inter.Components) <= sweep.MaxTable {
			if err := plot.Heatmap(f.plotPath, col+" change: column ablated, given row",
				"component ablated", "already ablated", inter.Sets, names, inter.Effect, plot.BarLabel(col+" change")); err != nil {
				return err
			}
		} else {
			cols, rows := inter.Summary()
			if err := plot.Heatmap(f.plotPath, col+" change from ablating each component, over sets of the others",
				"", "component", names, cols, rows, plot.BarLabel(col+" change")); err != nil {
				return err
			}
		}
		logf("sweep: drew %s", f.plotPath)
		return nil
	}
	// Single heads: a [layer, head] grid of deltas (NaN where not swept).
	if sum.other != "" {
		return usageError{errors.New("--plot: draws the interaction table of a subsets(...) space or the deltas of single heads; this space has " + strconv.Quote(sum.other))}
	}
	grid := sum.grid
	rl, cl := make([]string, m.Cfg.Layers), make([]string, m.Cfg.Heads)
	for i := range rl {
		rl[i] = strconv.Itoa(i)
	}
	for i := range cl {
		cl[i] = strconv.Itoa(i)
	}
	if err := plot.Heatmap(f.plotPath, "change in "+col+" from ablating one head", "head", "layer", rl, cl, grid, plot.BarLabel(col+" change")); err != nil {
		return err
	}
	logf("sweep: drew %s", f.plotPath)
	return nil
}
