package circuit

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
)

// JournalHeader is a journal's first line: what the decisions were made on.
type JournalHeader struct {
	Version   int     `json:"journal"`
	Inputs    string  `json:"inputs"` // InputsHash
	Metric    Metric  `json:"metric"`
	Threshold float64 `json:"threshold"`
	Edges     int     `json:"edges"`
}

// ErrMismatch is returned (wrapped) when a journal was written for other
// inputs, threshold, metric or graph than the run resuming it.
var ErrMismatch = errors.New("the journal was written for a different run")

// Journal appends ACDC decisions to a file, one JSON line each, synced
// line by line, so that a killed run loses at most the decision being made.
type Journal struct {
	f    *os.File
	path string
}

// OpenJournal creates path for a new run, or with resume reads the
// decisions of a killed run from it (a torn last line is dropped) and goes
// on appending. Without resume an existing journal is an error (the caller
// asks for --resume); with resume and no journal a new one is started.
func OpenJournal(path string, hdr JournalHeader, resume bool) (*Journal, []Decision, error) {
	hdr.Version = 1
	data, err := os.ReadFile(path)
	switch {
	case err == nil && !resume:
		return nil, nil, fmt.Errorf("%s exists: a run was started in this directory (resume it with --resume, or choose another --out)", path)
	case err == nil:
		lines := bytes.Split(data, []byte("\n"))
		var got JournalHeader
		if err := json.Unmarshal(lines[0], &got); err != nil {
			return nil, nil, fmt.Errorf("%s: line 1 is not a journal header: %v", path, err)
		}
		if got.Version != hdr.Version {
			return nil, nil, fmt.Errorf("%s: journal version %d, want %d", path, got.Version, hdr.Version)
		}
		if got.Inputs != hdr.Inputs {
			return nil, nil, fmt.Errorf("%s: %w: its inputs (model, prompts, answers) hash to %.12s..., this run's to %.12s...", path, ErrMismatch, got.Inputs, hdr.Inputs)
		}
		if got.Metric != hdr.Metric || got.Threshold != hdr.Threshold || got.Edges != hdr.Edges {
			return nil, nil, fmt.Errorf("%s: %w: metric %s threshold %g on %d edges, this run metric %s threshold %g on %d edges", path, ErrMismatch,
				got.Metric, got.Threshold, got.Edges, hdr.Metric, hdr.Threshold, hdr.Edges)
		}
		var ds []Decision
		good := len(lines[0]) + 1
		for i, l := range lines[1:] {
			if len(l) == 0 {
				continue
			}
			var d Decision
			if err := json.Unmarshal(l, &d); err != nil || i == len(lines)-2 && !bytes.HasSuffix(data, []byte("\n")) {
				break // a torn last line: the run was killed while writing it
			}
			if d.Edge < -1 || d.Edge >= hdr.Edges || math.IsNaN(d.Value) {
				return nil, nil, fmt.Errorf("%s: line %d: decision %+v outside the graph's %d edges", path, i+2, d, hdr.Edges)
			}
			ds = append(ds, d)
			good += len(l) + 1
		}
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			return nil, nil, err
		}
		if err := f.Truncate(int64(min(good, len(data)))); err != nil {
			f.Close()
			return nil, nil, err
		}
		if _, err := f.Seek(0, io.SeekEnd); err != nil {
			f.Close()
			return nil, nil, err
		}
		return &Journal{f: f, path: path}, ds, nil
	case !errors.Is(err, os.ErrNotExist):
		return nil, nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, nil, err
	}
	j := &Journal{f: f, path: path}
	if err := j.line(hdr); err != nil {
		f.Close()
		return nil, nil, err
	}
	return j, nil, nil
}

func (j *Journal) line(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if _, err := j.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("%s: %w", j.path, err)
	}
	return j.f.Sync()
}

// Record appends one decision (Options.Record).
func (j *Journal) Record(d Decision) error { return j.line(d) }

// Close closes the file.
func (j *Journal) Close() error { return j.f.Close() }

// InputsHash identifies what a run's decisions depend on: the model
// directory's config.json and weight files (names, sizes, contents), the
// clean and corrupt tokens with their shape, and the answer ids.
func InputsHash(modelDir string, t Task) (string, error) {
	h := sha256.New()
	var files []string
	for _, pat := range []string{"config.json", "*.safetensors", "*.safetensors.index.json", "*.bin"} {
		m, err := filepath.Glob(filepath.Join(modelDir, pat))
		if err != nil {
			return "", err
		}
		files = append(files, m...)
	}
	sort.Strings(files)
	if len(files) == 0 {
		return "", fmt.Errorf("%s: no config.json or weight files to identify the model by", modelDir)
	}
	for _, p := range files {
		f, err := os.Open(p)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s\x00", filepath.Base(p))
		n, err := io.Copy(h, bufio.NewReaderSize(f, 1<<20))
		f.Close()
		if err != nil {
			return "", fmt.Errorf("%s: %w", p, err)
		}
		binary.Write(h, binary.LittleEndian, n)
	}
	binary.Write(h, binary.LittleEndian, []int64{int64(t.B), int64(t.T)})
	for _, s := range [][]int32{t.Clean, t.Corrupt, t.IO, t.S} {
		binary.Write(h, binary.LittleEndian, int64(len(s)))
		binary.Write(h, binary.LittleEndian, s)
	}
	return fmt.Sprintf("%x", h.Sum(nil)), nil
}
