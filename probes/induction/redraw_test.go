package induction

import "testing"

func TestRedrawSecondHalf(t *testing.T) {
	cands := Candidates(500, nil)
	rows, err := RepeatedTokens(cands, 6, 10, 3)
	if err != nil {
		t.Fatal(err)
	}
	bad, err := RedrawSecondHalf(rows, cands, 4)
	if err != nil {
		t.Fatal(err)
	}
	for b, r := range bad {
		if len(r) != 20 {
			t.Fatalf("row %d: %d tokens", b, len(r))
		}
		same, seen := 0, map[int32]bool{}
		for i := 0; i < 10; i++ {
			if r[i] != rows[b][i] {
				t.Errorf("row %d: first half changed at %d", b, i)
			}
			if r[10+i] == rows[b][10+i] {
				same++
			}
			if seen[r[10+i]] {
				t.Errorf("row %d: id %d twice in the redrawn half", b, r[10+i])
			}
			seen[r[10+i]] = true
		}
		if same > 3 {
			t.Errorf("row %d: %d of 10 second-half tokens still repeat the first half", b, same)
		}
	}
	if _, err := RedrawSecondHalf(nil, cands, 1); err == nil {
		t.Error("no rows: want an error")
	}
}
