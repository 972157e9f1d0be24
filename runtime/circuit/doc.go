// Package circuit is automatic circuit discovery (ACDC, Conmy et al. 2023)
// over the residual-stream edge graph of runtime/graph.
//
// A circuit is the full graph minus a set of removed edges. Removing S>R
// gives receiver R the input it has in the current run minus S's output in
// the current run plus S's output on the corrupt prompts (CIRCUITS.md's
// semantics); every other receiver reads the actual residual of the run and
// everything downstream is recomputed. An Evaluator scores a batch of
// circuits with one metric:
//
//	kl  mean over rows of KL(p_clean || p_circuit) of the next-token
//	    distributions at the last position (p_clean: the full model);
//	ld  mean over rows of logits[io] - logits[s] at the last position.
//
// Run is ACDC in the order the fixtures' acdc.json was made in, so that
// results are comparable: receivers in reverse canonical order (`logits`
// first, then the last layer's MLP, its heads' v, k, q from the last head
// down, back to layer 0). A receiver whose node has no kept outgoing edge is
// skipped and all its incoming edges are removed without an evaluation.
// Otherwise its incoming edges are tried in reverse canonical sender order;
// an edge is removed when the circuit without it is worse by less than the
// threshold TAU (kl: KL_without - KL_current < TAU; ld: LD_current -
// LD_without < TAU).
//
// Batching is speculative and exact: the next candidates of one receiver are
// evaluated in one Eval call, candidate i assuming candidates 0..i-1 removed
// (the usual outcome in a sparse circuit). Decisions are taken in order;
// when a removal is rejected, the later speculations assumed it and are
// discarded, and the next call starts after the rejected edge. The decisions
// are therefore those of the sequential algorithm (Options.Batch = 1), edge
// for edge, given the same metric values; a test checks this on the
// fixtures.
//
// Counting: Result.Evaluations is every circuit an Evaluator scored
// (discarded speculations included, plus the full, empty and final
// circuits); Result.Tried is the number of edges decided by an evaluation
// (the sequential algorithm's count, minus its initial full-circuit
// evaluation); Result.Passes is the number of Eval calls.
//
// Two evaluators exist: HookEvaluator here, a plain one on runtime/forward's
// replace hooks that stacks the circuits of a call as extra batch rows (the
// reference, and the fallback), and the batched edge-patching engine of
// runtime/sweep, which the command wires in when it is available.
//
// Resume: Run reports each evaluated decision to Options.Record and replays
// Options.Replay (the decisions of a killed run, in order) instead of
// evaluating them; Journal stores them in a file whose first line names the
// inputs' hash, and a resume with other inputs is refused.
package circuit
