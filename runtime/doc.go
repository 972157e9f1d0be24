// Package runtime holds what every backend and every probe shares: the Backend
// interface that cpu/ and cuda/ implement, and the device-neutral tensor views
// the forward pass is written against.
//
// Sub-packages split the rest by concern:
//
//	runtime/arch        config.json -> one architecture description (GPT-Neo, GPT-2)
//	runtime/checkpoint  safetensors (memory-mapped) and pytorch_model.bin -> validated weights
//	runtime/hub         model directories and the Hugging Face cache (and downloads)
//	runtime/tokenizer   GPT-2 byte-level BPE
//	runtime/forward     the forward pass, written once, with TransformerLens-named hooks
//	runtime/sweep       the batched ablation planner
//
// Vocabulary used in shape comments everywhere: B batch rows, T tokens, C (= D)
// channels (d_model), NH heads, HS head size, L layers, V vocabulary, F d_mlp.
// All tensors are float32 and row-major.
//
// Dependency rule: runtime/ imports neither cpu/ nor cuda/; cmd/ picks a backend.
package runtime
