package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

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

// fitSource streams the input flags' tokens as windows of seq tokens:
// --text through the model's tokenizer a piece at a time, --tokens or
// --prompt rows from memory.
func fitSource(in *inputFlags, m *forward.Model, dir string, seq int) (lens.Source, error) {
	n := 0
	for _, g := range []bool{in.Tokens != "", len(in.Prompt) > 0, in.Text != ""} {
		if g {
			n++
		}
	}
	if n != 1 {
		return nil, usagef("give exactly one of --tokens FILE, --prompt TEXT or --text FILE")
	}
	if in.Text != "" {
		tok, err := tokenizer.Load(dir)
		if err != nil {
			return nil, usagef("--text needs the model's tokenizer: %v", err)
		}
		src, err := lens.NewTextSource(in.Text, seq, m.Cfg.Vocab, tok.Encode)
		if err != nil {
			return nil, usagef("--text: %v", err)
		}
		return src, nil
	}
	var rows [][]int32
	var err error
	name := "prompt"
	if in.Tokens != "" {
		if rows, err = readTokenFile(in.Tokens); err != nil {
			return nil, err
		}
		name = in.Tokens
	} else if rows, err = in.encode(dir); err != nil {
		return nil, err
	}
	for b, r := range rows {
		for t, id := range r {
			if int(id) >= m.Cfg.Vocab {
				return nil, usagef("%s: row %d position %d: token id %d outside the vocabulary of %d", name, b, t, id, m.Cfg.Vocab)
			}
		}
	}
	return lens.NewRowsSource(name, rows, seq), nil
}

// checkFitOutputs refuses to overwrite --out (or its checkpoint) without
// --force, and to write over an input whatever the flags.
func checkFitOutputs(out, ckpt string, resume, force bool, in *inputFlags, model string) error {
	// The shared output guard (internal/outfile): never an input, an
	// existing --out only with --force (or when --resume finishes it).
	inputs := append(in.paths(), model)
	if err := checkOutput("--out", out, force || resume, inputs...); err != nil {
		return err
	}
	if err := checkOutput("--out's checkpoint", ckpt, true, inputs...); err != nil {
		return err
	}
	_, err := os.Stat(ckpt)
	switch {
	case resume && err != nil:
		return usagef("--resume: no checkpoint %s to resume from", ckpt)
	case !resume && err == nil && !force:
		return usagef("%s holds an interrupted fit: --resume to continue it, or --force to start over", ckpt)
	}
	return nil
}

func init() {
	root := &cobra.Command{
		Use:   "tunedlens",
		Short: "Fit and evaluate a tuned lens (per-layer affine translators before ln_f)",
		Long: `A tuned lens reads layer l's residual h through an affine translator
h + h A_l^T + b_l, then ln_f and the unembedding. fit learns A_l, b_l for
l = 0..L-1 to minimise KL(final || lens) from streamed minibatches: a
ridge-regression start (the final residual regressed on resid[l]) then Adam
or Nesterov SGD, with the heavy products on the backend. eval prints the tuned lens beside the logit lens.`,
		Example: `  neoscope tunedlens fit --model ../shared/fixtures/tiny-neo --tokens train.json --out lens.safetensors
  neoscope tunedlens eval --model ../shared/fixtures/tiny-neo --lens lens.safetensors --tokens heldout.json`,
		Args: cobra.NoArgs,
	}

	{
		var f modelFlags
		var in inputFlags
		var out string
		var opt lens.StreamOptions
		var seq int
		var force bool
		c := &cobra.Command{
			Use:   "fit",
			Short: "Fit a tuned lens from streamed minibatches and save it as safetensors",
			Long: `fit streams the training text (--text FILE, any length, read a piece at a
time) or token rows (--tokens FILE, --prompt) as windows of --seq tokens:
consecutive, non-overlapping, the last shorter one kept, so every token is
used once per epoch; window k is held out for evaluation when
k % --holdout == --holdout - 1. It then
  1. solves a ridge regression of the final residual on [resid[l], 1] per
     layer from sums accumulated over every training window (one pass),
     keeping per layer the better of it and the identity (the logit lens);
  2. takes --steps optimizer steps of --rows windows each (cycling through
     the text): KL(final || lens) at every layer, gradients on the backend,
     global gradient-norm clipping at 1, Adam (amsgrad, lr 1e-3 x --lr-scale,
     warmup min(1000, steps/5)) or Nesterov SGD (lr (1 - momentum) x
     --lr-scale, no warmup), linear decay to 0, weight decay 1e-3: the
     tuned-lens package's recipe;
  3. keeps per layer the trained translator only if it beats its start on
     the first training minibatch, and reports the held-out KL per layer
     beside the logit lens.
Memory is one minibatch (the final distribution [rows x seq, V] as float32,
twice) plus the translators and optimizer state (float64), whatever the
text's length. The state is checkpointed to OUT.ckpt every
--checkpoint-every steps; --resume continues an interrupted fit and refuses
one with another model, input or option. OUT is never overwritten without
--force, and never when it is one of the inputs.`,
			Example: `  neoscope tunedlens fit --model ../shared/fixtures/tiny-neo --tokens train.json --out lens.safetensors
  neoscope tunedlens fit --model EleutherAI/gpt-neo-125m --text corpus.txt --seq 128 --steps 100 --out neo-lens.safetensors
  neoscope tunedlens fit --model EleutherAI/gpt-neo-125m --text corpus.txt --seq 128 --steps 100 --out neo-lens.safetensors --resume`,
			Args: cobra.NoArgs,
			RunE: func(c *cobra.Command, _ []string) error {
				start := time.Now()
				if out == "" {
					return usagef("--out is required")
				}
				if filepath.Ext(out) != ".safetensors" {
					return usagef("--out %s: want a .safetensors file", out)
				}
				if opt.Steps < 0 || opt.Rows < 1 || opt.LRScale <= 0 || opt.Momentum < 0 || opt.Momentum >= 1 || opt.WeightDecay < 0 || opt.Every < 1 || opt.Holdout < 0 {
					return usagef("want --steps >= 0, --rows >= 1, --lr-scale > 0, 0 <= --momentum < 1, --weight-decay >= 0, --checkpoint-every >= 1, --holdout >= 0")
				}
				if opt.Optimizer != "adam" && opt.Optimizer != "sgd" {
					return usagef("--optimizer %q: want adam or sgd", opt.Optimizer)
				}
				if opt.Holdout == 0 {
					opt.Holdout = -1 // none
				}
				opt.Checkpoint = out + ".ckpt"
				dir, err := resolveModel(f.Model)
				if err != nil {
					return err
				}
				if err := checkFitOutputs(out, opt.Checkpoint, opt.Resume, force, &in, dir); err != nil {
					return err
				}
				f.Model = dir
				m, err := f.open()
				if err != nil {
					return err
				}
				defer m.Close()
				if seq == 0 {
					seq = min(128, m.Cfg.Context)
				}
				if seq < 1 || seq > m.Cfg.Context {
					return usagef("--seq %d: want 1..%d (the model's context)", seq, m.Cfg.Context)
				}
				src, err := fitSource(&in, m, dir, seq)
				if err != nil {
					return err
				}
				if cl, ok := src.(interface{ Close() error }); ok {
					defer cl.Close()
				}
				var p *progress
				stage := ""
				opt.Progress = func(s string, done, total int) {
					if s != stage {
						if p != nil {
							p.Finish()
						}
						stage, p = s, newProgress(total, "tuned lens: "+s)
					}
					p.Set(done)
				}
				tl, rep, err := lens.FitStream(m, src, seq, opt)
				if p != nil {
					p.Finish()
				}
				if err != nil {
					var mm *lens.ResumeMismatchError
					if errors.As(err, &mm) {
						return usageError{err}
					}
					return err
				}
				if err := tl.Save(out, map[string]string{"model": dir}); err != nil {
					return err
				}
				os.Remove(opt.Checkpoint) // the fit is complete: nothing to resume
				secs := time.Since(start).Seconds()
				if f.JSON {
					var layers []map[string]any
					for l := 0; l < rep.Layers; l++ {
						e := map[string]any{"layer": l, "start": rep.Init[l], "kept": rep.Kept[l]}
						if h := rep.Heldout; h != nil {
							e["heldout_logit_lens_kl"], e["heldout_tuned_kl"] = outfile.Round(h.LogitKL[l]), outfile.Round(h.TunedKL[l])
						}
						layers = append(layers, e)
					}
					res := map[string]any{"model": dir, "out": out, "seq": seq, "train_windows": rep.TrainWindows,
						"train_positions": rep.TrainPositions, "heldout_positions": rep.HeldoutPositions, "steps": opt.Steps,
						"resumed_at_step": rep.ResumedAt, "epochs": rep.Epochs, "train_kl_per_step": rounded(rep.TrainKL),
						"meta": tl.Meta, "layers": layers, "seconds": round4(secs)}
					if h := rep.Heldout; h != nil {
						res["heldout"] = map[string]any{"logit_lens_kl": rounded(h.LogitKL), "tuned_lens_kl": rounded(h.TunedKL),
							"logit_lens_loss": rounded(h.LogitLoss), "tuned_lens_loss": rounded(h.TunedLoss)}
					}
					return printJSON(os.Stdout, res)
				}
				fmt.Printf("tuned lens for %s: %d training windows of up to %d tokens (%d positions), %d %s steps of %d windows",
					dir, rep.TrainWindows, seq, rep.TrainPositions, opt.Steps, opt.Optimizer, opt.Rows)
				if rep.ResumedAt > 0 {
					fmt.Printf(" (resumed at step %d)", rep.ResumedAt)
				}
				fmt.Printf(", %.1f s\n", secs)
				w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
				if h := rep.Heldout; h != nil {
					fmt.Printf("held-out KL(final || lens) over %d positions (nats):\n", rep.HeldoutPositions)
					fmt.Fprintln(w, "layer\tstart\tkept\tlogit lens\ttuned lens\t")
					for l := 0; l < rep.Layers; l++ {
						fmt.Fprintf(w, "%d\t%s\t%s\t%.4f\t%.4f\t\n", l, rep.Init[l], rep.Kept[l], h.LogitKL[l], h.TunedKL[l])
					}
				} else {
					fmt.Println("no held-out windows (--holdout 0, or fewer windows than --holdout)")
					fmt.Fprintln(w, "layer\tstart\tkept\t")
					for l := 0; l < rep.Layers; l++ {
						fmt.Fprintf(w, "%d\t%s\t%s\t\n", l, rep.Init[l], rep.Kept[l])
					}
				}
				w.Flush()
				logf("wrote %s (%d layers)", out, len(tl.Layers))
				return nil
			},
		}
		f.register(c)
		in.register(c)
		c.Flags().StringVar(&out, "out", "", "output lens file (.safetensors); its state is checkpointed to OUT.ckpt")
		c.Flags().StringVar(&opt.Optimizer, "optimizer", "adam", "adam (amsgrad) or sgd (Nesterov)")
		c.Flags().IntVar(&opt.Steps, "steps", lens.DefaultStreamSteps, "optimizer steps after the ridge start (0: ridge start only)")
		c.Flags().IntVar(&opt.Rows, "rows", 4, "windows per optimizer step")
		c.Flags().Float64Var(&opt.LRScale, "lr-scale", 1, "multiplies the base learning rate (Adam 1e-3, SGD 1 - momentum)")
		c.Flags().Float64Var(&opt.Momentum, "momentum", 0.9, "SGD Nesterov momentum, or Adam's beta1")
		c.Flags().Float64Var(&opt.WeightDecay, "weight-decay", 1e-3, "L2 weight decay")
		c.Flags().IntVar(&opt.Warmup, "warmup", -1, "linear warmup steps (-1: Adam min(1000, steps/5), SGD 0)")
		c.Flags().Float64Var(&opt.Ridge, "ridge", 1e-3, "ridge strength of the closed-form start, relative to mean diag(X^T X); negative: start at the identity")
		c.Flags().IntVar(&opt.Holdout, "holdout", 10, "hold out every Nth window for the held-out KL (0: none)")
		c.Flags().IntVar(&opt.Every, "checkpoint-every", 10, "write OUT.ckpt every this many steps")
		c.Flags().BoolVar(&opt.Resume, "resume", false, "continue the interrupted fit in OUT.ckpt (same model, input and options)")
		c.Flags().BoolVar(&force, "force", false, "overwrite an existing --out (and start over from an existing OUT.ckpt)")
		c.Flags().IntVar(&seq, "seq", 0, "tokens per window (default: min(128, the model's context))")
		root.AddCommand(c)
	}

	{
		var f modelFlags
		var in inputFlags
		var lensFile, plotFile string
		var seq int
		var anyModel bool
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
				// --plot like every chart: checked before the work, replaced
				// only with --force (addForceFlags).
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
				tl, err := lens.Load(lensFile, m.Cfg.Layers, m.Cfg.DModel)
				if err != nil {
					return usageError{err}
				}
				if fp, ok := tl.Meta["model_fingerprint"]; ok && fp != lens.Fingerprint(m) && !anyModel {
					return usagef("%s was fitted on %s (fingerprint %s), not on %s (fingerprint %s); --any-model to evaluate anyway",
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
					err := plot.Lines(plotFile, fmt.Sprintf("%s: KL(final || lens) per layer", displayName(dir)),
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
		c.Flags().StringVar(&lensFile, "lens", "", "the lens `FILE` written by neoscope tunedlens fit")
		c.Flags().StringVar(&plotFile, "plot", "", "write a chart of KL per layer, logit vs tuned lens (.png or .svg)")
		c.Flags().BoolVar(&anyModel, "any-model", false, "evaluate a lens fitted on another model (fingerprint mismatch)")
		c.Flags().IntVar(&seq, "seq", 0, "with --text: tokens per row (default: the whole text if it fits the context, else rows of the context length)")
		root.AddCommand(c)
	}
	rootCmd.AddCommand(root)
}
