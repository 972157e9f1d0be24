package sweep

import (
	"fmt"
	"math/rand/v2"
)

// RepeatedTokens makes the induction task's prompts: B rows, each P token
// ids drawn uniformly without replacement from [0, vocab) and then the same P
// ids again (T = 2P, no BOS). The generator is math/rand/v2's PCG seeded with
// (seed, 0); each id is drawn with IntN(vocab) and redrawn while it repeats
// one already in the row, rows one after another. The same (vocab, B, P,
// seed) always gives the same prompts.
func RepeatedTokens(vocab, B, P int, seed uint64) ([][]int32, error) {
	if B <= 0 || P <= 0 {
		return nil, fmt.Errorf("induction: want --batch > 0 and --period > 0, got %d and %d", B, P)
	}
	if P > vocab {
		return nil, fmt.Errorf("induction: --period %d exceeds the vocabulary of %d (ids are distinct within a row)", P, vocab)
	}
	r := rand.New(rand.NewPCG(seed, 0))
	rows := make([][]int32, B)
	for b := range rows {
		seen := make(map[int32]bool, P)
		row := make([]int32, 0, 2*P)
		for len(row) < P {
			id := int32(r.IntN(vocab))
			if !seen[id] {
				seen[id] = true
				row = append(row, id)
			}
		}
		rows[b] = append(row, row...)
	}
	return rows, nil
}
