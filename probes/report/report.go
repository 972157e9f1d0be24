package report

import (
	"errors"
	"fmt"
	"strings"

	"github.com/neoscope/neoscope/probes/ablate"
	"github.com/neoscope/neoscope/probes/attrib"
	"github.com/neoscope/neoscope/probes/embed"
	"github.com/neoscope/neoscope/probes/induction"
	"github.com/neoscope/neoscope/probes/ioi"
	"github.com/neoscope/neoscope/probes/lens"
	"github.com/neoscope/neoscope/runtime/arch"
	"github.com/neoscope/neoscope/runtime/forward"
	"github.com/neoscope/neoscope/runtime/tokenizer"
)

// Input is one model to analyse.
type Input struct {
	Name  string         // shown in headings, e.g. "neo-tiny (bundled)"
	Dir   string         // the model directory (its tokenizer is looked for there)
	Model *forward.Model // loaded on any backend

	// Rows are the tokens of the logit-lens and ablation sections, [B][T];
	// nil means, for the lens, Passage through the model's tokenizer (or,
	// without one, the repeated random tokens) and, for the ablation, the
	// induction task's repeated random tokens (loss on the second half).
	Rows [][]int32
	// RowsSource says where Rows came from, for the page ("--text verses.txt").
	RowsSource string
}

// Options tune the experiments. The zero value is usable.
type Options struct {
	RepBatch   int    // rows of repeated random tokens (default 8)
	RepPeriod  int    // P, the length of each half (default 32, at most n_ctx/2)
	Seed       uint64 // seed of the repeated tokens
	TopK       int    // heads listed under each heatmap (default 5)
	IOIPrompts int    // IOI prompts (default 40); negative: no IOI section
	// AttribEdges caps the edges the attribution section patches exactly
	// (default 1000: the 500 largest |EAP| and a sample of the rest;
	// negative: every edge). Each costs a partial forward pass.
	AttribEdges int

	// Log, when set, gets one line per stage (the CLI prints them to stderr).
	Log func(format string, a ...any)
	// Progress, when set, is called at the start of a multi-pass stage and
	// returns the (done, total) callback for it and a function called at its end.
	Progress func(desc string) (update func(done, total int), finish func())
}

func (o *Options) defaults() {
	if o.RepBatch <= 0 {
		o.RepBatch = 8
	}
	if o.RepPeriod <= 0 {
		o.RepPeriod = 32
	}
	if o.TopK <= 0 {
		o.TopK = 5
	}
	if o.IOIPrompts == 0 {
		o.IOIPrompts = 40
	}
	if o.AttribEdges == 0 {
		o.AttribEdges = 1000
	}
}

// Passage is the text of the logit-lens section when no tokens are given and
// the model has a tokenizer: Genesis 1:1-5, King James Version (public domain;
// the bundled model was trained on the KJV).
const Passage = `In the beginning God created the heaven and the earth. And the earth was without form, and void; and darkness was upon the face of the deep. And the Spirit of God moved upon the face of the waters. And God said, Let there be light: and there was light. And God saw the light, that it was good: and God divided the light from the darkness. And God called the light Day, and the darkness he called Night. And the evening and the morning were the first day.`

func (o *Options) logf(format string, a ...any) {
	if o.Log != nil {
		o.Log(format, a...)
	}
}

func (o *Options) progress(desc string) (func(done, total int), func()) {
	if o.Progress == nil {
		return nil, func() {}
	}
	return o.Progress(desc)
}

// KV is one row of a two-column table.
type KV struct{ Key, Value string }

// Result is everything the page shows about one model.
type Result struct {
	Name      string       `json:"name"`
	Dir       string       `json:"dir"`
	Cfg       *arch.Config `json:"config"`
	Params    int64        `json:"n_params"`
	Tokenizer bool         `json:"has_tokenizer"`

	// Embedding geometry of W_E, and the residual stream's projection on the
	// mean-embedding direction (on EmbedSample).
	Embed       *embed.Stats  `json:"embed"`
	EmbedProj   []embed.Layer `json:"embed_projection"`
	EmbedSample string        `json:"embed_sample"`

	// Logit lens (loss and KL per layer, 0..L) on LensTokens.
	Lens       *lens.Result `json:"lens"`
	LensTokens string       `json:"lens_tokens"`

	// Induction: scores on RepBatch rows of 2P repeated random tokens.
	Induction *induction.Result `json:"induction"`
	RepSeed   uint64            `json:"rep_seed"`

	// Ablation: zero ablation of every head, attention layer and MLP.
	Ablation       *ablate.Result        `json:"ablation"`
	AblationTokens string                `json:"ablation_tokens"`    // what the loss was measured on
	HeadDelta      [][]float64           `json:"head_loss_increase"` // [L][NH] Ablation.Head - Baseline
	AttnDelta      []float64             `json:"attn_loss_increase"` // [L]
	MLPDelta       []float64             `json:"mlp_loss_increase"`  // [L]
	TopAblation    []induction.HeadScore `json:"top_ablation_effects"`

	// IOI, when the model has a tokenizer and the prompts fit; else IOINote
	// says why not.
	IOI     *ioi.Result `json:"ioi,omitempty"`
	IOINote string      `json:"ioi_note,omitempty"`
	IOISeed uint64      `json:"ioi_seed"`
	IOIText string      `json:"ioi_example,omitempty"` // one clean prompt, as text

	// Attribution: AtP (every head and MLP) and EAP (every edge) beside
	// exact patching on the IOI prompts, when IOI ran; else AttribNote says
	// why not.
	Attribution *attrib.Agreement `json:"attribution,omitempty"`
	AttribNote  string            `json:"attribution_note,omitempty"`

	// Notes are remarks shown under the model's column (e.g. truncation).
	Notes []string `json:"notes,omitempty"`
}

// Analyze runs every section's probe on in.Model.
func Analyze(in Input, opt Options) (*Result, error) {
	opt.defaults()
	m := in.Model
	if m == nil || m.Cfg == nil {
		return nil, errors.New("report: no model")
	}
	cfg := m.Cfg
	r := &Result{Name: in.Name, Dir: in.Dir, Cfg: cfg, Params: cfg.Params(), RepSeed: opt.Seed}

	// Candidates for random tokens: without a tokenizer every embedding row,
	// with one the defined, non-special ids.
	var keep func(id int) bool
	var tok *tokenizer.Tokenizer
	if tokenizer.Available(in.Dir) {
		var err error
		if tok, err = tokenizer.Load(in.Dir); err != nil {
			return nil, fmt.Errorf("%s: %w", in.Name, err)
		}
		r.Tokenizer = true
		keep = func(id int) bool {
			s := tok.Token(id)
			return s != "" && !(strings.HasPrefix(s, "<|") && strings.HasSuffix(s, "|>"))
		}
	}

	P := min(opt.RepPeriod, cfg.Context/2)
	if P < 2 {
		return nil, fmt.Errorf("%s: context %d too short for repeated tokens", in.Name, cfg.Context)
	}
	if P < opt.RepPeriod {
		r.Notes = append(r.Notes, fmt.Sprintf("repeated-token period cut to %d (n_ctx %d)", P, cfg.Context))
	}
	rep, err := induction.RepeatedTokens(induction.Candidates(cfg.Vocab, keep), opt.RepBatch, P, opt.Seed)
	if err != nil {
		return nil, fmt.Errorf("%s: repeated tokens: %w", in.Name, err)
	}
	opt.logf("%s: embedding geometry (V=%d)", in.Name, cfg.Vocab)
	upd, done := opt.progress(in.Name + ": embedding")
	r.Embed, err = embed.Compute(m, embed.Options{Progress: upd})
	done()
	if err != nil {
		return nil, fmt.Errorf("%s: embedding: %w", in.Name, err)
	}
	{
		toks, B, T := embed.DefaultTokens(m, opt.Seed)
		r.EmbedSample = fmt.Sprintf("%d rows of %d random tokens (seed %d)", B, T, opt.Seed)
		if r.EmbedProj, err = embed.Project(m, toks, B, T); err != nil {
			return nil, fmt.Errorf("%s: embedding projection: %w", in.Name, err)
		}
	}

	lensRows := rep
	r.LensTokens = fmt.Sprintf("the induction task's %d rows of 2x%d repeated random tokens (no tokenizer for text)", opt.RepBatch, P)
	switch {
	case in.Rows != nil:
		lensRows = in.Rows
		r.LensTokens = fmt.Sprintf("%s: %d row(s) of %d tokens", rowsSource(in), len(in.Rows), len(in.Rows[0]))
	case tok != nil:
		ids := tok.Encode(Passage)
		r.LensTokens = fmt.Sprintf("Genesis 1:1-5 (KJV), %d tokens", len(ids))
		if len(ids) > cfg.Context {
			ids = ids[:cfg.Context]
			r.LensTokens = fmt.Sprintf("the first %d tokens (n_ctx) of Genesis 1:1-5 (KJV)", len(ids))
		}
		row := make([]int32, len(ids))
		for i, id := range ids {
			row[i] = int32(id)
		}
		lensRows = [][]int32{row}
	}
	{
		flat, B, T, err := m.CheckTokens(lensRows)
		if err != nil {
			return nil, fmt.Errorf("%s: lens tokens: %w", in.Name, err)
		}
		if T < 2 {
			return nil, fmt.Errorf("%s: lens tokens: need at least 2 tokens per row, got %d", in.Name, T)
		}
		opt.logf("%s: logit lens on %d x %d tokens", in.Name, B, T)
		upd, done := opt.progress(in.Name + ": logit lens")
		r.Lens, err = lens.Run(m, flat, B, T, lens.Options{Progress: upd})
		done()
		if err != nil {
			return nil, fmt.Errorf("%s: logit lens: %w", in.Name, err)
		}
	}

	opt.logf("%s: induction scores on %d rows of 2x%d repeated tokens", in.Name, opt.RepBatch, P)
	if r.Induction, err = induction.Run(m, rep, false, nil); err != nil {
		return nil, fmt.Errorf("%s: induction: %w", in.Name, err)
	}

	rows, lossFrom := rep, P
	r.AblationTokens = fmt.Sprintf("the induction task's %d rows of 2x%d repeated random tokens, loss on the second half", opt.RepBatch, P)
	if in.Rows != nil {
		rows, lossFrom = in.Rows, 0
		r.AblationTokens = fmt.Sprintf("%s: %d row(s) of %d tokens, loss on every next-token prediction", rowsSource(in), len(in.Rows), len(in.Rows[0]))
	}
	flat, B, T, err := m.CheckTokens(rows)
	if err != nil {
		return nil, fmt.Errorf("%s: ablation tokens: %w", in.Name, err)
	}
	if T < 2 {
		return nil, fmt.Errorf("%s: ablation tokens: need at least 2 tokens per row, got %d", in.Name, T)
	}
	runner, err := ablate.NewRunner(m, flat, B, T, lossFrom)
	if err != nil {
		return nil, fmt.Errorf("%s: ablation: %w", in.Name, err)
	}
	defer runner.Close()
	L, NH := cfg.Layers, cfg.Heads
	opt.logf("%s: zero-ablating %d heads, %d attention layers and %d MLPs", in.Name, L*NH, L, L)
	upd, done = opt.progress(in.Name + ": ablation")
	r.Ablation, err = runner.Run(ablate.Each{Heads: true, Attn: true, MLP: true}, ablate.Zero, upd)
	done()
	if err != nil {
		return nil, fmt.Errorf("%s: ablation: %w", in.Name, err)
	}
	base := r.Ablation.Baseline
	r.HeadDelta = make([][]float64, L)
	for l := range L {
		r.HeadDelta[l] = make([]float64, NH)
		for h := range NH {
			r.HeadDelta[l][h] = r.Ablation.Head[l][h] - base
		}
	}
	r.AttnDelta = make([]float64, L)
	r.MLPDelta = make([]float64, L)
	for l := range L {
		r.AttnDelta[l] = r.Ablation.Attn[l] - base
		r.MLPDelta[l] = r.Ablation.MLP[l] - base
	}
	r.TopAblation = induction.Rank(r.HeadDelta)

	r.IOISeed = opt.Seed
	switch {
	case opt.IOIPrompts < 0:
		r.IOINote = "the IOI section was turned off"
	case tok == nil:
		r.IOINote = "the model has no tokenizer, and the IOI prompts are English sentences"
	default:
		if err := r.runIOI(m, tok, opt); err != nil {
			return nil, err
		}
	}
	if r.IOI == nil {
		r.AttribNote = "it runs on the IOI prompts, and there are none for this model (" + r.IOINote + ")"
	}
	return r, nil
}

// runIOI builds the IOI prompts with the model's tokenizer and runs the
// probe; a vocabulary that cannot make the prompts gives a note, not an error.
func (r *Result) runIOI(m *forward.Model, tok *tokenizer.Tokenizer, opt Options) error {
	ds, err := ioi.BuildDataset(tok, opt.IOIPrompts, opt.Seed, m.Cfg.BOS)
	if err != nil {
		r.IOINote = "no IOI prompts for this tokenizer: " + err.Error()
		return nil
	}
	batches := ds.Batches()
	for i := range batches {
		if batches[i].T > m.Cfg.Context {
			r.IOINote = fmt.Sprintf("IOI prompts of %d tokens exceed the context of %d", batches[i].T, m.Cfg.Context)
			return nil
		}
	}
	if len(ds.Prompts) > 0 {
		r.IOIText = ds.Prompts[0].Text
	}
	opt.logf("%s: IOI patching and logit attribution on %d prompts", r.Name, len(ds.Prompts))
	upd, done := opt.progress(r.Name + ": IOI")
	r.IOI, err = ioi.Run(m, batches, ioi.Options{Patch: ioi.What{Heads: true, MLP: true, Attn: true}, Progress: upd})
	done()
	if err != nil {
		return fmt.Errorf("%s: IOI: %w", r.Name, err)
	}

	// Attribution patching beside exact patching, on the same prompts (one
	// task per length group; Compare weights them by rows).
	tasks := make([]attrib.Task, len(batches))
	for i, b := range batches {
		tasks[i] = attrib.Task{Clean: b.Clean, Corrupt: b.Corrupt, B: b.B, T: b.T, Pos: b.Pos, IO: b.IO, S: b.S}
	}
	opt.logf("%s: AtP and EAP beside exact patching of every head, MLP and edge", r.Name)
	r.Attribution, err = attrib.Compare(m, tasks, opt.TopK, max(opt.AttribEdges, 0))
	if err != nil {
		// The rest of the report stands; the page says why this part is
		// missing (e.g. an architecture the patching engine lacks).
		r.Attribution, r.AttribNote = nil, "not computed: "+err.Error()
		opt.logf("%s: attribution vs exact patching: %v", r.Name, err)
	}
	return nil
}

func rowsSource(in Input) string {
	if in.RowsSource != "" {
		return in.RowsSource
	}
	return "the given tokens"
}

// Card lists the model's architecture as rows of the model card.
func (r *Result) Card() []KV {
	c := r.Cfg
	fam := string(c.Family)
	if c.Spec != nil {
		fam = c.Spec.Display
	}
	attn := strings.Join(c.LayerTypes, ", ")
	if c.Window > 0 {
		attn += fmt.Sprintf(" (local window %d)", c.Window)
	}
	tok := "none (token ids only)"
	if r.Tokenizer {
		tok = "GPT-2 byte-level BPE"
	}
	return []KV{
		{"family", fam},
		{"directory", r.Dir},
		{"parameters", fmt.Sprintf("%d", r.Params)},
		{"layers (L)", fmt.Sprint(c.Layers)},
		{"heads (NH) × d_head (HS)", fmt.Sprintf("%d × %d", c.Heads, c.DHead)},
		{"d_model (C)", fmt.Sprint(c.DModel)},
		{"d_mlp (F)", fmt.Sprint(c.DMLP)},
		{"vocabulary (V)", fmt.Sprint(c.Vocab)},
		{"context (n_ctx)", fmt.Sprint(c.Context)},
		{"attention", attn},
		{"attention scale", fmt.Sprintf("%.6g", c.AttnScale)},
		{"positions", positions(c)},
		{"parallel residual", fmt.Sprint(c.Parallel)},
		{"activation", string(c.Act)},
		{"LayerNorm eps", fmt.Sprintf("%g", c.LNEps)},
		{"tied unembedding", fmt.Sprint(c.TiedUnembed)},
		{"tokenizer", tok},
	}
}

// positions describes the position scheme of the model card.
func positions(c *arch.Config) string {
	if c.Pos == arch.PosRotary {
		return fmt.Sprintf("rotary, first %d of %d dims per head, base %g", c.RotaryDims, c.DHead, c.RotaryBase)
	}
	return string(c.Pos)
}
