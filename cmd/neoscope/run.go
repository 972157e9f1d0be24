package main

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/neoscope/neoscope/internal/outfile"
	"github.com/neoscope/neoscope/runtime/forward"
)

// runProducer is the producer `neoscope run` records in its output's
// metadata (outfile.CheckRerun).
const runProducer = "neoscope run"

func init() {
	var f modelFlags
	var in inputFlags
	var out, cache, grads string
	var force bool
	c := &cobra.Command{
		Use:   "run",
		Short: "Run a forward pass and save logits and cached activations",
		Long: `run writes a safetensors file with "logits" [B,T,V] and every hook point
matched by --cache, under its TransformerLens name (float32). --grad adds
"grad.<hook>": the gradient of the mean next-token loss at each hook point it
matches (all but hook_attn_scores, hook_pattern, the hook_scale points,
attn.hook_result and logits).`,
		Example: `  neoscope run --tokens batch.json --out acts.safetensors \
      --cache 'blocks.*.hook_resid_pre,blocks.*.attn.hook_pattern'
  neoscope run --prompt "When Mary and John went to the store" --out acts.safetensors`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if out == "" {
				return usagef("--out is required")
			}
			dir, err := resolveModel(f.Model)
			if err != nil {
				return err
			}
			f.Model = dir
			// A re-run may replace the activations file an earlier
			// `neoscope run` wrote (its metadata says so); any other
			// existing file needs --force, an input is never replaced.
			if err := outfile.CheckRerun("--out", out, force, runProducer, append(in.paths(), dir)...); err != nil {
				return usageError{err}
			}
			if err := safetensorsOut("--out", out); err != nil {
				return err
			}
			noteMissingFolder("--out", out)
			m, err := f.open()
			if err != nil {
				return err
			}
			defer m.Close()
			tokens, B, T, err := in.rows(m, dir)
			if err != nil {
				return err
			}
			h := &forward.Hooks{}
			if cache != "" {
				h.Observe(cache)
			}
			if err := h.Validate(m); err != nil {
				return usageError{err}
			}
			s, logits, err := m.Run(tokens, B, T, h, true)
			if err != nil {
				return err
			}
			defer s.Close()
			tensors := map[string]outfile.F32{
				"logits": {ShapeOf: []int{B, T, m.Cfg.Vocab}, Values: logits},
			}
			for name, t := range h.Cache {
				if name != "logits" {
					tensors[name] = outfile.F32{ShapeOf: t.Shape, Values: t.Data}
				}
			}
			if grads != "" {
				if err := hookGrads(m, tokens, B, T, grads, tensors); err != nil {
					return err
				}
			}
			if err := outfile.Safetensors(out, tensors, map[string]string{"model": dir, "producer": runProducer}); err != nil {
				return err
			}
			names := make([]string, 0, len(tensors))
			for n := range tensors {
				names = append(names, n)
			}
			sort.Strings(names)
			if f.JSON {
				shapes := map[string][]int{}
				for n, t := range tensors {
					shapes[n] = t.ShapeOf
				}
				return printJSON(os.Stdout, map[string]any{"out": out, "B": B, "T": T, "tensors": shapes})
			}
			logf("wrote %s: %d tensors (%s)", out, len(names), strings.Join(names[:min(len(names), 6)], ", ")+map[bool]string{true: ", ...", false: ""}[len(names) > 6])
			return nil
		},
	}
	f.register(c)
	in.register(c)
	in.registerBOS(c)
	c.Flags().StringVar(&out, "out", "", "output safetensors file (never one of the inputs; an existing file only with --force)")
	c.Flags().BoolVar(&force, "force", false, "replace an existing --out")
	c.Flags().StringVar(&cache, "cache", "", "comma-separated globs of hook names to save, e.g. 'blocks.*.hook_resid_pre'")
	c.Flags().StringVar(&grads, "grad", "", "comma-separated globs of hook names whose loss gradient to save as grad.<hook>")
	rootCmd.AddCommand(c)
}

func init() {
	var f modelFlags
	c := &cobra.Command{
		Use:     "hooks",
		Short:   "List the model's hook points in execution order",
		Example: `  neoscope hooks --model ../shared/fixtures/tiny-neo | grep attn`,
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if f.Backend == "auto" {
				f.Backend = "cpu" // names only: no pass runs, no GPU notice
			}
			m, err := f.open()
			if err != nil {
				return err
			}
			defer m.Close()
			if f.JSON {
				return printJSON(os.Stdout, map[string]any{"hooks": m.HookNames()})
			}
			for _, n := range m.HookNames() {
				fmt.Println(n)
			}
			return nil
		},
	}
	f.register(c)
	rootCmd.AddCommand(c)
}
