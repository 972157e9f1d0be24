// Package embed measures the geometry of the token embedding W_E
// (wte.weight, [V,C], rows = tokens) and what the residual stream does with
// its mean direction.
//
// Statistics (definitions of the fixtures' README, all exact over all V rows):
//
//	mean_norm                       mean_t |W_E[t]|
//	norm_of_mean                    |mean_t W_E[t]|
//	mean_pairwise_cos               mean over ordered pairs i != j of cos(W_E[i], W_E[j])
//	mean_pairwise_cos_centered      the same on rows minus the mean row
//	mean_abs_pairwise_cos_centered  mean over i != j of |cos| of the centered rows
//	embed_self_top1                 fraction of t with argmax_s W_E[t].W_E[s] == t
//	embed_self_top1_ln              fraction of t with argmax_s LN_f(W_E[t]).W_E[s] == t
//
// How they are computed:
//   - Norms, means and the two signed cosine means are host float64 work in
//     O(VC): for unit rows u_i, sum_{i!=j} u_i.u_j = |sum_i u_i|^2 - V (the
//     closed form), divided by V(V-1).
//   - |cos| has no closed form: it needs all V^2 pairs, O(V^2 C). The unit
//     centered rows U [V,C] go to the backend once; chunks of R rows are
//     multiplied by all rows (MatMul, U[i:i+R] @ U^T -> [R,V]), downloaded and
//     summed in float64 without the diagonal. R is chosen so a chunk holds at
//     most 4M floats (16 MB): never a [V,V] matrix at once.
//   - The top-1 indices go the same way, with W_E (or LN_f(W_E) for the _ln
//     variant, LayerNorm on the backend) times W_E^T per chunk and a host
//     argmax (first index on exact ties, as torch.argmax). Float32 scores
//     can misorder candidates closer than about 1e-5 relative, so every
//     candidate within 1e-4 relative (plus 1e-6 absolute) of the float32 best
//     is rescored in float64 on the host and the float64 best wins: the
//     indices are exact, not float32 guesses.
//   - A row of zeros (after centering) has no direction: its unit vector is
//     taken as 0, so it adds 0 to the cosine sums (still counted in V(V-1)).
//
// Direction probe (Project): u = mean(W_E)/|mean(W_E)|. For every layer
// l = 0..L, the projection resid[l].u at every position (resid[l] =
// blocks.l.hook_resid_pre, resid[L] the final residual before ln_f) is
// summarised by its mean and (population) standard deviation, with the mean
// residual norm and the mean cosine between resid[l] and u. On GPT-Neo the
// shared embedding offset makes resid[0].u large and nearly constant: a
// position-independent bias that ln_f's centering does not remove (u is not
// along the all-ones direction), so the lens' centered variant (probes/lens)
// shows what removing it costs.
package embed
