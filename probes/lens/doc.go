// Package lens reads the residual stream of every layer through the model's
// own unembedding: the logit lens, its variants, and the tuned lens.
//
// Definitions (those of the fixtures' README; resid[l] = blocks.l.hook_resid_pre,
// [B*T,C], resid[L] the final residual before ln_f; losses are natural-log
// cross-entropies averaged over all B*(T-1) next-token predictions):
//
//	logit_lens_loss[l]             loss of LN_f(resid[l]) @ W_U^T, l = 0..L
//	logit_lens_kl[l]               mean over all B*T positions of KL(p_final || p_lens_l)
//	logit_lens_final_block_loss[l] loss of LN_f(Block_{L-1}(resid[l])) @ W_U^T, l = 0..L-1
//	logit_lens_loss_centered[l]    loss of LN_f(r - (r.u)u) @ W_U^T, u the unit mean row of W_E
//
// LN_f is applied with its own statistics recomputed from the lensed vector
// (its mean and variance at layer l), with ln_f's weight and bias. This is
// the standard logit lens. TransformerLens issue 1076: its
// ActivationCache.accumulated_resid(apply_ln=True) went through
// apply_ln_to_stack, which divided every layer's residual by the final
// layer's cached ln_final.hook_scale; early layers, whose residual norm is
// smaller, came out near-uniform (the cached scale acts as a temperature).
// Fixed there by recompute_ln (PR 1180). The fixtures' values are the
// recomputed ones and the golden tests check them.
//
// Layout of the work (everything per layer stays on the backend):
//   - one forward pass; a Replace hook at every blocks.l.hook_resid_pre copies
//     resid[l] into a backend tensor (no host copies);
//   - per layer, LayerNorm then LogitStats (fused unembedding: logsumexp and
//     the target's logit, never a [B*T,V] matrix) give the loss;
//   - KL needs whole distributions: logits of chunks of rows (at most 4M
//     floats) come from MatMul; the final distribution of a chunk is computed
//     once, in float64 on the host, and compared with every layer's lens;
//   - the final-block variant copies resid[l] into a second state and runs
//     Blocks(L-1, L) on it; the centered variant subtracts (r.u)u with one
//     MatMul into [B*T,1] and one accumulating MatMul with -u.
//
// Top-k predictions at chosen positions are the lens' softmax probabilities
// of the k most likely tokens at each layer.
//
// Tuned lens (tuned.go): a per-layer affine translator h -> h + h A^T + b
// (A [C,C] and b [C] as in the tuned-lens package's nn.Linear), fitted to
// minimise the mean KL(p_final || softmax(LN_f(h + hA^T + b) W_U^T)). Fit
// is the full-batch host recipe for small samples (N x V capped);
// FitStream (stream.go) is what `tunedlens fit` runs: token windows streamed
// from a Source (source.go) in minibatches, a ridge start from accumulated
// sums, then Adam or SGD as the tuned-lens package trains, the [N,V]
// products on the backend (grad.go), checkpointed and resumable.
package lens
