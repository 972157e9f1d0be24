package sweep

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/neoscope/neoscope/internal/outfile"
)

// Format is a result file format.
type Format string

const (
	CSV     Format = "csv"
	JSONL   Format = "jsonl"
	Parquet Format = "parquet"
)

// FormatOf picks the format: the flag if given, else the file extension
// (.csv, .jsonl/.ndjson, .parquet), else an error.
func FormatOf(path, flag string) (Format, error) {
	if flag == "" {
		switch strings.ToLower(filepath.Ext(path)) {
		case ".csv":
			return CSV, nil
		case ".jsonl", ".ndjson":
			return JSONL, nil
		case ".parquet", ".pq":
			return Parquet, nil
		}
		return "", fmt.Errorf("%s: cannot tell the format from the extension; pass --format csv|jsonl|parquet", path)
	}
	switch Format(flag) {
	case CSV, JSONL, Parquet:
		return Format(flag), nil
	}
	return "", fmt.Errorf("--format %q: want csv, jsonl or parquet", flag)
}

// Row is one result: a configuration's index in the space, its name, the
// number of ablated components, the metric and its change from the
// unablated baseline.
type Row struct {
	Index    int     `json:"index"`
	Config   string  `json:"config"`
	NAblated int     `json:"n_ablated"`
	Value    float64 `json:"value"`
	Delta    float64 `json:"delta"`
	// Norm is (Value - corrupt) / (clean - corrupt) in patching sweeps with
	// the ld metric (the `normalised` column); unused otherwise.
	Norm float64 `json:"normalised,omitempty"`
}

// Columns are the result columns for a metric, in file order.
func Columns(m Metric) []string {
	if m == LD {
		return []string{"config", "n_ablated", m.Column(), "delta", "normalised", "index"}
	}
	return []string{"config", "n_ablated", m.Column(), "delta", "index"}
}

// Meta is the sidecar OUT.meta.json written beside every result file: what
// was swept, on what, and which part of the space the file holds. Resume and
// merge compare sidecars to refuse mixing different sweeps.
type Meta struct {
	Version int    `json:"version"`
	Space   string `json:"space"`
	Model   string `json:"model"`
	// ModelSHA256 is the model's content identity (runtime/identity): resume
	// and merge compare it instead of the path, so an edited weight is
	// refused and a byte-identical copy elsewhere is accepted.
	ModelSHA256 string `json:"model_sha256,omitempty"`
	// NeoscopeVersion is the version of the binary that wrote the file.
	NeoscopeVersion string `json:"neoscope_version,omitempty"`
	Task            string `json:"task"`          // e.g. "tokens batch.json" or "induction B=8 P=10 seed=0"
	Inputs          string `json:"inputs_sha256"` // of the token ids (and answers) actually used
	Metric          string `json:"metric"`
	LossFrom        int    `json:"loss_from"`
	Mode            string `json:"mode"`
	// Shard i of Shards holds the configurations whose index in the space is
	// i modulo Shards; Count of them, of Total in the space.
	Shard    int      `json:"shard"`
	Shards   int      `json:"shards"`
	Total    int      `json:"total"`
	Count    int      `json:"count"`
	Baseline float64  `json:"baseline"`
	Format   Format   `json:"format"`
	Columns  []string `json:"columns"`
	Complete bool     `json:"complete"`
}

// MetaPath is the sidecar of a result file.
func MetaPath(out string) string { return out + ".meta.json" }

// journalPath is where rows are appended while a sweep runs: the output
// itself for CSV and JSONL, a JSONL file beside it for Parquet (written at
// the end, Parquet has no appendable form).
func journalPath(out string, f Format) string {
	if f == Parquet {
		return out + ".journal.jsonl"
	}
	return out
}

// ReadMeta reads a result file's sidecar.
func ReadMeta(out string) (*Meta, error) {
	data, err := os.ReadFile(MetaPath(out))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s: no sidecar %s (not written by neoscope sweep?)", out, MetaPath(out))
		}
		return nil, err
	}
	var m Meta
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%s: %v", MetaPath(out), err)
	}
	if m.Shards < 1 || m.Shard < 0 || m.Shard >= m.Shards || m.Total < 0 {
		return nil, fmt.Errorf("%s: bad shard %d/%d of %d configurations", MetaPath(out), m.Shard, m.Shards, m.Total)
	}
	return &m, nil
}

func writeMeta(out string, m *Meta) error {
	return outfile.Write(MetaPath(out), func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(m)
	})
}

// sameSweep says how a differs from b in what was swept ("" if it does not).
func sameSweep(a, b *Meta) string {
	if a.ModelSHA256 != "" && b.ModelSHA256 != "" {
		if a.ModelSHA256 != b.ModelSHA256 {
			return fmt.Sprintf("the model's content differs: model_sha256 %.12s... (%s) vs %.12s... (%s): config.json or a weight file changed", a.ModelSHA256, a.Model, b.ModelSHA256, b.Model)
		}
		b2 := *b
		b2.Model = a.Model // same content: the path may differ
		b = &b2
	}
	for _, d := range []struct {
		name string
		x, y any
	}{
		{"space", a.Space, b.Space}, {"model", a.Model, b.Model}, {"task", a.Task, b.Task},
		{"inputs_sha256", a.Inputs, b.Inputs}, {"metric", a.Metric, b.Metric},
		{"loss_from", a.LossFrom, b.LossFrom}, {"mode", a.Mode, b.Mode},
		{"shards", a.Shards, b.Shards}, {"total", a.Total, b.Total},
	} {
		if d.x != d.y {
			return fmt.Sprintf("%s %v vs %v", d.name, d.x, d.y)
		}
	}
	return ""
}

func formatFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

func encodeRow(f Format, col string, r Row) []byte {
	if col == LD.Column() {
		if f == CSV {
			return []byte(fmt.Sprintf("%s,%d,%s,%s,%s,%d\n", r.Config, r.NAblated, formatFloat(r.Value), formatFloat(r.Delta), formatFloat(r.Norm), r.Index))
		}
		return []byte(fmt.Sprintf(`{"config":%q,"n_ablated":%d,%q:%s,"delta":%s,"normalised":%s,"index":%d}`+"\n",
			r.Config, r.NAblated, col, jsonFloat(r.Value), jsonFloat(r.Delta), jsonFloat(r.Norm), r.Index))
	}
	if f == CSV {
		// Configuration names hold only [0-9a-z.+>@], no quoting needed.
		return []byte(fmt.Sprintf("%s,%d,%s,%s,%d\n", r.Config, r.NAblated, formatFloat(r.Value), formatFloat(r.Delta), r.Index))
	}
	// JSONL (also the Parquet journal); keys in column order.
	return []byte(fmt.Sprintf(`{"config":%q,"n_ablated":%d,%q:%s,"delta":%s,"index":%d}`+"\n",
		r.Config, r.NAblated, col, jsonFloat(r.Value), jsonFloat(r.Delta), r.Index))
}

func jsonFloat(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "null"
	}
	return formatFloat(v)
}

func csvHeader(col string) string { return strings.Join(Columns(metricOf(col)), ",") + "\n" }

func metricOf(col string) Metric {
	for _, m := range []Metric{LogitDiff, LD, KL} {
		if col == m.Column() {
			return m
		}
	}
	return Loss
}

func parseRow(f Format, col string, ln []byte) (Row, error) {
	var r Row
	if f == CSV {
		rec, err := csv.NewReader(bytes.NewReader(ln)).Read()
		if err != nil {
			return r, err
		}
		want := len(Columns(metricOf(col)))
		if len(rec) != want {
			return r, fmt.Errorf("%d fields, want %d (%s)", len(rec), want, strings.TrimSpace(csvHeader(col)))
		}
		if want == 6 { // ld: normalised before index
			var err error
			if r.Norm, err = strconv.ParseFloat(rec[4], 64); err != nil {
				return r, err
			}
			rec = append(rec[:4], rec[5])
		}
		r.Config = rec[0]
		var e1, e2, e3, e4 error
		r.NAblated, e1 = strconv.Atoi(rec[1])
		r.Value, e2 = strconv.ParseFloat(rec[2], 64)
		r.Delta, e3 = strconv.ParseFloat(rec[3], 64)
		r.Index, e4 = strconv.Atoi(rec[4])
		return r, errors.Join(e1, e2, e3, e4)
	}
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(ln))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return r, err
	}
	num := func(k string) (float64, error) {
		switch v := m[k].(type) {
		case json.Number:
			return v.Float64()
		case nil:
			if _, ok := m[k]; ok {
				return math.NaN(), nil
			}
		}
		return 0, fmt.Errorf("field %q missing or not a number", k)
	}
	c, ok := m["config"].(string)
	if !ok {
		return r, fmt.Errorf(`field "config" missing or not a string`)
	}
	r.Config = c
	n, e1 := num("n_ablated")
	r.Value, _ = num(col)
	if _, ok := m[col]; !ok {
		return r, fmt.Errorf("field %q missing", col)
	}
	var e2 error
	r.Delta, e2 = num("delta")
	if col == LD.Column() {
		var e4 error
		if r.Norm, e4 = num("normalised"); e4 != nil {
			return r, e4
		}
	}
	idx, e3 := num("index")
	r.NAblated, r.Index = int(n), int(idx)
	return r, errors.Join(e1, e2, e3)
}

// Parquet rows, one struct per metric column name.
type pqLoss struct {
	Config   string  `parquet:"config"`
	NAblated int64   `parquet:"n_ablated"`
	Loss     float64 `parquet:"loss"`
	Delta    float64 `parquet:"delta"`
	Index    int64   `parquet:"index"`
}

type pqLD struct {
	Config    string  `parquet:"config"`
	NAblated  int64   `parquet:"n_ablated"`
	LogitDiff float64 `parquet:"logit_diff"`
	Delta     float64 `parquet:"delta"`
	Index     int64   `parquet:"index"`
}

// journal appends rows to a CSV or JSONL file as a sweep runs.
type journal struct {
	path string
	f    *os.File
	fmt  Format // CSV or JSONL
	col  string
}

// openJournal creates the journal, or on resume reopens it and cuts a
// partial last line (the only damage a killed process leaves in an
// append-only file). It returns the length of the complete rows already
// there (read them with rowsIn).
func openJournal(path string, f Format, col string, resume bool) (*journal, int64, error) {
	jf := f
	if f == Parquet {
		jf = JSONL
	}
	j := &journal{path: path, fmt: jf, col: col}
	if !resume {
		fh, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			return nil, 0, err
		}
		j.f = fh
		if jf == CSV {
			if _, err := fh.WriteString(csvHeader(col)); err != nil {
				fh.Close()
				return nil, 0, err
			}
		}
		return j, 0, fh.Sync()
	}
	fh, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, 0, err
	}
	j.f = fh
	keep, err := afterLastNewline(fh)
	if err == nil && jf == CSV && keep == 0 { // not even the header survived
		_, err = fh.WriteAt([]byte(csvHeader(col)), 0)
		keep = int64(len(csvHeader(col)))
	}
	if err == nil {
		err = fh.Truncate(keep)
	}
	if err == nil {
		_, err = fh.Seek(keep, io.SeekStart)
	}
	if err != nil {
		fh.Close()
		return nil, 0, err
	}
	return j, keep, nil
}

// afterLastNewline is the offset just after the last '\n' of f (0 if none),
// read backwards in blocks.
func afterLastNewline(f *os.File) (int64, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	buf := make([]byte, 64<<10)
	for end := st.Size(); end > 0; {
		start := max(0, end-int64(len(buf)))
		b := buf[:end-start]
		if _, err := f.ReadAt(b, start); err != nil {
			return 0, err
		}
		if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
			return start + int64(i) + 1, nil
		}
		end = start
	}
	return 0, nil
}

func (j *journal) append(rows []Row) error {
	var b []byte
	for _, r := range rows {
		b = append(b, encodeRow(j.fmt, j.col, r)...)
	}
	_, err := j.f.Write(b)
	return err
}

func (j *journal) sync() error { return j.f.Sync() }

func (j *journal) close() error {
	if j.f == nil {
		return nil
	}
	err := j.f.Close()
	j.f = nil
	return err
}
