package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/neoscope/neoscope/probes/ioi"
	"github.com/neoscope/neoscope/probes/plot"
	"github.com/neoscope/neoscope/runtime/tokenizer"
)

func init() {
	var f modelFlags
	var n, show int
	var seed uint64
	var noBOS, noResid bool
	var plotFile string
	c := &cobra.Command{
		Use:   "ioi",
		Short: "Indirect object identification: logit difference, activation patching and DLA on generated prompts",
		Long: `ioi builds Wang et al.'s IOI prompts with the model's tokenizer
("When Mary and John went to the store, John gave a drink to" -> " Mary"):
the paper's 15 BABA templates and their ABBA mirrors, names that are one token
with a leading space, places and objects. The corrupt prompt (ABC) puts three
other names in the three name slots. Prompts are grouped by token length so a
batch has equal-length rows; the BOS token is prepended when the config has
one (--no-bos to leave it out).

It reports the mean logit difference LD = logit(IO) - logit(S) at the last
position, the fraction of prompts preferring IO, direct logit attribution per
head and MLP (final LayerNorm scale frozen), and activation patching (corrupt
run, clean activation patched in; (LD_patched - LD_corrupt) / (LD_clean -
LD_corrupt)) per head z, MLP output, attention output and, on the largest
length group, per residual position and per head at each position (all
batched through the sweep engine); and a summary line: heads or MLPs? (no
verdict when the clean-corrupt gap is within 2 standard errors of zero or
reversed).
--plot FILE writes FILE (patching per head) and FILE-dla (DLA per head).`,
		Example: `  neoscope ioi --model EleutherAI/gpt-neo-125m --n 200 --seed 1
  neoscope ioi --model models/neo-tiny --n 64 --json > ioi.json
  neoscope ioi --n 100 --plot ioi.png`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := checkPlotPath(plotFile, "dla"); err != nil {
				return err
			}
			if n < 1 {
				return usagef("--n %d: want at least 1 prompt", n)
			}
			dir, err := resolveModel(f.Model)
			if err != nil {
				return err
			}
			f.Model = dir
			tok, err := tokenizer.Load(dir)
			if err != nil {
				return usagef("ioi builds its prompts with the model's tokenizer: %v", err)
			}
			m, err := f.open()
			if err != nil {
				return err
			}
			defer m.Close()
			bos := m.Cfg.BOS
			if noBOS {
				bos = -1
			}
			ds, err := ioi.BuildDataset(tok, n, seed, bos)
			if err != nil {
				return usageError{err}
			}
			batches := ds.Batches()
			for i := range batches {
				if _, _, _, err := m.CheckTokens([][]int32{batches[i].Clean[:batches[i].T]}); err != nil {
					return usagef("ioi prompts: %v", err)
				}
			}
			what := ioi.All
			what.Resid, what.HeadPos = !noResid, !noResid
			p := newProgress(0, "ioi")
			res, err := ioi.Run(m, batches, ioi.Options{Patch: what, Progress: p.Callback()})
			p.Finish()
			if err != nil {
				return err
			}
			var residLabels []string
			if res.PatchResid != nil {
				first := ds.Prompts[firstOfLength(ds, batches[0].T)]
				residLabels = tokenLabels(tok, first.Clean)
			}
			if err := plotIOI(plotFile, res); err != nil {
				return err
			}
			if f.JSON {
				return printJSON(os.Stdout, struct {
					*ioi.Result
					Seed        uint64       `json:"seed"`
					Names       []string     `json:"names"`
					ResidTokens []string     `json:"patch_resid_token_labels,omitempty"`
					Prompts     []ioi.Prompt `json:"examples"`
				}{res, seed, ds.Names, residLabels, ds.Prompts[:min(show, len(ds.Prompts))]})
			}
			w := os.Stdout
			fmt.Fprintf(w, "model %s  %d IOI prompts (seed %d) in %d length groups; %d one-token names\n", dir, res.N, seed, len(batches), len(ds.Names))
			for _, pr := range ds.Prompts[:min(show, len(ds.Prompts))] {
				fmt.Fprintf(w, "  %q -> %q (S %q)   corrupt %q\n", pr.Text, " "+pr.IOName, " "+pr.SName, pr.CorruptText)
			}
			printIOI(w, res, residLabels)
			return nil
		},
	}
	f.register(c)
	c.Flags().IntVar(&n, "n", 200, "number of prompts")
	c.Flags().Uint64Var(&seed, "seed", 1, "seed for templates, names, places and objects")
	c.Flags().IntVar(&show, "show", 3, "example prompts to print")
	c.Flags().BoolVar(&noBOS, "no-bos", false, "do not prepend the BOS token")
	c.Flags().BoolVar(&noResid, "no-resid", false, "skip the per-position patching tables (residual: L x T, head z: L x NH x T configurations)")
	c.Flags().StringVar(&plotFile, "plot", "", "write heatmaps (.png or .svg): FILE (patch_head_z), FILE-dla (dla_head)")
	rootCmd.AddCommand(c)
}

func firstOfLength(ds *ioi.Dataset, T int) int {
	for i, p := range ds.Prompts {
		if len(p.Clean) == T {
			return i
		}
	}
	return 0
}

// tokenLabels decodes each id for column labels ("t:text").
func tokenLabels(tok *tokenizer.Tokenizer, ids []int32) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		s := tok.Decode([]int{int(id)})
		out[i] = fmt.Sprintf("%d:%s", i, strings.TrimSpace(s))
	}
	return out
}

func plotIOI(path string, res *ioi.Result) error {
	if path == "" {
		return nil
	}
	L := len(res.DLA.Head)
	NH := len(res.DLA.Head[0])
	var written []string
	if res.PatchHeadZ != nil {
		if err := plot.Heatmap(path, "IOI patching per head (1 = clean restored)", "head", "layer", layerLabels(L), headLabels(NH), res.PatchHeadZ, plot.BarLabel("(patched − corrupt) / (clean − corrupt)")); err != nil {
			return err
		}
		written = append(written, path)
	}
	pd := plotVariant(path, "dla")
	if err := plot.Heatmap(pd, "IOI direct logit attribution per head", "head", "layer", layerLabels(L), headLabels(NH), res.DLA.Head, plot.BarLabel("direct effect on logit(IO) − logit(S)")); err != nil {
		return err
	}
	logf("wrote %s", strings.Join(append(written, pd), ", "))
	return nil
}

// printIOI prints an IOI result as tables.
func printIOI(w io.Writer, res *ioi.Result, residLabels []string) {
	fmt.Fprintf(w, "\nlogit difference IO - S   clean %.4f   corrupt %.4f   IO preferred in %.1f%% of clean prompts\n",
		res.LDClean, res.LDCorrupt, 100*res.IOPreferred)
	if res.GapIsNoise {
		fmt.Fprintf(w, "the clean-corrupt gap %.4f is within 2 standard errors (SE %.4f) of zero: normalised patching values below are noise\n",
			res.LDClean-res.LDCorrupt, res.GapSE)
	}
	if res.GapReversed {
		fmt.Fprintf(w, "the clean-corrupt gap %.4f is negative by more than 2 standard errors (SE %.4f): the model does not do IOI on these prompts; normalised patching values below measure the reverse\n",
			res.LDClean-res.LDCorrupt, res.GapSE)
	}
	fmt.Fprintf(w, "\ndirect logit attribution per head (clean run, ln_f scale frozen)\n")
	printHeadTable(w, res.DLA.Head, "%8.4f")
	fmt.Fprintf(w, "top heads by |DLA|: %s\n", topAbs(res.DLA.Head, 5))
	fmt.Fprintf(w, "\nlayer  %9s %9s", "dla_mlp", "dla_b_O")
	if res.PatchMLP != nil {
		fmt.Fprintf(w, " %10s", "patch_mlp")
	}
	if res.PatchAttn != nil {
		fmt.Fprintf(w, " %10s", "patch_attn")
	}
	fmt.Fprintln(w)
	for l := range res.DLA.MLP {
		fmt.Fprintf(w, "%5d  %9.4f %9.4f", l, res.DLA.MLP[l], res.DLA.AttnBias[l])
		if res.PatchMLP != nil {
			fmt.Fprintf(w, " %10.4f", res.PatchMLP[l])
		}
		if res.PatchAttn != nil {
			fmt.Fprintf(w, " %10.4f", res.PatchAttn[l])
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "embedding %.4f   ln_f bias %.4f   sum of all DLA terms %.4f (= clean LD %.4f)\n",
		res.DLA.Embed, res.DLA.LNBias, res.DLA.Sum, res.LDClean)
	if res.PatchHeadZ != nil {
		fmt.Fprintf(w, "\nactivation patching per head z (corrupt run, clean z patched in; 1 = clean restored)\n")
		printHeadTable(w, res.PatchHeadZ, "%8.4f")
		fmt.Fprintf(w, "top heads by |patching effect|: %s\n", topAbs(res.PatchHeadZ, 5))
	}
	if res.PatchResid != nil {
		fmt.Fprintf(w, "\npatching blocks.l.hook_resid_pre at one position (the largest group, %d tokens", res.ResidT)
		if residLabels != nil {
			fmt.Fprintf(w, "; column labels are its first prompt's tokens")
		}
		fmt.Fprintf(w, ")\n")
		fmt.Fprintf(w, "%5s", "layer")
		labs, cw := posLabels(res.ResidT, residLabels)
		for _, lab := range labs {
			fmt.Fprintf(w, " %*s", cw, lab)
		}
		fmt.Fprintln(w)
		for l, r := range res.PatchResid {
			fmt.Fprintf(w, "%5d", l)
			for _, v := range r {
				if math.Abs(v) < 5e-4 {
					v = 0 // no "-0.000"
				}
				fmt.Fprintf(w, " %*.3f", cw, v)
			}
			fmt.Fprintln(w)
		}
	}
	printHeadPos(w, res, residLabels)
	fmt.Fprintf(w, "\nheads or MLPs? %s\n", res.Summary.Answer)
}

// posLabels are the column labels of a per-position table, whole (a token
// is never cut), and the column width: 8, or the longest label's.
func posLabels(T int, labels []string) ([]string, int) {
	out := make([]string, T)
	w := 8
	for t := range out {
		out[t] = fmt.Sprint(t)
		if labels != nil {
			out[t] = labels[t]
		}
		w = max(w, utf8.RuneCountInString(out[t]))
	}
	return out, w
}

// topAbs lists the n entries of an [L][NH] table with the largest |value|.
func topAbs(x [][]float64, n int) string {
	type hv struct {
		name string
		v    float64
	}
	var all []hv
	for l, r := range x {
		for h, v := range r {
			all = append(all, hv{fmt.Sprintf("%d.%d", l, h), v})
		}
	}
	sort.SliceStable(all, func(i, j int) bool { return math.Abs(all[i].v) > math.Abs(all[j].v) })
	var parts []string
	for _, e := range all[:min(n, len(all))] {
		parts = append(parts, fmt.Sprintf("%s %+.4f", e.name, e.v))
	}
	return strings.Join(parts, ", ")
}

// printHeadPos prints the head x position patching table (first group):
// one row per head with a visible effect somewhere (|value| >= 0.01), so
// that the table stays readable on models with many heads.
func printHeadPos(w io.Writer, res *ioi.Result, labels []string) {
	if res.PatchHeadPos == nil {
		return
	}
	fmt.Fprintf(w, "\npatching one head's z at one position (the largest group; heads with |effect| >= 0.01 somewhere)\n%6s", "head")
	labs, cw := posLabels(res.ResidT, labels)
	for _, lab := range labs {
		fmt.Fprintf(w, " %*s", cw, lab)
	}
	fmt.Fprintln(w)
	shown := 0
	for l, heads := range res.PatchHeadPos {
		for h, r := range heads {
			big := false
			for _, v := range r {
				big = big || math.Abs(v) >= 0.01
			}
			if !big {
				continue
			}
			shown++
			fmt.Fprintf(w, "%6s", fmt.Sprintf("%d.%d", l, h))
			for _, v := range r {
				if math.Abs(v) < 5e-4 {
					v = 0
				}
				fmt.Fprintf(w, " %*.3f", cw, v)
			}
			fmt.Fprintln(w)
		}
	}
	if shown == 0 {
		fmt.Fprintln(w, "(no head at any position moves the normalised logit difference by 0.01)")
	}
}
