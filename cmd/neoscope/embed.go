package main

import (
	"fmt"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/neoscope/neoscope/internal/outfile"
	"github.com/neoscope/neoscope/probes/embed"
	"github.com/neoscope/neoscope/probes/lens"
	"github.com/neoscope/neoscope/probes/plot"
	"github.com/neoscope/neoscope/runtime/forward"
)

func init() {
	var f modelFlags
	var in inputFlags
	var plotFile string
	var indices bool
	var seed uint64
	c := &cobra.Command{
		Use:   "embed",
		Short: "Token-embedding geometry and the mean-embedding direction through the layers",
		Long: `embed measures W_E (wte.weight): mean row norm, norm of the mean row, mean
pairwise cosine (raw and centered, exact over all V(V-1) ordered pairs), mean
|cos| of centered rows, and how often a token's own embedding is its top-1
unembedding (without and with ln_f). It then projects every layer's residual
stream onto u = mean(W_E)/|mean(W_E)| (mean and std of resid[l].u over
positions) on the given tokens, or on 8 rows of 32 random tokens, and shows
what u does downstream: the logit-lens loss at each layer with and without
u removed before ln_f.`,
		Example: `  neoscope embed --model ../shared/fixtures/tiny-neo
  neoscope embed --model EleutherAI/gpt-neo-125m --json --indices > embed.json
  neoscope embed --model ../shared/fixtures/tiny-gpt2 --prompt "The cat sat" --plot embed.png`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			dir, err := resolveModel(f.Model)
			if err != nil {
				return err
			}
			f.Model = dir
			if plotFile != "" {
				if ext := filepath.Ext(plotFile); ext != ".png" && ext != ".svg" {
					return usagef("--plot %s: want a .png or .svg file", plotFile)
				}
			}
			if err := checkPlotPath(plotFile); err != nil {
				return err
			}
			m, err := f.open()
			if err != nil {
				return err
			}
			defer m.Close()
			e, err := runEmbed(m, dir, &in, seed)
			if err != nil {
				return err
			}
			st, proj, lr, B, T, sample := e.St, e.Proj, e.Lens, e.B, e.T, e.Sample
			if plotFile != "" {
				xs := make([]float64, len(proj))
				mean, sd, nrm := make([]float64, len(proj)), make([]float64, len(proj)), make([]float64, len(proj))
				for i, l := range proj {
					xs[i], mean[i], sd[i], nrm[i] = float64(l.Layer), l.Mean, l.Std, l.MeanNorm
				}
				err := plot.Lines(plotFile, fmt.Sprintf("%s: residual stream along the mean embedding u", displayName(dir)),
					"layer l (resid[l] = input of block l; L = final)", "value",
					[]plot.Series{{Name: "mean resid.u", X: xs, Y: mean}, {Name: "std resid.u", X: xs, Y: sd}, {Name: "mean |resid|", X: xs, Y: nrm}})
				if err != nil {
					return err
				}
				logf("wrote %s", plotFile)
			}
			if f.JSON {
				return printJSON(os.Stdout, e.json(indices))
			}
			w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintf(w, "model\t%s (V=%d, d_model=%d)\n", dir, st.V, st.C)
			fmt.Fprintf(w, "mean_norm\t%.6g\tmean |W_E[t]|\n", st.MeanNorm)
			fmt.Fprintf(w, "norm_of_mean\t%.6g\t|mean W_E|\n", st.NormOfMean)
			fmt.Fprintf(w, "mean_pairwise_cos\t%.6g\tmean cos over i != j\n", st.MeanPairwiseCos)
			fmt.Fprintf(w, "mean_pairwise_cos_centered\t%.6g\tafter subtracting the mean row\n", st.MeanPairwiseCosCentered)
			fmt.Fprintf(w, "mean_abs_pairwise_cos_centered\t%.6g\tmean |cos| of centered rows\n", st.MeanAbsPairwiseCosCentered)
			fmt.Fprintf(w, "embed_self_top1\t%.6g\t%d of %d tokens: argmax_s W_E[t].W_E[s] == t\n", st.SelfTop1, hits(st.Top1Index), st.V)
			fmt.Fprintf(w, "embed_self_top1_ln\t%.6g\t%d of %d tokens: argmax_s LN_f(W_E[t]).W_E[s] == t\n", st.SelfTop1LN, hits(st.Top1IndexLN), st.V)
			w.Flush()
			fmt.Printf("\nresidual stream along u = mean(W_E)/|mean(W_E)| (%d x %d %s):\n", B, T, sample)
			w = tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintln(w, "layer\tmean resid.u\tstd resid.u\tmean |resid|\tmean cos(resid,u)\tshare of |resid|^2\tlens loss\twithout u\t")
			for i, l := range proj {
				name := fmt.Sprint(l.Layer)
				if l.Layer == m.Cfg.Layers {
					name += " (final)"
				}
				ll, lc := "-", "-"
				if lr != nil {
					ll, lc = fmt.Sprintf("%.4f", lr.Loss[i]), fmt.Sprintf("%.4f", lr.LossCentered[i])
				}
				fmt.Fprintf(w, "%s\t%.4f\t%.4f\t%.4f\t%.4f\t%.4f\t%s\t%s\t\n", name, l.Mean, l.Std, l.MeanNorm, l.MeanCos, l.MeanShare, ll, lc)
			}
			if err := w.Flush(); err != nil {
				return err
			}
			if lr != nil {
				fmt.Println("(lens loss: logit lens next-token loss at resid[l]; without u: the same with (r.u)u removed before ln_f)")
			}
			return nil
		},
	}
	f.register(c)
	in.register(c)
	in.registerBOS(c)
	c.Flags().StringVar(&plotFile, "plot", "", "write a chart of resid.u per layer (.png or .svg)")
	c.Flags().BoolVar(&indices, "indices", false, "with --json: include embed_top1_index and embed_top1_index_ln [V]")
	c.Flags().Uint64Var(&seed, "seed", 0, "seed of the random token sample (when no --tokens/--prompt/--text)")
	rootCmd.AddCommand(c)
}

// embedRun is everything embed measures on one model.
type embedRun struct {
	Dir    string
	St     *embed.Stats
	Proj   []embed.Layer // L+1 entries
	Lens   *lens.Result  // nil when T < 2
	Tokens []int32       // [B*T] of the residual-stream projection
	B, T   int
	Sample string
}

// runEmbed measures m (directory dir): W_E statistics, then the residual
// stream along the mean embedding on the tokens in selects (random tokens
// drawn with seed when it selects none).
func runEmbed(m *forward.Model, dir string, in *inputFlags, seed uint64) (*embedRun, error) {
	e := &embedRun{Dir: dir, Sample: "given tokens"}
	var err error
	if in.given() {
		if e.Tokens, e.B, e.T, err = in.rows(m, dir); err != nil {
			return nil, err
		}
	} else {
		e.Tokens, e.B, e.T = embed.DefaultTokens(m, seed)
		e.Sample = fmt.Sprintf("random tokens, seed %d", seed)
	}
	V := m.Cfg.Vocab
	chunk := max(1, min(V, (1<<22)/V))
	p := newProgress(3*((V+chunk-1)/chunk), "embed "+filepath.Base(dir)+": all-pairs cosines and top-1")
	e.St, err = embed.Compute(m, embed.Options{Progress: p.Callback()})
	p.Finish()
	if err != nil {
		return nil, err
	}
	if e.Proj, err = embed.Project(m, e.Tokens, e.B, e.T); err != nil {
		return nil, err
	}
	// What the direction does downstream: the logit lens with and
	// without u (removed before ln_f) on the same tokens.
	if e.T >= 2 {
		if e.Lens, err = lens.Run(m, e.Tokens, e.B, e.T, lens.Options{Centered: true}); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// json is what `embed --json` prints (and `compare --probe embed --json`
// under each model).
func (e *embedRun) json(indices bool) map[string]any {
	r, st := outfile.Round, e.St
	out := map[string]any{
		"model":                          e.Dir,
		"vocab":                          st.V,
		"d_model":                        st.C,
		"mean_norm":                      r(st.MeanNorm),
		"norm_of_mean":                   r(st.NormOfMean),
		"mean_pairwise_cos":              r(st.MeanPairwiseCos),
		"mean_pairwise_cos_centered":     r(st.MeanPairwiseCosCentered),
		"mean_abs_pairwise_cos_centered": r(st.MeanAbsPairwiseCosCentered),
		"embed_self_top1":                r(st.SelfTop1),
		"embed_self_top1_ln":             r(st.SelfTop1LN),
		"resid_projection_tokens":        map[string]any{"B": e.B, "T": e.T, "sample": e.Sample},
	}
	var layers []map[string]any
	for i, l := range e.Proj {
		x := map[string]any{"layer": l.Layer, "mean": r(l.Mean), "std": r(l.Std),
			"mean_norm": r(l.MeanNorm), "mean_cos": r(l.MeanCos), "mean_share": r(l.MeanShare)}
		if e.Lens != nil {
			x["lens_loss"], x["lens_loss_without_u"] = r(e.Lens.Loss[i]), r(e.Lens.LossCentered[i])
		}
		layers = append(layers, x)
	}
	out["resid_projection"] = layers
	if indices {
		out["embed_top1_index"] = st.Top1Index
		out["embed_top1_index_ln"] = st.Top1IndexLN
	}
	return out
}

// hits counts t with idx[t] == t.
func hits(idx []int32) int {
	n := 0
	for t, s := range idx {
		if int(s) == t {
			n++
		}
	}
	return n
}
