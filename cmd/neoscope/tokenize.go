package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/neoscope/neoscope/runtime/tokenizer"
)

func init() {
	var model, prompt, text string
	var asJSON, show bool
	c := &cobra.Command{
		Use:   "tokenize",
		Short: "Tokenize text with a model's GPT-2 byte-level BPE tokenizer",
		Long: `tokenize encodes exactly the text given: --prompt TEXT, or --text FILE whose bytes
are used as they are (no newline added or stripped). A folder holding only
config.json and the tokenizer files (vocab.json + merges.txt, or tokenizer.json)
is enough.`,
		Example: `  neoscope tokenize --prompt "When Mary and John went to the store" --json
  neoscope tokenize --model gpt2 --text story.txt --show`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			dir, err := resolveModel(model)
			if err != nil {
				return err
			}
			if c.Flags().Changed("prompt") == (text != "") {
				return usagef("give exactly one of --prompt TEXT or --text FILE")
			}
			s := prompt
			if text != "" {
				data, err := os.ReadFile(text)
				if err != nil {
					return usagef("--text: %v", err)
				}
				s = string(data)
			}
			tok, err := tokenizer.Load(dir)
			if err != nil { // no or a bad tokenizer: bad input
				return usageError{fmt.Errorf("%s: %w", filepath.Clean(dir), err)}
			}
			ids := tok.Encode(s)
			if ids == nil {
				ids = []int{}
			}
			if asJSON {
				return printJSON(os.Stdout, map[string]any{"ids": ids})
			}
			if show {
				parts := make([]string, len(ids))
				for i, id := range ids {
					parts[i] = fmt.Sprintf("%d:%q", id, tok.Decode([]int{id}))
				}
				fmt.Println(strings.Join(parts, " "))
				return nil
			}
			strs := make([]string, len(ids))
			for i, id := range ids {
				strs[i] = fmt.Sprint(id)
			}
			fmt.Println(strings.Join(strs, " "))
			return nil
		},
	}
	c.Flags().StringVar(&model, "model", "", "model directory or hub id (default: the bundled model)")
	c.Flags().StringVar(&prompt, "prompt", "", "text to tokenize")
	c.Flags().StringVar(&text, "text", "", "file whose bytes are tokenized as they are")
	c.Flags().BoolVar(&asJSON, "json", false, `print {"ids": [...]}`)
	c.Flags().BoolVar(&show, "show", false, "print each id with the text it decodes to")
	rootCmd.AddCommand(c)
}
