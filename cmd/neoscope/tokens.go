package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

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
	// PrependBOS puts the config's bos_token_id before each --prompt/--text
	// row (registerBOS). Off by default: the ids are exactly the text's, as
	// `neoscope tokenize` prints them (TransformerLens prepends by default).
	PrependBOS bool
}

// registerBOS adds --prepend-bos (for commands whose text inputs honour it).
func (f *inputFlags) registerBOS(c *cobra.Command) {
	c.Flags().BoolVar(&f.PrependBOS, "prepend-bos", false, "put the BOS token (config.json's bos_token_id) before each --prompt/--text row; default off: the ids are exactly the text's (TransformerLens prepends by default)")
}

// withBOS prepends bos to every row (--prepend-bos).
func withBOS(rows [][]int32, bos int) ([][]int32, error) {
	if bos < 0 {
		return nil, usagef("--prepend-bos: the model's config.json has no bos_token_id")
	}
	for i, r := range rows {
		rows[i] = append([]int32{int32(bos)}, r...)
	}
	return rows, nil
}

func (f *inputFlags) register(c *cobra.Command) {
	c.Flags().StringVar(&f.Tokens, "tokens", "", `JSON file with an array of equal-length arrays of token ids, or {"ids": [...]} from neoscope tokenize --json`)
	c.Flags().StringArrayVar(&f.Prompt, "prompt", nil, "text prompt (repeat for a batch; rows must tokenize to equal length)")
	c.Flags().StringVar(&f.Text, "text", "", "text file, tokenized as one row")
}

func (f *inputFlags) given() bool { return f.Tokens != "" || len(f.Prompt) > 0 || f.Text != "" }

// readTokenFile reads --tokens: a JSON array of arrays of token ids
// ([[50256, 464], [50256, 383]]), or the output of `neoscope tokenize
// --json` ({"ids": [...]}, one row; several such objects one after another
// are several rows). Every id must be a whole number written without a
// fraction or exponent (2, not 2.0 or 2e0); null, strings, fractions and
// negative numbers are refused, naming the row and position (from 0).
func readTokenFile(path string) ([][]int32, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, usagef("--tokens: %v", err)
	}
	rows, err := parseTokenRows(data)
	if err != nil {
		return nil, usagef("--tokens %s: %v", path, err)
	}
	return rows, nil
}

const tokenFileForm = `want a JSON array of arrays of token ids, e.g. [[50256, 464], [50256, 383]], or {"ids": [...]} as neoscope tokenize --json prints`

// parseTokenRows parses the content of a token file (see readTokenFile).
func parseTokenRows(data []byte) ([][]int32, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var rows [][]int32
	nvals := 0
	for {
		var v any
		if err := dec.Decode(&v); err == io.EOF {
			break
		} else if err != nil {
			var se *json.SyntaxError
			if errors.As(err, &se) {
				return nil, fmt.Errorf("not valid JSON at byte %d (%v); %s", se.Offset, se, tokenFileForm)
			}
			return nil, fmt.Errorf("not valid JSON (%v); %s", err, tokenFileForm)
		}
		nvals++
		switch x := v.(type) {
		case map[string]any:
			ids, ok := x["ids"]
			if !ok {
				return nil, fmt.Errorf("a JSON object without \"ids\"; %s", tokenFileForm)
			}
			arr, ok := ids.([]any)
			if !ok {
				return nil, fmt.Errorf("\"ids\" is %s, not an array of token ids", describeJSON(ids))
			}
			row, err := tokenRow(len(rows), arr)
			if err != nil {
				return nil, err
			}
			rows = append(rows, row)
		case []any:
			for _, r := range x {
				arr, ok := r.([]any)
				if !ok {
					if _, isNum := r.(json.Number); isNum {
						return nil, fmt.Errorf("row %d is a number, not an array of token ids (for one row write [[1, 2, 3]], not [1, 2, 3])", len(rows))
					}
					return nil, fmt.Errorf("row %d is %s, not an array of token ids", len(rows), describeJSON(r))
				}
				row, err := tokenRow(len(rows), arr)
				if err != nil {
					return nil, err
				}
				rows = append(rows, row)
			}
		default:
			return nil, fmt.Errorf("the file holds %s; %s", describeJSON(v), tokenFileForm)
		}
	}
	if nvals == 0 {
		return nil, fmt.Errorf("empty file; %s", tokenFileForm)
	}
	return rows, nil
}

// tokenRow converts one row's JSON values to token ids.
func tokenRow(b int, arr []any) ([]int32, error) {
	row := make([]int32, len(arr))
	for t, v := range arr {
		n, ok := v.(json.Number)
		if !ok {
			return nil, fmt.Errorf("row %d position %d: %s is not a token id (want a whole number 0..%d)", b, t, describeJSON(v), math.MaxInt32)
		}
		s := string(n)
		if strings.ContainsAny(s, ".eE") {
			return nil, fmt.Errorf("row %d position %d: %s is not a token id (want a whole number written without a fraction or exponent)", b, t, s)
		}
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil || id < 0 || id > math.MaxInt32 {
			return nil, fmt.Errorf("row %d position %d: token id %s out of range (want 0..%d)", b, t, s, math.MaxInt32)
		}
		row[t] = int32(id)
	}
	return row, nil
}

// describeJSON names a decoded JSON value in the words of the JSON text.
func describeJSON(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return strconv.FormatBool(x)
	case string:
		q := x
		if len(q) > 20 {
			q = q[:20] + "..."
		}
		return "the string " + strconv.Quote(q)
	case json.Number:
		return "the number " + string(x)
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return "a value"
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
		if f.PrependBOS {
			return nil, 0, 0, usagef("--prepend-bos applies to --prompt and --text; --tokens are used as given")
		}
		if rows, err = readTokenFile(f.Tokens); err != nil {
			return nil, 0, 0, err
		}
	default:
		if rows, err = f.encode(modelDir); err != nil {
			return nil, 0, 0, err
		}
		if f.PrependBOS {
			if rows, err = withBOS(rows, m.Cfg.BOS); err != nil {
				return nil, 0, 0, err
			}
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
