package induction

import "fmt"

// RedrawSecondHalf is the corrupt counterpart of RepeatedTokens' rows for
// patching and circuit discovery: each row keeps its first half and gets a
// second half of P fresh distinct ids drawn with seed (so the prompt no
// longer repeats and induction has nothing to copy).
func RedrawSecondHalf(rows [][]int32, candidates []int32, seed uint64) ([][]int32, error) {
	if len(rows) == 0 {
		return nil, fmt.Errorf("induction: no rows to corrupt")
	}
	P := len(rows[0]) / 2
	fresh, err := RepeatedTokens(candidates, len(rows), P, seed)
	if err != nil {
		return nil, err
	}
	out := make([][]int32, len(rows))
	for b, r := range rows {
		if len(r) != 2*P {
			return nil, fmt.Errorf("induction: row %d has %d tokens, row 0 has %d", b, len(r), 2*P)
		}
		out[b] = append(append([]int32(nil), r[:P]...), fresh[b][:P]...)
	}
	return out, nil
}
