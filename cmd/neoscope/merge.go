package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/neoscope/neoscope/runtime/sweep"
)

func init() {
	var format string
	var force, asJSON bool
	c := &cobra.Command{
		Use:   "merge OUT SHARD...",
		Short: "Combine the shard outputs of one sweep into one result file",
		Long: `merge reads the outputs of shards 0..n-1 of one sweep (each with its
OUT.meta.json sidecar) and writes OUT with every configuration once, sorted by
index. It refuses files from different sweeps, incomplete shards, a shard given
twice and a set with shards missing, naming them.`,
		Example: `  neoscope merge all.csv part.0.csv part.1.csv part.2.csv part.3.csv
  neoscope merge all.parquet part.*.jsonl`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) < 2 {
				return usagef("merge needs OUT and at least one shard file, got %d argument(s) (see `neoscope merge --help`)", len(args))
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			var inputs []string
			for _, in := range args[1:] {
				inputs = append(inputs, in, sweep.MetaPath(in))
			}
			if err := checkOutput("OUT", args[0], force, inputs...); err != nil {
				return err
			}
			if err := checkOutput("OUT", sweep.MetaPath(args[0]), force, inputs...); err != nil {
				return err
			}
			f, err := sweep.FormatOf(args[0], format)
			if err != nil {
				return usageError{err}
			}
			meta, err := sweep.Merge(args[0], f, args[1:])
			if err != nil {
				return usageError{err}
			}
			if asJSON {
				return printJSON(os.Stdout, map[string]any{"out": args[0], "format": f, "configurations": meta.Count,
					"space": meta.Space, "shards": len(args) - 1, "baseline": meta.Baseline, "meta": sweep.MetaPath(args[0])})
			}
			logf("merge: wrote %s: %d configurations of %q from %d shards", args[0], meta.Count, meta.Space, len(args)-1)
			return nil
		},
	}
	c.Flags().StringVar(&format, "format", "", "csv, jsonl or parquet (default: from OUT's extension)")
	c.Flags().BoolVar(&force, "force", false, "replace an existing OUT (never one of the shard files)")
	c.Flags().BoolVar(&asJSON, "json", false, "print what was written as JSON (out, format, configurations, space, shards, baseline, meta)")
	rootCmd.AddCommand(c)
}
