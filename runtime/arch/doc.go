// Package arch describes each supported architecture family in one place and
// turns a Hugging Face config.json into the Config the rest of neoscope reads.
//
// A family (GPT-Neo, GPT-2, GPT-NeoX/Pythia) is one Spec value in families.go:
//
//   - its tensor names and layouts: the prefixes stripped from stored names
//     ("transformer.", "gpt_neox."), the non-parameter buffers ignored on
//     load, the canonical name of every role (embedding, per-layer LayerNorms,
//     q/k/v or fused qkv, output projection, MLP, final LayerNorm,
//     unembedding), whether matrices are stored nn.Linear [out,in] or Conv1D
//     [in,out], and how a fused qkv is laid out (GPT-2: columns q|k|v;
//     GPT-NeoX: rows grouped per head as [q_h|k_h|v_h]);
//   - how its config.json fields map onto Config (parse).
//
// A Config then carries the block recipe the forward pass follows without
// asking which family it is: the position scheme (learned, rotary, none),
// the residual layout per layer (sequential, parallel), the activation
// (gelu_new tanh or exact erf gelu), the attention scale, local windows, a
// tied or untied unembedding, and the hook names the model exposes.
//
// runtime/checkpoint (what to load and check), runtime/forward (the block
// recipe, weight roles) and the probes (W_E, W_U, W_O, b_O by role) read this
// description; none of them switches on the family. Adding a family is a new
// Spec and a parse function here, plus any new backend op its recipe needs.
package arch
