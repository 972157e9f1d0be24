package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/neoscope/neoscope/internal/outfile"
	"github.com/neoscope/neoscope/probes/lens"
	"github.com/neoscope/neoscope/probes/plot"
	"github.com/neoscope/neoscope/runtime/forward"
	"github.com/neoscope/neoscope/runtime/tokenizer"
)

// lensRun is one model's logit lens, for printing.
type lensRun struct {
	Model string
	Res   *lens.Result
	Name  func(id int32) string
}

func init() {
	var f modelFlags
	var in inputFlags
	var plotFile, compare string
	var positions []int
	var topk, seq int
	c := &cobra.Command{
		Use:   "lens",
		Short: "Logit lens: loss and KL to the final distribution at every layer",
		Long: `lens unembeds every layer's residual stream resid[l] (the input of block l;
l = L is the final residual) through ln_f, with LayerNorm statistics
recomputed from resid[l] itself, and reports per layer:

  loss        next-token loss (nats) over all B*(T-1) predictions
  KL          mean over all B*T positions of KL(p_final || p_lens)
  final-blk   loss after running the LAST block on resid[l] (l < L)
  centered    loss with the mean-embedding direction u removed before ln_f

--positions prints the top-k lens predictions at those positions of every row
(negative counts from the end). --compare runs a second model on the same
token ids and plots both (x axis: layer index if both have as many layers,
else the layer fraction l/L).

` + lensTextRule,
		Example: `  neoscope lens --model ../shared/fixtures/tiny-neo --tokens batch.json
  neoscope lens --prompt "The Eiffel Tower is in the city of" --positions -1 --topk 5
  neoscope lens --model ../shared/fixtures/tiny-neo --compare ../shared/fixtures/tiny-gpt2 \
      --tokens batch.json --plot lens.png --json`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if plotFile != "" {
				if ext := filepath.Ext(plotFile); ext != ".png" && ext != ".svg" {
					return usagef("--plot %s: want a .png or .svg file", plotFile)
				}
			}
			if err := checkPlotPath(plotFile); err != nil {
				return err
			}
			if topk <= 0 {
				return usagef("--topk must be positive, got %d", topk)
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
			tokens, B, T, err := lensTextInput(&in, m, dir, seq)
			if err != nil {
				return err
			}
			if T < 2 {
				return usagef("lens needs at least 2 tokens per row (next-token predictions), got %d", T)
			}
			for _, p := range positions {
				if p >= T || p < -T {
					return usagef("--positions %d: outside 0..%d (or -%d..-1) for rows of %d tokens", p, T-1, T, T)
				}
			}
			runOne := func(m *forward.Model, dir string) (*lensRun, error) {
				return runLens(m, dir, tokens, B, T, positions, topk)
			}
			runs := []*lensRun{}
			r, err := runOne(m, dir)
			if err != nil {
				return err
			}
			runs = append(runs, r)
			if compare != "" {
				dir2, err := resolveModelFlag("--compare", compare)
				if err != nil {
					return err
				}
				f2 := f
				f2.Model = dir2
				m2, err := f2.open()
				if err != nil {
					return err
				}
				defer m2.Close()
				rows := make([][]int32, B)
				for b := range rows {
					rows[b] = tokens[b*T : (b+1)*T]
				}
				if _, _, _, err := m2.CheckTokens(rows); err != nil {
					return usagef("--compare %s: %v", compare, err)
				}
				r2, err := runOne(m2, dir2)
				if err != nil {
					return err
				}
				runs = append(runs, r2)
			}
			if plotFile != "" {
				if err := plotLens(plotFile, runs); err != nil {
					return err
				}
				logf("wrote %s", plotFile)
			}
			if f.JSON {
				out := lensTopJSON(runs[0], tokens, B, T)
				if len(runs) > 1 {
					out["compare"] = lensJSON(runs[1], tokens, T)
				}
				return printJSON(os.Stdout, out)
			}
			for i, r := range runs {
				if i > 0 {
					fmt.Println()
				}
				printLens(os.Stdout, r, tokens, B, T)
			}
			return nil
		},
	}
	f.register(c)
	in.register(c)
	in.registerBOS(c)
	c.Flags().IntSliceVar(&positions, "positions", nil, "positions (comma-separated, negative from the end) at which to print the top-k lens predictions")
	c.Flags().IntVar(&topk, "topk", 5, "number of predictions per layer at --positions")
	c.Flags().StringVar(&plotFile, "plot", "", "write a chart of the loss per layer (.png or .svg)")
	c.Flags().IntVar(&seq, "seq", 0, "with --text: tokens per row (default: the whole text if it fits the context, else rows of the context length; a remainder is read as the text's last --seq tokens, never dropped)")
	c.Flags().StringVar(&compare, "compare", "", "a second model (directory or hub id) to run on the same token ids")
	rootCmd.AddCommand(c)
}

// tokenNamer names token ids: the decoded text (quoted) when dir has a
// tokenizer, else #id.
func tokenNamer(dir string) func(id int32) string {
	tok, err := tokenizer.Load(dir)
	if err != nil {
		return func(id int32) string { return fmt.Sprintf("#%d", id) }
	}
	return func(id int32) string { return fmt.Sprintf("%q", tok.Decode([]int{int(id)})) }
}

func rounded(x []float64) []float64 {
	if x == nil {
		return nil
	}
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = outfile.Round(v)
	}
	return out
}

// runLens runs the logit lens (with the final-block and centered variants)
// on m, with top-k predictions at positions.
func runLens(m *forward.Model, dir string, tokens []int32, B, T int, positions []int, topk int) (*lensRun, error) {
	p := newProgress(1, "lens "+filepath.Base(dir))
	res, err := lens.Run(m, tokens, B, T, lens.Options{Positions: positions, TopK: topk, FinalBlock: true, Centered: true, Progress: p.Callback()})
	p.Finish()
	if err != nil {
		return nil, err
	}
	return &lensRun{Model: dir, Res: res, Name: tokenNamer(dir)}, nil
}

// lensTopJSON is what `lens --json` prints for its first model (and
// `compare --probe lens --json` under each model).
func lensTopJSON(r *lensRun, tokens []int32, B, T int) map[string]any {
	out := lensJSON(r, tokens, T)
	out["B"], out["T"] = B, T
	return out
}

func lensJSON(r *lensRun, tokens []int32, T int) map[string]any {
	out := map[string]any{
		"model":                       r.Model,
		"layers":                      r.Res.Layers,
		"logit_lens_loss":             rounded(r.Res.Loss),
		"logit_lens_kl":               rounded(r.Res.KL),
		"logit_lens_final_block_loss": rounded(r.Res.FinalBlockLoss),
		"logit_lens_loss_centered":    rounded(r.Res.LossCentered),
	}
	if len(r.Res.TopK) > 0 {
		var tks []map[string]any
		for _, tk := range r.Res.TopK {
			var layers [][]map[string]any
			for _, preds := range tk.Layers {
				var ps []map[string]any
				for _, p := range preds {
					ps = append(ps, map[string]any{"id": p.ID, "token": r.Name(p.ID), "prob": outfile.Round(p.Prob)})
				}
				layers = append(layers, ps)
			}
			e := map[string]any{"row": tk.Row, "pos": tk.Pos, "input": tokens[tk.Row*T+tk.Pos], "layers": layers}
			if tk.Pos+1 < T {
				e["next"] = tokens[tk.Row*T+tk.Pos+1]
			}
			tks = append(tks, e)
		}
		out["topk"] = tks
	}
	return out
}

func printLens(w io.Writer, r *lensRun, tokens []int32, B, T int) {
	res := r.Res
	L := res.Layers
	fmt.Fprintf(w, "logit lens: %s (%d x %d tokens; loss over %d predictions, KL over %d positions)\n", r.Model, B, T, B*(T-1), B*T)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "layer\tloss\tKL(final||lens)\tfinal-blk loss\tcentered loss\t")
	for l := 0; l <= L; l++ {
		name := fmt.Sprint(l)
		if l == L {
			name += " (final)"
		}
		fb, ce := "-", "-"
		if l < len(res.FinalBlockLoss) {
			fb = fmt.Sprintf("%.4f", res.FinalBlockLoss[l])
		}
		if l < len(res.LossCentered) {
			ce = fmt.Sprintf("%.4f", res.LossCentered[l])
		}
		fmt.Fprintf(tw, "%s\t%.4f\t%.4f\t%s\t%s\t\n", name, res.Loss[l], res.KL[l], fb, ce)
	}
	tw.Flush()
	for _, tk := range res.TopK {
		in := tokens[tk.Row*T+tk.Pos]
		next := "(end of row)"
		if tk.Pos+1 < T {
			next = r.Name(tokens[tk.Row*T+tk.Pos+1])
		}
		fmt.Fprintf(w, "\ntop-%d at row %d position %d (input %s, actual next %s):\n", len(tk.Layers[0]), tk.Row, tk.Pos, r.Name(in), next)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for l, preds := range tk.Layers {
			parts := make([]string, len(preds))
			for i, p := range preds {
				parts[i] = fmt.Sprintf("%s %.3f", r.Name(p.ID), p.Prob)
			}
			name := fmt.Sprintf("layer %d", l)
			if l == L {
				name += " (final)"
			}
			fmt.Fprintf(tw, "  %s\t%s\n", name, strings.Join(parts, "\t"))
		}
		tw.Flush()
	}
}

// plotLens draws the loss per layer of every run; the x axis is the layer
// index when all runs have as many layers, else the fraction l/L.
func plotLens(path string, runs []*lensRun) error {
	same := true
	for _, r := range runs {
		same = same && r.Res.Layers == runs[0].Res.Layers
	}
	xlabel := "layer l (resid[l] = input of block l; L = final)"
	if !same {
		xlabel = "layer fraction l / L"
	}
	var series []plot.Series
	for _, r := range runs {
		L := r.Res.Layers
		xs := make([]float64, L+1)
		for l := range xs {
			xs[l] = float64(l)
			if !same {
				xs[l] /= float64(L)
			}
		}
		name := displayName(r.Model)
		series = append(series, plot.Series{Name: name + " logit lens", X: xs, Y: r.Res.Loss})
		if r.Res.LossCentered != nil {
			series = append(series, plot.Series{Name: name + " centered", X: xs, Y: r.Res.LossCentered})
		}
	}
	return plot.Lines(path, "logit lens: next-token loss per layer", xlabel, "loss (nats)", series)
}
