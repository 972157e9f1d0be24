package attrib

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"

	"github.com/neoscope/neoscope/runtime/forward"
)

// Agreement is attribution patching beside exact patching for every
// component and every edge of the graph (or a stated subset of the edges):
// the data of a scatter chart (one point per head, MLP or edge) and the
// components where they disagree most.
type Agreement struct {
	Prompts   int     `json:"prompts"`    // rows over all tasks
	LDClean   float64 `json:"ld_clean"`   // mean over every row
	LDCorrupt float64 `json:"ld_corrupt"` // mean over every row
	// Nodes: every head "l.h" (layer-major) and MLP "mlp.l", AtP estimate
	// beside the exact change; Edges: the edges "S>R" in canonical order,
	// EAP estimate beside the exact change. Worst holds the k largest
	// |estimate - exact| of each.
	Nodes *Verification `json:"nodes"`
	Edges *Verification `json:"edges"`
	// GraphEdges is the number of edges in the graph; when it exceeds
	// Compare's maxEdges, Edges holds the maxEdges/2 largest |EAP| and a
	// uniform sample of the rest (EdgesSampled is then true).
	GraphEdges   int  `json:"graph_edges"`
	EdgesSampled bool `json:"edges_sampled"`
}

// Compare computes, on the tasks together, every head's and MLP's AtP
// estimate and every edge's EAP estimate beside its exact value (patched LD
// - clean LD, all of them through the batched patching engine: the same
// path as Verify), their Pearson and Spearman correlations and the k worst
// disagreements of each.
//
// Exact edge patching costs a partial forward pass per edge (hours for the
// 32,491 edges of a GPT-Neo-125M-shaped model on a few cores), so
// maxEdges > 0 caps the edges evaluated: when the graph has more, the
// maxEdges/2 largest |EAP| (where a screen looks) and a seeded uniform
// sample of the others (where its misses hide: large exact effects with
// small estimates) make up maxEdges, in canonical order. maxEdges <= 0
// evaluates every edge.
//
// Several tasks (e.g. prompts grouped by length, one [B,T] batch each) are
// one experiment on all their rows: the metric is the mean over rows, and
// patching one component or edge acts on each prompt alone, so the
// estimate and the exact change over all rows are the row-weighted means
// (weights B/total) of the per-task ones, exactly.
func Compare(m *forward.Model, tasks []Task, k, maxEdges int) (*Agreement, error) {
	if len(tasks) == 0 {
		return nil, errors.New("attrib: compare: no prompts")
	}
	total := 0
	for _, t := range tasks {
		total += t.B
	}
	a := &Agreement{Prompts: total}
	w := func(t Task) float64 { return float64(t.B) / float64(total) }

	// The estimates, all from one backward pass per task.
	var nodeNames, edgeNames []string
	var nodeEst, edgeEst []float64
	for i, t := range tasks {
		r, err := EAP(m, t)
		if err != nil {
			return nil, fmt.Errorf("attrib: compare: batch %d: %w", i, err)
		}
		nn, ne := nodeScores(r)
		if i == 0 {
			nodeNames, edgeNames = nn, r.Edges
			nodeEst, edgeEst = make([]float64, len(nn)), make([]float64, len(r.Edges))
		}
		a.LDClean += w(t) * r.LDClean
		a.LDCorrupt += w(t) * r.LDCorrupt
		for j := range nn {
			nodeEst[j] += w(t) * ne[j]
		}
		for j := range r.Edges {
			edgeEst[j] += w(t) * r.EAP[j]
		}
	}
	a.GraphEdges = len(edgeNames)
	if maxEdges > 0 && len(edgeNames) > maxEdges {
		keep := pickEdges(edgeEst, maxEdges)
		names, est := make([]string, len(keep)), make([]float64, len(keep))
		for i, j := range keep {
			names[i], est[i] = edgeNames[j], edgeEst[j]
		}
		edgeNames, edgeEst, a.EdgesSampled = names, est, true
	}

	// The exact values, nodes and edges in one engine per task.
	nodeExact, edgeExact := make([]float64, len(nodeNames)), make([]float64, len(edgeNames))
	names := append(append([]string{}, nodeNames...), edgeNames...)
	for i, t := range tasks {
		exact, err := exactChanges(m, t, names)
		if err != nil {
			return nil, fmt.Errorf("attrib: compare: batch %d: %w", i, err)
		}
		for j := range nodeNames {
			nodeExact[j] += w(t) * exact[j]
		}
		for j := range edgeNames {
			edgeExact[j] += w(t) * exact[len(nodeNames)+j]
		}
	}
	a.Nodes = compare(nodeNames, nodeEst, nodeExact, k)
	a.Edges = compare(edgeNames, edgeEst, edgeExact, k)
	return a, nil
}

// pickEdges returns n indices in increasing order: the n/2 largest |est|
// and a uniform sample (fixed seed) of the others.
func pickEdges(est []float64, n int) []int {
	idx := byAbs(est)
	top, rest := idx[:n/2], append([]int{}, idx[n/2:]...)
	rng := rand.New(rand.NewPCG(13, 0x5ca77e4))
	rng.Shuffle(len(rest), func(i, j int) { rest[i], rest[j] = rest[j], rest[i] })
	keep := append(append([]int{}, top...), rest[:n-len(top)]...)
	sort.Ints(keep)
	return keep
}
