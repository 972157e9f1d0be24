// Package conformance is the test suite every Backend implementation runs
// (as gonum's blas/testblas is for BLAS implementations): write the checks
// once, call them from each backend's tests.
//
//   - Ops: every Backend operation on odd shapes and strided views against a
//     float64 reference computed here, with a commented bound per op.
//   - Forward: whole forward passes of the fixture models (../shared/fixtures)
//     against their references: logits, residual stream, patterns, z,
//     per-token losses and the loss, on tokens and rep_tokens.
//   - Hooks: every hook point the model lists, observed with "*": delivered,
//     shaped as TransformerLens shapes it, and valued as the fixtures say or
//     as a float64 recomputation from the neighbouring hooks says.
//   - Sweep: the ablation figures through the sweep engine.
//
// Fixture comparisons use fixtures.Tol: 10x the float32 floor each fixture
// records per tensor. cpu's tests call Run on both builds (OpenBLAS and pure
// Go); cuda's tests call it on the emulated device in the default test run
// and on a real GPU when one opens.
package conformance
