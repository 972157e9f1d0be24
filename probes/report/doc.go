// Package report builds neoscope's one-page HTML report: the seed
// experiments on one model, or on two side by side (GPT-Neo beside GPT-2).
//
// Analyze runs the probes in-process on a loaded model and keeps their
// results (no numbers are computed here except differences of probe outputs,
// e.g. an ablated loss minus the baseline); Write renders them:
//
//	DIR/index.html     the page: model card, induction heads, head ablation, ...
//	DIR/*.png          every chart, also embedded in the page as a data: URI
//
// so the single index.html works anywhere (mail it, open it offline): no
// external resources, no CDN, the stylesheet and a small script inline.
//
// The script records, on load, whether every <img> decoded (body attribute
// data-images-ok, with data-images-bad listing the failures) and every
// uncaught script error (data-errors): the headless-browser test reads them
// from the dumped DOM.
//
// Write builds the whole folder in a temporary sibling directory and renames
// it into place, so a reader sees the old report or the new one, never half of
// one. An existing DIR is replaced only when it holds a neoscope report (its
// index.html carries the generator mark), never an arbitrary folder.
//
// Sections, each from its probe package, one column per model:
//
//	Model card             the architecture (runtime/arch)
//	Embedding geometry     probes/embed: W_E statistics, residual along the mean-embedding direction
//	Logit lens             probes/lens: loss and KL per layer, all models on one chart
//	Induction heads        probes/induction: induction and previous-token scores [L][NH]
//	Head ablation          probes/ablate: loss increase per zero-ablated head
//	Layer ablation         probes/ablate: whole attention layers and MLPs
//	IOI                    probes/ioi: patching and DLA, for models with a tokenizer
//	                       (otherwise a note says why it is absent)
//	Attribution patching   probes/attrib: AtP (heads, MLPs) and EAP (edges) against
//	  vs exact patching    exact patching on the IOI prompts, two scatter charts and
//	                       the largest disagreements (IOI models only; at most
//	                       Options.AttribEdges edges are patched exactly)
//
// Tokens: the ablation runs on the given tokens, else on the induction task's
// repeated random tokens (loss on the second half); the lens runs on the given
// tokens, else on Passage through the model's tokenizer, else on the repeated
// tokens.
package report
