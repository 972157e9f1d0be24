// Package identity names a model by its content, so that results computed
// from one set of weights are never mixed with results from another (sweep
// --resume, merge), wherever the files lie.
//
// The identity of a model directory is a SHA-256 over the names and contents
// of the files that define its numbers: config.json and the weight files
// (*.safetensors, *.safetensors.index.json, *.bin, *.bin.index.json), header
// and data alike. Tokenizer files are left out: sweeps read token ids. A
// byte-identical copy elsewhere has the same identity; a weight edited in
// place has another.
//
// Hashing a 500 MB checkpoint takes about a second, so each file's hash is
// cached, keyed by what changes when a file is written: device, inode, size,
// modification time and status-change time (both in nanoseconds; the ctime
// cannot be set back by a user, so an edit that restores the mtime is still
// seen). The cache lives in $NEOSCOPE_CACHE/identity, else
// os.UserCacheDir()/neoscope/identity, one small file per key; when it
// cannot be written the hash is computed every time.
package identity

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// Model returns the content identity of the model directory dir (64 hex
// digits). It fails when dir holds no config.json or no weight file.
func Model(dir string) (string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	var names []string
	hasConfig, hasWeights := false, false
	for _, e := range ents {
		n := e.Name()
		switch {
		case n == "config.json":
			hasConfig = true
		case isWeightFile(n):
			hasWeights = true
		default:
			continue
		}
		names = append(names, n)
	}
	if !hasConfig || !hasWeights {
		return "", fmt.Errorf("%s: no config.json and weight file to identify the model by", dir)
	}
	sort.Strings(names)
	h := sha256.New()
	io.WriteString(h, "neoscope model identity v1\n")
	for _, n := range names {
		fh, err := File(filepath.Join(dir, n))
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s\t%s\n", n, fh)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func isWeightFile(n string) bool {
	for _, suf := range []string{".safetensors", ".safetensors.index.json", ".bin", ".bin.index.json"} {
		if strings.HasSuffix(n, suf) {
			return true
		}
	}
	return false
}

// File returns the SHA-256 of a file's content (hex), from the cache when
// the file has not changed since it was last hashed.
func File(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	key := cacheKey(st)
	cache := ""
	if dir := CacheDir(); dir != "" && key != "" {
		cache = filepath.Join(dir, key)
		if b, err := os.ReadFile(cache); err == nil && len(b) == 64 {
			return string(b), nil
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if cache != "" && os.MkdirAll(filepath.Dir(cache), 0o755) == nil {
		if tmp, err := os.CreateTemp(filepath.Dir(cache), ".tmp*"); err == nil {
			_, werr := tmp.WriteString(sum)
			if tmp.Close() == nil && werr == nil {
				os.Rename(tmp.Name(), cache)
			} else {
				os.Remove(tmp.Name())
			}
		}
	}
	return sum, nil
}

// CacheDir is where file hashes are cached ("" when there is no cache).
func CacheDir() string {
	if d := os.Getenv("NEOSCOPE_CACHE"); d != "" {
		return filepath.Join(d, "identity")
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "neoscope", "identity")
	}
	return ""
}

// cacheKey names a file's state: "" where the platform gives no inode.
func cacheKey(st os.FileInfo) string {
	s, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return ""
	}
	raw := fmt.Sprintf("%d:%d:%d:%d.%d:%d.%d", s.Dev, s.Ino, st.Size(),
		s.Mtim.Sec, s.Mtim.Nsec, s.Ctim.Sec, s.Ctim.Nsec)
	sum := sha256.Sum256([]byte(raw))
	return hex.EncodeToString(sum[:16])
}
