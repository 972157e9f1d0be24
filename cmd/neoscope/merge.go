package main

import (
	"github.com/spf13/cobra"

	"github.com/neoscope/neoscope/runtime/sweep"
)

func init() {
	var format string
	c := &cobra.Command{
		Use:   "merge OUT SHARD...",
		Short: "Combine the shard outputs of one sweep into one result file",
		Long: `merge reads the outputs of shards 0..n-1 of one sweep (each with its
OUT.meta.json sidecar) and writes OUT with every configuration once, sorted by
index. It refuses files from different sweeps, incomplete shards, a shard given
twice and a set with shards missing, naming them.`,
		Example: `  neoscope merge all.csv part.0.csv part.1.csv part.2.csv part.3.csv
  neoscope merge all.parquet part.*.jsonl`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(c *cobra.Command, args []string) error {
			f, err := sweep.FormatOf(args[0], format)
			if err != nil {
				return usageError{err}
			}
			meta, err := sweep.Merge(args[0], f, args[1:])
			if err != nil {
				return usageError{err}
			}
			logf("merge: wrote %s: %d configurations of %q from %d shards", args[0], meta.Count, meta.Space, len(args)-1)
			return nil
		},
	}
	c.Flags().StringVar(&format, "format", "", "csv, jsonl or parquet (default: from OUT's extension)")
	rootCmd.AddCommand(c)
}
