package attrib

import (
	"errors"
	"fmt"

	"github.com/neoscope/neoscope/runtime/forward"
)

// Agreement is attribution patching beside exact patching for every
// component and every edge of the graph: the data of a scatter chart (one
// point per head, MLP or edge) and the components where they disagree most.
type Agreement struct {
	Prompts   int     `json:"prompts"`    // rows over all tasks
	LDClean   float64 `json:"ld_clean"`   // mean over every row
	LDCorrupt float64 `json:"ld_corrupt"` // mean over every row
	// Nodes: every head "l.h" (layer-major) and MLP "mlp.l", AtP estimate
	// beside the exact change; Edges: every edge "S>R" in canonical order,
	// EAP estimate beside the exact change. Worst holds the k largest
	// |estimate - exact| of each.
	Nodes *Verification `json:"nodes"`
	Edges *Verification `json:"edges"`
}

// Compare computes, on the tasks together, every head's and MLP's AtP
// estimate and every edge's EAP estimate beside its exact value (patched LD
// - clean LD, all of them through the batched patching engine: the same
// path as Verify), their Pearson and Spearman correlations and the k worst
// disagreements of each.
//
// Several tasks (e.g. prompts grouped by length, one [B,T] batch each) are
// one experiment on all their rows: the metric is the mean over rows, and
// patching one component or edge acts on each prompt alone, so the
// estimate and the exact change over all rows are the row-weighted means
// (weights B/total) of the per-task ones, exactly.
func Compare(m *forward.Model, tasks []Task, k int) (*Agreement, error) {
	if len(tasks) == 0 {
		return nil, errors.New("attrib: compare: no prompts")
	}
	total := 0
	for _, t := range tasks {
		total += t.B
	}
	a := &Agreement{Prompts: total}
	var nodeNames []string
	var nodeEst, nodeExact, edgeEst, edgeExact []float64
	var edgeNames []string
	for i, t := range tasks {
		r, err := EAP(m, t)
		if err != nil {
			return nil, fmt.Errorf("attrib: compare: batch %d: %w", i, err)
		}
		nn, ne := nodeScores(r)
		names := append(append([]string{}, nn...), r.Edges...)
		exact, err := exactChanges(m, t, names)
		if err != nil {
			return nil, fmt.Errorf("attrib: compare: batch %d: %w", i, err)
		}
		if i == 0 {
			nodeNames, edgeNames = nn, r.Edges
			nodeEst, nodeExact = make([]float64, len(nn)), make([]float64, len(nn))
			edgeEst, edgeExact = make([]float64, len(r.Edges)), make([]float64, len(r.Edges))
		}
		w := float64(t.B) / float64(total)
		a.LDClean += w * r.LDClean
		a.LDCorrupt += w * r.LDCorrupt
		for j := range nn {
			nodeEst[j] += w * ne[j]
			nodeExact[j] += w * exact[j]
		}
		for j := range r.Edges {
			edgeEst[j] += w * r.EAP[j]
			edgeExact[j] += w * exact[len(nn)+j]
		}
	}
	a.Nodes = compare(nodeNames, nodeEst, nodeExact, k)
	a.Edges = compare(edgeNames, edgeEst, edgeExact, k)
	return a, nil
}
