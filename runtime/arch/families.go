package arch

import (
	"fmt"
	"math"
	"strings"
)

// families are the supported architecture families, one Spec each.
var families = []*Spec{
	{
		Family:   GPTNeo,
		Display:  "GPT-Neo",
		Prefixes: []string{"transformer."},
		Buffers:  []string{".attn.bias", ".attn.masked_bias", ".attn.attention.bias", ".attn.attention.masked_bias"},
		Names: Names{
			Embed: "wte.weight", PosEmbed: "wpe.weight", FinalLNW: "ln_f.weight", FinalLNB: "ln_f.bias",
			Unembed: "lm_head.weight", TiedUnembed: "lm_head.weight", Layer: "h.%d.",
			LN1W: "ln_1.weight", LN1B: "ln_1.bias", LN2W: "ln_2.weight", LN2B: "ln_2.bias",
			Q: "attn.attention.q_proj.weight", K: "attn.attention.k_proj.weight", V: "attn.attention.v_proj.weight",
			O: "attn.attention.out_proj.weight", OBias: "attn.attention.out_proj.bias",
			FC: "mlp.c_fc.weight", FCBias: "mlp.c_fc.bias", Proj: "mlp.c_proj.weight", ProjBias: "mlp.c_proj.bias",
		},
		Storage:    LinearOutIn,
		QKV:        QKVSeparate,
		parse:      parseGPTNeo,
		configHint: "num_layers, num_heads, hidden_size, max_position_embeddings, attention_types",
	},
	{
		Family:   GPT2,
		Display:  "GPT-2",
		Prefixes: []string{"transformer."},
		Buffers:  []string{".attn.bias", ".attn.masked_bias"},
		Names: Names{
			Embed: "wte.weight", PosEmbed: "wpe.weight", FinalLNW: "ln_f.weight", FinalLNB: "ln_f.bias",
			Unembed: "lm_head.weight", TiedUnembed: "lm_head.weight", Layer: "h.%d.",
			LN1W: "ln_1.weight", LN1B: "ln_1.bias", LN2W: "ln_2.weight", LN2B: "ln_2.bias",
			QKV: "attn.c_attn.weight", QKVBias: "attn.c_attn.bias",
			O: "attn.c_proj.weight", OBias: "attn.c_proj.bias",
			FC: "mlp.c_fc.weight", FCBias: "mlp.c_fc.bias", Proj: "mlp.c_proj.weight", ProjBias: "mlp.c_proj.bias",
		},
		Storage:    Conv1DInOut,
		QKV:        QKVFusedBlocks,
		parse:      parseGPT2,
		configHint: "n_layer, n_head, n_embd, n_positions",
	},
	{
		Family:   GPTNeoX,
		Display:  "GPT-NeoX",
		Prefixes: []string{"gpt_neox."},
		Buffers:  []string{".attention.bias", ".attention.masked_bias", ".attention.rotary_emb.inv_freq"},
		Names: Names{
			Embed: "embed_in.weight", FinalLNW: "final_layer_norm.weight", FinalLNB: "final_layer_norm.bias",
			Unembed: "embed_out.weight", TiedUnembed: "embed_out.weight", Layer: "layers.%d.",
			LN1W: "input_layernorm.weight", LN1B: "input_layernorm.bias",
			LN2W: "post_attention_layernorm.weight", LN2B: "post_attention_layernorm.bias",
			QKV: "attention.query_key_value.weight", QKVBias: "attention.query_key_value.bias",
			O: "attention.dense.weight", OBias: "attention.dense.bias",
			FC: "mlp.dense_h_to_4h.weight", FCBias: "mlp.dense_h_to_4h.bias",
			Proj: "mlp.dense_4h_to_h.weight", ProjBias: "mlp.dense_4h_to_h.bias",
		},
		Storage:    LinearOutIn,
		QKV:        QKVFusedPerHead,
		parse:      parseGPTNeoX,
		configHint: "num_hidden_layers, num_attention_heads, hidden_size, intermediate_size, max_position_embeddings, rotary_pct",
	},
}

// Lookup returns the Spec of a family (nil if unsupported).
func Lookup(f Family) *Spec {
	for _, s := range families {
		if s.Family == f {
			return s
		}
	}
	return nil
}

// Families lists the supported families.
func Families() []*Spec { return append([]*Spec(nil), families...) }

func supported() string {
	var q []string
	for _, s := range families {
		q = append(q, fmt.Sprintf("%q", string(s.Family)))
	}
	return strings.Join(q, ", ")
}

func parseGPTNeo(r *rawConfig, c *Config) error {
	var err error
	if c.Layers, err = need(r.NumLayers, "num_layers"); err != nil {
		return err
	}
	if c.Heads, err = need(r.NumHeads, "num_heads"); err != nil {
		return err
	}
	if c.DModel, err = need(r.HiddenSize, "hidden_size"); err != nil {
		return err
	}
	if c.Context, err = need(r.MaxPos, "max_position_embeddings"); err != nil {
		return err
	}
	c.DMLP = 4 * c.DModel
	if r.IntermediateSize != nil {
		if c.DMLP, err = need(r.IntermediateSize, "intermediate_size"); err != nil {
			return err
		}
	}
	if c.LayerTypes, err = expandAttentionTypes(r.AttentionTypes, c.Layers); err != nil {
		return err
	}
	if r.AttentionLayers != nil {
		if len(r.AttentionLayers) != c.Layers {
			return fmt.Errorf("config: attention_layers has %d entries, num_layers is %d", len(r.AttentionLayers), c.Layers)
		}
		for i, t := range r.AttentionLayers {
			if t != c.LayerTypes[i] {
				return fmt.Errorf("config: attention_layers[%d] is %q but attention_types expands to %q", i, t, c.LayerTypes[i])
			}
		}
	}
	for _, t := range c.LayerTypes {
		if t == "local" {
			if c.Window, err = need(r.WindowSize, "window_size"); err != nil {
				return err
			}
			break
		}
	}
	c.AttnScale = 1 // GPT-Neo does not scale q.k
	return nil
}

func parseGPT2(r *rawConfig, c *Config) error {
	var err error
	if c.Layers, err = need(r.NLayer, "n_layer"); err != nil {
		return err
	}
	if c.Heads, err = need(r.NHead, "n_head"); err != nil {
		return err
	}
	if c.DModel, err = need(r.NEmbd, "n_embd"); err != nil {
		return err
	}
	ctx := r.NPositions
	if ctx == nil {
		ctx = r.NCtx
	}
	if c.Context, err = need(ctx, "n_positions"); err != nil {
		return err
	}
	c.DMLP = 4 * c.DModel
	if r.NInner != nil {
		if c.DMLP, err = need(r.NInner, "n_inner"); err != nil {
			return err
		}
	}
	if r.ScaleByIdx != nil && *r.ScaleByIdx {
		return fmt.Errorf("config: scale_attn_by_inverse_layer_idx=true is not supported")
	}
	if c.DModel%c.Heads == 0 {
		c.AttnScale = 1 / math.Sqrt(float64(c.DModel/c.Heads))
	}
	if r.ScaleAttn != nil && !*r.ScaleAttn {
		c.AttnScale = 1
	}
	return nil
}

// parseGPTNeoX reads Hugging Face's GPTNeoXConfig: rotary position embedding
// on the first int(d_head*rotary_pct) dims of each head, scores scaled by
// 1/sqrt(d_head), hidden_act "gelu" (exact erf), use_parallel_residual,
// tie_word_embeddings (default false for GPT-NeoX), layer_norm_eps.
func parseGPTNeoX(r *rawConfig, c *Config) error {
	var err error
	if c.Layers, err = need(r.NumHiddenLayers, "num_hidden_layers"); err != nil {
		return err
	}
	if c.Heads, err = need(r.NumAttentionHeads, "num_attention_heads"); err != nil {
		return err
	}
	if c.DModel, err = need(r.HiddenSize, "hidden_size"); err != nil {
		return err
	}
	if c.Context, err = need(r.MaxPos, "max_position_embeddings"); err != nil {
		return err
	}
	if c.DMLP, err = need(r.IntermediateSize, "intermediate_size"); err != nil {
		return err
	}
	if c.DModel%c.Heads != 0 {
		return fmt.Errorf("config: hidden size %d is not divisible by %d heads", c.DModel, c.Heads)
	}
	hs := c.DModel / c.Heads
	c.AttnScale = 1 / math.Sqrt(float64(hs))
	c.Pos = PosRotary
	pct := 1.0
	switch {
	case r.RotaryPct != nil:
		pct = *r.RotaryPct
	case r.PartialRotary != nil:
		pct = *r.PartialRotary
	}
	if !(pct >= 0 && pct <= 1) {
		return fmt.Errorf("config: rotary_pct must be within [0, 1], got %g", pct)
	}
	c.RotaryDims = int(float64(hs) * pct) // Hugging Face: int(head_size * rotary_pct)
	c.RotaryBase = 10000
	switch {
	case r.RotaryEmbBase != nil:
		c.RotaryBase = *r.RotaryEmbBase
	case r.RopeTheta != nil:
		c.RotaryBase = *r.RopeTheta
	}
	if !(c.RotaryBase > 0) {
		return fmt.Errorf("config: rotary_emb_base must be positive, got %g", c.RotaryBase)
	}
	if len(r.RopeScaling) > 0 && string(r.RopeScaling) != "null" {
		return fmt.Errorf("config: rope_scaling %s is not supported (want null)", r.RopeScaling)
	}
	if r.AttentionBias != nil && !*r.AttentionBias {
		return fmt.Errorf("config: attention_bias=false is not supported (Pythia checkpoints have query_key_value and dense biases)")
	}
	c.Parallel = true // Hugging Face's default
	if r.UseParallel != nil {
		c.Parallel = *r.UseParallel
	}
	c.Act = GELUErf // GPTNeoXConfig's default hidden_act is "gelu"
	if r.HiddenAct != nil {
		if c.Act, err = activation("hidden_act", *r.HiddenAct); err != nil {
			return err
		}
	}
	if r.LayerNormEps != nil {
		if *r.LayerNormEps <= 0 {
			return fmt.Errorf("config: layer_norm_eps must be positive, got %g", *r.LayerNormEps)
		}
		c.LNEps = *r.LayerNormEps
	}
	c.TiedUnembed = false // GPTNeoXConfig's default; tie_word_embeddings true ties it
	if r.Tie != nil && *r.Tie {
		c.TiedUnembed = true
	}
	return nil
}
