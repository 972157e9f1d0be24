// Package plot draws the chart kinds the probes need, on gonum.org/v1/plot:
//
//   - Lines: several named series (x, y) on one chart, e.g. the logit-lens
//     loss per layer of two models, with a legend;
//   - Heatmap: a [rows][cols] table of values, e.g. a score per layer.head,
//     each cell coloured and labelled with its value, and a colour bar;
//   - Heatmaps: several such tables side by side (e.g. one per model in
//     `neoscope compare`) on ONE colour scale with one colour bar.
//   - Scatter: named points (x, y) with the line y = x, e.g. an attribution
//     estimate against exact patching, one point per head or edge, the
//     points farthest from y = x in red with their names;
//   - DrawGraph (graph.go): a layered drawing of a circuit.
//
// The format follows the file extension: .png (96 dpi raster) or .svg
// (vector); anything else is an error. Files are written atomically
// (internal/outfile): a failed plot leaves no partial file behind.
//
// Decisions:
//   - Heatmap colours: when the values have both signs the map is diverging
//     (Moreland's smooth blue-red) and symmetric about 0, so white means 0 and
//     equal magnitudes get equal saturation; otherwise sequential (Moreland's
//     Kindlmann, dark to light) over [min, max]. Cell labels are black or
//     white by the cell colour's luminance. NaN cells are grey, unlabelled
//     (never "NaN" text); infinite ones read ∞ or −∞.
//   - Every colour bar is labelled (BarLabel, else the figure's title).
//     Range fixes the scale, so charts of one quantity on several models,
//     drawn as separate figures (the report's columns), share colours:
//     Range(Scale(every model's table...)).
//   - Nothing is drawn within 0.12 in of a figure's edge; Lines' legend
//     sits inside the data area, clear of its frame.
//   - Row 0 is drawn at the top (as a table or TransformerLens' imshow reads).
//   - Cell labels use 3 significant digits and a font sized to the cell; the
//     figure grows with the number of columns and rows (readable to ~16x16).
//   - Lines skips NaN and ±Inf points (gonum refuses them) rather than
//     failing: a probe with an undefined value at one layer still plots.
//     Scatter skips such points likewise.
//   - Scatter's axes share one range, so y = x is the diagonal; with more
//     than 200 points the glyphs are smaller and translucent (an edge graph
//     has thousands). Names are placed toward the chart's centre.
package plot
