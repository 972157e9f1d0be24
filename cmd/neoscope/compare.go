package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/neoscope/neoscope/probes/ablate"
	"github.com/neoscope/neoscope/probes/induction"
	"github.com/neoscope/neoscope/probes/plot"
)

// compareRun is one model's result in `neoscope compare`.
type compareRun struct {
	Arg    string // as given in --models (the JSON key)
	Dir    string // the model directory it resolved to
	Label  string // column title
	Layers int
	Tokens []int32 // the inputs it ran on, flattened
	B, T   int
	JSON   any // exactly what the probe's own --json prints for this model

	emb *embedRun
	lr  *lensRun
	abl *ablateOut
	ind *induction.Result
}

func init() {
	var f modelFlags
	var in inputFlags
	var models, probe, plotFile, each, mode string
	var seed uint64
	var seq, lossFrom, period, batch int
	var noAblate bool
	c := &cobra.Command{
		Use:   "compare",
		Short: "Run one probe on several models: one table and one chart, a column or line per model",
		Long: `compare runs the same probe with the same inputs on every model of --models,
one model in memory at a time, and prints one table (a column per model) and,
with --plot, one chart (a line or a heat-map panel per model, heat maps on one
shared colour scale). Probes:

  embed      W_E statistics and the residual stream along the mean embedding
  lens       logit-lens loss and KL per layer (x axis l/L when depths differ)
  ablate     loss increase per head, attention layer and MLP (--each, --mode)
  induction  induction and previous-token score per head (--period, --batch)

Inputs: --tokens gives every model the same ids (checked against each
vocabulary); --prompt and --text are tokenised by each model's own tokenizer;
without them the probe's random tokens are drawn per model with the same
--seed (the same ids when the vocabularies agree). When the models end up
with different ids the output says so.

--json prints an object keyed by the --models entries as given, whose values
are exactly what that probe's own --json prints for that model.`,
		Example: `  neoscope compare --models ../shared/fixtures/tiny-neo,../shared/fixtures/tiny-gpt2 --probe embed --json
  neoscope compare --models EleutherAI/gpt-neo-125m,EleutherAI/gpt-neo-1.3B --probe lens --text doc.txt --plot lens.png
  neoscope compare --models gpt2,gpt2-medium --probe induction --period 20 --plot ind.png`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			args := strings.Split(models, ",")
			for i := range args {
				args[i] = strings.TrimSpace(args[i])
				if args[i] == "" {
					return usagef("--models %q: want a comma-separated list of model directories or hub ids, none empty", models)
				}
				if slices.Contains(args[:i], args[i]) {
					return usagef("--models: %q is given twice", args[i])
				}
			}
			if len(args) < 2 {
				return usagef("--models: give at least two models to compare, got %d", len(args))
			}
			if err := checkPlotPath(plotFile); err != nil {
				return err
			}
			if !c.Flags().Changed("seed") && probe == "induction" {
				seed = 1 // induction's own default
			}
			var ev ablate.Each
			var md ablate.Mode
			switch probe {
			case "embed":
			case "lens":
				if !in.given() {
					return usagef("--probe lens needs inputs: --tokens, --prompt or --text")
				}
			case "ablate":
				if !in.given() {
					return usagef("--probe ablate needs inputs: --tokens, --prompt or --text")
				}
				var err error
				if ev, err = ablate.ParseEach(each); err != nil {
					return usageError{err}
				}
				if md, err = ablate.ParseMode(mode); err != nil {
					return usagef("--mode: %v", err)
				}
				if plotFile != "" && !ev.Heads {
					return usagef("--plot with --probe ablate draws the head table: include head in --each")
				}
			case "induction":
				if len(in.Prompt) > 0 || in.Text != "" {
					return usagef("--probe induction takes --tokens (rows of 2P ids whose halves repeat) or --period/--batch/--seed, not --prompt/--text")
				}
			default:
				return usagef("--probe %q: want embed, lens, ablate or induction", probe)
			}
			var runs []*compareRun
			for _, arg := range args {
				dir, err := resolveModel(arg)
				if err != nil {
					return err
				}
				g := f
				g.Model = dir
				m, err := g.open()
				if err != nil {
					return err
				}
				r := &compareRun{Arg: arg, Dir: dir, Layers: m.Cfg.Layers}
				switch probe {
				case "embed":
					if r.emb, err = runEmbed(m, dir, &in, seed); err == nil {
						r.Tokens, r.B, r.T, r.JSON = r.emb.Tokens, r.emb.B, r.emb.T, r.emb.json(false)
					}
				case "lens":
					if r.Tokens, r.B, r.T, err = lensInput(&in, m, dir, seq); err == nil {
						if r.T < 2 {
							err = usagef("lens needs at least 2 tokens per row (next-token predictions), got %d for %s", r.T, arg)
						} else if r.lr, err = runLens(m, dir, r.Tokens, r.B, r.T, nil, 5); err == nil {
							r.JSON = lensTopJSON(r.lr, r.Tokens, r.B, r.T)
						}
					}
				case "ablate":
					if r.Tokens, r.B, r.T, err = in.rows(m, dir); err == nil {
						if r.abl, err = runAblate(m, r.Tokens, r.B, r.T, ev, md, lossFrom, nil, ""); err == nil {
							r.JSON = r.abl
						}
					}
				case "induction":
					var rows [][]int32
					if rows, _, err = inductionRows(m, dir, in.Tokens, period, batch, seed); err == nil {
						r.B, r.T = len(rows), len(rows[0])
						r.Tokens = slices.Concat(rows...)
						p := newProgress(0, "induction "+filepath.Base(dir))
						r.ind, err = induction.Run(m, rows, !noAblate, p.Callback())
						p.Finish()
						r.JSON = r.ind
					}
				}
				m.Close()
				if err != nil {
					return fmt.Errorf("%s: %w", arg, err)
				}
				runs = append(runs, r)
			}
			setLabels(runs)
			note := inputsNote(runs, &in)
			logf("compare: %s", note)
			if plotFile != "" {
				if err := plotCompare(plotFile, probe, runs); err != nil {
					return err
				}
				logf("wrote %s", plotFile)
			}
			if f.JSON {
				out := map[string]any{}
				for _, r := range runs {
					out[r.Arg] = r.JSON
				}
				return printJSON(os.Stdout, out)
			}
			fmt.Printf("%s on %d models; inputs: %s\n\n", probe, len(runs), note)
			return printCompare(os.Stdout, probe, runs)
		},
	}
	c.Flags().StringVar(&models, "models", "", "comma-separated model directories or hub ids (at least two)")
	c.Flags().StringVar(&probe, "probe", "", "embed, lens, ablate or induction")
	c.Flags().StringVar(&f.Backend, "backend", "auto", "compute backend: auto (GPU if usable, else CPU), cpu, cuda")
	c.Flags().IntVar(&f.Threads, "threads", 0, "CPU threads to use (default: all cores)")
	c.Flags().BoolVar(&f.JSON, "json", false, "print {model: that probe's own --json output}")
	in.register(c)
	c.Flags().StringVar(&plotFile, "plot", "", "write one chart (.png or .svg): lines per model, or heat-map panels on one colour scale")
	c.Flags().Uint64Var(&seed, "seed", 0, "seed of the random tokens (embed: default 0; induction: default 1)")
	c.Flags().IntVar(&seq, "seq", 0, "lens with --text: tokens per row")
	c.Flags().StringVar(&each, "each", "all", "ablate: head, attn, mlp (comma-separated) or all")
	c.Flags().StringVar(&mode, "mode", "zero", "ablate: zero or mean")
	c.Flags().IntVar(&lossFrom, "loss-from", 0, "ablate: first position whose prediction counts in the loss")
	c.Flags().IntVar(&period, "period", 10, "induction: P random tokens per half")
	c.Flags().IntVar(&batch, "batch", 64, "induction: rows of random tokens")
	c.Flags().BoolVar(&noAblate, "no-ablation", false, "induction: skip the per-head ablation")
	c.MarkFlagRequired("models")
	c.MarkFlagRequired("probe")
	rootCmd.AddCommand(c)
}

// setLabels names each column by the model's display name (ORG/NAME for a
// snapshot of the Hugging Face cache, not its revision directory; the
// bundled model's name), or by the argument as given when two display
// names collide.
func setLabels(runs []*compareRun) {
	seen := map[string]int{}
	for _, r := range runs {
		r.Label = displayName(r.Dir)
		seen[r.Label]++
	}
	for _, r := range runs {
		if seen[r.Label] > 1 {
			r.Label = r.Arg
		}
	}
}

// inputsNote says whether every model ran on the same token ids.
func inputsNote(runs []*compareRun, in *inputFlags) string {
	same := true
	for _, r := range runs[1:] {
		same = same && r.B == runs[0].B && r.T == runs[0].T && slices.Equal(r.Tokens, runs[0].Tokens)
	}
	if same {
		return fmt.Sprintf("the same %d x %d token ids for every model", runs[0].B, runs[0].T)
	}
	var parts []string
	for _, r := range runs {
		parts = append(parts, fmt.Sprintf("%s %dx%d", r.Label, r.B, r.T))
	}
	how := "random tokens drawn per model with the same seed"
	if in.given() {
		how = "tokenised per model"
	}
	return fmt.Sprintf("%s: the token ids differ between models (vocabularies or tokenizers differ): %s", how, strings.Join(parts, ", "))
}

// printCompare prints the probe's table with a column (or column group) per
// model; "-" where a model has no such row (fewer layers or heads).
func printCompare(w io.Writer, probe string, runs []*compareRun) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := func(first string, per ...string) {
		fmt.Fprint(tw, first+"\t")
		for _, r := range runs {
			for _, p := range per {
				fmt.Fprint(tw, strings.TrimSpace(r.Label+" "+p)+"\t")
			}
		}
		fmt.Fprintln(tw)
	}
	row := func(name string, vals func(r *compareRun) []string) {
		fmt.Fprint(tw, name+"\t")
		for _, r := range runs {
			for _, v := range vals(r) {
				fmt.Fprint(tw, v+"\t")
			}
		}
		fmt.Fprintln(tw)
	}
	f4 := func(x float64) string { return fmt.Sprintf("%.4f", x) }
	maxL := 0
	for _, r := range runs {
		maxL = max(maxL, r.Layers)
	}
	switch probe {
	case "embed":
		head("statistic", "")
		for _, s := range []struct {
			name string
			v    func(e *embedRun) float64
		}{
			{"mean_norm", func(e *embedRun) float64 { return e.St.MeanNorm }},
			{"norm_of_mean", func(e *embedRun) float64 { return e.St.NormOfMean }},
			{"mean_pairwise_cos", func(e *embedRun) float64 { return e.St.MeanPairwiseCos }},
			{"mean_pairwise_cos_centered", func(e *embedRun) float64 { return e.St.MeanPairwiseCosCentered }},
			{"mean_abs_pairwise_cos_centered", func(e *embedRun) float64 { return e.St.MeanAbsPairwiseCosCentered }},
			{"embed_self_top1", func(e *embedRun) float64 { return e.St.SelfTop1 }},
			{"embed_self_top1_ln", func(e *embedRun) float64 { return e.St.SelfTop1LN }},
		} {
			row(s.name, func(r *compareRun) []string { return []string{fmt.Sprintf("%.6g", s.v(r.emb))} })
		}
		tw.Flush()
		fmt.Fprintln(w, "\nshare of |resid[l]|^2 along the mean embedding u, per layer (L = final)")
		head("layer", "")
		for l := 0; l <= maxL; l++ {
			row(fmt.Sprint(l), func(r *compareRun) []string {
				if l >= len(r.emb.Proj) {
					return []string{"-"}
				}
				return []string{f4(r.emb.Proj[l].MeanShare)}
			})
		}
	case "lens":
		head("layer", "loss", "KL")
		for l := 0; l <= maxL; l++ {
			row(fmt.Sprint(l), func(r *compareRun) []string {
				if l >= len(r.lr.Res.Loss) {
					return []string{"-", "-"}
				}
				return []string{f4(r.lr.Res.Loss[l]), f4(r.lr.Res.KL[l])}
			})
		}
		tw.Flush()
		fmt.Fprintln(w, "(layer l = the input of block l; the last row of each model is its final residual)")
	case "ablate":
		fmt.Fprintln(w, "loss increase over the baseline when the component is ablated")
		head("component", "")
		row("baseline loss", func(r *compareRun) []string { return []string{f4(r.abl.Baseline)} })
		for _, name := range componentRows(runs) {
			row(name, func(r *compareRun) []string {
				if v, ok := ablateDelta(r.abl, name); ok {
					return []string{fmt.Sprintf("%+.4f", v)}
				}
				return []string{"-"}
			})
		}
	case "induction":
		head("head", "induction", "prev-token")
		row("second-half loss", func(r *compareRun) []string { return []string{f4(r.ind.LossSecondHalf), ""} })
		for _, name := range componentRows(runs) {
			if !strings.Contains(name, ".") || strings.Contains(name, " ") {
				continue
			}
			row(name, func(r *compareRun) []string {
				var l, h int
				fmt.Sscanf(name, "%d.%d", &l, &h)
				if l >= len(r.ind.Induction) || h >= len(r.ind.Induction[l]) {
					return []string{"-", "-"}
				}
				return []string{f4(r.ind.Induction[l][h]), f4(r.ind.PrevToken[l][h])}
			})
		}
	}
	return tw.Flush()
}

// componentRows lists heads l.h, then "attn l" and "mlp l", over the largest
// shape among the runs.
func componentRows(runs []*compareRun) []string {
	maxL, maxH := 0, 0
	for _, r := range runs {
		var heads [][]float64
		switch {
		case r.abl != nil:
			heads = r.abl.Head
			maxL = max(maxL, len(r.abl.Attn), len(r.abl.MLP))
		case r.ind != nil:
			heads = r.ind.Induction
		}
		maxL = max(maxL, len(heads))
		for _, h := range heads {
			maxH = max(maxH, len(h))
		}
	}
	var out []string
	for l := 0; l < maxL; l++ {
		for h := 0; h < maxH; h++ {
			out = append(out, fmt.Sprintf("%d.%d", l, h))
		}
	}
	for _, k := range []string{"attn", "mlp"} {
		for l := 0; l < maxL; l++ {
			out = append(out, fmt.Sprintf("%s %d", k, l))
		}
	}
	return out
}

// ablateDelta is the loss increase for a component row name; ok is false
// when the model has no such component or it was not ablated.
func ablateDelta(a *ablateOut, name string) (float64, bool) {
	var l, h int
	var kind string
	if _, err := fmt.Sscanf(name, "%d.%d", &l, &h); err == nil {
		if l < len(a.Head) && h < len(a.Head[l]) {
			return a.Head[l][h] - a.Baseline, true
		}
		return 0, false
	}
	fmt.Sscanf(name, "%s %d", &kind, &l)
	x := a.Attn
	if kind == "mlp" {
		x = a.MLP
	}
	if l < len(x) {
		return x[l] - a.Baseline, true
	}
	return 0, false
}

// plotCompare draws the probe's chart: lines per model (x: layer, or l/L
// when depths differ) or heat-map panels on one colour scale.
func plotCompare(path, probe string, runs []*compareRun) error {
	same := true
	for _, r := range runs {
		same = same && r.Layers == runs[0].Layers
	}
	xs := func(L int) []float64 {
		x := make([]float64, L+1)
		for l := range x {
			x[l] = float64(l)
			if !same {
				x[l] /= float64(L)
			}
		}
		return x
	}
	xlabel := "layer l (resid[l] = input of block l; L = final)"
	if !same {
		xlabel = "layer fraction l / L"
	}
	var panels []plot.Panel
	switch probe {
	case "embed":
		var series []plot.Series
		for _, r := range runs {
			y := make([]float64, len(r.emb.Proj))
			for i, p := range r.emb.Proj {
				y[i] = p.MeanShare
			}
			series = append(series, plot.Series{Name: r.Label, X: xs(r.Layers), Y: y})
		}
		return plot.Lines(path, "share of |resid|^2 along the mean embedding u", xlabel, "share", series)
	case "lens":
		var series []plot.Series
		for _, r := range runs {
			series = append(series, plot.Series{Name: r.Label + " loss", X: xs(r.Layers), Y: r.lr.Res.Loss})
		}
		return plot.Lines(path, "logit lens: next-token loss per layer", xlabel, "loss (nats)", series)
	case "ablate":
		for _, r := range runs {
			panels = append(panels, plot.Panel{Title: fmt.Sprintf("%s (baseline %.4f)", r.Label, r.abl.Baseline),
				RowLabels: layerLabels(len(r.abl.Head)), ColLabels: headLabels(len(r.abl.Head[0])), Values: addConst(r.abl.Head, -r.abl.Baseline)})
		}
		return plot.Heatmaps(path, fmt.Sprintf("%s ablation: loss increase per head", runs[0].abl.Mode), "head", "layer", panels, plot.BarLabel("loss increase (nats)"))
	default: // induction
		for _, r := range runs {
			panels = append(panels, plot.Panel{Title: r.Label, RowLabels: layerLabels(len(r.ind.Induction)),
				ColLabels: headLabels(len(r.ind.Induction[0])), Values: r.ind.Induction})
		}
		return plot.Heatmaps(path, fmt.Sprintf("induction score (P=%d)", runs[0].ind.P), "head", "layer", panels, plot.BarLabel("induction score"))
	}
}
