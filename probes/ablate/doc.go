// Package ablate measures how much the next-token loss rises when one
// component of the model is knocked out: a single attention head, a whole
// attention layer, a whole MLP, or an arbitrary set of heads at once.
//
// It is the plain reference: every configuration is its own full forward
// pass from the embedding, with one hook doing the ablation on the backend.
// The batched sweep engine (runtime/sweep) is checked against it.
//
// # What "ablating" means here (the fixtures' conventions)
//
//   - Head l.h: blocks.l.attn.hook_z [B,T,NH,HS], head h's slice, before
//     W_O; b_O is still added (so ablating every head of a layer is not the
//     same as ablating the layer).
//   - Attention layer l: blocks.l.hook_attn_out [B,T,C] = z @ W_O + b_O,
//     bias included.
//   - MLP l: blocks.l.hook_mlp_out [B,T,C], c_proj bias included.
//
// Zero mode writes 0. Mean mode writes, at every row b and position t, the
// mean over the B rows at position t of the same activation in the
// unablated run on the same tokens (TransformerLens `cache[name].mean(0)`);
// the means are computed once, from one observed pass, and kept on the
// backend as [T, cols] fill tensors.
//
// Loss is the mean natural-log cross-entropy of the predictions made at
// positions LossFrom..T-2 of every row (forward.Model.MeanLoss); LossFrom 0
// is the ordinary language-model loss, LossFrom P on a repeated sequence of
// 2P tokens is the induction "second half" loss.
//
// Subsets follow the fixtures' bit rule: for heads H[0..k-1], subset m
// ablates H[j] iff bit j of m is set; m = 0 is the unablated loss.
package ablate
