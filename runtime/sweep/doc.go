// Package sweep runs ablation sweeps: thousands of ablation configurations
// evaluated as a few large batched forward passes.
//
// # Configuration spaces
//
// Components are heads `6.1` (LAYER.HEAD: that head's z, hook_z, replaced
// before W_O; b_O still added), attention layers `attn.6` (the whole
// hook_attn_out, b_O included) and MLPs `mlp.0` (the whole hook_mlp_out,
// c_proj bias included). A configuration is a set of components; it is
// written with its components in canonical order (by layer; within a layer
// heads by index, then attn, then mlp) joined by "+", and "" for no
// ablation. A space is
//
//	space   := term { ('|' | ',') term }        union, in order
//	term    := subsets(LIST)                     all 2^k subsets; index m has bit j set iff the j-th listed component is ablated
//	         | singles(LIST) | pairs(LIST)       1- and 2-element subsets
//	         | k(N, LIST)                        N-element subsets, lexicographic in list positions
//	         | given(FIXED; space)               every configuration of space plus FIXED (components joined by '+' or ',')
//	         | file(PATH)                        one configuration per line, components joined by '+'; an empty line is no ablation
//	         | COMP { '+' COMP } | none          one configuration
//	LIST    := ITEM { ',' ITEM }                 in order, repeats dropped
//	ITEM    := 6.1 | 6.* | *.1 | attn.6 | mlp.0 | attn.* | mlp.* | heads | attn | mlp
//
// `heads` is every head (layer-major: 0.0, 0.1, ..., so singles(heads)
// lists heads in the [L,H] order of per-head tables), `attn` every attention
// layer, `mlp` every MLP. Both '|' and ',' mean union at the top level; ','
// inside parentheses separates list items. The order of the expanded space
// is deterministic (the order of the terms, each in the order above) and a
// configuration that occurs twice is kept at its first occurrence; a
// configuration's index is its position in that order. Parse errors name
// the 1-based column and what was expected. file(PATH) takes the text up to
// the next ')' as the path; errors in the file name PATH:LINE.
//
// # The engine
//
// New runs the unablated pass once and keeps the residual stream before
// every block (and, for mean ablation, the per-position batch means of
// hook_z, hook_attn_out and hook_mlp_out, the TransformerLens idiom
// cache[name].mean(0)). Passes run only the positions the metric can see:
// attention is causal, so tokens after the last position read change
// nothing (the loss drops the last token, which is only a target).
//
// Plan sorts configurations by the first layer they touch, then as the
// leaves of a prefix tree over layers (configurations that ablate the same
// things in their first layers become neighbours), and cuts that order into
// chunks of at most K that never mix first layers (they would share
// nothing). Eval runs a chunk as one pass walked block by block: it starts
// at the chunk's first layer from the cached residual (nothing before it is
// recomputed); configurations with the same history so far form one group
// of B rows; groups split where members ablate different things in the next
// block (the first child keeps the parent's rows in place, the others get
// copies in new slots). A block runs once over all groups, with per-row
// keep masks applied by AblateHeads and AblateRows in replace hooks. Two
// shortcuts cut the arithmetic (forward.BlockOpts; NoShare passes take
// neither): in a pass's first block every group starts from the same cached
// residual, so q, k, v and the attention are shared: the block's attention
// output is the unablated hook_attn_out, computed once per layer, plus for
// each group the ablated heads' (fill - z_h) @ W_O[h] (z @ W_O + b_O is
// linear in z, so this is exact up to float32 rounding), and only ln2 and
// the MLP run per group. The last block computes its output only at the
// positions the metric reads (LossFrom.., or Pos), keys and values at every
// position. After the last block one LogitStats reduction reads only the
// positions the metric needs (never [K*B, T, V] logits). Passes are allocated in sizes
// from a short ladder (Engine.slots) so few distinct sizes are ever used.
// K comes from --max-memory: ConfigBytes estimates the activations one
// configuration adds to a pass (B*T rows of 9*C + F floats, doubled for the
// state being grown), so K = budget / ConfigBytes. For singles a chunk is
// the heads of one layer, run as one fixed-size pass from that layer; for
// pairs and larger sets the stretch between the first and the second
// ablated layer is also computed once per first ablation.
//
// Metrics: the mean next-token loss over the predictions at positions
// LossFrom..T-2 of every row (per row, then averaged: rows have equal
// counts, so this is the mean over all predictions), or the mean over rows
// of a logit difference at one position. The unablated configuration is
// given the baseline value from New, exactly; delta = value - baseline.
//
// # Results, resume, shards
//
// Result files have one row per configuration with the columns config,
// n_ablated, the metric (loss or logit_diff), delta and index (the
// configuration's position in the space), as CSV, JSONL or Parquet. The
// unablated configuration's name is the empty string: pandas.read_csv
// reads it as NaN unless given keep_default_na=False.
// Beside every result OUT sits OUT.meta.json (Meta): the space, model,
// task, a hash of the inputs, the shard i/n, the configuration counts, the
// baseline and whether the file is complete. A comment line in the CSV
// would break pandas.read_csv, hence the sidecar.
//
// The space is never expanded: Open parses it into one generator per term
// (stream.go) and the configurations are made one at a time, in index
// order, repeats dropped by asking the earlier terms whether they hold a
// configuration. Run reads the shard's configurations a window of
// RunOptions.Window (default Window, 65,536) at a time and plans each
// window on its own, so memory holds one window and its plan.
//
// While a sweep runs, rows are appended after every chunk (fsynced at
// least every 2 s and at the end) in evaluation order, one window after
// the other: to OUT itself for CSV and JSONL, to OUT.journal.jsonl for
// Parquet, which is written once at the end from that journal (Parquet
// cannot be appended to; writing row groups as we go would leave a file
// without a footer after a kill). At the end the output is rewritten
// (atomically) sorted by index, a window at a time, and the sidecar marked
// complete, so interrupted-and-resumed and uninterrupted runs give
// identical files. --resume cuts a partial last line (all that a killed
// append leaves), keeps every complete row and re-evaluates only chunks
// that miss configurations, writing only the missing rows. Because chunks
// come from the window's plan, a re-evaluated chunk is the same pass as
// before and its numbers are bit-identical (given the same --chunk or
// --max-memory, backend and thread count; otherwise they agree to float32
// rounding, as shards do with an unsharded run).
//
// Shard i of n holds the configurations whose index is i modulo n
// (interleaved so that every shard gets a share of the expensive
// early-layer configurations). Merge combines the n shard files and
// refuses a set with missing, repeated or incomplete shards, naming them.
//
// # Patching (Mode Noise, Denoise; patch.go)
//
// A patching sweep runs one set of prompts and takes values from another:
// Noise (resample ablation) runs Task.Tokens (clean) and patches in values
// from Task.Corrupt, row b from row b; Denoise (activation patching) runs
// the corrupt prompts and patches in clean values. Items, all exact:
//
//	6.1         head 6.1's z (hook_z) at every position
//	6.1@9       head 6.1's z at position 9 only
//	attn.6      the whole hook_attn_out; mlp.0 the whole hook_mlp_out
//	resid.6@9   hook_resid_pre of block 6 at position 9 (the stream itself)
//	S>R         an edge of the residual graph (runtime/graph, CIRCUITS.md)
//
// Removing an edge gives R the input: its input in this run - out_S(this
// run) + out_S(other run), ACDC's semantics; R's input only, not the
// stream. Senders: embed (W_E[tok] + W_pos, or W_E[tok] alone without a
// position embedding), head l.h (z_h @ W_O rows of
// h, no b_O), mlp.l (hook_mlp_out). Receivers: l.h.q|k|v (that head's
// query, key or value is recomputed from ln_1 of the patched input: one
// head's projection columns, HeadInput in runtime/forward; a rotary
// family's q and k are replaced before the block rotates them, so the
// recomputed head is rotated like the others), mlp.l (its input before
// ln_2, recomputed for the MLP only: MLPInput in runtime/forward) and
// logits (the final residual before ln_final). Any number of items
// combine in one configuration (a circuit); out_S(this run) is then S's
// output in this patched run. If attn.l is patched, a head sender of layer
// l still reads its own z (the split of the patched attention output into
// heads is not defined).
//
// Space words for patching: 6.1@9, 6.*@*, heads@* (every head at every
// position, layer-major, positions inner), resid.6@9, resid.*@*, edges
// (every edge in canonical order), edges(R) (every edge into receiver R),
// literal edges mlp.0>6.1.k, and file(PATH) lines of items joined by '+'.
// A term that is a single word naming many items (edges, anything@*) is
// one configuration per item, in that order; joined by '+' the items form
// one configuration.
//
// The engine runs both prompt sets once (New) and keeps per layer: the base
// residual before each block and after the last, the other run's
// resid_pre, z, attention and MLP outputs, and the differences other - base
// of z, MLP output and embedding. A configuration starts at the first layer
// it touches (an edge: its receiver's layer; logits: after the last block)
// from the cached base residual, and groups share prefixes as knock-outs
// do. Senders before that first layer are unchanged from the base run, so
// an edge from them adds a cached difference (a head's: dz_h @ W_O[h]);
// later senders' current outputs (z, MLP output) are kept per group as the
// pass crosses their layer and subtracted (through -W_O and -I, the backend
// having no subtraction). Metrics: ld (Task.Pos, default last, through
// LogitStats) and kl, the mean over rows of KL(p_clean || p_run) at the
// last position: the clean log-probabilities over the whole vocabulary are
// computed once and kept on the host; each run's logits at that one
// position are computed 64 rows at a time (a [64, V] buffer) and reduced in
// float64 on the host. The unpatched configuration's value is the base
// run's (ld_clean in Noise, ld_corrupt in Denoise).
//
// The patching hooks use hook_resid_pre, hook_q/k/v, hook_z,
// hook_attn_out, ln2.hook_normalized and hook_mlp_out, which every family
// has. The edges are those of the model's graph, graph.New(L, NH,
// cfg.ParallelAt) (DimsOf for the space language): a parallel-residual
// block (GPT-NeoX), whose MLP reads the block input, has no edge from its
// own heads into its MLP, and at its ln2.hook_normalized the stream still
// holds that input (the attention output is added after the MLP), so the
// same hook recomputes ln_2 from the right residual in both layouts.
// Options.NoShare has no effect on patching.
//
// Go API (for circuit discovery): New with Mode Noise and Metric KL or LD,
// then (*Engine).EvalCircuits(cfgs) returns the metric of every
// configuration (sets of removed edges, built with EdgeConfig or parsed
// with ParseConfig), batched and prefix-shared; Gap reports ld_clean,
// ld_corrupt and whether their difference is noise.
//
// Honest output: Gap().Noisy is true when the mean over rows of
// (clean_b - corrupt_b) is within 2 standard errors (sd over rows /
// sqrt(B), the paired difference) of zero; normalised scores are then
// noise and the command prints no normalised column and no verdict (and
// says so, also in --json as gap_is_noise). Gap().Reversed is true when
// that mean is below -2 standard errors: the corrupt prompts show more of
// the behaviour than the clean ones, the model does not do what the
// prompts probe, and no verdict is drawn either (gap_reversed; the
// normalised column is printed, it measures the reverse).
//
// # Interactions
//
// For a space that is exactly subsets(c_0..c_{k-1}), Interactions gives
// the effect of ablating c_j given any set S of the others already ablated:
// v(S + c_j) - v(S). Compensation (backup heads) shows as an effect that
// grows once S is ablated.
package sweep
