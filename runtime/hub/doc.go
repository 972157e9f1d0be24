// Package hub turns a --model value into a local directory and downloads
// models from the Hugging Face Hub into the cache that huggingface_hub (and
// so transformers) uses, so that neoscope and Python share one copy.
//
// # Where the cache is
//
// As huggingface_hub's constants.py computes it, first match wins:
//
//	$HF_HUB_CACHE
//	$HUGGINGFACE_HUB_CACHE            (legacy name)
//	$HF_HOME/hub
//	$XDG_CACHE_HOME/huggingface/hub
//	~/.cache/huggingface/hub
//
// "~" and $VARS inside these values are expanded, as Python's expanduser
// and expandvars do. An empty variable counts as unset.
//
// # Layout
//
// One folder per repository, "models--" + the repo id with "/" replaced by
// "--":
//
//	models--EleutherAI--gpt-neo-125m/
//	  refs/main                       the commit hash "main" resolved to (no newline)
//	  blobs/<etag>                    file contents, named by the hub's ETag:
//	                                  the sha256 for LFS files (X-Linked-Etag),
//	                                  the git blob id for small files
//	  blobs/<etag>.incomplete         a download in progress, resumable
//	  snapshots/<commit>/config.json  -> ../../blobs/<etag> (relative symlink)
//	  snapshots/<commit>/model.safetensors -> ../../blobs/<sha256>
//	  .no_exist/<commit>/<file>       empty: the commit has no such file (the
//	                                  optional files, and the weight formats
//	                                  skipped), so offline transformers need not ask
//	.locks/models--EleutherAI--gpt-neo-125m/<etag>.lock
//	                                  flock(2) held while a blob is written;
//	                                  the same lock huggingface_hub's filelock takes
//
// A snapshot folder looks like a plain model folder, so checkpoint.Load and
// the tokenizer read it directly; Resolve returns it.
//
// # Downloading
//
// Each file is first asked for with HEAD {endpoint}/{repo}/resolve/{revision}/{file}
// without following redirects (except relative ones, which the hub sends for
// renamed repos). The answer carries X-Repo-Commit (the commit), X-Linked-Etag
// or ETag (the blob name, quotes stripped) and X-Linked-Size or
// Content-Length (the size). For LFS files the answer is a redirect to a CDN;
// the GET goes there directly, without the Authorization header when the CDN
// is another host (with it on the same host, as huggingface_hub does). The
// first HEAD (config.json, at the requested revision) fixes the commit; every
// other file is then asked for at that commit, so a push during the download
// cannot mix two versions.
//
// Blobs are written to blobs/<etag>.incomplete, resumed with an HTTP Range
// request when that file exists (also across runs, and by huggingface_hub),
// checked against the expected size and, for LFS files, against the sha256
// in the etag, fsynced, and only then renamed to blobs/<etag>. A blob that
// fails its check is deleted, never renamed. Existing blobs are not fetched
// again. refs/<revision> is written (atomically) only once every file is in
// place.
//
// The endpoint is $HF_ENDPOINT or https://huggingface.co; the token, sent as
// "Authorization: Bearer", is $HF_TOKEN (or the legacy $HUGGING_FACE_HUB_TOKEN).
// The token file written by `huggingface-cli login` is not read.
package hub
