package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/neoscope/neoscope/runtime/hub"
)

func init() {
	var revision string
	c := &cobra.Command{
		Use:   "download ORG/NAME",
		Short: "Fetch a model from the Hugging Face hub into the standard HF cache",
		Long: `download fetches config.json, the weights (model.safetensors, its shards, or an old
repository's pytorch_model.bin) and the tokenizer files into the Hugging Face cache
($HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub) in the layout
transformers uses, so both tools share it. HF_ENDPOINT and HF_TOKEN are respected.
An interrupted download resumes; every large file is checked against its sha256.
Afterwards --model ORG/NAME works offline.`,
		Example: `  neoscope download EleutherAI/gpt-neo-125m
  neoscope download gpt2 --revision main && neoscope info --model gpt2`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			repo := args[0]
			if r, rev, ok := strings.Cut(repo, "@"); ok {
				repo = r
				if revision == "" {
					revision = rev
				}
			}
			if err := hub.ValidRepoID(repo); err != nil {
				return usageError{err}
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			bars := map[string]*progress{}
			opts := hub.Options{Progress: func(file string, done, total int64) {
				p := bars[file]
				if p == nil {
					t := total
					if t < 0 {
						t = 0
					}
					p = newProgress(int(t), file)
					bars[file] = p
				}
				p.Set(int(done))
				if total >= 0 && done == total {
					p.Finish()
				}
			}}
			dir, err := hub.Download(ctx, repo, revision, opts)
			if err != nil {
				return err
			}
			fmt.Println(dir)
			return nil
		},
	}
	c.Flags().StringVar(&revision, "revision", "", "branch, tag or commit (default main)")
	rootCmd.AddCommand(c)
}
