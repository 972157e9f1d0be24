package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/neoscope/neoscope/probes/induction"
	"github.com/neoscope/neoscope/probes/plot"
	"github.com/neoscope/neoscope/runtime/forward"
	"github.com/neoscope/neoscope/runtime/tokenizer"
)

func init() {
	var f modelFlags
	var tokFile, plotFile string
	var period, batch, top int
	var seed uint64
	var noAblate bool
	c := &cobra.Command{
		Use:   "induction",
		Short: "Induction and previous-token scores per head on repeated random tokens",
		Long: `induction runs rows of P random tokens followed by the same P tokens (no BOS)
and reports per head:

  induction_score   mean attention from position i to i-P+1, i in P..2P-1
  prev_token_score  mean attention from position i to i-1, i in 1..2P-1
  rep_head_ablation_loss  the second-half loss (predictions at P..2P-2) with
                    that head's z zero-ablated, beside the unablated one

Tokens come from --tokens (rows of 2P ids whose halves repeat) or are drawn
with --period, --batch and --seed: P distinct ids per row, uniformly from the
vocabulary minus special tokens (<|...|> in the model's tokenizer; without a
tokenizer every id of the embedding), math/rand/v2 PCG seeded with --seed.
--plot heads.png writes heads.png (induction), heads-prev.png (previous
token) and heads-ablation.png (loss increase).`,
		Example: `  neoscope induction --model ../shared/fixtures/tiny-neo --tokens probes/induction/testdata/tiny-neo-rep.json
  neoscope induction --model EleutherAI/gpt-neo-125m --period 10 --batch 64 --seed 1 --plot ind.png
  neoscope induction --no-ablation --json`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			variants := []string{"prev"}
			if !noAblate {
				variants = append(variants, "ablation")
			}
			if err := checkPlotPath(plotFile, variants...); err != nil {
				return err
			}
			if tokFile != "" && (c.Flags().Changed("period") || c.Flags().Changed("batch") || c.Flags().Changed("seed")) {
				return usagef("give either --tokens or --period/--batch/--seed, not both")
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
			rows, src, err := inductionRows(m, dir, tokFile, period, batch, seed)
			if err != nil {
				return err
			}
			p := newProgress(0, "induction")
			res, err := induction.Run(m, rows, !noAblate, p.Callback())
			p.Finish()
			if err != nil {
				return err
			}
			if plotFile != "" {
				L := len(res.Induction)
				NH := len(res.Induction[0])
				if err := plot.Heatmap(plotFile, fmt.Sprintf("induction score (P=%d, %d rows)", res.P, res.B), "head", "layer",
					layerLabels(L), headLabels(NH), res.Induction, plot.BarLabel("induction score")); err != nil {
					return err
				}
				pp := plotVariant(plotFile, "prev")
				if err := plot.Heatmap(pp, "previous-token score", "head", "layer", layerLabels(L), headLabels(NH), res.PrevToken, plot.BarLabel("previous-token score")); err != nil {
					return err
				}
				written := []string{plotFile, pp}
				if res.HeadAblation != nil {
					pa := plotVariant(plotFile, "ablation")
					if err := plot.Heatmap(pa, fmt.Sprintf("second-half loss increase over %.4f (head zero-ablated)", res.LossSecondHalf), "head", "layer",
						layerLabels(L), headLabels(NH), addConst(res.HeadAblation, -res.LossSecondHalf), plot.BarLabel("loss increase (nats)")); err != nil {
						return err
					}
					written = append(written, pa)
				}
				logf("wrote %s", strings.Join(written, ", "))
			}
			if f.JSON {
				return printJSON(os.Stdout, res)
			}
			w := os.Stdout
			fmt.Fprintf(w, "model %s  %d rows of 2 x %d tokens  %s\n", dir, res.B, res.P, src)
			fmt.Fprintf(w, "second-half loss (predictions at %d..%d)  %.6f\n", res.P, 2*res.P-2, res.LossSecondHalf)
			fmt.Fprintf(w, "\ninduction score\n")
			printHeadTable(w, res.Induction, "%7.4f")
			var masked []string
			for l := 0; l < m.Cfg.Layers; l++ {
				if win := m.Cfg.LayerWindow(l); win > 0 && win < res.P {
					masked = append(masked, fmt.Sprint(l))
				}
			}
			if len(masked) > 0 {
				fmt.Fprintf(w, "(layers %s are local with a window of %d <= P-1: key i-P+1 is masked there, so their score is 0)\n", strings.Join(masked, ", "), m.Cfg.Window)
			}
			fmt.Fprintf(w, "\nprevious-token score\n")
			printHeadTable(w, res.PrevToken, "%7.4f")
			if res.HeadAblation != nil {
				fmt.Fprintf(w, "\nsecond-half loss with the head zero-ablated\n")
				printHeadTable(w, res.HeadAblation, "%9.4f")
			}
			rank := func(title string, hs []induction.HeadScore, format string) {
				fmt.Fprintf(w, "\n%s\n", title)
				for i, h := range hs[:min(top, len(hs))] {
					fmt.Fprintf(w, "%3d. %-6s "+format+"\n", i+1, h.Head, h.Score)
				}
			}
			rank("top induction heads", res.TopInduction, "%.4f")
			rank("top previous-token heads", res.TopPrevToken, "%.4f")
			if res.TopAblationEffects != nil {
				rank("largest second-half loss increases when ablated", res.TopAblationEffects, "%+.4f")
			}
			return nil
		},
	}
	f.register(c)
	c.Flags().StringVar(&tokFile, "tokens", "", "JSON rows of 2P token ids whose second half repeats the first")
	c.Flags().IntVar(&period, "period", 10, "P: random tokens per half")
	c.Flags().IntVar(&batch, "batch", 64, "rows of random tokens")
	c.Flags().Uint64Var(&seed, "seed", 1, "seed for the random tokens")
	c.Flags().IntVar(&top, "top", 5, "heads to list in each ranking")
	c.Flags().BoolVar(&noAblate, "no-ablation", false, "skip the per-head ablation (one pass per head)")
	c.Flags().StringVar(&plotFile, "plot", "", "write heatmaps (.png or .svg): FILE, FILE-prev, FILE-ablation")
	rootCmd.AddCommand(c)
}

// inductionRows reads tokFile (rows of 2P ids whose halves repeat) or, when
// it is empty, draws batch rows of period random tokens repeated, from the
// ids candidateFilter allows. src describes them.
func inductionRows(m *forward.Model, dir, tokFile string, period, batch int, seed uint64) (rows [][]int32, src string, err error) {
	if tokFile != "" {
		if rows, err = readTokenFile(tokFile); err != nil {
			return nil, "", err
		}
		if _, err := induction.CheckRepeated(rows); err != nil {
			return nil, "", usagef("%s: %v", tokFile, err)
		}
		if _, _, _, err := m.CheckTokens(rows); err != nil {
			return nil, "", usagef("%s: %v", tokFile, err)
		}
		return rows, tokFile, nil
	}
	if 2*period > m.Cfg.Context {
		return nil, "", usagef("--period %d: 2P = %d tokens exceed the model's context of %d", period, 2*period, m.Cfg.Context)
	}
	keep, what := candidateFilter(dir, m.Cfg.Vocab)
	rows, err = induction.RepeatedTokens(induction.Candidates(m.Cfg.Vocab, keep), batch, period, seed)
	if err != nil {
		return nil, "", usageError{err}
	}
	return rows, fmt.Sprintf("random (seed %d, %s)", seed, what), nil
}

// candidateFilter says which ids random tokens may use: with a tokenizer,
// ids it defines whose token is not special (<|...|>); without one, every
// id of the embedding.
func candidateFilter(dir string, vocab int) (func(int) bool, string) {
	if !tokenizer.Available(dir) {
		return nil, fmt.Sprintf("ids 0..%d, no tokenizer", vocab-1)
	}
	tok, err := tokenizer.Load(dir)
	if err != nil {
		logf("induction: tokenizer unreadable (%v); drawing from every id", err)
		return nil, fmt.Sprintf("ids 0..%d", vocab-1)
	}
	return func(id int) bool {
		s := tok.Token(id)
		return s != "" && !(strings.HasPrefix(s, "<|") && strings.HasSuffix(s, "|>"))
	}, "tokenizer ids minus <|...|> specials"
}
