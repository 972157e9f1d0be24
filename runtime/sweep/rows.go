package sweep

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/parquet-go/parquet-go"

	"github.com/neoscope/neoscope/internal/outfile"
)

// Result files are read and written a row (or a window of rows) at a time,
// so a sweep of millions of configurations never holds its results.

// rowReader reads the rows of a CSV or JSONL text line by line; errors name
// the file and line.
type rowReader struct {
	path string
	f    Format
	col  string
	br   *bufio.Reader
	line int
}

func newRowReader(path string, f Format, col string, r io.Reader) *rowReader {
	return &rowReader{path: path, f: f, col: col, br: bufio.NewReaderSize(r, 64<<10)}
}

// next returns the next row; ok is false at the end. A last line without
// '\n' is an error (an interrupted write).
func (r *rowReader) next() (row Row, ok bool, err error) {
	for {
		ln, err := r.br.ReadBytes('\n')
		if err == io.EOF && len(ln) == 0 {
			return Row{}, false, nil
		}
		if err == io.EOF {
			return Row{}, false, fmt.Errorf("%s: last line is incomplete (an interrupted sweep: finish it with --resume)", r.path)
		}
		if err != nil {
			return Row{}, false, err
		}
		r.line++
		if r.f == CSV && r.line == 1 {
			if string(ln) != csvHeader(r.col) {
				return Row{}, false, fmt.Errorf("%s:1: header %q, want %q", r.path, strings.TrimSpace(string(ln)), strings.TrimSpace(csvHeader(r.col)))
			}
			continue
		}
		row, err := parseRow(r.f, r.col, ln[:len(ln)-1])
		if err != nil {
			return Row{}, false, fmt.Errorf("%s:%d: %v", r.path, r.line, err)
		}
		return row, true, nil
	}
}

// EachRow calls fn with every row of a finished result file, in file order,
// and returns how many there were.
func EachRow(path string, f Format, col string, fn func(Row) error) (int, error) {
	if f == Parquet {
		return eachParquet(path, col, fn)
	}
	fh, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer fh.Close()
	rd := newRowReader(path, f, col, fh)
	n := 0
	for {
		r, ok, err := rd.next()
		if err != nil || !ok {
			return n, err
		}
		if err := fn(r); err != nil {
			return n, err
		}
		n++
	}
}

// ReadRows reads a finished result file into memory (tests, small files;
// sweeps use EachRow).
func ReadRows(path string, f Format, col string) ([]Row, error) {
	var rows []Row
	_, err := EachRow(path, f, col, func(r Row) error { rows = append(rows, r); return nil })
	return rows, err
}

// rowSink writes rows of a finished result file in the order given.
type rowSink interface {
	write(rows []Row) error
	close() error
}

type lineSink struct {
	bw  *bufio.Writer
	f   Format
	col string
}

func (s *lineSink) write(rows []Row) error {
	for _, r := range rows {
		if _, err := s.bw.Write(encodeRow(s.f, s.col, r)); err != nil {
			return err
		}
	}
	return nil
}

func (s *lineSink) close() error { return s.bw.Flush() }

// pqSink writes Parquet rows of type T, converted from Row.
type pqSink[T any] struct {
	w    *parquet.GenericWriter[T]
	conv func(Row) T
	buf  []T
}

func (s *pqSink[T]) write(rows []Row) error {
	s.buf = s.buf[:0]
	for _, r := range rows {
		s.buf = append(s.buf, s.conv(r))
	}
	_, err := s.w.Write(s.buf)
	return err
}

func (s *pqSink[T]) close() error { return s.w.Close() }

func newPQSink[T any](w io.Writer, conv func(Row) T) rowSink {
	return &pqSink[T]{w: parquet.NewGenericWriter[T](w), conv: conv}
}

// The Parquet row type of each metric column, both ways.
func parquetSink(w io.Writer, col string) rowSink {
	switch col {
	case LD.Column():
		return newPQSink(w, func(r Row) pqPatchLD {
			return pqPatchLD{r.Config, int64(r.NAblated), r.Value, r.Delta, r.Norm, int64(r.Index)}
		})
	case KL.Column():
		return newPQSink(w, func(r Row) pqPatchKL { return pqPatchKL{r.Config, int64(r.NAblated), r.Value, r.Delta, int64(r.Index)} })
	case LogitDiff.Column():
		return newPQSink(w, func(r Row) pqLD { return pqLD{r.Config, int64(r.NAblated), r.Value, r.Delta, int64(r.Index)} })
	}
	return newPQSink(w, func(r Row) pqLoss { return pqLoss{r.Config, int64(r.NAblated), r.Value, r.Delta, int64(r.Index)} })
}

func eachParquet(path, col string, fn func(Row) error) (int, error) {
	switch col {
	case LD.Column():
		return eachPQ(path, fn, func(r pqPatchLD) Row {
			return Row{Index: int(r.Index), Config: r.Config, NAblated: int(r.NAblated), Value: r.LD, Delta: r.Delta, Norm: r.Normalised}
		})
	case KL.Column():
		return eachPQ(path, fn, func(r pqPatchKL) Row {
			return Row{Index: int(r.Index), Config: r.Config, NAblated: int(r.NAblated), Value: r.KL, Delta: r.Delta}
		})
	case LogitDiff.Column():
		return eachPQ(path, fn, func(r pqLD) Row {
			return Row{Index: int(r.Index), Config: r.Config, NAblated: int(r.NAblated), Value: r.LogitDiff, Delta: r.Delta}
		})
	}
	return eachPQ(path, fn, func(r pqLoss) Row {
		return Row{Index: int(r.Index), Config: r.Config, NAblated: int(r.NAblated), Value: r.Loss, Delta: r.Delta}
	})
}

func eachPQ[T any](path string, fn func(Row) error, conv func(T) Row) (int, error) {
	fh, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return 0, err
	}
	pf, err := parquet.OpenFile(fh, st.Size())
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	rd := parquet.NewGenericReader[T](pf)
	defer rd.Close()
	buf := make([]T, 4096)
	n := 0
	for {
		k, err := rd.Read(buf)
		for _, x := range buf[:k] {
			if err := fn(conv(x)); err != nil {
				return n, err
			}
			n++
		}
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("%s: %w", path, err)
		}
	}
}

// writeRows writes a finished result file atomically; feed hands the rows
// over in file order, any number at a time.
func writeRows(out string, f Format, col string, feed func(emit func([]Row) error) error) error {
	return outfile.Write(out, func(w io.Writer) error {
		var s rowSink
		if f == Parquet {
			s = parquetSink(w, col)
		} else {
			bw := bufio.NewWriterSize(w, 64<<10)
			if f == CSV {
				bw.WriteString(csvHeader(col))
			}
			s = &lineSink{bw: bw, f: f, col: col}
		}
		if err := feed(s.write); err != nil {
			return err
		}
		return s.close()
	})
}

// writeSorted writes rows, sorted by index, as a finished result file.
func writeSorted(out string, f Format, col string, rows []Row) error {
	sort.Slice(rows, func(i, j int) bool { return rows[i].Index < rows[j].Index })
	return writeRows(out, f, col, func(emit func([]Row) error) error { return emit(rows) })
}
