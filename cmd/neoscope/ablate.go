package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/neoscope/neoscope/probes/ablate"
	"github.com/neoscope/neoscope/probes/plot"
	"github.com/neoscope/neoscope/runtime/forward"
)

func init() {
	var f modelFlags
	var in inputFlags
	var each, mode, set, plotFile string
	var lossFrom int
	c := &cobra.Command{
		Use:   "ablate",
		Short: "Loss when each head, attention layer or MLP is ablated (zero or mean)",
		Long: `ablate runs the prompts once unablated and once per component with that
component knocked out, and reports the mean next-token loss over the
predictions made at positions --loss-from..T-2.

  head l.h   blocks.l.attn.hook_z, head h's slice (before W_O; b_O still added)
  attn l     blocks.l.hook_attn_out, the whole attention output incl. b_O
  mlp l      blocks.l.hook_mlp_out, the whole MLP output incl. its bias

--mode zero writes 0; --mode mean writes, at every row and position t, the
mean over the batch rows at position t from the unablated run. --set ablates
a list of heads at once (e.g. --set 2.0,2.1) and reports that loss too.
--plot writes a heatmap of the head table (loss increase over the baseline).`,
		Example: `  neoscope ablate --model ../shared/fixtures/tiny-neo --tokens probes/ablate/testdata/tiny-neo-tokens.json
  neoscope ablate --tokens batch.json --each head --mode mean --plot heads.png
  neoscope ablate --tokens rep.json --loss-from 10 --set 1.0,1.3 --json`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			ev, err := ablate.ParseEach(each)
			if err != nil {
				return usageError{err}
			}
			md, err := ablate.ParseMode(mode)
			if err != nil {
				return usagef("--mode: %v", err)
			}
			var heads []ablate.Head
			if set != "" {
				for _, s := range strings.Split(set, ",") {
					h, err := ablate.ParseHead(s)
					if err != nil {
						return usagef("--set: %v", err)
					}
					heads = append(heads, h)
				}
			}
			if err := checkPlotPath(plotFile); err != nil {
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
			tokens, B, T, err := in.rows(m, dir)
			if err != nil {
				return err
			}
			out, err := runAblate(m, tokens, B, T, ev, md, lossFrom, heads, set)
			if err != nil {
				return err
			}
			res := out.Result
			if plotFile != "" && res.Head != nil {
				if err := plot.Heatmap(plotFile, fmt.Sprintf("%s ablation: loss increase over %.4f", md, res.Baseline),
					"head", "layer", layerLabels(len(res.Head)), headLabels(len(res.Head[0])), addConst(res.Head, -res.Baseline), plot.BarLabel("loss increase (nats)")); err != nil {
					return err
				}
				logf("wrote %s", plotFile)
			}
			if f.JSON {
				return printJSON(os.Stdout, out)
			}
			w := os.Stdout
			fmt.Fprintf(w, "model %s  tokens %d x %d  %s ablation  loss over predictions at positions %d..%d\n", dir, B, T, md, lossFrom, T-2)
			fmt.Fprintf(w, "baseline loss  %.6f\n", res.Baseline)
			if res.Head != nil {
				fmt.Fprintf(w, "\nhead ablation loss (rows layer, columns head)\n")
				printHeadTable(w, res.Head, "%9.4f")
				fmt.Fprintf(w, "largest increases: %s\n", topEffects(res.Head, res.Baseline, 5))
			}
			if res.Attn != nil || res.MLP != nil {
				fmt.Fprintf(w, "\nlayer  ")
				if res.Attn != nil {
					fmt.Fprintf(w, "%12s %9s  ", "attn layer", "Δ")
				}
				if res.MLP != nil {
					fmt.Fprintf(w, "%12s %9s", "mlp", "Δ")
				}
				fmt.Fprintln(w)
				L := max(len(res.Attn), len(res.MLP))
				for l := 0; l < L; l++ {
					fmt.Fprintf(w, "%5d  ", l)
					if res.Attn != nil {
						fmt.Fprintf(w, "%12.4f %+9.4f  ", res.Attn[l], res.Attn[l]-res.Baseline)
					}
					if res.MLP != nil {
						fmt.Fprintf(w, "%12.4f %+9.4f", res.MLP[l], res.MLP[l]-res.Baseline)
					}
					fmt.Fprintln(w)
				}
			}
			if out.SetLoss != nil {
				fmt.Fprintf(w, "\nheads %s ablated together: loss %.6f (%+.4f)\n", set, *out.SetLoss, *out.SetLoss-res.Baseline)
			}
			return nil
		},
	}
	f.register(c)
	in.register(c)
	in.registerBOS(c)
	c.Flags().StringVar(&each, "each", "all", "components to ablate one at a time: comma-separated head, attn, mlp, or all")
	c.Flags().StringVar(&mode, "mode", "zero", "zero, or mean (per-position mean over the batch rows of the unablated run)")
	c.Flags().IntVar(&lossFrom, "loss-from", 0, "first position whose prediction counts in the loss (e.g. P for the second half of a repeated sequence)")
	c.Flags().StringVar(&set, "set", "", "also ablate these heads together, e.g. 2.0,2.1 (layer.head)")
	c.Flags().StringVar(&plotFile, "plot", "", "write a heatmap of the head table (.png or .svg)")
	rootCmd.AddCommand(c)
}

// ablateOut is what `ablate --json` prints (and `compare --probe ablate
// --json` under each model).
type ablateOut struct {
	*ablate.Result
	Set     string   `json:"set,omitempty"`
	SetLoss *float64 `json:"set_ablation_loss,omitempty"`
}

// runAblate ablates each component of the kinds in ev on tokens [B*T], and
// the heads together when there are any (set names them as given).
func runAblate(m *forward.Model, tokens []int32, B, T int, ev ablate.Each, md ablate.Mode, lossFrom int, heads []ablate.Head, set string) (*ablateOut, error) {
	if md == ablate.Mean && B == 1 {
		logf("ablate: --mode mean over a batch of 1 row replaces each activation by itself: every ablation is a no-op")
	}
	r, err := ablate.NewRunner(m, tokens, B, T, lossFrom)
	if err != nil {
		return nil, usageError{err}
	}
	defer r.Close()
	for _, h := range heads {
		if h.Layer >= m.Cfg.Layers || h.Head >= m.Cfg.Heads {
			return nil, usagef("--set: head %s outside the model's %d layers x %d heads", h, m.Cfg.Layers, m.Cfg.Heads)
		}
	}
	p := newProgress(0, "ablate")
	res, err := r.Run(ev, md, p.Callback())
	p.Finish()
	if err != nil {
		return nil, err
	}
	out := &ablateOut{Result: res}
	if len(heads) > 0 {
		v, err := r.HeadsLoss(heads, md)
		if err != nil {
			return nil, err
		}
		out.Set, out.SetLoss = set, &v
	}
	return out, nil
}

// checkPlotPath rejects a --plot name the plot package cannot write, before
// any work is done.
func checkPlotPath(p string, variants ...string) error {
	if p == "" {
		return nil
	}
	switch strings.ToLower(filepath.Ext(p)) {
	case ".png", ".svg":
	default:
		return usagef("--plot %q: want a .png or .svg file name", p)
	}
	// Every file the command will write, FILE and its variants (FILE-prev,
	// FILE-dla, ...), is checked before any work: none replaced without
	// --force, each writable.
	for _, q := range append([]string{p}, plotVariants(p, variants...)...) {
		if err := checkOutput("--plot", q, forceOutputs); err != nil {
			return err
		}
	}
	return nil
}

// plotVariants are the files beside p that a command with several charts
// writes (plotVariant of each suffix).
func plotVariants(p string, suffixes ...string) []string {
	out := make([]string, len(suffixes))
	for i, s := range suffixes {
		out[i] = plotVariant(p, s)
	}
	return out
}

// plotVariant turns heads.png into heads-prev.png.
func plotVariant(p, suffix string) string {
	ext := filepath.Ext(p)
	return strings.TrimSuffix(p, ext) + "-" + suffix + ext
}

func layerLabels(L int) []string {
	out := make([]string, L)
	for i := range out {
		out[i] = fmt.Sprint(i)
	}
	return out
}

func headLabels(NH int) []string {
	out := make([]string, NH)
	for i := range out {
		out[i] = fmt.Sprint(i)
	}
	return out
}

func addConst(x [][]float64, c float64) [][]float64 {
	out := make([][]float64, len(x))
	for i, r := range x {
		out[i] = make([]float64, len(r))
		for j, v := range r {
			out[i][j] = v + c
		}
	}
	return out
}

// printHeadTable prints an [L][NH] table, rows layers, columns heads.
func printHeadTable(w io.Writer, x [][]float64, format string) {
	if len(x) == 0 {
		return
	}
	width := len(fmt.Sprintf(format, 0.0))
	fmt.Fprintf(w, "%5s", "layer")
	for h := range x[0] {
		fmt.Fprintf(w, " %*s", width, fmt.Sprintf("h%d", h))
	}
	fmt.Fprintln(w)
	for l, r := range x {
		fmt.Fprintf(w, "%5d", l)
		for _, v := range r {
			fmt.Fprintf(w, " "+format, v)
		}
		fmt.Fprintln(w)
	}
}

// topEffects lists the n heads with the largest x - base, as "l.h +0.123".
func topEffects(x [][]float64, base float64, n int) string {
	type hv struct {
		name string
		v    float64
	}
	var all []hv
	for l, r := range x {
		for h, v := range r {
			all = append(all, hv{fmt.Sprintf("%d.%d", l, h), v - base})
		}
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].v > all[j].v })
	var parts []string
	for _, e := range all[:min(n, len(all))] {
		parts = append(parts, fmt.Sprintf("%s %+.4f", e.name, e.v))
	}
	return strings.Join(parts, ", ")
}
