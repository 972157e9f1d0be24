package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/neoscope/neoscope/internal/outfile"
	"github.com/neoscope/neoscope/runtime/forward"
)

func init() {
	var f modelFlags
	var in inputFlags
	var out string
	var force bool
	var from int
	c := &cobra.Command{
		Use:   "grad",
		Short: "Gradient of the mean next-token loss with respect to every parameter",
		Long: `grad writes a safetensors file with the gradient of the mean next-token loss
(natural log, positions --loss-from..T-2 of every row) with respect to every
parameter, under the names the checkpoint stores them under (with or without
its "transformer." / "gpt_neox." prefix, as in the file) and in its layouts:
GPT-2 Conv1D weights [in, out], GPT-Neo and GPT-NeoX Linear weights
[out, in], GPT-NeoX's query_key_value rows grouped per head [q_h | k_h | v_h];
a tied wte.weight gets both its embedding and unembedding uses, an untied
unembedding (embed_out.weight) its own. Buffers (masks, rotary inv_freq)
have no gradient and are left out. float32.`,
		Example: `  neoscope grad --model ../shared/fixtures/tiny-gpt2 --tokens batch.json --out grads.safetensors`,
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if out == "" {
				return usagef("--out is required")
			}
			dir, err := resolveModel(f.Model)
			if err != nil {
				return err
			}
			f.Model = dir
			if err := outfile.Check("--out", out, force, append(in.paths(), dir)...); err != nil {
				return usageError{err}
			}
			if err := safetensorsOut("--out", out); err != nil {
				return err
			}
			noteMissingFolder("--out", out)
			m, err := openGrad(&f)
			if err != nil {
				return err
			}
			defer m.Close()
			tokens, B, T, err := in.rows(m, dir)
			if err != nil {
				return err
			}
			if from < 0 || from > T-2 {
				return usagef("--loss-from %d leaves no prediction in rows of %d tokens (want 0..%d)", from, T, T-2)
			}
			tp, err := m.Record(tokens, B, T, nil)
			if err != nil {
				return err
			}
			defer tp.Close()
			g, err := tp.Backward(forward.NextTokenLoss(from), forward.BackwardOptions{Params: true})
			if err != nil {
				return err
			}
			tensors := make(map[string]outfile.F32, len(g.Params))
			for name, t := range g.Params { // canonical -> the checkpoint's own name
				tensors[m.Weights().StoredName(name)] = outfile.F32{ShapeOf: t.Shape, Values: t.Data}
			}
			meta := map[string]string{"model": dir, "loss": fmt.Sprintf("%.9g", g.Value), "what": "d mean next-token loss / d parameter"}
			if err := outfile.Safetensors(out, tensors, meta); err != nil {
				return err
			}
			if f.JSON {
				return printJSON(os.Stdout, map[string]any{"loss": outfile.Round(g.Value), "tensors": len(tensors), "out": out})
			}
			logf("wrote %s: %d gradients of the mean next-token loss %.6f (%d rows of %d tokens)", out, len(tensors), g.Value, B, T)
			return nil
		},
	}
	f.register(c)
	in.register(c)
	c.Flags().StringVar(&out, "out", "", "output safetensors file (never an input; an existing file only with --force)")
	c.Flags().BoolVar(&force, "force", false, "replace an existing --out")
	c.Flags().IntVar(&from, "loss-from", 0, "first position whose next-token prediction counts")
	rootCmd.AddCommand(c)
}
