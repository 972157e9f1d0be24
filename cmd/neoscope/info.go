package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/neoscope/neoscope/runtime/arch"
)

func init() {
	var f modelFlags
	c := &cobra.Command{
		Use:   "info",
		Short: "Print a model's architecture",
		Example: `  neoscope info --model ../shared/fixtures/tiny-neo
  neoscope info --model EleutherAI/gpt-neo-125m --json`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			dir, err := resolveModel(f.Model)
			if err != nil {
				return err
			}
			cfg, err := arch.Load(filepath.Join(dir, "config.json"))
			if err != nil {
				return usageError{err} // a missing or bad config.json is bad input
			}
			if f.JSON {
				return printJSON(os.Stdout, struct {
					*arch.Config
					Dir    string `json:"dir"`
					Params int64  `json:"n_params"`
				}{cfg, dir, cfg.Params()})
			}
			w := os.Stdout
			fmt.Fprintf(w, "model       %s\n", dir)
			fmt.Fprintf(w, "family      %s (%s)\n", cfg.Spec.Display, cfg.Family)
			fmt.Fprintf(w, "layers      %d\n", cfg.Layers)
			fmt.Fprintf(w, "heads       %d x %d (d_head)\n", cfg.Heads, cfg.DHead)
			fmt.Fprintf(w, "d_model     %d\n", cfg.DModel)
			fmt.Fprintf(w, "d_mlp       %d\n", cfg.DMLP)
			fmt.Fprintf(w, "vocab       %d\n", cfg.Vocab)
			fmt.Fprintf(w, "context     %d\n", cfg.Context)
			at := cfg.LayerTypes
			if cfg.Window > 0 {
				fmt.Fprintf(w, "attention   %s (local window %d)\n", strings.Join(at, ","), cfg.Window)
			} else {
				fmt.Fprintf(w, "attention   %s\n", strings.Join(at, ","))
			}
			fmt.Fprintf(w, "attn scale  %.6g\n", cfg.AttnScale)
			pos := string(cfg.Pos)
			if cfg.Pos == arch.PosRotary {
				pos += fmt.Sprintf(" (first %d of %d dims per head, base %g)", cfg.RotaryDims, cfg.DHead, cfg.RotaryBase)
			}
			fmt.Fprintf(w, "positions   %s\n", pos)
			res := "sequential"
			if cfg.Parallel {
				res = "parallel (attn and mlp both read the block input)"
			}
			fmt.Fprintf(w, "residual    %s\n", res)
			fmt.Fprintf(w, "activation  %s\n", cfg.Act)
			fmt.Fprintf(w, "ln eps      %g\n", cfg.LNEps)
			fmt.Fprintf(w, "unembed     tied=%v\n", cfg.TiedUnembed)
			fmt.Fprintf(w, "parameters  %d\n", cfg.Params())
			return nil
		},
	}
	f.register(c)
	rootCmd.AddCommand(c)
}
