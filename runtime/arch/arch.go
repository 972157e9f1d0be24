package arch

import (
	"encoding/json"
	"fmt"
	"os"
)

// Family names the checkpoint family (config.json's model_type).
type Family string

const (
	GPTNeo  Family = "gpt_neo"
	GPT2    Family = "gpt2"
	GPTNeoX Family = "gpt_neox"
)

// Config is the architecture of one model: its family's Spec plus the
// block recipe and sizes read from config.json.
type Config struct {
	Family      Family     `json:"model_type"`
	Spec        *Spec      `json:"-"`
	Layers      int        `json:"n_layers"`   // L
	Heads       int        `json:"n_heads"`    // NH
	DModel      int        `json:"d_model"`    // C
	DHead       int        `json:"d_head"`     // HS = C / NH
	DMLP        int        `json:"d_mlp"`      // F
	Vocab       int        `json:"d_vocab"`    // V
	Context     int        `json:"n_ctx"`      // maximum T
	LayerTypes  []string   `json:"attn_types"` // per layer: "global" or "local"
	Window      int        `json:"window_size,omitempty"`
	AttnScale   float64    `json:"attn_scale"` // multiplies q.k: 1 for GPT-Neo, 1/sqrt(HS) for GPT-2 and GPT-NeoX
	Act         Activation `json:"act_fn"`
	LNEps       float64    `json:"layer_norm_eps"`
	TiedUnembed bool       `json:"tied_unembed"`
	Pos         Position   `json:"positional_embedding_type"`
	Parallel    bool       `json:"parallel_attn_mlp"`     // every block: x + attn(ln1(x)) + mlp(ln2(x))
	RotaryDims  int        `json:"rotary_dim,omitempty"`  // rotated dims per head (first RotaryDims of HS)
	RotaryBase  float64    `json:"rotary_base,omitempty"` // inv_freq_i = base^(-2i/RotaryDims)
	BOS         int        `json:"bos_token_id"`
	EOS         int        `json:"eos_token_id"`
}

// LayerWindow is the local attention window of layer l, 0 for global layers.
func (c *Config) LayerWindow(l int) int {
	if c.LayerTypes[l] == "local" {
		return c.Window
	}
	return 0
}

// rawConfig holds the union of the config.json fields the families read.
type rawConfig struct {
	ModelType string `json:"model_type"`
	// GPT-Neo
	NumLayers        *int            `json:"num_layers"`
	NumHeads         *int            `json:"num_heads"`
	HiddenSize       *int            `json:"hidden_size"`
	IntermediateSize *int            `json:"intermediate_size"`
	MaxPos           *int            `json:"max_position_embeddings"`
	AttentionTypes   json.RawMessage `json:"attention_types"`
	AttentionLayers  []string        `json:"attention_layers"`
	WindowSize       *int            `json:"window_size"`
	// GPT-2
	NLayer     *int  `json:"n_layer"`
	NHead      *int  `json:"n_head"`
	NEmbd      *int  `json:"n_embd"`
	NInner     *int  `json:"n_inner"`
	NPositions *int  `json:"n_positions"`
	NCtx       *int  `json:"n_ctx"`
	ScaleAttn  *bool `json:"scale_attn_weights"`
	ScaleByIdx *bool `json:"scale_attn_by_inverse_layer_idx"`
	ReorderUpc *bool `json:"reorder_and_upcast_attn"`
	// GPT-NeoX
	NumHiddenLayers   *int            `json:"num_hidden_layers"`
	NumAttentionHeads *int            `json:"num_attention_heads"`
	RotaryPct         *float64        `json:"rotary_pct"`
	PartialRotary     *float64        `json:"partial_rotary_factor"`
	RotaryEmbBase     *float64        `json:"rotary_emb_base"`
	RopeTheta         *float64        `json:"rope_theta"`
	RopeScaling       json.RawMessage `json:"rope_scaling"`
	UseParallel       *bool           `json:"use_parallel_residual"`
	HiddenAct         *string         `json:"hidden_act"`
	AttentionBias     *bool           `json:"attention_bias"`
	LayerNormEps      *float64        `json:"layer_norm_eps"`
	// shared
	VocabSize  *int     `json:"vocab_size"`
	Activation *string  `json:"activation_function"`
	LNEps      *float64 `json:"layer_norm_epsilon"`
	Tie        *bool    `json:"tie_word_embeddings"`
	BOS        *int     `json:"bos_token_id"`
	EOS        *int     `json:"eos_token_id"`
}

// Load reads and validates a config.json file.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

func need(v *int, field string) (int, error) {
	if v == nil {
		return 0, fmt.Errorf("config: missing field %q", field)
	}
	if *v <= 0 {
		return 0, fmt.Errorf("config: field %q must be positive, got %d", field, *v)
	}
	return *v, nil
}

// Parse validates config.json bytes. Errors name the offending field.
func Parse(data []byte) (*Config, error) {
	var r rawConfig
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("config: not valid JSON: %w", err)
	}
	if r.ModelType == "" {
		return nil, fmt.Errorf("config: missing field \"model_type\" (want %s)", supported())
	}
	spec := Lookup(Family(r.ModelType))
	if spec == nil {
		return nil, fmt.Errorf("config: model_type %q is not supported (want %s)", r.ModelType, supported())
	}
	c := &Config{Family: spec.Family, Spec: spec, Act: GELUNew, LNEps: 1e-5, TiedUnembed: true, Pos: PosLearned, BOS: -1, EOS: -1}
	if err := spec.parse(&r, c); err != nil {
		return nil, err
	}
	var err error
	if c.Vocab, err = need(r.VocabSize, "vocab_size"); err != nil {
		return nil, err
	}
	if c.DModel%c.Heads != 0 {
		return nil, fmt.Errorf("config: hidden size %d is not divisible by %d heads", c.DModel, c.Heads)
	}
	c.DHead = c.DModel / c.Heads
	if c.LayerTypes == nil {
		c.LayerTypes = make([]string, c.Layers)
		for i := range c.LayerTypes {
			c.LayerTypes[i] = "global"
		}
	}
	if r.Activation != nil {
		if c.Act, err = activation("activation_function", *r.Activation); err != nil {
			return nil, err
		}
	}
	if r.LNEps != nil {
		if *r.LNEps <= 0 {
			return nil, fmt.Errorf("config: layer_norm_epsilon must be positive, got %g", *r.LNEps)
		}
		c.LNEps = *r.LNEps
	}
	if r.Tie != nil && !*r.Tie {
		c.TiedUnembed = false
	}
	if r.BOS != nil {
		c.BOS = *r.BOS
	}
	if r.EOS != nil {
		c.EOS = *r.EOS
	}
	if c.Pos == PosRotary {
		if c.RotaryDims < 0 || c.RotaryDims > c.DHead || c.RotaryDims%2 != 0 {
			return nil, fmt.Errorf("config: rotary dimensions int(d_head %d * rotary_pct) = %d must be even and within the head", c.DHead, c.RotaryDims)
		}
	}
	return c, nil
}

// activation maps a config activation name onto the two GELUs Hugging Face uses.
func activation(field, v string) (Activation, error) {
	switch v {
	case "gelu_new", "gelu_pytorch_tanh", "gelu_fast":
		return GELUNew, nil
	case "gelu":
		return GELUErf, nil
	}
	return "", fmt.Errorf("config: %s %q is not supported (want \"gelu_new\" or \"gelu\")", field, v)
}

// expandAttentionTypes expands GPT-Neo's [[["global","local"], 6]] into one
// entry per layer and checks that it covers exactly n layers.
func expandAttentionTypes(raw json.RawMessage, n int) ([]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, fmt.Errorf("config: missing field \"attention_types\"")
	}
	var groups [][]json.RawMessage
	if err := json.Unmarshal(raw, &groups); err != nil {
		return nil, fmt.Errorf("config: attention_types: want [[[\"global\",\"local\"], N], ...]: %w", err)
	}
	var out []string
	for gi, g := range groups {
		if len(g) != 2 {
			return nil, fmt.Errorf("config: attention_types[%d]: want [[kinds...], repeat]", gi)
		}
		var kinds []string
		var rep int
		if err := json.Unmarshal(g[0], &kinds); err != nil {
			return nil, fmt.Errorf("config: attention_types[%d][0]: want a list of \"global\"/\"local\": %w", gi, err)
		}
		if err := json.Unmarshal(g[1], &rep); err != nil || rep < 0 {
			return nil, fmt.Errorf("config: attention_types[%d][1]: want a non-negative repeat count", gi)
		}
		for _, k := range kinds {
			if k != "global" && k != "local" {
				return nil, fmt.Errorf("config: attention_types[%d]: unknown attention kind %q (want global or local)", gi, k)
			}
		}
		for i := 0; i < rep; i++ {
			out = append(out, kinds...)
		}
	}
	if len(out) != n {
		return nil, fmt.Errorf("config: attention_types expands to %d layers but num_layers is %d", len(out), n)
	}
	return out, nil
}
