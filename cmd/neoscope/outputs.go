package main

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/spf13/cobra"

	"github.com/neoscope/neoscope/internal/outfile"
)

// forceOutputs is --force on the commands that write charts and have no
// --force of their own (ablate, compare, embed, induction, ioi, lens, patch,
// tunedlens eval):
// addForceFlags gives every command with --plot and no --force one.
var forceOutputs bool

func addForceFlags(c *cobra.Command) {
	if c.Flags().Lookup("plot") != nil && c.Flags().Lookup("force") == nil {
		c.Flags().BoolVar(&forceOutputs, "force", false, "replace an existing --plot file")
	}
	for _, sub := range c.Commands() {
		addForceFlags(sub)
	}
}

// safetensorsOut refuses an --out that run and grad, which always write
// safetensors, would write under another extension (grads.json holding
// safetensors): bad usage, exit status 2, before any work (after the check
// that it is not an input, whose message matters more).
func safetensorsOut(flag, path string) error {
	if !strings.EqualFold(filepath.Ext(path), ".safetensors") {
		return usagef("%s %s: this command writes safetensors; name the file *.safetensors", flag, path)
	}
	return nil
}

// checkOutput refuses, before any work, an output path that is one of the
// run's inputs (never allowed, even with --force) or an existing file without
// --force (outfile.Check). A refusal is bad usage: exit status 2.
func checkOutput(flag, path string, force bool, inputs ...string) error {
	if err := outfile.Check(flag, path, force, inputs...); err != nil {
		return usageError{err}
	}
	noteMissingFolder(flag, path)
	return nil
}

// noteMissingFolder says, once per folder, that an output's folder does not
// exist and will be created (outfile.Write creates it): never silently.
func noteMissingFolder(flag, path string) {
	if path == "" {
		return
	}
	dir := filepath.Dir(filepath.Clean(path))
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		return
	}
	if _, said := foldersNoted.LoadOrStore(dir, true); !said {
		logf("%s %s: the folder %s does not exist and will be created", flag, path, dir)
	}
}

var foldersNoted sync.Map

// paths are the input files the flags name (for checkOutput).
func (f *inputFlags) paths() []string { return []string{f.Tokens, f.Text} }
