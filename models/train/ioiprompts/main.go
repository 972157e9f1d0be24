// Command ioiprompts writes the IOI prompts that `neoscope ioi` builds
// (probes/ioi.BuildDataset: Wang et al.'s templates, the tokenizer's one-token
// names) as JSON, so that the training script can measure IOI on exactly the
// held-out prompts the bundled model's contract test uses, without a second
// copy of the templates in Python:
//
//	go run ./models/train/ioiprompts --model models/neo-tiny --n 200 --seed 1 > ioi_eval.json
//
// The output is {"names": the one-token names used, "prompts": [...]}; each
// prompt has the clean ids (BOS first when the config has one), the answer id
// " IO" and the subject id " S".
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/neoscope/neoscope/probes/ioi"
	"github.com/neoscope/neoscope/runtime/tokenizer"
)

type prompt struct {
	Text  string  `json:"text"`
	Clean []int32 `json:"clean_ids"`
	IO    int32   `json:"io_id"`
	S     int32   `json:"s_id"`
}

func main() {
	model := flag.String("model", "models/neo-tiny", "model directory (tokenizer and config.json)")
	n := flag.Int("n", 200, "number of prompts")
	seed := flag.Uint64("seed", 1, "dataset seed (neoscope ioi's --seed)")
	flag.Parse()
	if err := run(*model, *n, *seed); err != nil {
		fmt.Fprintln(os.Stderr, "ioiprompts:", err)
		os.Exit(2)
	}
}

func run(model string, n int, seed uint64) error {
	tok, err := tokenizer.Load(model)
	if err != nil {
		return err
	}
	raw, err := os.ReadFile(filepath.Join(model, "config.json"))
	if err != nil {
		return err
	}
	var cfg struct {
		BOS *int `json:"bos_token_id"`
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return fmt.Errorf("%s: %v", filepath.Join(model, "config.json"), err)
	}
	bos := -1
	if cfg.BOS != nil {
		bos = *cfg.BOS
	}
	ds, err := ioi.BuildDataset(tok, n, seed, bos)
	if err != nil {
		return err
	}
	out := struct {
		Names   []string `json:"names"`
		Prompts []prompt `json:"prompts"`
	}{Names: ds.Names, Prompts: make([]prompt, len(ds.Prompts))}
	for i, p := range ds.Prompts {
		out.Prompts[i] = prompt{Text: p.Text, Clean: p.Clean, IO: p.IO, S: p.S}
	}
	return json.NewEncoder(os.Stdout).Encode(out)
}
