package arch

import (
	"math"
	"strings"
	"testing"
)

const neo = `{"model_type":"gpt_neo","num_layers":4,"num_heads":4,"hidden_size":64,"intermediate_size":null,
"max_position_embeddings":64,"attention_types":[[["global","local"],2]],"attention_layers":["global","local","global","local"],
"window_size":8,"vocab_size":512,"layer_norm_epsilon":1e-5,"activation_function":"gelu_new"}`

const gpt2 = `{"model_type":"gpt2","n_layer":2,"n_head":4,"n_embd":64,"n_positions":32,"vocab_size":100}`

func TestParse(t *testing.T) {
	c, err := Parse([]byte(neo))
	if err != nil {
		t.Fatal(err)
	}
	if c.DMLP != 256 || c.DHead != 16 || c.AttnScale != 1 || c.LayerWindow(1) != 8 || c.LayerWindow(0) != 0 {
		t.Fatalf("gpt_neo parsed as %+v", c)
	}
	c, err = Parse([]byte(gpt2))
	if err != nil {
		t.Fatal(err)
	}
	if c.DMLP != 256 || c.Context != 32 || math.Abs(c.AttnScale-0.25) > 1e-15 || c.LayerTypes[1] != "global" {
		t.Fatalf("gpt2 parsed as %+v", c)
	}
	// The real GPT-Neo-125M pattern.
	big := strings.Replace(neo, `[[["global","local"],2]]`, `[[["global","local"],6]]`, 1)
	big = strings.Replace(big, `"num_layers":4`, `"num_layers":12`, 1)
	big = strings.Replace(big, `"attention_layers":["global","local","global","local"],`, ``, 1)
	if c, err = Parse([]byte(big)); err != nil || len(c.LayerTypes) != 12 || c.LayerTypes[11] != "local" {
		t.Fatalf("12-layer expansion: %v %+v", err, c)
	}
}

func TestParseErrors(t *testing.T) {
	cases := map[string]struct{ json, want string }{
		"types sum":     {strings.Replace(neo, `],2]]`, `],3]]`, 1), "attention_types expands to 6 layers but num_layers is 4"},
		"layers differ": {strings.Replace(neo, `"attention_layers":["global","local",`, `"attention_layers":["local","local",`, 1), "attention_layers[0]"},
		"bad kind":      {strings.Replace(neo, `"local"],2`, `"sparse"],2`, 1), `unknown attention kind "sparse"`},
		"no heads":      {strings.Replace(neo, `"num_heads":4,`, ``, 1), `missing field "num_heads"`},
		"no window":     {strings.Replace(neo, `"window_size":8,`, ``, 1), `missing field "window_size"`},
		"no vocab":      {strings.Replace(gpt2, `,"vocab_size":100`, ``, 1), `missing field "vocab_size"`},
		"zero embd":     {strings.Replace(gpt2, `"n_embd":64`, `"n_embd":0`, 1), `"n_embd" must be positive`},
		"indivisible":   {strings.Replace(gpt2, `"n_head":4`, `"n_head":5`, 1), "not divisible"},
		"model type":    {`{"model_type":"llama"}`, `model_type "llama" is not supported`},
		"no type":       {`{}`, `missing field "model_type"`},
		"activation":    {strings.Replace(neo, `gelu_new`, `relu`, 1), `activation_function "relu"`},
		"not json":      {`{`, "not valid JSON"},
	}
	for name, c := range cases {
		_, err := Parse([]byte(c.json))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to mention %q", name, err, c.want)
		}
	}
}
