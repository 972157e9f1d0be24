package main

import (
	"encoding/json"
	"os"

	"github.com/spf13/cobra"

	"github.com/neoscope/neoscope/runtime/forward"
	"github.com/neoscope/neoscope/runtime/tokenizer"
)

// inputFlags select the prompts: --tokens FILE (JSON [[ids...], ...]),
// --prompt TEXT, or --text FILE (a file's bytes as they are).
type inputFlags struct {
	Tokens string
	Prompt []string
	Text   string
}

func (f *inputFlags) register(c *cobra.Command) {
	c.Flags().StringVar(&f.Tokens, "tokens", "", "JSON file with an array of equal-length arrays of token ids")
	c.Flags().StringArrayVar(&f.Prompt, "prompt", nil, "text prompt (repeat for a batch; rows must tokenize to equal length)")
	c.Flags().StringVar(&f.Text, "text", "", "text file, tokenized as one row")
}

func (f *inputFlags) given() bool { return f.Tokens != "" || len(f.Prompt) > 0 || f.Text != "" }

// readTokenFile parses a JSON array of arrays of token ids.
func readTokenFile(path string) ([][]int32, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, usagef("--tokens: %v", err)
	}
	var rows [][]int64
	if err := json.Unmarshal(data, &rows); err != nil {
		return nil, usagef("%s: want a JSON array of arrays of token ids: %v", path, err)
	}
	out := make([][]int32, len(rows))
	for b, r := range rows {
		out[b] = make([]int32, len(r))
		for t, id := range r {
			if id < 0 || id > 1<<31-1 {
				return nil, usagef("%s: row %d position %d: token id %d out of range", path, b, t, id)
			}
			out[b][t] = int32(id)
		}
	}
	return out, nil
}

// rows returns the batch the flags select, validated against the model.
func (f *inputFlags) rows(m *forward.Model, modelDir string) (flat []int32, B, T int, err error) {
	n := 0
	for _, g := range []bool{f.Tokens != "", len(f.Prompt) > 0, f.Text != ""} {
		if g {
			n++
		}
	}
	if n != 1 {
		return nil, 0, 0, usagef("give exactly one of --tokens FILE, --prompt TEXT or --text FILE")
	}
	var rows [][]int32
	switch {
	case f.Tokens != "":
		if rows, err = readTokenFile(f.Tokens); err != nil {
			return nil, 0, 0, err
		}
	default:
		if rows, err = f.encode(modelDir); err != nil {
			return nil, 0, 0, err
		}
	}
	flat, B, T, err = m.CheckTokens(rows)
	if err != nil {
		src := f.Tokens
		if src == "" {
			src = "prompt"
		}
		return nil, 0, 0, usagef("%s: %v", src, err)
	}
	return flat, B, T, nil
}

// encode tokenizes --prompt (one row each) or --text (one row) with the
// model directory's tokenizer. Prompts in a batch must tokenize to equal
// lengths (checked by CheckTokens with the row named).
func (f *inputFlags) encode(modelDir string) ([][]int32, error) {
	tok, err := tokenizer.Load(modelDir)
	if err != nil {
		return nil, usagef("--prompt/--text need the model's tokenizer: %v", err)
	}
	var texts []string
	if f.Text != "" {
		data, err := os.ReadFile(f.Text)
		if err != nil {
			return nil, usagef("--text: %v", err)
		}
		texts = []string{string(data)}
	} else {
		texts = f.Prompt
	}
	rows := make([][]int32, len(texts))
	for i, s := range texts {
		ids := tok.Encode(s)
		if len(ids) == 0 {
			return nil, usagef("prompt %d tokenizes to nothing", i)
		}
		rows[i] = make([]int32, len(ids))
		for j, id := range ids {
			rows[i][j] = int32(id)
		}
	}
	return rows, nil
}
