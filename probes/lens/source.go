package lens

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Source streams training text as token windows for FitStream, so that a
// corpus of any length is read with bounded memory.
//
// The windowing rule: the token stream is cut into consecutive,
// non-overlapping windows of T tokens; the last r < T tokens form one final
// shorter window (kept when r >= 1), so every token is used exactly once per
// epoch. Window k (counting from 0) is held out for evaluation when
// holdout > 0 and k % holdout == holdout-1; the others are training windows.
type Source interface {
	// Next returns the next window (io.EOF after the last one).
	Next() ([]int32, error)
	// Reset starts again from the first window.
	Reset() error
	// Identity names the input for resume checks: kind, path and a sha256
	// of the content.
	Identity() string
}

// textChunk is how much of a text file is tokenised at once.
const textChunk = 1 << 20

// TextSource tokenises a text file piece by piece: pieces of about 1 MiB
// cut after a newline (or at 1 MiB when a line is longer), each encoded on
// its own and the ids concatenated. Memory is a piece and a window, whatever
// the file's length. (Encoding a piece on its own can differ from encoding
// the whole file only at the piece's boundaries, which are newlines.)
type TextSource struct {
	path   string
	T      int
	encode func(string) []int
	vocab  int
	f      *os.File
	r      *bufio.Reader
	buf    []int32
	eof    bool
	id     string
}

// NewTextSource opens path for windows of T tokens encoded by encode; an
// id >= vocab (a tokenizer larger than the model's embedding) is an error.
func NewTextSource(path string, T, vocab int, encode func(string) []int) (*TextSource, error) {
	if T < 1 {
		return nil, fmt.Errorf("text source: window of %d tokens", T)
	}
	s := &TextSource{path: path, T: T, encode: encode, vocab: vocab}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	n, err := io.Copy(h, f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	abs, _ := filepath.Abs(path)
	s.id = fmt.Sprintf("text %s (%d bytes, sha256 %x)", abs, n, h.Sum(nil))
	return s, s.Reset()
}

// Identity implements Source.
func (s *TextSource) Identity() string { return s.id }

// Reset implements Source.
func (s *TextSource) Reset() error {
	if s.f != nil {
		s.f.Close()
	}
	f, err := os.Open(s.path)
	if err != nil {
		return err
	}
	s.f, s.r, s.buf, s.eof = f, bufio.NewReaderSize(f, textChunk), s.buf[:0], false
	return nil
}

// Close closes the file.
func (s *TextSource) Close() error {
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}

// fill reads and encodes the next piece.
func (s *TextSource) fill() error {
	piece := make([]byte, 0, textChunk+4096)
	for len(piece) < textChunk {
		line, err := s.r.ReadSlice('\n')
		piece = append(piece, line...)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err == io.EOF {
			s.eof = true
			break
		}
		if err != nil {
			return fmt.Errorf("%s: %w", s.path, err)
		}
	}
	for _, id := range s.encode(string(piece)) {
		if id < 0 || id >= s.vocab {
			return fmt.Errorf("%s: the tokenizer gave id %d, outside the model's vocabulary of %d", s.path, id, s.vocab)
		}
		s.buf = append(s.buf, int32(id))
	}
	return nil
}

// Next implements Source.
func (s *TextSource) Next() ([]int32, error) {
	for len(s.buf) < s.T && !s.eof {
		if err := s.fill(); err != nil {
			return nil, err
		}
	}
	if len(s.buf) == 0 {
		return nil, io.EOF
	}
	n := min(s.T, len(s.buf))
	w := append([]int32(nil), s.buf[:n]...)
	s.buf = append(s.buf[:0], s.buf[n:]...)
	return w, nil
}

// RowsSource serves rows of token ids already in memory (a --tokens file):
// each row is cut into windows of T tokens by the same rule as TextSource.
type RowsSource struct {
	rows   [][]int32
	T      int
	r, off int
	id     string
}

// NewRowsSource windows rows; name describes them (a file path).
func NewRowsSource(name string, rows [][]int32, T int) *RowsSource {
	h := sha256.New()
	for _, r := range rows {
		binary.Write(h, binary.LittleEndian, int64(len(r)))
		binary.Write(h, binary.LittleEndian, r)
	}
	abs, _ := filepath.Abs(name)
	return &RowsSource{rows: rows, T: T, id: fmt.Sprintf("tokens %s (%d rows, sha256 %x)", abs, len(rows), h.Sum(nil))}
}

// Identity implements Source.
func (s *RowsSource) Identity() string { return s.id }

// Reset implements Source.
func (s *RowsSource) Reset() error { s.r, s.off = 0, 0; return nil }

// Next implements Source.
func (s *RowsSource) Next() ([]int32, error) {
	for s.r < len(s.rows) && s.off >= len(s.rows[s.r]) {
		s.r, s.off = s.r+1, 0
	}
	if s.r >= len(s.rows) {
		return nil, io.EOF
	}
	row := s.rows[s.r]
	n := min(s.T, len(row)-s.off)
	w := row[s.off : s.off+n]
	s.off += n
	return w, nil
}
