package sweep

import (
	"errors"
	"fmt"
	"io"
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

// ShardLen is len(ShardIndices(total, i, n)), without listing them.
func ShardLen(total, i, n int) int {
	if i >= total {
		return 0
	}
	return (total-1-i)/n + 1
}

// Window is how many of a shard's configurations Run plans at once when
// RunOptions.Window is 0. A shard is read from its Source a window at a
// time, so memory holds one window of configurations and their plan
// (tens of MB at 65,536), never the space; chunks never cross windows, so a
// space of at most one window is planned exactly as a whole.
const Window = 1 << 16

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
	// Window: configurations planned at once (0: the constant Window). It
	// is part of the plan, so a resumed run must use the same.
	Window   int
	Progress func(done, total int)
	// Row, if set, is called with every row of the shard in index order
	// once the result file is complete (Run keeps no rows itself).
	Row func(Row) error
}

// Run evaluates this shard's configurations of src and writes them to
// opt.Out as it goes, then rewrites the file sorted by index (handing each
// row to opt.Row) and marks the sidecar complete. It returns the number of
// rows.
//
// The shard is read from src one window of opt.Window configurations at a
// time; each window is planned (Plan) and run chunk by chunk, and its rows
// are appended to the journal after every chunk, so the journal holds the
// windows one after the other, each in plan order. The final rewrite sorts
// one window at a time. Memory is bounded by a window, whatever the size
// of the space.
//
// Crash safety: on --resume a partial last line is cut, the complete rows
// are kept, and only chunks with missing configurations are evaluated
// again (whole, since the plan is a function of the window and the chunk
// size, so their numbers are bit-identical to an uninterrupted run; rows
// already present are not written again). Killing the process at any
// moment and resuming gives exactly the rows of an uninterrupted run, once
// each.
func Run(e *Engine, src Source, opt RunOptions) (int, error) {
	meta := opt.Meta
	if meta.Shards == 0 {
		meta.Shards = 1
	}
	W := opt.Window
	if W <= 0 {
		W = Window
	}
	meta.Version = 1
	meta.Total = src.Len()
	meta.Count = ShardLen(meta.Total, meta.Shard, meta.Shards)
	meta.Baseline = e.Baseline
	meta.Format = opt.Format
	meta.Columns = Columns(e.task.Metric)
	col := e.task.Metric.Column()
	jpath := journalPath(opt.Out, opt.Format)
	emit := opt.Row
	if emit == nil {
		emit = func(Row) error { return nil }
	}

	_, statErr := os.Stat(opt.Out)
	_, jErr := os.Stat(jpath)
	exists := statErr == nil || jErr == nil
	resume := false
	switch {
	case opt.Resume:
		old, err := ReadMeta(opt.Out)
		if err != nil && exists {
			return 0, &FileError{err.Error()}
		}
		if err == nil {
			if d := sameSweep(old, &meta); d != "" {
				return 0, fileErrorf("%s: --resume: the file holds a different sweep (%s)", opt.Out, d)
			}
			if !SameBaseline(old.Baseline, meta.Baseline) {
				return 0, fileErrorf("%s: --resume: the file's baseline %s is %v, this run's is %v: the model or inputs changed since the sweep started (start over with --force)", opt.Out, meta.Metric, old.Baseline, meta.Baseline)
			}
			if old.Shard != meta.Shard || old.Format != meta.Format {
				return 0, fileErrorf("%s: --resume: the file holds shard %d/%d as %s, this run is shard %d/%d as %s", opt.Out, old.Shard, old.Shards, old.Format, meta.Shard, meta.Shards, meta.Format)
			}
			if old.Complete {
				n, err := EachRow(opt.Out, opt.Format, col, func(Row) error { return nil })
				if err == nil && n == meta.Count {
					if _, err := EachRow(opt.Out, opt.Format, col, emit); err != nil {
						return 0, err
					}
					if opt.Format == Parquet {
						os.Remove(jpath)
					}
					if opt.Progress != nil {
						opt.Progress(n, n)
					}
					return n, nil
				}
			}
			resume = jErr == nil || (opt.Format != Parquet && statErr == nil)
		}
	case exists && !opt.Force:
		return 0, fileErrorf("%s exists: pass --resume to continue that sweep or --force to start over", opt.Out)
	}
	if !resume {
		if opt.Format == Parquet {
			os.Remove(opt.Out)
		}
		if err := writeMeta(opt.Out, &meta); err != nil {
			return 0, err
		}
	}
	j, kept, err := openJournal(jpath, opt.Format, col, resume)
	if err != nil {
		return 0, err
	}
	defer j.close()
	// The rows already in the journal, read window by window beside the
	// space (they were written window by window).
	oldf, err := os.Open(jpath)
	if err != nil {
		return 0, err
	}
	defer oldf.Close()
	old := newRowReader(jpath, j.fmt, col, io.NewSectionReader(oldf, 0, kept))
	if !resume {
		old = newRowReader(jpath, j.fmt, col, strings.NewReader(""))
	}
	var ahead *Row
	peek := func() (*Row, error) {
		if ahead == nil {
			r, ok, err := old.next()
			if err != nil {
				return nil, &FileError{err.Error()}
			}
			if !ok {
				return nil, nil
			}
			ahead = &r
		}
		return ahead, nil
	}

	every := opt.SyncEvery
	if every <= 0 {
		every = 2 * time.Second
	}
	lastSync := time.Now()
	done := 0
	progress := func() {
		if opt.Progress != nil {
			opt.Progress(done, meta.Count)
		}
	}
	progress()
	pos := func(index int) int { return (index - meta.Shard) / meta.Shards }
	idxOf := func(p int) int { return meta.Shard + p*meta.Shards }

	// run evaluates one window: configurations win of shard positions
	// start.. start+len(win)-1.
	run := func(start int, win []Config) error {
		have := make(map[int]bool)
		for {
			r, err := peek()
			if err != nil {
				return err
			}
			if r == nil || pos(r.Index) >= start+len(win) || r.Index < meta.Shard || (r.Index-meta.Shard)%meta.Shards != 0 {
				if r != nil && (r.Index < meta.Shard || (r.Index-meta.Shard)%meta.Shards != 0) {
					return fileErrorf("%s: row for configuration %d, which is not in shard %d/%d", jpath, r.Index, meta.Shard, meta.Shards)
				}
				break
			}
			p := pos(r.Index)
			if p < start {
				return fileErrorf("%s: configuration %d (%s) is out of place: the journal holds the space's windows of %d configurations in order (written with another window size or by an older neoscope? start over with --force)", jpath, r.Index, r.Config, W)
			}
			if want := win[p-start].String(); r.Config != want {
				return fileErrorf("%s: configuration %d is %q in the file, %q in the space", jpath, r.Index, r.Config, want)
			}
			if have[p] {
				return fileErrorf("%s: configuration %d (%s) appears twice", jpath, r.Index, r.Config)
			}
			have[p] = true
			ahead = nil
		}
		done += len(have)
		if len(have) == len(win) {
			progress()
			return nil
		}
		for _, ch := range e.Plan(win) {
			missing := false
			for _, k := range ch {
				if !have[start+k] {
					missing = true
				}
			}
			if !missing {
				continue
			}
			batch := make([]Config, len(ch))
			for b, k := range ch {
				batch[b] = win[k]
			}
			vals, err := e.Eval(batch)
			if err != nil {
				return err
			}
			var rows []Row
			for b, k := range ch {
				if have[start+k] {
					continue
				}
				r := Row{Index: idxOf(start + k), Config: win[k].String(), NAblated: len(win[k]), Value: vals[b], Delta: vals[b] - e.Baseline}
				if g, ok := e.Gap(); ok && e.task.Metric == LD {
					r.Norm = g.Normalised(vals[b])
				}
				rows = append(rows, r)
				have[start+k] = true
			}
			if err := j.append(rows); err != nil {
				return err
			}
			done += len(rows)
			if time.Since(lastSync) >= every {
				if err := j.sync(); err != nil {
					return err
				}
				lastSync = time.Now()
			}
			progress()
		}
		return nil
	}

	var win []Config
	start := 0
	for i, c := range src.All() {
		if i%meta.Shards != meta.Shard {
			continue
		}
		win = append(win, c)
		if len(win) == W {
			if err = run(start, win); err != nil {
				break
			}
			start += len(win)
			win = win[:0]
		}
	}
	if err == nil && len(win) > 0 {
		err = run(start, win)
	}
	if err == nil {
		if r, perr := peek(); perr != nil {
			err = perr
		} else if r != nil {
			err = fileErrorf("%s: configuration %d (%s) is not in this shard of the space (%d configurations)", jpath, r.Index, r.Config, meta.Count)
		}
	}
	if err != nil {
		return 0, err
	}
	if err := j.sync(); err != nil {
		return 0, err
	}
	j.close()
	if err := writeWindows(opt.Out, opt.Format, col, jpath, j.fmt, W, pos, emit); err != nil {
		return 0, err
	}
	meta.Complete = true
	if err := writeMeta(opt.Out, &meta); err != nil {
		return 0, err
	}
	if opt.Format == Parquet {
		os.Remove(jpath) // after the sidecar says complete: the journal is no longer needed
	}
	return done, nil
}

// writeWindows rewrites the journal as the finished file: its rows come
// window after window (pos gives a row's position in the shard), each
// window's sorted by index; emit sees every row in that order.
func writeWindows(out string, f Format, col, jpath string, jf Format, W int, pos func(int) int, emit func(Row) error) error {
	in, err := os.Open(jpath)
	if err != nil {
		return err
	}
	defer in.Close()
	rd := newRowReader(jpath, jf, col, in)
	return writeRows(out, f, col, func(write func([]Row) error) error {
		var buf []Row
		cur := -1
		flush := func() error {
			sort.Slice(buf, func(i, j int) bool { return buf[i].Index < buf[j].Index })
			for _, r := range buf {
				if err := emit(r); err != nil {
					return err
				}
			}
			err := write(buf)
			buf = buf[:0]
			return err
		}
		for {
			r, ok, err := rd.next()
			if err != nil {
				return err
			}
			if !ok {
				return flush()
			}
			w := pos(r.Index) / W
			if w != cur {
				if w < cur {
					return fileErrorf("%s: configuration %d (%s) is out of place (window %d after window %d)", jpath, r.Index, r.Config, w, cur)
				}
				if err := flush(); err != nil {
					return err
				}
				cur = w
			}
			buf = append(buf, r)
		}
	})
}

// FileError is a problem with the result file Run was given, its sidecar
// or its journal (an existing file without --resume or --force, another
// sweep's file, rows out of place or damaged): bad input, not a failed
// computation.
type FileError struct{ msg string }

func (e *FileError) Error() string { return e.msg }

func fileErrorf(format string, a ...any) error { return &FileError{fmt.Sprintf(format, a...)} }

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
	if err := writeSorted(out, f, col, all); err != nil {
		return nil, err
	}
	meta.Complete = true
	return &meta, writeMeta(out, &meta)
}
