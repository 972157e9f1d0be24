package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"image/color"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/neoscope/neoscope/internal/outfile"
	"github.com/neoscope/neoscope/probes/induction"
	"github.com/neoscope/neoscope/probes/plot"
	"github.com/neoscope/neoscope/probes/report"
	"github.com/neoscope/neoscope/runtime/arch"
	"github.com/neoscope/neoscope/runtime/circuit"
	"github.com/neoscope/neoscope/runtime/forward"
	"github.com/neoscope/neoscope/runtime/graph"
)

func init() {
	var f modelFlags
	var task, clean, corrupt, ioIDs, sIDs, metric, out, sweepTaus string
	var tau float64
	var resume, force bool
	var perPass, batch, period int
	var seed uint64
	c := &cobra.Command{
		Use:   "circuit",
		Short: "Automatic circuit discovery (ACDC) over the residual-stream edge graph",
		Long: `circuit runs ACDC (Conmy et al. 2023) over the edge graph of the fixtures'
CIRCUITS.md: senders embed, heads l.h, MLPs mlp.l; receivers each head's q, k,
v input, each MLP's input and the logits. Removing S>R gives R its input
with S's output replaced by S's output on the --corrupt prompts.

Receivers are visited from the logits back to layer 0 (the last layer's MLP,
its heads' v, k, q from the last head down, ...); a receiver whose node has
no kept outgoing edge loses its incoming edges unevaluated; otherwise each
incoming edge, in reverse canonical sender order, is removed when the
circuit without it is worse by less than --threshold (kl: KL(p_clean ||
p_without) - KL(p_clean || p_current); ld: LD_current - LD_without). The
next candidates of a receiver are evaluated in one pass speculatively, which
gives exactly the sequential algorithm's decisions.

Writes DIR/circuit.json (edges, metric, metric_full, metric_empty,
threshold, evaluations, passes, ...), DIR/circuit.dot, DIR/circuit.svg and
DIR/circuit.png, and DIR/journal.jsonl, the decisions so far: --resume
continues a killed run from it (refused when the model, prompts, answers,
metric or threshold differ). --sweep-thresholds adds the faithfulness curve
(the circuit's metric against TAU) as DIR/faithfulness.json and .png. None
of these files is replaced without --force (or --resume, which finishes the
run that wrote them).`,
		Example: `  neoscope circuit --model ../shared/fixtures/tiny-gpt2 --task patch --clean clean.json --corrupt corrupt.json \
      --io 509,365,453,469 --s 213,209,212,219 --metric kl --threshold 0.047 --out out/circuit
  neoscope circuit ... --sweep-thresholds 0.001,0.003,0.01,0.03,0.1`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			switch task {
			case "patch":
				if clean == "" || corrupt == "" {
					return usagef("--task patch needs --clean and --corrupt")
				}
			case "induction":
				if clean != "" || corrupt != "" {
					return usagef("--task induction draws its own prompts; give --clean/--corrupt with --task patch")
				}
			default:
				return usagef("--task %q: want patch (--clean/--corrupt prompt pairs) or induction (repeated random tokens, second half redrawn)", task)
			}
			if out == "" || !c.Flags().Changed("threshold") {
				return usagef("--threshold and --out are required")
			}
			met, err := circuit.ParseMetric(metric)
			if err != nil {
				return usagef("--metric: %v", err)
			}
			if met == circuit.LD && (ioIDs == "" || sIDs == "") {
				return usagef("--metric ld needs --io and --s")
			}
			if perPass < 0 {
				return usagef("--per-pass %d: want 0 (auto) or at least 1 circuit per pass", perPass)
			}
			taus, err := parseTaus(sweepTaus)
			if err != nil {
				return err
			}
			if st, err := os.Stat(out); err == nil && !st.IsDir() {
				return usagef("--out %s is a file; want a directory", out)
			}
			if resume && force {
				return usagef("--resume and --force contradict each other")
			}
			if _, err := os.Stat(filepath.Join(out, "journal.jsonl")); err == nil && !resume && !force {
				return usagef("%s holds a run (journal.jsonl): resume it with --resume, start over with --force, or choose another --out", out)
			}
			var cr, kr [][]int32
			if task == "patch" {
				if cr, kr, err = readPair(clean, corrupt); err != nil {
					return err
				}
			} else {
				if cr, kr, err = inductionPair(f.Model, batch, period, seed); err != nil {
					return err
				}
			}
			var io, s []int32
			if ioIDs != "" || sIDs != "" {
				if io, err = patchIDs("--io", ioIDs, len(cr)); err != nil {
					return err
				}
				if s, err = patchIDs("--s", sIDs, len(cr)); err != nil {
					return err
				}
			}
			dir, err := resolveModel(f.Model)
			if err != nil {
				return err
			}
			f.Model = dir
			// Every file this run writes into --out, checked before the
			// work: none replaced without --force (a resumed run rewrites its
			// own), none an input; the folder's other files are left alone.
			if !resume {
				files := []string{"journal.jsonl", "circuit.json", "circuit.dot", "circuit.svg", "circuit.png"}
				if len(taus) > 0 {
					files = append(files, "faithfulness.json", "faithfulness.png")
				}
				for _, name := range files {
					if err := checkOutput("--out", filepath.Join(out, name), force, dir, clean, corrupt); err != nil {
						return err
					}
				}
				if force {
					if err := os.Remove(filepath.Join(out, "journal.jsonl")); err != nil && !errors.Is(err, fs.ErrNotExist) {
						return err
					}
				}
			}
			m, err := f.open()
			if err != nil {
				return err
			}
			defer m.Close()
			cf, kf, B, T, err := checkPair(m, clean, corrupt, cr, kr)
			if err != nil {
				return err
			}
			t := circuit.Task{Clean: cf, Corrupt: kf, B: B, T: T, IO: io, S: s, Metric: met}
			if err := t.Check(m); err != nil {
				return usageError{err}
			}
			g := graph.New(m.Cfg.Layers, m.Cfg.Heads, m.Cfg.ParallelAt)
			hash, err := circuit.InputsHash(dir, t)
			if err != nil {
				return err
			}
			o := circuit.Options{Metric: met, Threshold: tau}
			if perPass == 0 {
				// Measured (benchmarks/circuit, README): on the CPU a pass
				// costs about its circuits' rows, so discarded speculations
				// are pure loss and one circuit a pass is fastest; a GPU
				// runs 16 circuits in about the time of one.
				perPass = 1
				if !strings.HasPrefix(m.BE.Name(), "cpu") {
					perPass = 16
				}
			}
			// The evaluator first: a run that cannot start leaves no journal.
			start := time.Now()
			ev, evName, err := newCircuitEvaluator(m, g, t, perPass)
			if err != nil {
				return err
			}
			j, replay, err := circuit.OpenJournal(filepath.Join(out, "journal.jsonl"),
				circuit.JournalHeader{Inputs: hash, Metric: met, Threshold: tau, Edges: len(g.Edges)}, resume)
			if err != nil {
				var pe *fs.PathError
				if errors.As(err, &pe) { // reading or creating the file failed
					return err
				}
				return usageError{err} // another run's journal, or not a journal
			}
			defer j.Close()
			if len(replay) > 0 {
				logf("circuit: resuming from %d journaled decisions", len(replay))
			}
			o.Replay, o.Record = replay, j.Record
			p := newProgress(len(g.Receivers), "circuit")
			o.Progress = func(done, _ int) { p.Set(done) }
			res, err := circuit.Run(g, ev, o)
			p.Finish()
			if err != nil {
				return err
			}
			sum := circuit.Summarize(g, res, o)
			sum.Inputs, sum.Evaluator, sum.Seconds = hash, evName, time.Since(start).Seconds()
			title := fmt.Sprintf("ACDC circuit, %s, %s threshold %g: %d of %d edges, %s %.4g (full %.4g, empty %.4g)",
				displayName(dir), met, tau, len(sum.Edges), len(g.Edges), met, sum.Metric, sum.MetricFull, sum.MetricEmpty)
			if err := writeCircuit(out, g, res, sum, title); err != nil {
				return err
			}
			if len(taus) > 0 {
				if err := faithfulness(out, g, ev, met, taus, sum); err != nil {
					return err
				}
			}
			if f.JSON {
				return printJSON(os.Stdout, sum)
			}
			fmt.Printf("%s\n", title)
			fmt.Printf("%d evaluations in %d passes (%d edges tried, %d replayed), %.1f s; wrote %s\n",
				sum.Evaluations, sum.Passes, sum.Tried, sum.Replayed, sum.Seconds, filepath.Join(out, "circuit.{json,dot,svg,png}"))
			for i, e := range sum.Edges {
				fmt.Printf("  %-20s effect %.4g\n", e, sum.Effects[i])
			}
			return nil
		},
	}
	f.register(c)
	c.Flags().StringVar(&task, "task", "patch", "patch: --clean/--corrupt prompt pairs; induction: repeated random tokens, corrupt = second half redrawn")
	c.Flags().StringVar(&clean, "clean", "", "JSON token file: the clean prompts [[ids...], ...]")
	c.Flags().StringVar(&corrupt, "corrupt", "", "JSON token file: the corrupt prompts, same shape")
	c.Flags().StringVar(&ioIDs, "io", "", "comma-separated answer ids, one per row (needed for --metric ld)")
	c.Flags().StringVar(&sIDs, "s", "", "comma-separated counterfactual ids, one per row (needed for --metric ld)")
	c.Flags().StringVar(&metric, "metric", "kl", "kl: mean KL(p_clean || p_circuit) at the last position; ld: mean logits[io]-logits[s] there")
	c.Flags().Float64Var(&tau, "threshold", 0, "TAU: an edge is removed when the circuit without it is worse by less than this")
	c.Flags().StringVar(&out, "out", "", "output directory")
	c.Flags().BoolVar(&resume, "resume", false, "continue a killed run from DIR/journal.jsonl")
	c.Flags().BoolVar(&force, "force", false, "start over in an --out that holds a run, replacing the files this command writes there")
	c.Flags().IntVar(&perPass, "per-pass", 0, "circuits evaluated per forward pass, the speculation depth (0: 1 on the CPU, 16 on a GPU)")
	c.Flags().IntVar(&batch, "batch", 8, "--task induction: prompt rows")
	c.Flags().IntVar(&period, "period", 10, "--task induction: P, the length of the repeated half")
	c.Flags().Uint64Var(&seed, "seed", 1, "--task induction: random seed (the corrupt halves use seed+1)")
	c.Flags().StringVar(&sweepTaus, "sweep-thresholds", "", "comma-separated thresholds for the faithfulness curve (DIR/faithfulness.json, .png)")
	rootCmd.AddCommand(c)
}

// newCircuitEvaluator is the batched patching engine of runtime/sweep
// (circuit.NewEngineEvaluator); where the engine refuses the model (edges
// on a family it does not patch yet), the plain hook evaluator, which is
// also the reference the tests compare with.
func newCircuitEvaluator(m *forward.Model, g *graph.Graph, t circuit.Task, perPass int) (circuit.Evaluator, string, error) {
	if ev, err := circuit.NewEngineEvaluator(m, g, t, perPass); err == nil {
		return ev, "sweep engine", nil
	}
	ev, err := circuit.NewHookEvaluator(m, g, t, perPass)
	return ev, "hooks", err
}

// inductionPair draws --task induction's prompts: the rows `neoscope
// induction` draws for the same --batch, --period and --seed, and the same
// rows with the second half redrawn.
func inductionPair(model string, batch, period int, seed uint64) (clean, corrupt [][]int32, err error) {
	dir, err := resolveModel(model)
	if err != nil {
		return nil, nil, err
	}
	cfg, err := arch.Load(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, nil, usageError{err}
	}
	if 2*period > cfg.Context {
		return nil, nil, usagef("--period %d: 2x%d tokens exceed the model's context of %d", period, period, cfg.Context)
	}
	keep, _ := candidateFilter(dir, cfg.Vocab)
	cands := induction.Candidates(cfg.Vocab, keep)
	if clean, err = induction.RepeatedTokens(cands, batch, period, seed); err != nil {
		return nil, nil, usageError{err}
	}
	if corrupt, err = induction.RedrawSecondHalf(clean, cands, seed+1); err != nil {
		return nil, nil, usageError{err}
	}
	return clean, corrupt, nil
}

func parseTaus(s string) ([]float64, error) {
	if s == "" {
		return nil, nil
	}
	var out []float64
	for _, p := range strings.Split(s, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || v != v {
			return nil, usagef("--sweep-thresholds: %q is not a number", p)
		}
		out = append(out, v)
	}
	return out, nil
}

// writeCircuit writes circuit.json, .dot, .svg and .png into dir, each atomically.
func writeCircuit(dir string, g *graph.Graph, res *circuit.Result, sum circuit.Summary, title string) error {
	if err := outfile.Write(filepath.Join(dir, "circuit.json"), func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", " ")
		enc.SetEscapeHTML(false) // edge names keep their '>'
		return enc.Encode(sum)
	}); err != nil {
		return err
	}
	if err := outfile.Write(filepath.Join(dir, "circuit.dot"), func(w io.Writer) error {
		return circuit.WriteDOT(w, g, res, title)
	}); err != nil {
		return err
	}
	nodes, edges := circuit.Diagram(g, res)
	pg := plot.Graph{Title: title, Legend: []string{"heads coloured by layer; edges into q blue, k green, v red; width = effect of removing the edge"}}
	for _, n := range nodes {
		grp := n.Layer
		pg.Nodes = append(pg.Nodes, plot.GraphNode{Name: n.Name, Rank: n.Rank, Group: grp})
	}
	for _, e := range edges {
		port := map[byte]int{'q': -1, 'k': 0, 'v': 1}[e.Input]
		pg.Edges = append(pg.Edges, plot.GraphEdge{From: e.From, To: e.To, Port: port, Weight: e.Weight, Color: hexColor(circuit.InputColor(e.Input))})
	}
	for _, ext := range []string{"svg", "png"} {
		if err := plot.DrawGraph(filepath.Join(dir, "circuit."+ext), pg); err != nil {
			return err
		}
	}
	return nil
}

func hexColor(s string) color.Color {
	var r, g, b uint8
	fmt.Sscanf(s, "#%02x%02x%02x", &r, &g, &b)
	return color.RGBA{R: r, G: g, B: b, A: 255}
}

// faithfulness runs ACDC at every threshold and writes the circuit's metric
// against TAU (faithfulness.json and .png).
func faithfulness(dir string, g *graph.Graph, ev circuit.Evaluator, met circuit.Metric, taus []float64, main circuit.Summary) error {
	type point struct {
		Threshold float64 `json:"threshold"`
		Metric    float64 `json:"metric"`
		Edges     int     `json:"edges"`
	}
	var pts []point
	p := newProgress(len(taus), "faithfulness")
	for i, tau := range taus {
		r, err := circuit.Run(g, ev, circuit.Options{Metric: met, Threshold: tau})
		if err != nil {
			return err
		}
		pts = append(pts, point{tau, r.Metric, len(r.Kept(g))})
		p.Set(i + 1)
	}
	p.Finish()
	if err := outfile.Write(filepath.Join(dir, "faithfulness.json"), func(w io.Writer) error {
		return json.NewEncoder(w).Encode(map[string]any{"metric_name": met, "metric_full": main.MetricFull,
			"metric_empty": main.MetricEmpty, "points": pts})
	}); err != nil {
		return err
	}
	cur := plot.Series{Name: fmt.Sprintf("circuit %s", met)}
	full := plot.Series{Name: "full model"}
	empty := plot.Series{Name: "empty circuit"}
	for _, q := range pts {
		cur.X, cur.Y = append(cur.X, q.Threshold), append(cur.Y, q.Metric)
		full.X, full.Y = append(full.X, q.Threshold), append(full.Y, main.MetricFull)
		empty.X, empty.Y = append(empty.X, q.Threshold), append(empty.Y, main.MetricEmpty)
		logf("  threshold %-10g %s %.5g  %d edges", q.Threshold, met, q.Metric, q.Edges)
	}
	return plot.Lines(filepath.Join(dir, "faithfulness.png"), "ACDC faithfulness: the circuit's metric against the threshold",
		"threshold TAU", string(met), []plot.Series{cur, full, empty})
}

// readCircuitFigures reads `neoscope circuit` output folders for the report
// (circuit.json and circuit.png), with errors naming the file.
func readCircuitFigures(dirs []string) ([]report.Circuit, error) {
	var out []report.Circuit
	for _, d := range dirs {
		path := filepath.Join(d, "circuit.json")
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, usagef("--circuit %s: %v (want a `neoscope circuit` output folder)", d, err)
		}
		var s circuit.Summary
		if err := json.Unmarshal(b, &s); err != nil || s.Edges == nil || s.TotalEdges == 0 {
			return nil, usagef("--circuit: %s is not a `neoscope circuit` result (%v)", path, err)
		}
		png := filepath.Join(d, "circuit.png")
		if _, err := os.Stat(png); err != nil {
			return nil, usagef("--circuit: %v", err)
		}
		c := report.Circuit{Title: fmt.Sprintf("%s, %s threshold %g", d, s.MetricName, s.Threshold), PNG: png,
			Facts: []report.KV{
				{Key: "edges kept", Value: fmt.Sprintf("%d of %d", len(s.Edges), s.TotalEdges)},
				{Key: "circuit " + string(s.MetricName), Value: fmt.Sprintf("%.4g", s.Metric)},
				{Key: "full model / empty circuit", Value: fmt.Sprintf("%.4g / %.4g", s.MetricFull, s.MetricEmpty)},
				{Key: "evaluations / passes", Value: fmt.Sprintf("%d / %d (%s evaluator)", s.Evaluations, s.Passes, s.Evaluator)},
			}}
		order := make([]int, len(s.Edges))
		for i := range order {
			order[i] = i
		}
		eff := func(i int) float64 {
			if i < len(s.Effects) && s.Effects[i] == s.Effects[i] {
				return s.Effects[i]
			}
			return 0
		}
		sort.SliceStable(order, func(a, b int) bool { return eff(order[a]) > eff(order[b]) })
		for _, i := range order[:min(len(order), 12)] {
			c.Edges = append(c.Edges, report.KV{Key: s.Edges[i], Value: fmt.Sprintf("%.4g", eff(i))})
		}
		out = append(out, c)
	}
	return out, nil
}
