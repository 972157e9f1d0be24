// Package models bundles neoscope's default model, a small GPT-Neo trained
// on public-domain English with copying tasks (see neo-tiny/README.md), into
// the binary, so every command runs offline on any machine.
//
// The files are embedded with go:embed and extracted once, atomically, into
// the user cache ($NEOSCOPE_CACHE, else os.UserCacheDir()/neoscope) under a
// folder named by the content hash, so the checkpoint can be memory-mapped
// like any other model directory.
package models

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

//go:embed neo-tiny
var bundle embed.FS

// Name is the bundled model's name.
const Name = "neo-tiny"

// required files of a usable bundle.
var required = []string{"config.json", "model.safetensors", "vocab.json", "merges.txt"}

// DefaultDir returns a directory holding the bundled model, extracting it on
// first use.
func DefaultDir() (string, error) {
	files, err := fs.ReadDir(bundle, Name)
	if err != nil {
		return "", err
	}
	have := map[string]bool{}
	for _, f := range files {
		have[f.Name()] = true
	}
	for _, r := range required {
		if !have[r] {
			return "", fmt.Errorf("this build has no bundled model (models/%s/%s missing at build time); pass --model", Name, r)
		}
	}
	var names []string
	h := sha256.New()
	for _, f := range files {
		if f.IsDir() {
			continue
		}
		names = append(names, f.Name())
	}
	sort.Strings(names)
	for _, n := range names {
		data, err := bundle.ReadFile(Name + "/" + n)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s %d\n", n, len(data))
		h.Write(data)
	}
	root := os.Getenv("NEOSCOPE_CACHE")
	if root == "" {
		c, err := os.UserCacheDir()
		if err != nil {
			c = os.TempDir()
		}
		root = filepath.Join(c, "neoscope")
	}
	dir := filepath.Join(root, "models", Name+"-"+hex.EncodeToString(h.Sum(nil))[:12])
	if st, err := os.Stat(filepath.Join(dir, "config.json")); err == nil && !st.IsDir() {
		return dir, nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", fmt.Errorf("bundled model: %w", err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "."+Name+"-*")
	if err != nil {
		return "", fmt.Errorf("bundled model: %w", err)
	}
	for _, n := range names {
		data, _ := bundle.ReadFile(Name + "/" + n)
		if err := os.WriteFile(filepath.Join(tmp, n), data, 0o644); err != nil {
			os.RemoveAll(tmp)
			return "", fmt.Errorf("bundled model: %w", err)
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		os.RemoveAll(tmp)
		// Another process may have extracted it first.
		if _, err2 := os.Stat(filepath.Join(dir, "config.json")); err2 == nil {
			return dir, nil
		}
		return "", fmt.Errorf("bundled model: %w", err)
	}
	return dir, nil
}
