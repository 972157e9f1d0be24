package arch

import (
	"math"
	"slices"
	"strings"
	"testing"
)

// pythia160m is EleutherAI/pythia-160m's config.json (the fields read).
const pythia160m = `{"architectures":["GPTNeoXForCausalLM"],"bos_token_id":0,"eos_token_id":0,"hidden_act":"gelu",
"hidden_size":768,"initializer_range":0.02,"intermediate_size":3072,"layer_norm_eps":1e-05,"max_position_embeddings":2048,
"model_type":"gpt_neox","num_attention_heads":12,"num_hidden_layers":12,"rotary_emb_base":10000,"rotary_pct":0.25,
"tie_word_embeddings":false,"torch_dtype":"float16","use_cache":true,"use_parallel_residual":true,"vocab_size":50304}`

func TestParseNeoX(t *testing.T) {
	c, err := Parse([]byte(pythia160m))
	if err != nil {
		t.Fatal(err)
	}
	if c.Family != GPTNeoX || c.Spec.Display != "GPT-NeoX" || c.Layers != 12 || c.Heads != 12 || c.DHead != 64 || c.DMLP != 3072 ||
		c.Vocab != 50304 || c.Context != 2048 || c.RotaryDims != 16 || c.RotaryBase != 10000 || !c.Parallel ||
		c.Act != GELUErf || c.TiedUnembed || c.Pos != PosRotary || math.Abs(c.AttnScale-0.125) > 1e-15 {
		t.Fatalf("pythia-160m parsed as %+v", c)
	}
	if !c.ParallelAt(3) {
		t.Error("ParallelAt(3) false with use_parallel_residual")
	}
	// Parameters as Hugging Face counts them for pythia-160m: 162,322,944.
	if p := c.Params(); p != 162322944 {
		t.Errorf("Params = %d, want 162322944", p)
	}
	hooks := c.BlockHooks(0)
	if !slices.Contains(hooks, "attn.hook_rot_q") || slices.Contains(hooks, "hook_resid_mid") {
		t.Errorf("block hooks %v", hooks)
	}
	if th := c.TopHooks(); len(th) != 1 || th[0] != "hook_embed" {
		t.Errorf("top hooks %v", th)
	}
	seq, err := Parse([]byte(strings.Replace(pythia160m, `"use_parallel_residual":true`, `"use_parallel_residual":false`, 1)))
	if err != nil || seq.Parallel || !slices.Contains(seq.BlockHooks(0), "hook_resid_mid") {
		t.Errorf("sequential: %v %+v", err, seq)
	}
	tied, err := Parse([]byte(strings.Replace(pythia160m, `"tie_word_embeddings":false`, `"tie_word_embeddings":true`, 1)))
	if err != nil || !tied.TiedUnembed {
		t.Errorf("tied: %v", err)
	}
	for name, c := range map[string]struct{ from, to, want string }{
		"odd rotary":  {`"rotary_pct":0.25`, `"rotary_pct":0.3`, "must be even"},
		"no layers":   {`"num_hidden_layers":12,`, ``, `missing field "num_hidden_layers"`},
		"activation":  {`"hidden_act":"gelu"`, `"hidden_act":"relu"`, `hidden_act "relu"`},
		"rope scale":  {`"rotary_pct":0.25`, `"rotary_pct":0.25,"rope_scaling":{"type":"linear","factor":2}`, "rope_scaling"},
		"bad pct":     {`"rotary_pct":0.25`, `"rotary_pct":1.5`, "rotary_pct"},
		"no interm.":  {`"intermediate_size":3072,`, ``, `missing field "intermediate_size"`},
		"bad eps":     {`"layer_norm_eps":1e-05`, `"layer_norm_eps":0`, "layer_norm_eps"},
		"no qkv bias": {`"rotary_pct":0.25`, `"rotary_pct":0.25,"attention_bias":false`, "attention_bias"},
	} {
		_, err := Parse([]byte(strings.Replace(pythia160m, c.from, c.to, 1)))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to mention %q", name, err, c.want)
		}
	}
}
