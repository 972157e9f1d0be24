package induction

import (
	"fmt"
	"math/rand/v2"
	"sort"

	"github.com/neoscope/neoscope/probes/ablate"
	"github.com/neoscope/neoscope/runtime/forward"
)

// Candidates lists the ids 0..vocab-1 for which keep returns true (keep
// nil: all of them).
func Candidates(vocab int, keep func(id int) bool) []int32 {
	out := make([]int32, 0, vocab)
	for id := 0; id < vocab; id++ {
		if keep == nil || keep(id) {
			out = append(out, int32(id))
		}
	}
	return out
}

// RepeatedTokens returns B rows of 2P tokens: P distinct ids drawn uniformly
// from candidates, then the same P again.
func RepeatedTokens(candidates []int32, B, P int, seed uint64) ([][]int32, error) {
	if P < 2 {
		return nil, fmt.Errorf("induction: period %d: want at least 2", P)
	}
	if B < 1 {
		return nil, fmt.Errorf("induction: batch %d: want at least 1", B)
	}
	if len(candidates) < P {
		return nil, fmt.Errorf("induction: %d candidate token ids cannot give %d distinct tokens per row", len(candidates), P)
	}
	rng := rand.New(rand.NewPCG(seed, 0x6e656f73636f7065))
	rows := make([][]int32, B)
	for b := range rows {
		row := make([]int32, 2*P)
		seen := make(map[int32]bool, P)
		for i := 0; i < P; {
			id := candidates[rng.IntN(len(candidates))]
			if seen[id] {
				continue
			}
			seen[id] = true
			row[i], row[i+P] = id, id
			i++
		}
		rows[b] = row
	}
	return rows, nil
}

// CheckRepeated checks that rows are 2P tokens whose second half repeats the
// first, and returns P.
func CheckRepeated(rows [][]int32) (int, error) {
	if len(rows) == 0 {
		return 0, fmt.Errorf("induction: no rows")
	}
	T := len(rows[0])
	if T < 4 || T%2 != 0 {
		return 0, fmt.Errorf("induction: rows of %d tokens: want an even length of at least 4 (P tokens then the same P again)", T)
	}
	P := T / 2
	for b, r := range rows {
		if len(r) != T {
			return 0, fmt.Errorf("induction: row %d has %d tokens, row 0 has %d", b, len(r), T)
		}
		for i := 0; i < P; i++ {
			if r[i] != r[i+P] {
				return 0, fmt.Errorf("induction: row %d is not a repeated sequence: position %d has %d, position %d has %d", b, i, r[i], i+P, r[i+P])
			}
		}
	}
	return P, nil
}

// HeadScore is one head's score, for rankings.
type HeadScore struct {
	Head  string  `json:"head"` // "layer.head"
	Score float64 `json:"score"`
}

// Result holds the induction probe's tables.
type Result struct {
	P                  int         `json:"period"`
	B                  int         `json:"batch"`
	Induction          [][]float64 `json:"induction_score"`                  // [L][NH]
	PrevToken          [][]float64 `json:"prev_token_score"`                 // [L][NH]
	LossSecondHalf     float64     `json:"rep_loss_second_half"`             // scalar
	HeadAblation       [][]float64 `json:"rep_head_ablation_loss,omitempty"` // [L][NH]
	TopInduction       []HeadScore `json:"top_induction_heads"`
	TopPrevToken       []HeadScore `json:"top_prev_token_heads"`
	TopAblationEffects []HeadScore `json:"top_ablation_effects,omitempty"` // loss increase over rep_loss_second_half
}

// Scores runs rows (validated by CheckRepeated) once and returns the
// induction and previous-token scores [L][NH] and the second-half loss.
func Scores(m *forward.Model, rows [][]int32) (ind, prev [][]float64, loss float64, err error) {
	P, err := CheckRepeated(rows)
	if err != nil {
		return nil, nil, 0, err
	}
	tokens, B, T, err := m.CheckTokens(rows)
	if err != nil {
		return nil, nil, 0, err
	}
	// One layer at a time: only that layer's pattern [B,NH,T,T] is on the
	// host at once (64 rows x 12 heads of 2P = 512 tokens would be 0.8 GB
	// per layer).
	L, NH := m.Cfg.Layers, m.Cfg.Heads
	s, err := m.Start(tokens, B, T, nil)
	if err != nil {
		return nil, nil, 0, err
	}
	defer s.Close()
	ind, prev = make([][]float64, L), make([][]float64, L)
	for l := 0; l < L; l++ {
		name := fmt.Sprintf("blocks.%d.attn.hook_pattern", l)
		h := (&forward.Hooks{}).Observe(name)
		if err := m.Blocks(s, l, l+1, h); err != nil {
			return nil, nil, 0, err
		}
		pat := h.Cache[name].Data // [B,NH,T,T]
		ind[l], prev[l] = make([]float64, NH), make([]float64, NH)
		for hd := 0; hd < NH; hd++ {
			var si, sp float64
			for b := 0; b < B; b++ {
				base := (b*NH + hd) * T * T
				for i := P; i < T; i++ {
					si += float64(pat[base+i*T+i-P+1])
				}
				for i := 1; i < T; i++ {
					sp += float64(pat[base+i*T+i-1])
				}
			}
			ind[l][hd] = si / float64(B*P)
			prev[l][hd] = sp / float64(B*(T-1))
		}
	}
	if err := m.FinalNorm(s, nil); err != nil {
		return nil, nil, 0, err
	}
	if loss, err = m.MeanLoss(s, P); err != nil {
		return nil, nil, 0, err
	}
	return ind, prev, loss, nil
}

// Rank lists every head's score, highest first (ties by layer then head).
func Rank(x [][]float64) []HeadScore {
	var out []HeadScore
	for l, r := range x {
		for h, v := range r {
			out = append(out, HeadScore{fmt.Sprintf("%d.%d", l, h), v})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Score > out[j].Score })
	return out
}

// Run computes the scores and, when withAblation, every head's zero-ablation
// second-half loss (one pass per head). progress (may be nil) gets (done,
// total) passes.
func Run(m *forward.Model, rows [][]int32, withAblation bool, progress func(done, total int)) (*Result, error) {
	ind, prev, loss, err := Scores(m, rows)
	if err != nil {
		return nil, err
	}
	P := len(rows[0]) / 2
	L, NH := m.Cfg.Layers, m.Cfg.Heads
	res := &Result{P: P, B: len(rows), Induction: ind, PrevToken: prev, LossSecondHalf: loss,
		TopInduction: Rank(ind), TopPrevToken: Rank(prev)}
	total := 1
	if withAblation {
		total += L * NH
	}
	if progress != nil {
		progress(1, total)
	}
	if !withAblation {
		return res, nil
	}
	tokens, B, T, err := m.CheckTokens(rows)
	if err != nil {
		return nil, err
	}
	r, err := ablate.NewRunner(m, tokens, B, T, P)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	res.HeadAblation = make([][]float64, L)
	effect := make([][]float64, L)
	for l := 0; l < L; l++ {
		res.HeadAblation[l] = make([]float64, NH)
		effect[l] = make([]float64, NH)
		for h := 0; h < NH; h++ {
			v, err := r.HeadsLoss([]ablate.Head{{Layer: l, Head: h}}, ablate.Zero)
			if err != nil {
				return nil, err
			}
			res.HeadAblation[l][h] = v
			effect[l][h] = v - loss
			if progress != nil {
				progress(1+l*NH+h+1, total)
			}
		}
	}
	res.TopAblationEffects = Rank(effect)
	return res, nil
}
