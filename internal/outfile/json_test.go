package outfile

import (
	"encoding/json"
	"math"
	"testing"
)

type inner struct {
	A float64 `json:"a"`
	B []float64
}

type outer struct {
	inner
	Name  string             `json:"name"`
	Skip  float64            `json:"-"`
	Empty []int              `json:"empty,omitempty"`
	M     map[string]float64 `json:"m"`
	P     *float64           `json:"p"`
	Grid  [][]float32        `json:"grid"`
}

// TestNullNaN: NaN and infinities become null and are counted; everything
// else encodes as encoding/json would.
func TestNullNaN(t *testing.T) {
	nan := math.NaN()
	v := outer{inner: inner{A: nan, B: []float64{1, math.Inf(1)}}, Name: "x", Skip: nan,
		M: map[string]float64{"k": nan, "j": 2}, P: &nan, Grid: [][]float32{{1, float32(math.Inf(-1))}}}
	if _, err := json.Marshal(v); err == nil {
		t.Fatal("encoding/json accepted NaN; this test means nothing")
	}
	out, n := NullNaN(v)
	if n != 5 {
		t.Errorf("%d replaced, want 5", n)
	}
	b, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"B":[1,null],"a":null,"grid":[[1,null]],"m":{"j":2,"k":null},"name":"x","p":null}`
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
	clean := inner{A: 1.5, B: []float64{2}}
	out, n = NullNaN(clean)
	b1, _ := json.Marshal(out)
	var back any
	b2, _ := json.Marshal(clean)
	json.Unmarshal(b2, &back)
	b2, _ = json.Marshal(back) // keys sorted, as NullNaN's maps are
	if n != 0 || string(b1) != string(b2) {
		t.Errorf("clean value: %s vs %s (%d replaced)", b1, b2, n)
	}
}
