package forward

import (
	"fmt"
	"path"
	"strings"

	"github.com/neoscope/neoscope/runtime/backend"
)

// Act is an activation at a hook point, as the backend holds it: M views it
// as a [rows, cols] matrix; Shape is its TransformerLens shape.
type Act struct {
	Name  string
	M     backend.Mat
	Shape []int
	B, T  int // batch rows and tokens of this pass
	// From is the position of a row's first token in M: 0, or
	// BlockOpts.From at the points of a block run on a tail of positions.
	From int
	BE   backend.Backend
	// Tensor is set for [B,NH,T,T] patterns/scores (M views it as [B*NH*T, T]).
	Tensor backend.Tensor
}

// Layer parses the layer index from a blocks.{l}.* name (-1 if none).
func (a *Act) Layer() int { return LayerOf(a.Name) }

// LayerOf parses the layer index from a blocks.{l}.* name (-1 if none).
func LayerOf(name string) int {
	if !strings.HasPrefix(name, "blocks.") {
		return -1
	}
	rest := name[len("blocks."):]
	l := 0
	n := 0
	for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
		l = l*10 + int(rest[n]-'0')
		n++
	}
	if n == 0 {
		return -1
	}
	return l
}

// ReplaceFn edits an activation in place (ablation, patching, steering).
type ReplaceFn func(a *Act) error

// HostTensor is an observed activation copied to the host.
type HostTensor struct {
	Shape []int
	Data  []float32
}

// Hooks declares what a forward pass observes and replaces. Build it before
// the pass: Observe and Replace take glob patterns over hook names
// (path.Match syntax: `blocks.*.hook_resid_pre`, `blocks.6.attn.hook_z`).
// After the pass, Cache holds every observed activation by name.
type Hooks struct {
	observe []string
	replace []replacer
	Cache   map[string]*HostTensor
	memo    map[string]hookPlan
}

type replacer struct {
	pattern string
	fn      ReplaceFn
}

type hookPlan struct {
	observe bool
	fns     []ReplaceFn
}

// Observe adds glob patterns of hook names to cache (comma-separated lists allowed).
func (h *Hooks) Observe(patterns ...string) *Hooks {
	for _, p := range patterns {
		for _, q := range strings.Split(p, ",") {
			if q = strings.TrimSpace(q); q != "" {
				h.observe = append(h.observe, q)
			}
		}
	}
	h.memo = nil
	return h
}

// Replace registers fn for every hook point matching pattern; several
// replacements at one point run in the order registered.
func (h *Hooks) Replace(pattern string, fn ReplaceFn) *Hooks {
	h.replace = append(h.replace, replacer{pattern, fn})
	h.memo = nil
	return h
}

// plan says what to do at a hook point; nil Hooks means nothing.
func (h *Hooks) plan(name string) hookPlan {
	if h == nil {
		return hookPlan{}
	}
	if p, ok := h.memo[name]; ok {
		return p
	}
	var p hookPlan
	for _, o := range h.observe {
		if ok, _ := path.Match(o, name); ok {
			p.observe = true
			break
		}
	}
	for _, r := range h.replace {
		if ok, _ := path.Match(r.pattern, name); ok {
			p.fns = append(p.fns, r.fn)
		}
	}
	if h.memo == nil {
		h.memo = map[string]hookPlan{}
	}
	h.memo[name] = p
	return p
}

// wants reports whether anything happens at name.
func (h *Hooks) wants(name string) bool {
	p := h.plan(name)
	return p.observe || len(p.fns) > 0
}

// Validate checks that every pattern matches at least one hook name of m,
// so a typo is an error rather than an empty cache. A Replace pattern that
// matches an observe-only point (the hook_scale points, attn.hook_attn_scores;
// see tlhooks.go) is refused.
func (h *Hooks) Validate(m *Model) error {
	if h == nil {
		return nil
	}
	names := m.HookNames()
	check := func(p string) error {
		if _, err := path.Match(p, ""); err != nil {
			return fmt.Errorf("hook pattern %q: %w", p, err)
		}
		for _, n := range names {
			if ok, _ := path.Match(p, n); ok {
				return nil
			}
		}
		return fmt.Errorf("hook pattern %q matches no hook point (e.g. blocks.0.hook_resid_pre, blocks.0.attn.hook_pattern; see `neoscope hooks`)", p)
	}
	for _, p := range h.observe {
		if err := check(p); err != nil {
			return err
		}
	}
	for _, r := range h.replace {
		if err := check(r.pattern); err != nil {
			return err
		}
		if err := checkReplaceable(r.pattern, names); err != nil {
			return err
		}
	}
	return nil
}

// HookNames lists every hook point of the model in execution order (the
// names come from the architecture description: arch.Config.TopHooks and
// BlockHooks).
func (m *Model) HookNames() []string {
	names := m.Cfg.TopHooks()
	for l := 0; l < m.Cfg.Layers; l++ {
		for _, s := range m.Cfg.BlockHooks(l) {
			names = append(names, fmt.Sprintf("blocks.%d.%s", l, s))
		}
	}
	return append(names, "ln_final.hook_scale", "ln_final.hook_normalized", "logits")
}

// at runs the replacements then the observation at one hook point.
func (h *Hooks) at(a *Act) error {
	p := h.plan(a.Name)
	for _, fn := range p.fns {
		if err := fn(a); err != nil {
			return fmt.Errorf("hook %s: %w", a.Name, err)
		}
	}
	if p.observe {
		data := make([]float32, a.M.Rows*a.M.Cols)
		if err := a.BE.DownloadMat(data, a.M); err != nil {
			return fmt.Errorf("hook %s: %w", a.Name, err)
		}
		if h.Cache == nil {
			h.Cache = map[string]*HostTensor{}
		}
		h.Cache[a.Name] = &HostTensor{Shape: append([]int(nil), a.Shape...), Data: data}
	}
	return nil
}

// EditHost is a ReplaceFn helper for arbitrary edits: it downloads the
// activation, calls f on the host copy ([rows*cols], TransformerLens shape
// a.Shape), and uploads the result back into place.
func EditHost(f func(a *Act, data []float32) error) ReplaceFn {
	return func(a *Act) error {
		data := make([]float32, a.M.Rows*a.M.Cols)
		if err := a.BE.DownloadMat(data, a.M); err != nil {
			return fmt.Errorf("download: %w", err)
		}
		if err := f(a, data); err != nil {
			return err
		}
		t, err := a.BE.Upload(data, a.M.Rows, a.M.Cols)
		if err != nil {
			return fmt.Errorf("upload: %w", err)
		}
		defer a.BE.Free(t)
		return a.BE.Copy(a.M, backend.Whole(t))
	}
}
