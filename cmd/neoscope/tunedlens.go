package main

import (
	"fmt"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/neoscope/neoscope/internal/outfile"
	"github.com/neoscope/neoscope/probes/lens"
	"github.com/neoscope/neoscope/probes/plot"
	"github.com/neoscope/neoscope/runtime/forward"
	"github.com/neoscope/neoscope/runtime/tokenizer"
)

// lensInput returns the batch for lens and tunedlens: --text FILE is
// tokenized whole and cut into rows of seq tokens (the remainder dropped, at
// least one full row needed); with seq 0 the text is one row when it fits
// the context, else rows of the context length. --tokens and --prompt go
// through inputFlags.rows.
func lensInput(in *inputFlags, m *forward.Model, dir string, seq int) ([]int32, int, int, error) {
	if in.Text == "" || in.Tokens != "" || len(in.Prompt) > 0 {
		return in.rows(m, dir)
	}
	if seq < 0 || seq == 1 || seq > m.Cfg.Context {
		return nil, 0, 0, usagef("--seq %d: want 2..%d (the model's context)", seq, m.Cfg.Context)
	}
	tok, err := tokenizer.Load(dir)
	if err != nil {
		return nil, 0, 0, usagef("--text needs the model's tokenizer: %v", err)
	}
	data, err := os.ReadFile(in.Text)
	if err != nil {
		return nil, 0, 0, usagef("--text: %v", err)
	}
	ids := tok.Encode(string(data))
	if seq == 0 {
		seq = min(max(len(ids), 1), m.Cfg.Context)
	}
	B := len(ids) / seq
	if B == 0 {
		return nil, 0, 0, usagef("--text %s: %d tokens, fewer than one row of --seq %d", in.Text, len(ids), seq)
	}
	flat := make([]int32, B*seq)
	for i := range flat {
		flat[i] = int32(ids[i])
	}
	rows := make([][]int32, B)
	for b := range rows {
		rows[b] = flat[b*seq : (b+1)*seq]
	}
	if _, _, _, err := m.CheckTokens(rows); err != nil {
		return nil, 0, 0, usagef("--text %s: %v", in.Text, err)
	}
	return flat, B, seq, nil
}

func init() {
	root := &cobra.Command{
		Use:   "tunedlens",
		Short: "Fit and evaluate a tuned lens (per-layer affine translators before ln_f)",
		Long: `A tuned lens reads layer l's residual h through an affine translator
h + h A_l^T + b_l, then ln_f and the unembedding. fit learns A_l, b_l for
l = 0..L-1 to minimise KL(final || lens): a ridge-regression start (the final
residual regressed on resid[l]) then full-batch SGD with Nesterov momentum,
on the host. eval prints the tuned lens beside the logit lens.`,
		Example: `  neoscope tunedlens fit --model ../shared/fixtures/tiny-neo --tokens train.json --out lens.safetensors
  neoscope tunedlens eval --model ../shared/fixtures/tiny-neo --lens lens.safetensors --tokens heldout.json`,
		Args: cobra.NoArgs,
	}

	{
		var f modelFlags
		var in inputFlags
		var out string
		var force bool
		var opt lens.FitOptions
		var seq int
		c := &cobra.Command{
			Use:   "fit",
			Short: "Fit a tuned lens and save it as safetensors",
			Example: `  neoscope tunedlens fit --model ../shared/fixtures/tiny-neo --tokens train.json --out lens.safetensors
  neoscope tunedlens fit --model EleutherAI/gpt-neo-125m --text corpus.txt --seq 128 --steps 100 --out neo-lens.safetensors`,
			Args: cobra.NoArgs,
			RunE: func(c *cobra.Command, _ []string) error {
				if out == "" {
					return usagef("--out is required")
				}
				if filepath.Ext(out) != ".safetensors" {
					return usagef("--out %s: want a .safetensors file", out)
				}
				if opt.Steps < 0 || opt.LR < 0 || opt.Momentum < 0 || opt.Momentum >= 1 || opt.Ridge < 0 {
					return usagef("want --steps >= 0, --lr > 0, 0 <= --momentum < 1, --ridge >= 0")
				}
				dir, err := resolveModel(f.Model)
				if err != nil {
					return err
				}
				f.Model = dir
				if err := checkOutput("--out", out, force, append(in.paths(), dir)...); err != nil {
					return err
				}
				m, err := f.open()
				if err != nil {
					return err
				}
				defer m.Close()
				tokens, B, T, err := lensInput(&in, m, dir, seq)
				if err != nil {
					return err
				}
				if c.Flags().Changed("steps") && opt.Steps == 0 {
					opt.NoSGD = true
				}
				p := newProgress(1, "tuned lens fit")
				opt.Progress = p.Callback()
				tl, rep, err := lens.Fit(m, tokens, B, T, opt)
				p.Finish()
				if err != nil {
					return err
				}
				if err := tl.Save(out, map[string]string{"model": dir}); err != nil {
					return err
				}
				if f.JSON {
					var layers []map[string]any
					for _, r := range rep {
						layers = append(layers, map[string]any{"layer": r.Layer, "logit_lens_kl": outfile.Round(r.LogitKL),
							"ridge_kl": outfile.Round(r.RidgeKL), "start": r.Init, "tuned_kl": outfile.Round(r.Final)})
					}
					return printJSON(os.Stdout, map[string]any{"model": dir, "out": out, "B": B, "T": T, "meta": tl.Meta, "train": layers})
				}
				fmt.Printf("tuned lens for %s: fitted on %d x %d tokens (training KL(final || lens), nats)\n", dir, B, T)
				w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
				fmt.Fprintln(w, "layer\tlogit lens\tridge start\tstart used\ttuned\t")
				for _, r := range rep {
					fmt.Fprintf(w, "%d\t%.4f\t%.4f\t%s\t%.4f\t\n", r.Layer, r.LogitKL, r.RidgeKL, r.Init, r.Final)
				}
				w.Flush()
				logf("wrote %s (%d layers, %d steps)", out, len(tl.Layers), opt.Steps)
				return nil
			},
		}
		f.register(c)
		in.register(c)
		c.Flags().StringVar(&out, "out", "", "output lens file (.safetensors; an existing file only with --force)")
		c.Flags().BoolVar(&force, "force", false, "replace an existing --out")
		c.Flags().IntVar(&opt.Steps, "steps", lens.DefaultSteps, "SGD steps per layer after the ridge start (0: ridge start only)")
		c.Flags().Float64Var(&opt.LR, "lr", lens.DefaultLR, "SGD learning rate")
		c.Flags().Float64Var(&opt.Momentum, "momentum", 0.9, "Nesterov momentum")
		c.Flags().Float64Var(&opt.Ridge, "ridge", 1e-3, "ridge strength of the closed-form start, relative to mean diag(X^T X)")
		c.Flags().IntVar(&seq, "seq", 0, "with --text: tokens per row (default: the whole text if it fits the context, else rows of the context length)")
		root.AddCommand(c)
	}

	{
		var f modelFlags
		var in inputFlags
		var lensFile, plotFile string
		var seq int
		var force bool
		c := &cobra.Command{
			Use:   "eval",
			Short: "Evaluate a tuned lens beside the logit lens",
			Example: `  neoscope tunedlens eval --model ../shared/fixtures/tiny-neo --lens lens.safetensors --tokens heldout.json
  neoscope tunedlens eval --lens neo-lens.safetensors --model EleutherAI/gpt-neo-125m --text heldout.txt --plot kl.png`,
			Args: cobra.NoArgs,
			RunE: func(c *cobra.Command, _ []string) error {
				if lensFile == "" {
					return usagef("--lens is required")
				}
				if plotFile != "" {
					if ext := filepath.Ext(plotFile); ext != ".png" && ext != ".svg" {
						return usagef("--plot %s: want a .png or .svg file", plotFile)
					}
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
				tl, err := lens.Load(lensFile, m.Cfg.Layers, m.Cfg.DModel)
				if err != nil {
					return usageError{err}
				}
				if fp, ok := tl.Meta["model_fingerprint"]; ok && fp != lens.Fingerprint(m) && !force {
					return usagef("%s was fitted on %s (fingerprint %s), not on %s (fingerprint %s); --force to evaluate anyway",
						lensFile, tl.Meta["model"], fp, dir, lens.Fingerprint(m))
				}
				tokens, B, T, err := lensInput(&in, m, dir, seq)
				if err != nil {
					return err
				}
				if T < 2 {
					return usagef("tunedlens eval needs at least 2 tokens per row, got %d", T)
				}
				res, err := lens.Eval(m, tl, tokens, B, T)
				if err != nil {
					return err
				}
				if plotFile != "" {
					xs := make([]float64, res.Layers+1)
					for i := range xs {
						xs[i] = float64(i)
					}
					err := plot.Lines(plotFile, fmt.Sprintf("%s: KL(final || lens) per layer", filepath.Base(dir)),
						"layer l (resid[l] = input of block l; L = final)", "KL (nats)",
						[]plot.Series{{Name: "logit lens", X: xs, Y: res.LogitKL}, {Name: "tuned lens", X: xs, Y: res.TunedKL}})
					if err != nil {
						return err
					}
					logf("wrote %s", plotFile)
				}
				if f.JSON {
					return printJSON(os.Stdout, map[string]any{
						"model": dir, "lens": lensFile, "lens_meta": tl.Meta, "B": B, "T": T,
						"logit_lens_loss": rounded(res.LogitLoss), "logit_lens_kl": rounded(res.LogitKL),
						"tuned_lens_loss": rounded(res.TunedLoss), "tuned_lens_kl": rounded(res.TunedKL),
					})
				}
				fmt.Printf("tuned lens %s on %s (%d x %d tokens; loss over %d predictions, KL over %d positions)\n",
					lensFile, dir, B, T, B*(T-1), B*T)
				w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
				fmt.Fprintln(w, "layer\tlogit-lens loss\ttuned loss\tlogit-lens KL\ttuned KL\t")
				for l := 0; l <= res.Layers; l++ {
					name := fmt.Sprint(l)
					if l == res.Layers {
						name += " (final)"
					}
					fmt.Fprintf(w, "%s\t%.4f\t%.4f\t%.4f\t%.4f\t\n", name, res.LogitLoss[l], res.TunedLoss[l], res.LogitKL[l], res.TunedKL[l])
				}
				return w.Flush()
			},
		}
		f.register(c)
		in.register(c)
		c.Flags().StringVar(&lensFile, "lens", "", "lens file written by `tunedlens fit`")
		c.Flags().StringVar(&plotFile, "plot", "", "write a chart of KL per layer, logit vs tuned lens (.png or .svg)")
		c.Flags().BoolVar(&force, "force", false, "evaluate a lens fitted on another model (fingerprint mismatch)")
		c.Flags().IntVar(&seq, "seq", 0, "with --text: tokens per row (default: the whole text if it fits the context, else rows of the context length)")
		root.AddCommand(c)
	}
	rootCmd.AddCommand(root)
}
