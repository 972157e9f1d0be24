// Package ioi measures the indirect-object-identification circuit (Wang et
// al. 2022, "Interpretability in the Wild") with activation patching and
// direct logit attribution, and builds the IOI prompt dataset for a model
// with a tokenizer.
//
// # Conventions (the fixtures')
//
// The logit difference of row b is LD(b) = logits[b, Pos, IO[b]] -
// logits[b, Pos, S[b]] (raw logits, Pos usually T-1); LD is its mean over
// rows. Patching runs the CORRUPT prompts and patches in activations from
// the CLEAN run, for every row, one experiment per forward pass, and reports
// (LD_patched - LD_corrupt) / (LD_clean - LD_corrupt): 1 means the clean
// behaviour is restored, 0 no effect. The experiments:
//
//	patch_head_z    [L][NH]  blocks.l.attn.hook_z, head h's slice, all positions
//	patch_resid_pre [L][T]   blocks.l.hook_resid_pre at position t only
//	patch_mlp_out   [L]      blocks.l.hook_mlp_out, all positions
//	patch_attn_out  [L]      blocks.l.hook_attn_out (z @ W_O + b_O), all positions
//
// Batches are processed one at a time: a batch's clean activations are kept
// on the host after its clean run (so peak host memory is one batch's hook_z,
// hook_mlp_out, hook_attn_out and, for the first batch, hook_resid_pre) and
// uploaded per layer while its experiments run; the copies happen on the
// backend (Backend.Copy over strided views), so nothing else leaves the
// device.
//
// Cost: every experiment is a full forward pass over all prompts
// (L*NH + 2L passes per batch, plus L*T on the first batch), the plain
// reference the batched sweep engine is checked against. GPT-2 small with
// --n 200 is about 170 passes of ~4000 tokens: minutes on a GPU, long on a
// laptop CPU (use a smaller --n, or --no-resid).
//
// With several batches (the dataset groups prompts by token length), LD
// and every patching value average over all prompts of all batches, except
// patch_resid_pre, which needs aligned positions: it is computed on the
// first batch (the largest group) and normalised by that batch's own clean
// and corrupt LD.
//
// DLA is described on the DLA type.
//
// # Dataset
//
// BuildDataset makes IOI prompts from Wang et al.'s 15 BABA templates and
// their ABBA mirrors (see dataset.go), names that are one token with a
// leading space in the model's tokenizer, and the paper's places and
// objects. The corrupt prompt is the paper's ABC distribution: the three
// name slots (IO, first S, second S) get three other names, distinct from
// each other and from IO and S, so clean and corrupt tokenize to the same
// length and differ only in the name tokens; IO and S stay the answer ids.
package ioi
