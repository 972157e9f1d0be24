package sweep

import (
	"errors"
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ParseShard reads "i/n" (0 <= i < n).
func ParseShard(s string) (i, n int, err error) {
	a, b, ok := strings.Cut(s, "/")
	if ok {
		i, err = strconv.Atoi(strings.TrimSpace(a))
		if err == nil {
			n, err = strconv.Atoi(strings.TrimSpace(b))
		}
	}
	if !ok || err != nil || n < 1 || i < 0 || i >= n {
		return 0, 0, fmt.Errorf("--shard %q: want i/n with 0 <= i < n, e.g. 0/4", s)
	}
	return i, n, nil
}

// ShardFromEnv reads the shard of a Slurm job array task: i from
// SLURM_ARRAY_TASK_ID minus SLURM_ARRAY_TASK_MIN (0 if unset), n from
// SLURM_ARRAY_TASK_COUNT, or MAX-MIN+1 when COUNT is unset. Arrays with a
// step (--array=0-15:2) or a list are not contiguous: give --shard there.
// ok is false outside a job array.
func ShardFromEnv(getenv func(string) string) (i, n int, ok bool, err error) {
	id := getenv("SLURM_ARRAY_TASK_ID")
	if id == "" {
		return 0, 0, false, nil
	}
	num := func(k string) (int, bool, error) {
		v := getenv(k)
		if v == "" {
			return 0, false, nil
		}
		x, err := strconv.Atoi(v)
		if err != nil {
			return 0, true, fmt.Errorf("%s=%q is not a number", k, v)
		}
		return x, true, nil
	}
	tid, _, err := num("SLURM_ARRAY_TASK_ID")
	if err != nil {
		return 0, 0, false, err
	}
	lo, hasLo, err := num("SLURM_ARRAY_TASK_MIN")
	if err != nil {
		return 0, 0, false, err
	}
	hi, hasHi, err := num("SLURM_ARRAY_TASK_MAX")
	if err != nil {
		return 0, 0, false, err
	}
	cnt, hasCnt, err := num("SLURM_ARRAY_TASK_COUNT")
	if err != nil {
		return 0, 0, false, err
	}
	switch {
	case hasCnt:
		n = cnt
	case hasLo && hasHi:
		n = hi - lo + 1
	default:
		return 0, 0, false, fmt.Errorf("SLURM_ARRAY_TASK_ID is set but neither SLURM_ARRAY_TASK_COUNT nor SLURM_ARRAY_TASK_MIN/MAX: give --shard i/n")
	}
	i = tid - lo
	if hasLo && hasHi && hi-lo+1 != n {
		return 0, 0, false, fmt.Errorf("job array %d-%d has %d tasks, not a contiguous range (a step or list?): give --shard i/n", lo, hi, n)
	}
	if i < 0 || i >= n {
		return 0, 0, false, fmt.Errorf("job array task %d outside %d..%d: give --shard i/n", tid, lo, lo+n-1)
	}
	return i, n, true, nil
}

// ShardIndices are the indices of the configurations shard i of n holds:
// those congruent to i modulo n. Interleaving (rather than contiguous
// ranges) balances the shards: configurations touching early layers cost
// more and sit together in the space's order.
func ShardIndices(total, i, n int) []int {
	var out []int
	for k := i; k < total; k += n {
		out = append(out, k)
	}
	return out
}

// RunOptions say where a sweep writes and which part of the space it runs.
type RunOptions struct {
	Out    string
	Format Format
	// Resume continues an interrupted sweep in Out (the sidecar must describe
	// the same sweep); Force starts over when Out exists. Without either, an
	// existing Out is an error.
	Resume, Force bool
	// Meta describes the sweep (Space, Model, Task, Inputs, Metric, LossFrom,
	// Mode, Shard, Shards); Run fills the rest.
	Meta Meta
	// SyncEvery bounds the time between fsyncs of the journal (rows are
	// written after every chunk; a killed process loses nothing written, a
	// crashed machine at most this much). 0: 2 s.
	SyncEvery time.Duration
	Progress  func(done, total int)
}

// Run evaluates this shard's configurations and writes them to opt.Out as
// it goes, then rewrites the file sorted by index and marks the sidecar
// complete. It returns all of the shard's rows, sorted by index.
//
// Crash safety: rows are appended to the journal after every chunk; on
// --resume a partial last line is cut, the complete rows are kept, and only
// chunks with missing configurations are evaluated again (whole, since the
// plan is a function of the space and the chunk size, so their numbers are
// bit-identical to an uninterrupted run; rows already present are not
// written again). Killing the process at any moment and resuming gives
// exactly the rows of an uninterrupted run, once each.
func Run(e *Engine, cfgs []Config, opt RunOptions) ([]Row, error) {
	meta := opt.Meta
	if meta.Shards == 0 {
		meta.Shards = 1
	}
	meta.Version = 1
	meta.Total = len(cfgs)
	idx := ShardIndices(len(cfgs), meta.Shard, meta.Shards)
	meta.Count = len(idx)
	meta.Baseline = e.Baseline
	meta.Format = opt.Format
	meta.Columns = Columns(e.task.Metric)
	col := e.task.Metric.Column()
	jpath := journalPath(opt.Out, opt.Format)

	_, statErr := os.Stat(opt.Out)
	_, jErr := os.Stat(jpath)
	exists := statErr == nil || jErr == nil
	resume := false
	switch {
	case opt.Resume:
		old, err := ReadMeta(opt.Out)
		if err != nil && exists {
			return nil, err
		}
		if err == nil {
			if d := sameSweep(old, &meta); d != "" {
				return nil, fmt.Errorf("%s: --resume: the file holds a different sweep (%s)", opt.Out, d)
			}
			if !SameBaseline(old.Baseline, meta.Baseline) {
				return nil, fmt.Errorf("%s: --resume: the file's baseline %s is %v, this run's is %v: the model or inputs changed since the sweep started (start over with --force)", opt.Out, meta.Metric, old.Baseline, meta.Baseline)
			}
			if old.Shard != meta.Shard || old.Format != meta.Format {
				return nil, fmt.Errorf("%s: --resume: the file holds shard %d/%d as %s, this run is shard %d/%d as %s", opt.Out, old.Shard, old.Shards, old.Format, meta.Shard, meta.Shards, meta.Format)
			}
			if old.Complete {
				rows, err := ReadRows(opt.Out, opt.Format, col)
				if err == nil && len(rows) == meta.Count {
					if opt.Format == Parquet {
						os.Remove(jpath)
					}
					if opt.Progress != nil {
						opt.Progress(len(rows), len(rows))
					}
					return rows, nil
				}
			}
			resume = jErr == nil || (opt.Format != Parquet && statErr == nil)
		}
	case exists && !opt.Force:
		return nil, fmt.Errorf("%s exists: pass --resume to continue that sweep or --force to start over", opt.Out)
	}
	if !resume {
		if opt.Format == Parquet {
			os.Remove(opt.Out)
		}
		if err := writeMeta(opt.Out, &meta); err != nil {
			return nil, err
		}
	}
	j, old, err := openJournal(jpath, opt.Format, col, resume)
	if err != nil {
		return nil, err
	}
	defer j.close()

	inShard := make(map[int]bool, len(idx))
	for _, i := range idx {
		inShard[i] = true
	}
	done := make(map[int]Row, len(old))
	for _, r := range old {
		if !inShard[r.Index] {
			return nil, fmt.Errorf("%s: row for configuration %d, which is not in shard %d/%d", jpath, r.Index, meta.Shard, meta.Shards)
		}
		if r.Config != cfgs[r.Index].String() {
			return nil, fmt.Errorf("%s: configuration %d is %q in the file, %q in the space", jpath, r.Index, r.Config, cfgs[r.Index].String())
		}
		if _, dup := done[r.Index]; dup {
			return nil, fmt.Errorf("%s: configuration %d (%s) appears twice", jpath, r.Index, r.Config)
		}
		done[r.Index] = r
	}

	sub := make([]Config, len(idx))
	for k, i := range idx {
		sub[k] = cfgs[i]
	}
	every := opt.SyncEvery
	if every <= 0 {
		every = 2 * time.Second
	}
	lastSync := time.Now()
	if opt.Progress != nil {
		opt.Progress(len(done), len(idx))
	}
	for _, ch := range e.Plan(sub) {
		missing := false
		for _, k := range ch {
			if _, ok := done[idx[k]]; !ok {
				missing = true
			}
		}
		if !missing {
			continue
		}
		batch := make([]Config, len(ch))
		for j, k := range ch {
			batch[j] = sub[k]
		}
		vals, err := e.Eval(batch)
		if err != nil {
			return nil, err
		}
		var rows []Row
		for j, k := range ch {
			i := idx[k]
			if _, ok := done[i]; ok {
				continue
			}
			r := Row{Index: i, Config: sub[k].String(), NAblated: len(sub[k]), Value: vals[j], Delta: vals[j] - e.Baseline}
			if g, ok := e.Gap(); ok && e.task.Metric == LD {
				r.Norm = g.Normalised(vals[j])
			}
			rows = append(rows, r)
			done[i] = r
		}
		if err := j.append(rows); err != nil {
			return nil, err
		}
		if time.Since(lastSync) >= every {
			if err := j.sync(); err != nil {
				return nil, err
			}
			lastSync = time.Now()
		}
		if opt.Progress != nil {
			opt.Progress(len(done), len(idx))
		}
	}
	if err := j.sync(); err != nil {
		return nil, err
	}
	j.close()
	rows := make([]Row, 0, len(done))
	for _, r := range done {
		rows = append(rows, r)
	}
	if err := writeFinal(opt.Out, opt.Format, col, rows); err != nil {
		return nil, err
	}
	meta.Complete = true
	if err := writeMeta(opt.Out, &meta); err != nil {
		return nil, err
	}
	if opt.Format == Parquet {
		os.Remove(jpath) // after the sidecar says complete: the journal is no longer needed
	}
	return rows, nil
}

// SameBaseline says whether two unablated metric values come from the same
// model and inputs. Shards on nodes with other core counts (BLAS thread
// counts) agree to float32 rounding, about 1e-8 relative; other inputs or
// model files move the baseline by far more than 1e-6.
func SameBaseline(a, b float64) bool {
	return math.Abs(a-b) <= 1e-6*math.Max(1, math.Abs(b))
}

// Merge combines the outputs of shards 0..n-1 of one sweep into out. It
// refuses inputs from different sweeps, incomplete shards, a shard given
// twice, missing shards (naming them) and rows outside their shard.
func Merge(out string, f Format, inputs []string) (*Meta, error) {
	if len(inputs) == 0 {
		return nil, errors.New("merge: no shard files given")
	}
	var first *Meta
	byShard := map[int]string{}
	var all []Row
	seen := map[int]string{}
	for _, in := range inputs {
		m, err := ReadMeta(in)
		if err != nil {
			return nil, err
		}
		if first == nil {
			first = m
		} else if d := sameSweep(first, m); d != "" {
			return nil, fmt.Errorf("merge: %s and %s are not shards of the same sweep (%s)", inputs[0], in, d)
		}
		if prev, ok := byShard[m.Shard]; ok {
			return nil, fmt.Errorf("merge: overlapping shards: %s and %s are both shard %d/%d", prev, in, m.Shard, m.Shards)
		}
		byShard[m.Shard] = in
		if !m.Complete {
			return nil, fmt.Errorf("merge: %s: shard %d/%d is incomplete (finish it with neoscope sweep ... --resume)", in, m.Shard, m.Shards)
		}
		col := metricOf(m.Metric).Column()
		rows, err := ReadRows(in, m.Format, col)
		if err != nil {
			return nil, err
		}
		want := ShardIndices(m.Total, m.Shard, m.Shards)
		got := map[int]bool{}
		for _, r := range rows {
			if r.Index < 0 || r.Index >= m.Total || r.Index%m.Shards != m.Shard {
				return nil, fmt.Errorf("merge: %s: configuration %d (%s) does not belong to shard %d/%d", in, r.Index, r.Config, m.Shard, m.Shards)
			}
			if other, ok := seen[r.Index]; ok {
				return nil, fmt.Errorf("merge: configuration %d (%s) is in both %s and %s", r.Index, r.Config, other, in)
			}
			seen[r.Index] = in
			got[r.Index] = true
		}
		if len(got) != len(want) {
			var miss []string
			for _, i := range want {
				if !got[i] && len(miss) < 5 {
					miss = append(miss, strconv.Itoa(i))
				}
			}
			return nil, fmt.Errorf("merge: %s: shard %d/%d has %d of its %d configurations (missing indices %s...)", in, m.Shard, m.Shards, len(got), len(want), strings.Join(miss, ", "))
		}
		if !SameBaseline(m.Baseline, first.Baseline) {
			return nil, fmt.Errorf("merge: %s: baseline %v differs from %s's %v (different inputs or model files?)", in, m.Baseline, inputs[0], first.Baseline)
		}
		all = append(all, rows...)
	}
	var missing []string
	for i := 0; i < first.Shards; i++ {
		if _, ok := byShard[i]; !ok {
			missing = append(missing, fmt.Sprintf("%d/%d", i, first.Shards))
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("merge: missing shard(s) %s of the sweep %q (%d configurations): got %d of %d files", strings.Join(missing, ", "), first.Space, first.Total, len(byShard), first.Shards)
	}
	if len(all) != first.Total {
		return nil, fmt.Errorf("merge: %d configurations in all, the space has %d", len(all), first.Total)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Index < all[j].Index })
	meta := *first
	meta.Shard, meta.Shards, meta.Count, meta.Format, meta.Complete = 0, 1, len(all), f, false
	col := metricOf(meta.Metric).Column()
	if err := writeMeta(out, &meta); err != nil {
		return nil, err
	}
	if err := writeFinal(out, f, col, all); err != nil {
		return nil, err
	}
	meta.Complete = true
	return &meta, writeMeta(out, &meta)
}
