package forward_test

import (
	"fmt"
	"math"
	"testing"

	"github.com/neoscope/neoscope/cpu"
	"github.com/neoscope/neoscope/internal/fixtures"
	"github.com/neoscope/neoscope/runtime/backend"
	"github.com/neoscope/neoscope/runtime/forward"
)

// TestHeadInput: one head's q, k and v recomputed from the residual before
// ln_1 equal that head's columns of hook_q/k/v of the same pass (GPT-Neo:
// no bias; GPT-2: the head's slice of the fused c_attn bias).
func TestHeadInput(t *testing.T) {
	for _, name := range fixtures.Names {
		t.Run(name, func(t *testing.T) {
			ref := fixtures.Load(t, name)
			m, err := forward.Open(cpu.New(), ref.Dir)
			fixtures.Must(t, err)
			defer m.Close()
			tok := ref.Get(t, "tokens")
			B, T := tok.Shape[0], tok.Shape[1]
			C, HS := m.Cfg.DModel, m.Cfg.DHead
			l := m.Cfg.Layers - 1
			h := (&forward.Hooks{}).Observe(fmt.Sprintf("blocks.%d.*", l))
			s, _, err := m.Run(tok.Ints(), B, T, h, false)
			fixtures.Must(t, err)
			s.Close()
			x, err := m.BE.Upload(h.Cache[fmt.Sprintf("blocks.%d.hook_resid_pre", l)].Data, B*T, C)
			fixtures.Must(t, err)
			ln, _ := m.BE.New(B*T, C)
			out, _ := m.BE.New(B*T, HS)
			got := make([]float32, B*T*HS)
			for _, which := range []byte{'q', 'k', 'v'} {
				want := h.Cache[fmt.Sprintf("blocks.%d.attn.hook_%c", l, which)].Data // [B*T, C]
				for hd := 0; hd < m.Cfg.Heads; hd++ {
					fixtures.Must(t, m.HeadInput(l, hd, which, backend.Whole(x), backend.Whole(ln), backend.Whole(out)))
					fixtures.Must(t, m.BE.Download(got, out))
					worst := 0.0
					for r := 0; r < B*T; r++ {
						for d := 0; d < HS; d++ {
							worst = math.Max(worst, math.Abs(float64(got[r*HS+d]-want[r*C+hd*HS+d])))
						}
					}
					// The same float32 arithmetic on a narrower product: rounding only.
					if worst > 1e-5 {
						t.Errorf("%d.%d.%c: max |diff| %.3g from hook_%c", l, hd, which, worst, which)
					}
				}
			}
			if err := m.HeadInput(l, 0, 'x', backend.Whole(x), backend.Whole(ln), backend.Whole(out)); err == nil {
				t.Error("HeadInput accepted input 'x'")
			}
		})
	}
}
