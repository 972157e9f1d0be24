package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/neoscope/neoscope/models"
	"github.com/neoscope/neoscope/probes/report"
)

func init() {
	var f modelFlags
	var in inputFlags
	var compare, out, title string
	var ioiN int
	var circuitDirs []string
	var opt report.Options
	c := &cobra.Command{
		Use:   "report",
		Short: "Run the seed experiments and write one self-contained HTML page",
		Long: `report runs the seed experiments in-process on a model (and, with --compare, on a
second one beside it) and writes DIR/index.html: model card, embedding
geometry, logit lens, induction and previous-token heads, head and layer
ablation, and IOI (models with a tokenizer), with every chart embedded in the
page (and saved as PNG beside it) and every table in DIR/results.json. The
page needs nothing else: no network, no other files.

Tokens: --tokens, --prompt or --text are used by the lens and the ablation.
Without them the lens reads Genesis 1:1-5 through the model's tokenizer and the
ablation runs on the induction task's repeated random tokens (loss on the
second half); a model without a tokenizer uses those for the lens too. The
folder is built aside and renamed into place; an existing DIR is replaced only
when it holds an earlier report. With --json, stdout gets the written paths.`,
		Example: `  neoscope report --out out/report
  neoscope report --model ../shared/fixtures/tiny-neo --compare ../shared/fixtures/tiny-gpt2 --out out/cmp
  neoscope report --text verses.txt --out out/report`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if out == "" {
				return usagef("--out DIR is required")
			}
			if err := report.CheckOut(out); err != nil {
				return usagef("--out: %v", err)
			}
			noteMissingFolder("--out", out)
			circuits, err := readCircuitFigures(circuitDirs)
			if err != nil {
				return err
			}
			if opt.RepBatch < 1 || opt.RepPeriod < 2 || opt.TopK < 1 {
				return usagef("--rep-batch and --top must be at least 1, --rep-period at least 2")
			}
			switch {
			case ioiN < 0:
				return usagef("--ioi-prompts must be 0 or more, got %d", ioiN)
			case ioiN == 0:
				opt.IOIPrompts = -1
			default:
				opt.IOIPrompts = ioiN
			}
			if opt.AttribEdges < 0 {
				return usagef("--attrib-edges must be 0 (every edge) or more, got %d", opt.AttribEdges)
			}
			if opt.AttribEdges == 0 {
				opt.AttribEdges = -1
			}
			specs := []string{f.Model}
			if c.Flags().Changed("compare") {
				for _, m := range strings.Split(compare, ",") {
					if strings.TrimSpace(m) == "" {
						return usagef("--compare %q: an empty model in the list", compare)
					}
					specs = append(specs, strings.TrimSpace(m))
				}
			}
			be, err := f.openBackend()
			if err != nil {
				return err
			}
			opt.Log = logf
			opt.Progress = func(desc string) (func(done, total int), func()) {
				p := newProgress(0, desc)
				return p.Callback(), p.Finish
			}
			// Resolve, load and check the inputs of every model before the
			// first experiment, so bad input fails at once.
			inputs := make([]report.Input, len(specs))
			seen := map[string]int{}
			defer func() {
				for _, x := range inputs {
					if x.Model != nil {
						x.Model.Close()
					}
				}
			}()
			for i, spec := range specs {
				flag := "--model"
				if i > 0 {
					flag = "--compare"
				}
				dir, err := resolveModelFlag(flag, spec)
				if err != nil {
					return err
				}
				name := modelName(spec)
				if seen[name]++; seen[name] > 1 {
					name = fmt.Sprintf("%s (%d)", name, seen[name])
				}
				inputs[i] = report.Input{Name: name, Dir: dir}
			}
			for i := range inputs {
				input := &inputs[i]
				logf("%s: loading %s", input.Name, input.Dir)
				if input.Model, err = openModel(be, input.Dir); err != nil {
					return err
				}
				if in.given() {
					flat, B, T, err := in.rows(input.Model, input.Dir)
					if err != nil {
						return fmt.Errorf("%s: %w", input.Name, err)
					}
					input.Rows = make([][]int32, B)
					for b := range B {
						input.Rows[b] = flat[b*T : (b+1)*T]
					}
					input.RowsSource = inputSource(&in)
				}
			}
			var results []*report.Result
			for _, input := range inputs {
				res, err := report.Analyze(input, opt)
				if err != nil {
					return err
				}
				results = append(results, res)
			}
			if title == "" {
				names := make([]string, len(results))
				for i, r := range results {
					names[i] = r.Name
				}
				title = "neoscope report: " + strings.Join(names, " vs ")
			}
			logf("writing %s", out)
			if err := report.Write(out, report.Page{Title: title, Command: commandLine(), Version: version(), Results: results, TopK: opt.TopK, Circuits: circuits}); err != nil {
				return err
			}
			index := filepath.Join(out, "index.html")
			if f.JSON {
				return printJSON(os.Stdout, map[string]string{"out": out, "index": index, "results": filepath.Join(out, "results.json")})
			}
			fmt.Printf("report: %s\n", index)
			return nil
		},
	}
	f.register(c)
	in.register(c)
	in.registerBOS(c)
	c.Flags().StringVar(&compare, "compare", "", "more models (directory or hub id; comma-separated for several) shown beside the first")
	c.Flags().StringVar(&out, "out", "", "output folder (required); gets index.html, the charts as PNG and results.json")
	c.Flags().StringVar(&title, "title", "", "page title (default: neoscope report: MODEL [vs MODEL2])")
	c.Flags().IntVar(&opt.RepBatch, "rep-batch", 8, "rows of repeated random tokens for the induction section")
	c.Flags().IntVar(&opt.RepPeriod, "rep-period", 32, "length P of each half of a repeated row (cut to n_ctx/2)")
	c.Flags().Uint64Var(&opt.Seed, "seed", 1, "seed of the random tokens (induction, embedding sample) and of the IOI prompts")
	c.Flags().IntVar(&opt.TopK, "top", 5, "heads listed under each heatmap")
	c.Flags().StringArrayVar(&circuitDirs, "circuit", nil, "an output `DIR` of neoscope circuit to show (repeatable)")
	c.Flags().IntVar(&ioiN, "ioi-prompts", 40, "IOI prompts (for models with a tokenizer); 0 leaves IOI out")
	c.Flags().IntVar(&opt.AttribEdges, "attrib-edges", 1000, "edges patched exactly beside their EAP estimate (the largest |EAP| and a sample of the rest); 0: every edge")
	rootCmd.AddCommand(c)
}

// modelName is how the page names a model: the bundled one by its name, a
// directory by its last element, a hub id as written.
func modelName(spec string) string {
	if spec == "" {
		return models.Name + " (bundled)"
	}
	if st, err := os.Stat(spec); err == nil && st.IsDir() {
		return displayName(spec)
	}
	return spec
}

// inputSource describes the ablation tokens' origin for the page.
func inputSource(in *inputFlags) string {
	switch {
	case in.Tokens != "":
		return "--tokens " + filepath.Base(in.Tokens)
	case in.Text != "":
		return "--text " + filepath.Base(in.Text)
	}
	return fmt.Sprintf("%d --prompt text(s)", len(in.Prompt))
}

// commandLine is the command as typed, quoted where needed, for the page.
func commandLine() string {
	parts := []string{"neoscope"}
	for _, a := range os.Args[1:] {
		if a == "" || strings.ContainsAny(a, " \t\n\"'$\\") {
			a = strconv.Quote(a)
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}
