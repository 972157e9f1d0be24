package main

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/neoscope/neoscope/internal/outfile"
	"github.com/neoscope/neoscope/probes/attrib"
	"github.com/neoscope/neoscope/probes/ioi"
	"github.com/neoscope/neoscope/probes/plot"
	"github.com/neoscope/neoscope/runtime/backend"
	"github.com/neoscope/neoscope/runtime/forward"
)

func init() {
	var f modelFlags
	var task, clean, corrupt, ioIDs, sIDs, metric, method, format, out, plotFile, scatterFile string
	var pos, verify, top int
	var force bool
	c := &cobra.Command{
		Use:   "attribute",
		Short: "Attribution patching: AtP per head, position and MLP, EAP per edge, from one backward pass",
		Long: `attribute estimates, to first order, what patching each component (AtP) or
each edge of the residual-stream graph (EAP) from the CORRUPT run into the CLEAN
run does to the logit difference M = mean over rows of logits[b,pos,io_b] -
logits[b,pos,s_b] (pos defaults to the last position), from one clean forward,
one corrupt forward and one backward pass:

  atp_head_z[l][h]  sum over rows, positions, d_head of (z_corrupt - z_clean) * dM/dz
  atp_head_z_pos    the same per position [l][h][t]
  atp_mlp_out[l]    sum of (mlp_out_corrupt - mlp_out_clean) * dM/d mlp_out
  eap (per edge S>R) sum of (out_S(corrupt) - out_S(clean)) * dM/d(input of R)

Each estimates patched M minus clean M. Edges and their order are those of
the fixtures' CIRCUITS.md (runtime/graph). --method atp prints the node
scores (tables, or JSON with --json); --method eap adds one score per edge
(--format csv --out FILE writes columns config,eap). --plot FILE draws the
per-head AtP heatmap. --verify N re-evaluates the N largest |scores| exactly;
--plot-scatter FILE then draws those estimates against their exact values
(y = x marks agreement; the 5 worst misses are named).`,
		Example: `  neoscope attribute --model ../shared/fixtures/tiny-neo --task patch --clean clean.json \
      --corrupt corrupt.json --io 189,119,56,126 --s 122,321,324,487 --metric ld --method atp --json
  neoscope attribute ... --method eap --format csv --out eap.csv`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if task != "patch" {
				return usagef("--task %q: want patch (clean/corrupt prompts with --io and --s)", task)
			}
			if clean == "" || corrupt == "" || ioIDs == "" || sIDs == "" {
				return usagef("--clean, --corrupt, --io and --s are required")
			}
			switch metric {
			case "ld":
			case "kl":
				return usagef("--metric kl: KL(p_clean || p) has a zero gradient on the clean run, so its attribution estimate is identically 0; use --metric ld")
			default:
				return usagef("--metric %q: want ld", metric)
			}
			switch method {
			case "atp", "eap":
			case "atp*":
				return usagef("--method atp*: not implemented yet (AtP*'s fix for saturated attention); use atp or eap")
			default:
				return usagef("--method %q: want atp or eap", method)
			}
			if format == "" && out != "" {
				format = strings.TrimPrefix(strings.ToLower(filepath.Ext(out)), ".")
			}
			switch format {
			case "", "json", "csv":
			default:
				return usagef("--format %q: want csv or json", format)
			}
			if format != "" && out == "" {
				return usagef("--format %s needs --out FILE", format)
			}
			if err := checkPlotPath(plotFile); err != nil {
				return err
			}
			if verify < 0 {
				return usagef("--verify %d: want a count >= 0", verify)
			}
			if scatterFile != "" {
				if verify == 0 {
					return usagef("--plot-scatter needs --verify N (the exact values it plots)")
				}
				if e := strings.ToLower(filepath.Ext(scatterFile)); e != ".png" && e != ".svg" {
					return usagef("--plot-scatter %q: want a .png or .svg file name", scatterFile)
				}
			}
			cr, kr, ioAns, s, err := readPatchTask(clean, corrupt, ioIDs, sIDs)
			if err != nil {
				return err
			}
			dir, err := resolveModel(f.Model)
			if err != nil {
				return err
			}
			f.Model = dir
			if err := checkOutput("--out", out, force, clean, corrupt, dir); err != nil {
				return err
			}
			if err := checkOutput("--plot-scatter", scatterFile, force, clean, corrupt, dir, out); err != nil {
				return err
			}
			m, err := openGrad(&f)
			if err != nil {
				return err
			}
			defer m.Close()
			cf, kf, B, T, err := checkPair(m, clean, corrupt, cr, kr)
			if err != nil {
				return err
			}
			if pos, err = answerPos(pos, c.Flags().Changed("pos"), T); err != nil {
				return err
			}
			// The same checks as patch's (ids in the vocabulary, one IO and
			// S per row, IO != S).
			bt := ioi.Batch{Clean: cf, Corrupt: kf, B: B, T: T, Pos: pos, IO: ioAns, S: s}
			if err := bt.Check(m); err != nil {
				return usageError{err}
			}
			t := attrib.Task{Clean: cf, Corrupt: kf, B: B, T: T, Pos: pos, IO: ioAns, S: s}
			run := attrib.AtP
			if method == "eap" {
				run = attrib.EAP
			}
			res, err := run(m, t)
			if err != nil {
				return err
			}
			if verify > 0 {
				if err := attrib.Verify(m, t, res, verify); err != nil {
					return err
				}
			}
			if plotFile != "" {
				L, H := len(res.HeadZ), len(res.HeadZ[0])
				if err := plot.Heatmap(plotFile, "AtP estimate per head (patched LD - clean LD)", "head", "layer", layerLabels(L), headLabels(H), res.HeadZ, plot.BarLabel("estimated change of the logit difference")); err != nil {
					return err
				}
				logf("wrote %s", plotFile)
			}
			if scatterFile != "" {
				if err := plotVerify(scatterFile, res, method); err != nil {
					return err
				}
				logf("wrote %s", scatterFile)
			}
			if out != "" {
				if format == "csv" {
					err = outfile.Write(out, func(w io.Writer) error { return writeAttribCSV(w, res, method) })
				} else {
					err = outfile.Write(out, func(w io.Writer) error { return printJSON(w, roundResult(res)) })
				}
				if err != nil {
					return err
				}
				logf("wrote %s", out)
			}
			if f.JSON {
				return printJSON(os.Stdout, roundResult(res))
			}
			printAttrib(os.Stdout, res, top)
			return nil
		},
	}
	f.register(c)
	c.Flags().StringVar(&task, "task", "patch", "patch: clean/corrupt prompts with --io and --s")
	c.Flags().StringVar(&clean, "clean", "", "JSON token file: the clean prompts [[ids...], ...]")
	c.Flags().StringVar(&corrupt, "corrupt", "", "JSON token file: the corrupt prompts, same shape")
	c.Flags().StringVar(&ioIDs, "io", "", "comma-separated answer ids, one per row (the indirect object)")
	c.Flags().StringVar(&sIDs, "s", "", "comma-separated counterfactual ids, one per row (the subject)")
	c.Flags().IntVar(&pos, "pos", -1, "position whose logits are read (default: the last)")
	c.Flags().StringVar(&metric, "metric", "ld", "ld (logit difference io - s)")
	c.Flags().StringVar(&method, "method", "atp", "atp (heads, positions, MLPs) or eap (every edge too)")
	c.Flags().StringVar(&format, "format", "", "csv or json for --out (default: from its extension)")
	c.Flags().StringVar(&out, "out", "", "write the scores to FILE (csv: config and score columns)")
	c.Flags().StringVar(&plotFile, "plot", "", "write the per-head AtP heatmap (.png or .svg)")
	c.Flags().IntVar(&verify, "verify", 0, "re-evaluate the N largest |scores| exactly through the batched patching engine; prints the rank correlation and the worst misses")
	c.Flags().StringVar(&scatterFile, "plot-scatter", "", "with --verify N: write the estimates against their exact values (.png or .svg)")
	c.Flags().IntVar(&top, "top", 10, "edges listed in the table output")
	c.Flags().BoolVar(&force, "force", false, "replace an existing --out")
	rootCmd.AddCommand(c)
}

// plotVerify draws --verify's estimates against their exact values.
func plotVerify(path string, r *attrib.Result, method string) error {
	v := r.Verify
	pts := make([]plot.Point, len(v.Names))
	for i, n := range v.Names {
		pts[i] = plot.Point{Name: n, X: v.Exact[i], Y: v.Estimate[i]}
	}
	what := "AtP"
	if method == "eap" {
		what = "EAP"
	}
	return plot.Scatter(path, fmt.Sprintf("%s vs exact patching, the %d largest |estimates|", what, len(pts)),
		"exact change of the logit difference (patched - clean)", what+" estimate", pts, len(v.Worst))
}

// openGrad opens the model on a backend with a backward pass: with
// --backend auto, the CPU when the GPU backend has none (the CUDA backward
// kernels in kernels/backward.cu are not wired into cuda/ yet).
func openGrad(f *modelFlags) (*forward.Model, error) {
	m, err := f.open()
	if err != nil {
		return nil, err
	}
	if _, ok := m.BE.(backend.Grad); ok {
		return m, nil
	}
	name := m.BE.Name()
	m.Close()
	if f.Backend != "auto" && f.Backend != "" {
		return nil, usagef("--backend %s: %s has no backward pass yet; use --backend cpu", f.Backend, name)
	}
	logf("backend: %s has no backward pass yet; running on the CPU", name)
	f.Backend = "cpu"
	return f.open()
}

// sameFile reports whether a and b name the same existing file.
func sameFile(a, b string) bool {
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}

// roundResult rounds every score to float32's 9 significant digits for JSON.
func roundResult(r *attrib.Result) *attrib.Result {
	c := *r
	c.LDClean, c.LDCorrupt = outfile.Round(r.LDClean), outfile.Round(r.LDCorrupt)
	rv := func(v []float64) []float64 {
		if v == nil {
			return nil
		}
		o := make([]float64, len(v))
		for i, x := range v {
			o[i] = outfile.Round(x)
		}
		return o
	}
	c.MLPOut, c.EAP = rv(r.MLPOut), rv(r.EAP)
	c.HeadZ = make([][]float64, len(r.HeadZ))
	c.HeadZPos = make([][][]float64, len(r.HeadZPos))
	for l := range r.HeadZ {
		c.HeadZ[l] = rv(r.HeadZ[l])
		c.HeadZPos[l] = make([][]float64, len(r.HeadZPos[l]))
		for h := range r.HeadZPos[l] {
			c.HeadZPos[l][h] = rv(r.HeadZPos[l][h])
		}
	}
	return &c
}

// writeAttribCSV: atp rows are heads "l.h", MLPs "mlp.l" and head x
// position "l.h@t" (column atp); eap rows are edges "S>R" (column eap).
func writeAttribCSV(w io.Writer, r *attrib.Result, method string) error {
	cw := csv.NewWriter(w)
	g := func(x float64) string { return strconv.FormatFloat(x, 'g', 9, 64) }
	if method == "eap" {
		cw.Write([]string{"config", "eap"})
		for i, e := range r.Edges {
			cw.Write([]string{e, g(r.EAP[i])})
		}
	} else {
		cw.Write([]string{"config", "atp"})
		for l := range r.HeadZ {
			for h, v := range r.HeadZ[l] {
				cw.Write([]string{fmt.Sprintf("%d.%d", l, h), g(v)})
			}
			cw.Write([]string{fmt.Sprintf("mlp.%d", l), g(r.MLPOut[l])})
		}
		for l := range r.HeadZPos {
			for h := range r.HeadZPos[l] {
				for t, v := range r.HeadZPos[l][h] {
					cw.Write([]string{fmt.Sprintf("%d.%d@%d", l, h, t), g(v)})
				}
			}
		}
	}
	cw.Flush()
	return cw.Error()
}

func printAttrib(w io.Writer, r *attrib.Result, top int) {
	fmt.Fprintf(w, "logit difference io - s   clean %.4f   corrupt %.4f   (estimates are patched - clean; exact total %.4f)\n",
		r.LDClean, r.LDCorrupt, r.LDCorrupt-r.LDClean)
	fmt.Fprintf(w, "\nAtP per head z (corrupt z into the clean run)\n")
	printHeadTable(w, r.HeadZ, "%8.4f")
	fmt.Fprintf(w, "top heads by |AtP|: %s\n", topAbs(r.HeadZ, 5))
	fmt.Fprintf(w, "\nlayer  %10s\n", "atp_mlp")
	for l, v := range r.MLPOut {
		fmt.Fprintf(w, "%5d  %10.4f\n", l, v)
	}
	if r.EAP != nil {
		idx := make([]int, len(r.EAP))
		for i := range idx {
			idx[i] = i
		}
		sort.SliceStable(idx, func(a, b int) bool { return math.Abs(r.EAP[idx[a]]) > math.Abs(r.EAP[idx[b]]) })
		fmt.Fprintf(w, "\nEAP: %d edges; the %d largest |scores|\n", len(r.EAP), min(top, len(idx)))
		for _, i := range idx[:min(top, len(idx))] {
			fmt.Fprintf(w, "  %-16s %10.4f\n", r.Edges[i], r.EAP[i])
		}
	}
	if v := r.Verify; v != nil {
		fmt.Fprintf(w, "\nverified exactly (batched patching, corrupt into clean): the %d largest |estimates|\n", len(v.Names))
		fmt.Fprintf(w, "  %-16s %10s %10s\n", "", "estimate", "exact")
		for i, n := range v.Names {
			fmt.Fprintf(w, "  %-16s %10.4f %10.4f\n", n, v.Estimate[i], v.Exact[i])
		}
		fmt.Fprintf(w, "rank correlation (Spearman) %.3f, Pearson %.3f; worst misses:", v.Spearman, v.Pearson)
		for _, i := range v.Worst {
			fmt.Fprintf(w, " %s (%.4f vs %.4f)", v.Names[i], v.Estimate[i], v.Exact[i])
		}
		fmt.Fprintln(w)
	}
}
