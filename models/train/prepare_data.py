#!/usr/bin/python3
"""Build neo-tiny's corpus and byte-level BPE tokenizer from Debian packages.

Corpus (all regenerated from Debian bookworm packages, nothing downloaded):
  * KJV Bible        : `bible -f "Gen1:1-Rev22:21"` (package bible-kjv); one document per chapter,
                       verse references stripped, verses joined by single spaces.
  * fortunes         : /usr/share/games/fortunes/* (package fortunes, fortunes-min), every file
                       without an extension except art/ascii-art; one document per fortune
                       (separated by "%" lines), whitespace collapsed.
  * Jargon File 4.4.7: /usr/share/doc/jargon-text/jargon.txt.gz (package jargon-text); paragraphs
                       (blank-line separated) without box-drawing characters, whitespace collapsed,
                       grouped into ~2000-character documents.
Documents are joined with <|endoftext|>. Held-out split: every 20th document (index % 20 == 7)
of the combined, ordered document list.

Tokenizer: GPT-2 byte-level BPE (bytes_to_unicode alphabet, GPT-2 pre-tokenization regex), merges
learned on the training documents, plus forced merges so that a list of first names are single
tokens with a leading space. vocab = 256 bytes + merges + <|endoftext|> (last id).

Usage: /usr/bin/python3 models/train/prepare_data.py --out models/train/data --vocab 4096
Needs python3-regex (apt-get install python3-regex) for \\p{L}/\\p{N}.
"""
import argparse
import collections
import gzip
import json
import os
import re
import subprocess
import sys

try:
    import regex
except ImportError:  # allow an unpacked python3-regex .deb
    sys.path.append('/tmp/debroot/usr/lib/python3/dist-packages')
    import regex

import numpy as np

GPT2_PAT = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")
EOT = "<|endoftext|>"

NAMES = ["John", "Mary", "David", "Sarah", "James", "Peter", "Paul", "Michael", "Anna", "Tom",
         "Bob", "Alice", "Mark", "Luke", "Daniel", "Ruth", "Adam", "Eve", "Moses", "Aaron",
         "Abraham", "Isaac", "Jacob", "Joseph", "Samuel", "Saul", "Solomon", "Esther", "Rachel",
         "Leah", "Elizabeth", "Martha", "Simon", "Andrew", "Thomas", "Philip", "Stephen",
         "Timothy", "Jesse", "Noah", "Jane", "Susan", "George", "Henry", "Jack", "Anne",
         "Kate", "Lisa", "Emma", "Laura"]


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


B2U = bytes_to_unicode()


def find_path(*cands):
    for c in cands:
        if os.path.exists(c):
            return c
    raise FileNotFoundError(cands)


def ws(s):
    return re.sub(r"\s+", " ", s).strip()


def load_docs():
    docs = []
    # KJV
    out = subprocess.run(["bible", "-f", "Gen1:1-Rev22:21"], capture_output=True, check=True).stdout
    out = out.decode("utf-8")
    chap, cur = None, []
    for line in out.splitlines():
        m = re.match(r"^(\S*?\d*:)\d+ (.*)$", line)
        if not m:
            if line.strip() and cur:
                cur.append(line.strip())
            continue
        if m.group(1) != chap:
            if cur:
                docs.append(("kjv", ws(" ".join(cur))))
            chap, cur = m.group(1), []
        cur.append(m.group(2))
    if cur:
        docs.append(("kjv", ws(" ".join(cur))))
    nk = len(docs)
    # fortunes
    fdir = find_path("/usr/share/games/fortunes", "/tmp/debroot/usr/share/games/fortunes")
    for name in sorted(os.listdir(fdir)):
        if "." in name or name in ("art", "ascii-art"):
            continue
        p = os.path.join(fdir, name)
        if os.path.islink(p) or not os.path.isfile(p):
            continue
        txt = open(p, encoding="utf-8", errors="replace").read()
        for f in re.split(r"\n%\n", txt):
            f = ws(re.sub(r"^%$", "", f, flags=re.M))
            if len(f) > 10:
                docs.append(("fortunes", f))
    nf = len(docs) - nk
    # jargon
    jp = find_path("/usr/share/doc/jargon-text/jargon.txt.gz",
                   "/tmp/debroot/usr/share/doc/jargon-text/jargon.txt.gz")
    txt = gzip.open(jp, "rt", encoding="utf-8", errors="replace").read()
    buf = []
    for para in re.split(r"\n\s*\n", txt):
        if re.search(r"[\u2500-\u257f]", para):
            continue
        p = ws(para)
        if not p:
            continue
        buf.append(p)
        if sum(len(b) for b in buf) > 2000:
            docs.append(("jargon", " ".join(buf)))
            buf = []
    if buf:
        docs.append(("jargon", " ".join(buf)))
    nj = len(docs) - nk - nf
    print(f"docs: kjv {nk}, fortunes {nf}, jargon {nj}", flush=True)
    return docs


def pretok(text):
    return ["".join(B2U[b] for b in w.encode("utf-8")) for w in GPT2_PAT.findall(text)]


def train_bpe(word_counts, n_merges):
    words = [list(w) for w in word_counts]
    counts = [word_counts[w] for w in word_counts]
    pair_counts = collections.Counter()
    where = collections.defaultdict(set)
    for i, (w, c) in enumerate(zip(words, counts)):
        for a, b in zip(w, w[1:]):
            pair_counts[(a, b)] += c
            where[(a, b)].add(i)
    merges = []
    for step in range(n_merges):
        if not pair_counts:
            break
        best = max(pair_counts.items(), key=lambda kv: (kv[1], kv[0]))
        if best[1] < 2:
            break
        pair = best[0]
        merges.append(pair)
        new = pair[0] + pair[1]
        for i in list(where[pair]):
            w, c = words[i], counts[i]
            # remove old pairs
            for a, b in zip(w, w[1:]):
                pair_counts[(a, b)] -= c
                if pair_counts[(a, b)] <= 0:
                    del pair_counts[(a, b)]
            nw, j = [], 0
            while j < len(w):
                if j < len(w) - 1 and w[j] == pair[0] and w[j + 1] == pair[1]:
                    nw.append(new)
                    j += 2
                else:
                    nw.append(w[j])
                    j += 1
            words[i] = nw
            for a, b in zip(nw, nw[1:]):
                pair_counts[(a, b)] += c
                where[(a, b)].add(i)
        del where[pair]
        if step % 500 == 0:
            print(f"merge {step} {pair} {best[1]}", flush=True)
    return merges


class BPE:
    """GPT-2's encoder.bpe(): repeatedly merge the lowest-rank adjacent pair (all occurrences)."""

    def __init__(self, merges, vocab):
        self.ranks = {tuple(m): i for i, m in enumerate(merges)}
        self.vocab = vocab
        self.cache = {}

    def bpe(self, token):
        if token in self.cache:
            return self.cache[token]
        word = tuple(token)
        while len(word) > 1:
            pairs = set(zip(word, word[1:]))
            bigram = min(pairs, key=lambda p: self.ranks.get(p, float("inf")))
            if bigram not in self.ranks:
                break
            first, second = bigram
            nw, i = [], 0
            while i < len(word):
                try:
                    j = word.index(first, i)
                except ValueError:
                    nw.extend(word[i:])
                    break
                nw.extend(word[i:j])
                i = j
                if word[i] == first and i < len(word) - 1 and word[i + 1] == second:
                    nw.append(first + second)
                    i += 2
                else:
                    nw.append(word[i])
                    i += 1
            word = tuple(nw)
        self.cache[token] = word
        return word

    def encode(self, text):
        ids = []
        for w in pretok(text):
            ids.extend(self.vocab[t] for t in self.bpe(w))
        return ids


def build_vocab(merges):
    vocab = {}
    for b in range(256):
        vocab[B2U[b]] = len(vocab)
    for a, b in merges:
        t = a + b
        assert t not in vocab, t
        vocab[t] = len(vocab)
    return vocab


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="models/train/data")
    ap.add_argument("--tok-out", default="models/neo-tiny")
    ap.add_argument("--vocab", type=int, default=4096)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    os.makedirs(args.tok_out, exist_ok=True)
    docs = load_docs()
    split = ["heldout" if i % 20 == 7 else "train" for i in range(len(docs))]
    wc = collections.Counter()
    for (src, d), s in zip(docs, split):
        if s == "train":
            wc.update(pretok(d))
    print(f"unique words {len(wc)}", flush=True)
    # forced names: reserve room for their merges
    n_target = args.vocab - 256 - 1
    merges = train_bpe(wc, n_target - 60)
    vocab = build_vocab(merges)
    # force names to be single tokens with a leading space
    for name in NAMES:
        tok = "".join(B2U[b] for b in (" " + name).encode())
        while True:
            seg = BPE(merges, vocab).bpe(tok)
            if len(seg) == 1:
                break
            # merge the first two pieces
            m = (seg[0], seg[1])
            if m[0] + m[1] in vocab:
                raise RuntimeError(f"cannot force {name}: {m}")
            merges.append(m)
            vocab[m[0] + m[1]] = len(vocab)
    # fill the remaining slots with ordinary merges continued from the corpus
    while len(vocab) < n_target + 256:
        bpe = BPE(merges, vocab)
        pc = collections.Counter()
        for w, c in wc.items():
            s = bpe.bpe(w)
            for a, b in zip(s, s[1:]):
                if a + b not in vocab:
                    pc[(a, b)] += c
        need = n_target + 256 - len(vocab)
        # add one at a time is exact; pairs are re-counted after each batch of 1
        best = max(pc.items(), key=lambda kv: (kv[1], kv[0]))[0]
        merges.append(best)
        vocab[best[0] + best[1]] = len(vocab)
    vocab[EOT] = len(vocab)
    assert len(vocab) == args.vocab, len(vocab)
    bpe = BPE(merges, vocab)
    single = []
    for name in NAMES:
        tok = "".join(B2U[b] for b in (" " + name).encode())
        assert len(bpe.bpe(tok)) == 1, name
        single.append(name)
    with open(os.path.join(args.tok_out, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(os.path.join(args.tok_out, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        for a, b in merges:
            f.write(f"{a} {b}\n")
    eot = vocab[EOT]
    streams = {"train": [], "heldout": []}
    stats = collections.Counter()
    for (src, d), s in zip(docs, split):
        ids = bpe.encode(d)
        streams[s].extend(ids)
        streams[s].append(eot)
        stats[(src, s)] += len(ids) + 1
    for s, ids in streams.items():
        np.save(os.path.join(args.out, f"{s}.npy"), np.array(ids, dtype=np.int16))
    info = {
        "vocab_size": args.vocab, "n_merges": len(merges), "eot_id": eot,
        "tokens": {f"{a}/{b}": n for (a, b), n in sorted(stats.items())},
        "train_tokens": len(streams["train"]), "heldout_tokens": len(streams["heldout"]),
        "n_docs": len(docs), "heldout_rule": "document index % 20 == 7",
        "single_token_names": single,
        "chars": sum(len(d) for _, d in docs),
    }
    json.dump(info, open(os.path.join(args.out, "info.json"), "w"), indent=1)
    print(json.dumps(info, indent=1))


if __name__ == "__main__":
    main()
