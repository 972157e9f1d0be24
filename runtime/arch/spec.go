package arch

import "fmt"

// Position is how token positions enter the model.
type Position string

const (
	PosLearned Position = "learned" // a learned table added to the embedding (GPT-Neo, GPT-2)
	PosRotary  Position = "rotary"  // rotary embedding of q and k (GPT-NeoX)
	PosNone    Position = "none"    // nothing (the rotary part is in the block)
)

// Activation is the MLP nonlinearity.
type Activation string

const (
	GELUNew Activation = "gelu_new" // 0.5x(1+tanh(sqrt(2/pi)(x+0.044715x^3)))
	GELUErf Activation = "gelu"     // exact x*Phi(x) with erf
)

// Storage is how a weight matrix is stored.
type Storage int

const (
	LinearOutIn Storage = iota // nn.Linear: [out, in]; y = x @ W^T
	Conv1DInOut                // GPT-2's Conv1D: [in, out]; y = x @ W
)

// QKVLayout is how the query, key and value projections are stored.
type QKVLayout int

const (
	QKVSeparate     QKVLayout = iota // three matrices Q, K, V (GPT-Neo; no bias)
	QKVFusedBlocks                   // one matrix whose outputs are q-block | k-block | v-block (GPT-2 c_attn)
	QKVFusedPerHead                  // one matrix whose outputs are grouped per head: [q_h | k_h | v_h] for h = 0.. (GPT-NeoX)
)

// Names are the canonical (prefix-stripped) tensor names of each role.
// Per-layer names are relative to Layer, a format with one %d.
type Names struct {
	Embed, PosEmbed    string // W_E [V,C]; W_pos [n_ctx,C] ("" when the family has none)
	FinalLNW, FinalLNB string
	Unembed            string // W_U [V,C] when untied
	TiedUnembed        string // a copy of W_E some tied checkpoints store; ignored when tied
	Layer              string // "h.%d."
	LN1W, LN1B         string
	LN2W, LN2B         string
	Q, K, V            string // QKVSeparate
	QKV, QKVBias       string // fused layouts
	O, OBias           string // attention output projection
	FC, FCBias         string // MLP in
	Proj, ProjBias     string // MLP out
}

// Spec describes one architecture family: everything that differs between
// families in how weights are named and stored. The block recipe lives in
// Config (some of it is per model, from config.json).
type Spec struct {
	Family     Family
	Display    string   // "GPT-Neo"
	Prefixes   []string // stripped from stored names, first match
	Buffers    []string // name suffixes of non-parameter buffers, ignored on load
	Names      Names
	Storage    Storage
	QKV        QKVLayout
	parse      func(r *rawConfig, c *Config) error
	configHint string // the fields parse reads, for error messages
}

// Canonical strips the first of the family's prefixes that name starts with.
func (s *Spec) Canonical(name string) string {
	for _, p := range s.Prefixes {
		if len(name) > len(p) && name[:len(p)] == p {
			return name[len(p):]
		}
	}
	return name
}

// IsBuffer reports whether canonical name is a non-parameter buffer.
func (s *Spec) IsBuffer(canon string) bool {
	for _, b := range s.Buffers {
		if len(canon) >= len(b) && canon[len(canon)-len(b):] == b {
			return true
		}
	}
	return false
}

// LayerName is the canonical name of role suffix in layer l.
func (s *Spec) LayerName(l int, suffix string) string {
	return fmt.Sprintf(s.Names.Layer, l) + suffix
}

// Tensors lists every parameter tensor a model of this configuration must
// have, by canonical name, with its stored shape.
func (c *Config) Tensors() map[string][]int {
	s := c.Spec
	n := s.Names
	C, F, V := c.DModel, c.DMLP, c.Vocab
	mat := func(in, out int) []int { // a matrix mapping in -> out as stored
		if s.Storage == Conv1DInOut {
			return []int{in, out}
		}
		return []int{out, in}
	}
	m := map[string][]int{
		n.Embed:    {V, C},
		n.FinalLNW: {C},
		n.FinalLNB: {C},
	}
	if c.Pos == PosLearned {
		m[n.PosEmbed] = []int{c.Context, C}
	}
	if !c.TiedUnembed {
		m[n.Unembed] = []int{V, C}
	}
	for l := 0; l < c.Layers; l++ {
		p := func(suffix string) string { return s.LayerName(l, suffix) }
		for _, ln := range []string{n.LN1W, n.LN1B, n.LN2W, n.LN2B} {
			m[p(ln)] = []int{C}
		}
		switch s.QKV {
		case QKVSeparate:
			m[p(n.Q)], m[p(n.K)], m[p(n.V)] = mat(C, C), mat(C, C), mat(C, C)
		default:
			m[p(n.QKV)] = mat(C, 3*C)
			m[p(n.QKVBias)] = []int{3 * C}
		}
		m[p(n.O)], m[p(n.OBias)] = mat(C, C), []int{C}
		m[p(n.FC)], m[p(n.FCBias)] = mat(C, F), []int{F}
		m[p(n.Proj)], m[p(n.ProjBias)] = mat(F, C), []int{C}
	}
	return m
}

// Params counts the model's parameters (a tied unembedding counted once).
func (c *Config) Params() int64 {
	var n int64
	for _, shape := range c.Tensors() {
		p := int64(1)
		for _, d := range shape {
			p *= int64(d)
		}
		n += p
	}
	return n
}

// ParallelAt says whether layer l's MLP reads the block input (parallel
// residual: x + attn(ln1(x)) + mlp(ln2(x))) rather than the residual after
// attention, so that heads of its own layer do not feed it. It has the
// signature runtime/graph.New takes: graph.New(c.Layers, c.Heads, c.ParallelAt).
func (c *Config) ParallelAt(l int) bool { return c.Parallel }

// TopHooks are the hook points before the blocks, in execution order.
func (c *Config) TopHooks() []string {
	if c.Pos == PosLearned {
		return []string{"hook_embed", "hook_pos_embed"}
	}
	return []string{"hook_embed"}
}

// BlockHooks are the hook points of block l (without the "blocks.l."
// prefix), in execution order: rotary models add attn.hook_rot_q and
// attn.hook_rot_k (q and k after rotation); a parallel-residual block has no
// hook_resid_mid (nothing flows between attention and MLP). ln1/ln2.hook_scale
// and attn.hook_result are TransformerLens's (runtime/forward computes them
// only when a hook wants them).
func (c *Config) BlockHooks(l int) []string {
	h := []string{"hook_resid_pre", "ln1.hook_scale", "ln1.hook_normalized", "attn.hook_q", "attn.hook_k", "attn.hook_v"}
	if c.Pos == PosRotary {
		h = append(h, "attn.hook_rot_q", "attn.hook_rot_k")
	}
	h = append(h, "attn.hook_attn_scores", "attn.hook_pattern", "attn.hook_z", "attn.hook_result", "hook_attn_out")
	if !c.Parallel {
		h = append(h, "hook_resid_mid")
	}
	return append(h, "ln2.hook_scale", "ln2.hook_normalized", "mlp.hook_pre", "mlp.hook_post", "hook_mlp_out", "hook_resid_post")
}
