package ioi

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
)

// Templates are Wang et al.'s BABA templates (the paper's BABA_TEMPLATES,
// ioi_dataset.py), written with {S} for the subject (named twice), {IO} for
// the indirect object and the final " {IO}" (the answer) removed. ABBA
// templates are the same with the first two names swapped (ABBA below).
var Templates = []string{
	"Then, {S} and {IO} went to the {PLACE}. {S} gave a {OBJECT} to",
	"Then, {S} and {IO} had a lot of fun at the {PLACE}. {S} gave a {OBJECT} to",
	"Then, {S} and {IO} were working at the {PLACE}. {S} decided to give a {OBJECT} to",
	"Then, {S} and {IO} were thinking about going to the {PLACE}. {S} wanted to give a {OBJECT} to",
	"Then, {S} and {IO} had a long argument, and afterwards {S} said to",
	"After {S} and {IO} went to the {PLACE}, {S} gave a {OBJECT} to",
	"When {S} and {IO} got a {OBJECT} at the {PLACE}, {S} decided to give it to",
	"When {S} and {IO} got a {OBJECT} at the {PLACE}, {S} decided to give the {OBJECT} to",
	"While {S} and {IO} were working at the {PLACE}, {S} gave a {OBJECT} to",
	"While {S} and {IO} were commuting to the {PLACE}, {S} gave a {OBJECT} to",
	"After the lunch, {S} and {IO} went to the {PLACE}. {S} gave a {OBJECT} to",
	"Afterwards, {S} and {IO} went to the {PLACE}. {S} gave a {OBJECT} to",
	"Then, {S} and {IO} had a long argument. Afterwards {S} said to",
	"The {PLACE} {S} and {IO} went to had a {OBJECT}. {S} gave it to",
	"Friends {S} and {IO} found a {OBJECT} at the {PLACE}. {S} gave it to",
}

// ABBA turns a BABA template into its ABBA mirror: IO named first.
func ABBA(t string) string {
	i, j := strings.Index(t, "{S}"), strings.Index(t, "{IO}")
	if i < 0 || j < 0 || i > j {
		return t
	}
	return t[:i] + "{IO}" + t[i+3:j] + "{S}" + t[j+4:]
}

// Places and Objects are the paper's.
var (
	Places  = []string{"store", "garden", "restaurant", "school", "hospital", "office", "house", "station"}
	Objects = []string{"ring", "kiss", "bone", "basketball", "computer", "necklace", "drink", "snack"}
)

// Names are 100 common English first names (the first 100 of the paper's
// list); BuildDataset keeps those that are one token with a leading space.
var Names = []string{
	"Michael", "Christopher", "Jessica", "Matthew", "Ashley", "Jennifer", "Joshua", "Amanda", "Daniel", "David",
	"James", "Robert", "John", "Joseph", "Andrew", "Ryan", "Brandon", "Jason", "Justin", "Sarah",
	"William", "Jonathan", "Stephanie", "Brian", "Nicole", "Nicholas", "Anthony", "Heather", "Eric", "Elizabeth",
	"Adam", "Megan", "Melissa", "Kevin", "Steven", "Thomas", "Timothy", "Christina", "Kyle", "Rachel",
	"Laura", "Lauren", "Amber", "Brittany", "Danielle", "Richard", "Kimberly", "Jeffrey", "Amy", "Crystal",
	"Michelle", "Tiffany", "Jeremy", "Benjamin", "Mark", "Emily", "Aaron", "Charles", "Rebecca", "Jacob",
	"Stephen", "Patrick", "Sean", "Erin", "Jamie", "Kelly", "Samantha", "Nathan", "Sara", "Dustin",
	"Paul", "Angela", "Tyler", "Scott", "Katherine", "Andrea", "Gregory", "Erica", "Mary", "Travis",
	"Lisa", "Kenneth", "Bryan", "Lindsey", "Kristen", "Jose", "Alexander", "Jesse", "Katie", "Lindsay",
	"Shannon", "Vanessa", "Courtney", "Christine", "Alicia", "Cody", "Allison", "Bradley", "Samuel", "Anna",
}

// Encoder is what the dataset needs from a tokenizer
// (runtime/tokenizer.Tokenizer satisfies it).
type Encoder interface {
	Encode(text string) []int
}

// Prompt is one clean/corrupt pair.
type Prompt struct {
	Template    int     `json:"template"` // index into Templates; +len(Templates) for the ABBA mirror
	ABBA        bool    `json:"abba"`
	Text        string  `json:"text"`
	CorruptText string  `json:"corrupt_text"`
	IOName      string  `json:"io"`
	SName       string  `json:"s"`
	Clean       []int32 `json:"clean_ids"`
	Corrupt     []int32 `json:"corrupt_ids"`
	IO          int32   `json:"io_id"` // answer ids: " IO"
	S           int32   `json:"s_id"`  // and " S"
}

// Dataset is a set of prompts and the names that qualified.
type Dataset struct {
	Prompts []Prompt
	Names   []string // one-token names used
	BOS     int      // id prepended to every prompt, or -1
}

// MinNames is the fewest one-token names the ABC corruption needs: IO, S
// and three distinct replacements.
const MinNames = 5

// OneTokenNames returns the names of list that encode as exactly one token
// with a leading space, with those ids.
func OneTokenNames(enc Encoder, list []string) (names []string, ids []int32) {
	for _, n := range list {
		if t := enc.Encode(" " + n); len(t) == 1 {
			names = append(names, n)
			ids = append(ids, int32(t[0]))
		}
	}
	return names, ids
}

func fill(t, s, io, place, object string) string {
	r := strings.NewReplacer("{S}", s, "{IO}", io, "{PLACE}", place, "{OBJECT}", object)
	return r.Replace(t)
}

// fill3 fills the three name slots in order of appearance with a, b, c
// (the ABC corruption), the other slots as fill.
func fill3(t, a, b, c, place, object string) string {
	t = strings.NewReplacer("{PLACE}", place, "{OBJECT}", object).Replace(t)
	for _, n := range []string{a, b, c} {
		i, j := strings.Index(t, "{S}"), strings.Index(t, "{IO}")
		switch {
		case i >= 0 && (j < 0 || i < j):
			t = t[:i] + n + t[i+3:]
		case j >= 0:
			t = t[:j] + n + t[j+4:]
		}
	}
	return t
}

// BuildDataset makes n prompts: template uniformly among the 15 BABA and 15
// ABBA templates, IO and S two distinct one-token names, place and object
// uniform, all drawn with math/rand/v2's PCG seeded with (seed, 0x696f69).
// bos >= 0 is prepended to every prompt (TransformerLens prepends BOS by
// default). Clean and corrupt must tokenize to the same length and differ
// only in name tokens; a pair that does not (a tokenizer whose merges join a
// name to its neighbour) is an error naming the prompt.
func BuildDataset(enc Encoder, n int, seed uint64, bos int) (*Dataset, error) {
	if n < 1 {
		return nil, fmt.Errorf("ioi: --n %d: want at least 1 prompt", n)
	}
	names, ids := OneTokenNames(enc, Names)
	if len(names) < MinNames {
		return nil, fmt.Errorf("ioi: only %d of %d common first names are one token (with a leading space) in this tokenizer (%s); the IOI dataset needs at least %d (IO, S and three ABC replacements)",
			len(names), len(Names), strings.Join(names, ", "), MinNames)
	}
	rng := rand.New(rand.NewPCG(seed, 0x696f69))
	ds := &Dataset{Names: names, BOS: bos}
	enc32 := func(s string) []int32 {
		t := enc.Encode(s)
		out := make([]int32, 0, len(t)+1)
		if bos >= 0 {
			out = append(out, int32(bos))
		}
		for _, id := range t {
			out = append(out, int32(id))
		}
		return out
	}
	nameID := map[int32]bool{}
	for _, id := range ids {
		nameID[id] = true
	}
	for i := 0; i < n; i++ {
		k := rng.IntN(2 * len(Templates))
		tpl := Templates[k%len(Templates)]
		abba := k >= len(Templates)
		if abba {
			tpl = ABBA(tpl)
		}
		perm := rng.Perm(len(names))
		io, s := perm[0], perm[1]
		a, b, c := perm[2], perm[3], perm[4]
		place, object := Places[rng.IntN(len(Places))], Objects[rng.IntN(len(Objects))]
		p := Prompt{Template: k, ABBA: abba, IOName: names[io], SName: names[s], IO: ids[io], S: ids[s],
			// Every name slot follows a space, so the name is the one-token " Name".
			Text:        fill(tpl, names[s], names[io], place, object),
			CorruptText: fill3(tpl, names[a], names[b], names[c], place, object)}
		p.Clean, p.Corrupt = enc32(p.Text), enc32(p.CorruptText)
		if len(p.Clean) != len(p.Corrupt) {
			return nil, fmt.Errorf("ioi: prompt %d: clean %q is %d tokens but corrupt %q is %d", i, p.Text, len(p.Clean), p.CorruptText, len(p.Corrupt))
		}
		for t := range p.Clean {
			if p.Clean[t] != p.Corrupt[t] && !(nameID[p.Clean[t]] && nameID[p.Corrupt[t]]) {
				return nil, fmt.Errorf("ioi: prompt %d: clean %q and corrupt %q differ at token %d, which is not a name", i, p.Text, p.CorruptText, t)
			}
		}
		ds.Prompts = append(ds.Prompts, p)
	}
	return ds, nil
}

// Batches groups the prompts by token length, largest group first (ties:
// shorter first), reading the logit difference at the last position.
func (d *Dataset) Batches() []Batch {
	byT := map[int][]int{}
	for i, p := range d.Prompts {
		byT[len(p.Clean)] = append(byT[len(p.Clean)], i)
	}
	Ts := make([]int, 0, len(byT))
	for T := range byT {
		Ts = append(Ts, T)
	}
	sort.Slice(Ts, func(i, j int) bool {
		a, b := len(byT[Ts[i]]), len(byT[Ts[j]])
		if a != b {
			return a > b
		}
		return Ts[i] < Ts[j]
	})
	var out []Batch
	for _, T := range Ts {
		bt := Batch{B: len(byT[T]), T: T, Pos: T - 1}
		for _, i := range byT[T] {
			p := &d.Prompts[i]
			bt.Clean = append(bt.Clean, p.Clean...)
			bt.Corrupt = append(bt.Corrupt, p.Corrupt...)
			bt.IO = append(bt.IO, p.IO)
			bt.S = append(bt.S, p.S)
		}
		out = append(out, bt)
	}
	return out
}
