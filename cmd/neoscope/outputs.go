package main

import "github.com/neoscope/neoscope/internal/outfile"

// checkOutput refuses, before any work, an output path that is one of the
// run's inputs (never allowed, even with --force) or an existing file without
// --force (outfile.Check). A refusal is bad usage: exit status 2.
func checkOutput(flag, path string, force bool, inputs ...string) error {
	if err := outfile.Check(flag, path, force, inputs...); err != nil {
		return usageError{err}
	}
	return nil
}

// paths are the input files the flags name (for checkOutput).
func (f *inputFlags) paths() []string { return []string{f.Tokens, f.Text} }
