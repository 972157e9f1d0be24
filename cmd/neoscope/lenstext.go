package main

import (
	"os"

	"github.com/neoscope/neoscope/runtime/forward"
	"github.com/neoscope/neoscope/runtime/tokenizer"
)

// lensTextRule is how `lens --text` cuts a text into rows (in --help and
// the README).
const lensTextRule = `--text FILE is tokenized whole and cut into consecutive rows of --seq tokens
(default: the whole text as one row if it fits the context, else rows of the
context length). No token is dropped: when the text does not divide into
rows, the last row is the text's last --seq tokens, overlapping the row
before it, and the overlap is read twice (in two contexts) and counted twice
in the means; a note on stderr says how many tokens overlap. With
--prepend-bos each row is the BOS token and --seq - 1 tokens of the text.`

// lensTextInput is lensInput for `neoscope lens`, with the windowing rule
// of lensTextRule for --text (every token processed).
func lensTextInput(in *inputFlags, m *forward.Model, dir string, seq int) ([]int32, int, int, error) {
	if in.Text == "" || in.Tokens != "" || len(in.Prompt) > 0 {
		return in.rows(m, dir)
	}
	if seq < 0 || seq == 1 || seq > m.Cfg.Context {
		return nil, 0, 0, usagef("--seq %d: want 2..%d (the model's context)", seq, m.Cfg.Context)
	}
	tok, err := tokenizer.Load(dir)
	if err != nil {
		return nil, 0, 0, usagef("--text needs the model's tokenizer: %v", err)
	}
	data, err := os.ReadFile(in.Text)
	if err != nil {
		return nil, 0, 0, usagef("--text: %v", err)
	}
	// With --prepend-bos each row is BOS + seq-1 tokens of the text.
	ctx, bos := m.Cfg.Context, 0
	if in.PrependBOS {
		if seq == 2 {
			return nil, 0, 0, usagef("--seq 2 with --prepend-bos leaves one text token per row: want --seq 3 or more")
		}
		ctx, bos = ctx-1, 1
		if seq > 0 {
			seq--
		}
	}
	rows, overlap, err := textWindows(tok.Encode(string(data)), seq, ctx)
	if err != nil {
		return nil, 0, 0, usagef("--text %s: %v", in.Text, err)
	}
	if bos == 1 {
		if rows, err = withBOS(rows, m.Cfg.BOS); err != nil {
			return nil, 0, 0, err
		}
	}
	if overlap > 0 {
		logf("lens: --text %s: %d rows of %d tokens; the last row overlaps the one before by %d tokens (read twice, so that none is dropped)",
			in.Text, len(rows), len(rows[0]), overlap)
	}
	flat, B, T, err := m.CheckTokens(rows)
	if err != nil {
		return nil, 0, 0, usagef("--text %s: %v", in.Text, err)
	}
	return flat, B, T, nil
}

// textWindows cuts ids into rows of seq tokens (seq 0: one row if the text
// fits ctx, else rows of ctx) covering every token; the last row is the
// final seq tokens when the text does not divide evenly (overlap tokens
// shared with the row before).
func textWindows(ids []int, seq, ctx int) (rows [][]int32, overlap int, err error) {
	if len(ids) < 2 {
		return nil, 0, usagef("%d tokens: at least 2 are needed for one prediction", len(ids))
	}
	if seq == 0 {
		seq = min(len(ids), ctx)
	}
	if len(ids) < seq {
		return nil, 0, usagef("%d tokens, fewer than one row of --seq %d", len(ids), seq)
	}
	row := func(start int) []int32 {
		r := make([]int32, seq)
		for i := range r {
			r[i] = int32(ids[start+i])
		}
		return r
	}
	full := len(ids) / seq
	for b := 0; b < full; b++ {
		rows = append(rows, row(b*seq))
	}
	if rest := len(ids) - full*seq; rest > 0 {
		rows = append(rows, row(len(ids)-seq))
		overlap = seq - rest
	}
	return rows, overlap, nil
}
