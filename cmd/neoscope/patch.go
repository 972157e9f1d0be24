package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/neoscope/neoscope/probes/ioi"
	"github.com/neoscope/neoscope/runtime/tokenizer"
)

func init() {
	var f modelFlags
	var clean, corrupt, ioIDs, sIDs, plotFile string
	var pos int
	var noResid bool
	c := &cobra.Command{
		Use:   "patch",
		Short: "Activation patching and direct logit attribution on your own clean/corrupt prompts",
		Long: `patch runs the CORRUPT prompts with activations from the CLEAN run patched
in (all experiments batched through the sweep engine), and reports (LD_patched - LD_corrupt) /
(LD_clean - LD_corrupt), LD the mean over rows of logits[b,pos,io_b] -
logits[b,pos,s_b] (raw logits; pos defaults to the last position):

  patch_head_z     blocks.l.attn.hook_z, one head, all positions
  patch_resid_pre  blocks.l.hook_resid_pre at one position, all rows
  patch_mlp_out    blocks.l.hook_mlp_out, all positions
  patch_attn_out   blocks.l.hook_attn_out (incl. b_O), all positions
  patch_head_z_pos blocks.l.attn.hook_z, one head at one position, all rows

and direct logit attribution on the clean run with the final LayerNorm
scale frozen (dla_head, dla_mlp, dla_attn_bias, dla_embed, dla_ln_bias; they
sum to the clean LD). --clean and --corrupt are JSON token files of equal
shape; --io and --s give one answer id per row.`,
		Example: `  neoscope patch --model ../shared/fixtures/tiny-neo --clean probes/ioi/testdata/tiny-neo-clean.json \
      --corrupt probes/ioi/testdata/tiny-neo-corrupt.json \
      --io 189,119,56,126 --s 122,321,324,487
  neoscope patch --clean clean.json --corrupt corrupt.json --io 1234 --s 5678 --pos 9 --json`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if clean == "" || corrupt == "" || ioIDs == "" || sIDs == "" {
				return usagef("--clean, --corrupt, --io and --s are required")
			}
			if err := checkPlotPath(plotFile, "dla"); err != nil {
				return err
			}
			cr, kr, io, s, err := readPatchTask(clean, corrupt, ioIDs, sIDs)
			if err != nil {
				return err
			}
			dir, err := resolveModel(f.Model)
			if err != nil {
				return err
			}
			f.Model = dir
			m, err := f.open()
			if err != nil {
				return err
			}
			defer m.Close()
			cf, kf, B, T, err := checkPair(m, clean, corrupt, cr, kr)
			if err != nil {
				return err
			}
			if pos, err = answerPos(pos, c.Flags().Changed("pos"), T); err != nil {
				return err
			}
			bt := ioi.Batch{Clean: cf, Corrupt: kf, B: B, T: T, Pos: pos, IO: io, S: s}
			if err := bt.Check(m); err != nil {
				return usageError{err}
			}
			what := ioi.All
			what.Resid, what.HeadPos = !noResid, !noResid
			p := newProgress(0, "patch")
			res, err := ioi.Run(m, []ioi.Batch{bt}, ioi.Options{Patch: what, Progress: p.Callback()})
			p.Finish()
			if err != nil {
				return err
			}
			var labels []string
			if tokenizer.Available(dir) {
				if tok, err := tokenizer.Load(dir); err == nil {
					labels = tokenLabels(tok, cr[0])
				}
			}
			if err := plotIOI(plotFile, res); err != nil {
				return err
			}
			if f.JSON {
				return printJSON(os.Stdout, res)
			}
			fmt.Fprintf(os.Stdout, "model %s  %d prompt pairs of %d tokens  logit difference read at position %d\n", dir, B, T, pos)
			printIOI(os.Stdout, res, labels)
			return nil
		},
	}
	f.register(c)
	c.Flags().StringVar(&clean, "clean", "", "JSON token file: the clean prompts [[ids...], ...]")
	c.Flags().StringVar(&corrupt, "corrupt", "", "JSON token file: the corrupt prompts, same shape")
	c.Flags().StringVar(&ioIDs, "io", "", "comma-separated answer ids, one per row (the indirect object)")
	c.Flags().StringVar(&sIDs, "s", "", "comma-separated counterfactual ids, one per row (the subject)")
	c.Flags().IntVar(&pos, "pos", -1, "position whose logits are read (default: the last)")
	c.Flags().BoolVar(&noResid, "no-resid", false, "skip the per-position patching tables (residual: L x T, head z: L x NH x T configurations)")
	c.Flags().StringVar(&plotFile, "plot", "", "write heatmaps (.png or .svg): FILE (patch_head_z), FILE-dla (dla_head)")
	rootCmd.AddCommand(c)
}

// patchIDs parses n comma-separated non-negative token ids.
func patchIDs(flag, s string, n int) ([]int32, error) {
	parts := strings.Split(s, ",")
	if len(parts) != n {
		return nil, usagef("%s: %d ids for %d rows (want one per row)", flag, len(parts), n)
	}
	out := make([]int32, n)
	for i, p := range parts {
		v, err := strconv.ParseInt(strings.TrimSpace(p), 10, 32)
		if err != nil || v < 0 {
			return nil, usagef("%s: %q is not a token id", flag, p)
		}
		out[i] = int32(v)
	}
	return out, nil
}
