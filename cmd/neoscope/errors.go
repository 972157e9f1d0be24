package main

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/neoscope/neoscope/cuda/driver"
	"github.com/neoscope/neoscope/runtime/backend"
	"github.com/neoscope/neoscope/runtime/forward"
)

// openModel is forward.Open with its errors classified: a missing, corrupt or
// inconsistent config.json or checkpoint is bad input (exit 2); a device
// failure while uploading the weights (a CUDA driver error, e.g. out of
// memory) is not.
func openModel(be backend.Backend, dir string) (*forward.Model, error) {
	m, err := forward.Open(be, dir)
	if err != nil {
		var de *driver.Error
		if errors.As(err, &de) {
			return nil, err
		}
		return nil, usageError{err}
	}
	return m, nil
}

// usageArgs makes every command's argument check (cobra.NoArgs and the
// like) a usage error, exit status 2, as flag errors already are. A group
// below the root (tunedlens) runs its help when called alone and refuses an
// unknown subcommand, instead of printing help and exiting 0.
func usageArgs(c *cobra.Command) {
	if c.HasParent() && c.HasSubCommands() && !c.Runnable() {
		if c.Args == nil {
			c.Args = cobra.NoArgs
		}
		c.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
	}
	if a := c.Args; a != nil {
		c.Args = func(cmd *cobra.Command, args []string) error {
			if err := a(cmd, args); err != nil {
				var ue usageError
				if errors.As(err, &ue) {
					return err
				}
				return usageError{err}
			}
			return nil
		}
	}
	for _, sub := range c.Commands() {
		usageArgs(sub)
	}
}
