package main

import (
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
