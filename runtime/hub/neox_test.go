package hub

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/neoscope/neoscope/internal/fixtures"
	"github.com/neoscope/neoscope/runtime/arch"
	"github.com/neoscope/neoscope/runtime/checkpoint"
	"github.com/neoscope/neoscope/runtime/tokenizer"
)

// neoxTokenizerJSON is a small tokenizer.json in GPT-NeoX-20B's
// configuration (NFC, ByteLevel, special and whitespace added tokens), over
// the 256 byte-level symbols and one merge.
func neoxTokenizerJSON(t *testing.T) []byte {
	vocab := map[string]int{}
	n := 0
	for b := 0; b < 256; b++ {
		r := rune(b)
		if !(b >= '!' && b <= '~' || b >= 0xa1 && b <= 0xac || b >= 0xae) {
			r = rune(256 + n)
			n++
		}
		vocab[string(r)] = b + 2
	}
	vocab["Ġt"] = 258
	raw, err := json.Marshal(map[string]any{
		"version": "1.0",
		"added_tokens": []any{
			map[string]any{"id": 0, "content": "<|endoftext|>", "special": true, "normalized": false},
			map[string]any{"id": 1, "content": "<|padding|>", "special": true, "normalized": false},
			map[string]any{"id": 259, "content": "  ", "special": false, "normalized": true},
		},
		"normalizer":    map[string]any{"type": "NFC"},
		"pre_tokenizer": map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true},
		"model":         map[string]any{"type": "BPE", "dropout": nil, "vocab": vocab, "merges": []string{"Ġ t"}},
	})
	fixtures.Must(t, err)
	return raw
}

// TestDownloadPythia: `download EleutherAI/pythia-160m` against the fake hub
// serving a Pythia-layout repo (tiny-neox's config and weights, a GPT-NeoX
// tokenizer.json and no vocab.json/merges.txt): the snapshot lands in the HF
// cache layout, Resolve finds it offline, and the config, weights and
// tokenizer load from it.
func TestDownloadPythia(t *testing.T) {
	fx := fixtures.Dir(t, "tiny-neox")
	cfgJSON, err := os.ReadFile(filepath.Join(fx, "config.json"))
	fixtures.Must(t, err)
	weights, err := os.ReadFile(filepath.Join(fx, "model.safetensors"))
	fixtures.Must(t, err)
	h := newFakeHub(t, map[string]*fakeFile{
		"config.json":             {data: cfgJSON},
		"model.safetensors":       {data: weights, lfs: true},
		"tokenizer.json":          {data: neoxTokenizerJSON(t), lfs: true},
		"special_tokens_map.json": {data: []byte(`{"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>"}`)},
		"tokenizer_config.json":   {data: []byte(`{"tokenizer_class": "GPTNeoXTokenizer"}`)},
	})
	h.repo = "EleutherAI/pythia-160m"
	opts := testOpts(t, h)
	dir, err := Download(context.Background(), h.repo, "", opts)
	fixtures.Must(t, err)
	if want := filepath.Join(opts.CacheDir, "models--EleutherAI--pythia-160m", "snapshots", h.commit); dir != want {
		t.Fatalf("snapshot %s, want %s", dir, want)
	}
	for _, absent := range []string{"vocab.json", "merges.txt"} {
		if _, err := os.Stat(filepath.Join(opts.CacheDir, "models--EleutherAI--pythia-160m", ".no_exist", h.commit, absent)); err != nil {
			t.Errorf(".no_exist/%s: %v", absent, err)
		}
	}
	got, err := Resolve("EleutherAI/pythia-160m")
	if err != nil || got != dir {
		t.Fatalf("Resolve = %q, %v; want %q", got, err, dir)
	}
	cfg, err := arch.Load(filepath.Join(dir, "config.json"))
	fixtures.Must(t, err)
	if cfg.Family != arch.GPTNeoX || cfg.Spec.Display != "GPT-NeoX" {
		t.Errorf("family %q", cfg.Family)
	}
	w, err := checkpoint.Load(dir, cfg)
	fixtures.Must(t, err)
	w.Close()
	tok, err := tokenizer.Load(dir)
	fixtures.Must(t, err)
	if ids := tok.Encode("a  t"); len(ids) != 3 || ids[1] != 259 {
		t.Errorf("Encode(\"a  t\") = %v, want [a, 259, t]", ids)
	}
	if ids := tok.Encode(" t"); len(ids) != 1 || ids[0] != 258 {
		t.Errorf("Encode(\" t\") = %v, want [258]", ids)
	}
}
