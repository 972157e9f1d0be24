// Package induction finds induction and previous-token heads on repeated
// random tokens: P random tokens, distinct within a row, then the same P
// again, no BOS (the fixtures' `rep_tokens` convention).
//
// For a row of 2P tokens and the attention pattern [L,B,NH,2P,2P]:
//
//	induction_score[l][h]  = mean over b and i in P..2P-1 of pattern[l,b,h,i,i-P+1]
//	                         (query i attends to the token after the previous occurrence of token i)
//	prev_token_score[l][h] = mean over b and i in 1..2P-1 of pattern[l,b,h,i,i-1]
//	rep_loss_second_half   = mean next-token loss of the predictions made at positions P..2P-2
//	rep_head_ablation_loss = the same with head l.h zero-ablated (hook_z, before W_O)
//
// Scores are accumulated in float64 from the float32 patterns.
//
// # How random tokens are drawn
//
// RepeatedTokens draws, for each row, P distinct ids uniformly from a
// candidate list (sampling without replacement by rejection), using
// math/rand/v2's PCG seeded with (seed, 0x6e656f73636f7065): the same seed
// gives the same rows on every machine and Go version that keeps PCG's
// documented output. Candidates (Candidates) are the ids 0..V-1 of the
// vocabulary minus special tokens (for a tokenizer: ids whose token string
// looks like <|...|>, e.g. GPT-2's <|endoftext|> 50256) and minus ids the
// tokenizer does not define (models whose embedding is padded beyond the
// vocabulary). Without a tokenizer every id of the embedding is a candidate.
package induction
