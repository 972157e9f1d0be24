// Package arch turns a Hugging Face config.json (model_type gpt_neo or gpt2)
// into one architecture description the forward pass reads.
package arch

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
)

// Family names the checkpoint family, which decides tensor names and layouts.
type Family string

const (
	GPTNeo Family = "gpt_neo"
	GPT2   Family = "gpt2"
)

// Config is the architecture of a GPT-Neo or GPT-2 model.
type Config struct {
	Family      Family   `json:"model_type"`
	Layers      int      `json:"n_layers"`   // L
	Heads       int      `json:"n_heads"`    // NH
	DModel      int      `json:"d_model"`    // C
	DHead       int      `json:"d_head"`     // HS = C / NH
	DMLP        int      `json:"d_mlp"`      // F
	Vocab       int      `json:"d_vocab"`    // V
	Context     int      `json:"n_ctx"`      // maximum T
	LayerTypes  []string `json:"attn_types"` // per layer: "global" or "local"
	Window      int      `json:"window_size,omitempty"`
	AttnScale   float64  `json:"attn_scale"` // multiplies q.k: 1 for GPT-Neo, 1/sqrt(HS) for GPT-2
	Act         string   `json:"act_fn"`
	LNEps       float64  `json:"layer_norm_eps"`
	TiedUnembed bool     `json:"tied_unembed"`
	BOS         int      `json:"bos_token_id"`
	EOS         int      `json:"eos_token_id"`
}

// LayerWindow is the local attention window of layer l, 0 for global layers.
func (c *Config) LayerWindow(l int) int {
	if c.LayerTypes[l] == "local" {
		return c.Window
	}
	return 0
}

// Params counts the model's parameters (tied unembedding counted once).
func (c *Config) Params() int64 {
	C, F, L := int64(c.DModel), int64(c.DMLP), int64(c.Layers)
	block := 4*C*C + C /*attn + b_O*/ + 2*C*F + F + C /*mlp*/ + 4*C /*2 LN*/
	if c.Family == GPT2 {
		block += 3 * C // c_attn bias
	}
	return int64(c.Vocab)*C + int64(c.Context)*C + L*block + 2*C
}

// rawConfig holds the union of the GPT-Neo and GPT-2 config.json fields we read.
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
	c := &Config{Act: "gelu_new", LNEps: 1e-5, TiedUnembed: true, BOS: -1, EOS: -1}
	var err error
	switch r.ModelType {
	case "gpt_neo":
		c.Family = GPTNeo
		if c.Layers, err = need(r.NumLayers, "num_layers"); err != nil {
			return nil, err
		}
		if c.Heads, err = need(r.NumHeads, "num_heads"); err != nil {
			return nil, err
		}
		if c.DModel, err = need(r.HiddenSize, "hidden_size"); err != nil {
			return nil, err
		}
		if c.Context, err = need(r.MaxPos, "max_position_embeddings"); err != nil {
			return nil, err
		}
		c.DMLP = 4 * c.DModel
		if r.IntermediateSize != nil {
			if c.DMLP, err = need(r.IntermediateSize, "intermediate_size"); err != nil {
				return nil, err
			}
		}
		if c.LayerTypes, err = expandAttentionTypes(r.AttentionTypes, c.Layers); err != nil {
			return nil, err
		}
		if r.AttentionLayers != nil {
			if len(r.AttentionLayers) != c.Layers {
				return nil, fmt.Errorf("config: attention_layers has %d entries, num_layers is %d", len(r.AttentionLayers), c.Layers)
			}
			for i, t := range r.AttentionLayers {
				if t != c.LayerTypes[i] {
					return nil, fmt.Errorf("config: attention_layers[%d] is %q but attention_types expands to %q", i, t, c.LayerTypes[i])
				}
			}
		}
		for _, t := range c.LayerTypes {
			if t == "local" {
				if c.Window, err = need(r.WindowSize, "window_size"); err != nil {
					return nil, err
				}
				break
			}
		}
		c.AttnScale = 1 // GPT-Neo does not scale q.k
	case "gpt2":
		c.Family = GPT2
		if c.Layers, err = need(r.NLayer, "n_layer"); err != nil {
			return nil, err
		}
		if c.Heads, err = need(r.NHead, "n_head"); err != nil {
			return nil, err
		}
		if c.DModel, err = need(r.NEmbd, "n_embd"); err != nil {
			return nil, err
		}
		ctx := r.NPositions
		if ctx == nil {
			ctx = r.NCtx
		}
		if c.Context, err = need(ctx, "n_positions"); err != nil {
			return nil, err
		}
		c.DMLP = 4 * c.DModel
		if r.NInner != nil {
			if c.DMLP, err = need(r.NInner, "n_inner"); err != nil {
				return nil, err
			}
		}
		c.LayerTypes = make([]string, c.Layers)
		for i := range c.LayerTypes {
			c.LayerTypes[i] = "global"
		}
		if r.ScaleByIdx != nil && *r.ScaleByIdx {
			return nil, fmt.Errorf("config: scale_attn_by_inverse_layer_idx=true is not supported")
		}
	case "":
		return nil, fmt.Errorf("config: missing field \"model_type\" (want \"gpt_neo\" or \"gpt2\")")
	default:
		return nil, fmt.Errorf("config: model_type %q is not supported (want \"gpt_neo\" or \"gpt2\")", r.ModelType)
	}
	if c.Vocab, err = need(r.VocabSize, "vocab_size"); err != nil {
		return nil, err
	}
	if c.DModel%c.Heads != 0 {
		return nil, fmt.Errorf("config: hidden size %d is not divisible by %d heads", c.DModel, c.Heads)
	}
	c.DHead = c.DModel / c.Heads
	if c.Family == GPT2 {
		c.AttnScale = 1 / math.Sqrt(float64(c.DHead))
		if r.ScaleAttn != nil && !*r.ScaleAttn {
			c.AttnScale = 1
		}
	}
	if r.Activation != nil {
		switch *r.Activation {
		case "gelu_new", "gelu_pytorch_tanh", "gelu_fast":
			c.Act = "gelu_new"
		default:
			return nil, fmt.Errorf("config: activation_function %q is not supported (want \"gelu_new\")", *r.Activation)
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
	return c, nil
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
