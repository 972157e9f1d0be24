package outfile

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// RefusedError says why an output path may not be written. Commands report
// it as bad usage (exit status 2).
type RefusedError struct {
	Flag, Path string
	Reason     string
}

func (e *RefusedError) Error() string {
	if e.Flag == "" {
		return fmt.Sprintf("%s: %s", e.Path, e.Reason)
	}
	return fmt.Sprintf("%s %s: %s", e.Flag, e.Path, e.Reason)
}

// Check decides, before any work, whether path may be written as the output
// named by flag (e.g. "--out"):
//   - it is never one of the run's inputs, even with force: inputs are files
//     or directories (a directory stands for every file directly in it, e.g.
//     a model's config.json and weights), compared by resolved path and by
//     os.SameFile, so symlinks and hard links are seen through;
//   - an existing file is replaced only with force (CheckRerun: or when it
//     is the same command's earlier output, with a notice on stderr);
//   - an existing directory is never replaced;
//   - the parent directory, if it exists, must be writable (checked by
//     creating and removing a temporary file). A missing parent is created by
//     Write, as the help texts say.
//
// Write itself stays atomic (temporary file, then rename), so a failed run
// never leaves a half-written output.
func Check(flag, path string, force bool, inputs ...string) error {
	return CheckRerun(flag, path, force, "", inputs...)
}

// CheckRerun is Check for a command whose re-run may replace its own earlier
// output without --force: an existing safetensors file whose metadata names
// rerun as its producer (Safetensors records meta["producer"]). `neoscope
// run` uses it, so that running the same experiment again into the same
// activations file works as it did; every other output stays strict.
func CheckRerun(flag, path string, force bool, rerun string, inputs ...string) error {
	if path == "" {
		return nil
	}
	refuse := func(format string, a ...any) error {
		return &RefusedError{Flag: flag, Path: path, Reason: fmt.Sprintf(format, a...)}
	}
	outAbs := resolve(path)
	outSt, statErr := os.Stat(path)
	for _, in := range expandInputs(inputs) {
		if resolve(in) == outAbs {
			return refuse("is an input of this run (%s); choose another output path", in)
		}
		if statErr == nil {
			if inSt, err := os.Stat(in); err == nil && os.SameFile(inSt, outSt) {
				return refuse("is the same file as the input %s; choose another output path", in)
			}
		}
	}
	if statErr == nil {
		if outSt.IsDir() {
			return refuse("is a directory")
		}
		if !force && !(rerun != "" && Produced(path, rerun)) {
			return refuse("exists: pass --force to replace it")
		}
	}
	dir := filepath.Dir(path)
	if st, err := os.Stat(dir); err == nil {
		if !st.IsDir() {
			return refuse("%s is not a directory", dir)
		}
		f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".check*")
		if err != nil {
			return refuse("cannot write in %s: %v", dir, unwrapPath(err))
		}
		f.Close()
		os.Remove(f.Name())
	}
	return nil
}

// expandInputs lists the files the inputs stand for: a file itself, a
// directory's direct entries (and the directory).
func expandInputs(inputs []string) []string {
	var out []string
	for _, in := range inputs {
		if in == "" {
			continue
		}
		out = append(out, in)
		st, err := os.Stat(in)
		if err != nil || !st.IsDir() {
			continue
		}
		ents, err := os.ReadDir(in)
		if err != nil {
			continue
		}
		for _, e := range ents {
			out = append(out, filepath.Join(in, e.Name()))
		}
	}
	return out
}

// resolve is path made absolute with symlinks of its existing part followed.
func resolve(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		return filepath.Clean(path)
	}
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		return r
	}
	// A file that does not exist yet: resolve its directory.
	if r, err := filepath.EvalSymlinks(filepath.Dir(abs)); err == nil {
		return filepath.Join(r, filepath.Base(abs))
	}
	return abs
}

// unwrapPath drops the temporary file's name from an *os.PathError, so a
// message names the directory the user chose, not a file neoscope made up.
func unwrapPath(err error) error {
	switch e := err.(type) {
	case *os.PathError:
		return e.Err
	case *os.LinkError: // a rename: it names the temporary file
		return e.Err
	}
	return err
}

// Produced reports whether path is a safetensors file whose header's
// __metadata__ has producer = want (as Safetensors records it). It reads only
// the header, and says false for anything it cannot parse.
func Produced(path, want string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	var n [8]byte
	if _, err := io.ReadFull(f, n[:]); err != nil {
		return false
	}
	size := binary.LittleEndian.Uint64(n[:])
	if size < 2 || size > 64<<20 {
		return false
	}
	hdr := make([]byte, size)
	if _, err := io.ReadFull(f, hdr); err != nil {
		return false
	}
	var h struct {
		Meta map[string]string `json:"__metadata__"`
	}
	if json.Unmarshal(hdr, &h) != nil {
		return false
	}
	if h.Meta["producer"] != want {
		return false
	}
	fmt.Fprintf(os.Stderr, "neoscope: replacing %s, an earlier output of neoscope\n", path)
	return true
}
