#!/usr/bin/python3
"""Export a neo-tiny checkpoint to Hugging Face layout and measure the figures neoscope's Go tests
compare against.

  /usr/bin/python3 models/train/export.py --ckpt models/train/ckpt/ckpt.pt --out models/neo-tiny

Writes config.json, model.safetensors (F16, written with struct+json), expected.json,
heldout_tokens.json (8 x 64 held-out ids), induction_tokens.json (64 x 20 repeated random ids).
All measurements are made on the F16 weights read back from model.safetensors (upcast to F32).
"""
import argparse
import json
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from neo import GPTNeo  # noqa: E402
from train import induction_batch, ioi_eval  # noqa: E402


def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        a = tensors[name].detach().cpu().to(torch.float16).contiguous().numpy()
        b = a.astype("<f2").tobytes()
        header[name] = {"dtype": "F16", "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F16"
        s, e = info["data_offsets"]
        a = np.frombuffer(data[s:e], dtype="<f2").reshape(info["shape"])
        out[name] = torch.from_numpy(a.astype(np.float32))
    return out


def ce(logits, targets):
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1)).item()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", default="models/train/ckpt/ckpt.pt")
    ap.add_argument("--data", default="models/train/data")
    ap.add_argument("--out", default="models/neo-tiny")
    ap.add_argument("--ioi-eval", default="", help="IOI prompts (models/train/ioiprompts JSON)")
    a = ap.parse_args()
    torch.set_num_threads(1)
    ck = torch.load(a.ckpt)
    cfg = ck["cfg"]
    os.makedirs(a.out, exist_ok=True)
    json.dump(cfg, open(os.path.join(a.out, "config.json"), "w"), indent=2)
    sd = dict(ck["model"])  # the causal-mask buffers are non-persistent, so not in here
    assert "lm_head.weight" not in sd
    st = os.path.join(a.out, "model.safetensors")
    write_safetensors(st, sd)

    # reload from the file (F16 -> F32) into a fresh model
    model = GPTNeo(cfg)
    w = read_safetensors(st)
    missing, unexpected = model.load_state_dict(w, strict=False)
    assert not unexpected and not missing, (missing, unexpected)
    model.eval()
    L, NH, T = cfg["num_layers"], cfg["num_heads"], cfg["max_position_embeddings"]
    V = cfg["vocab_size"]

    train = np.load(os.path.join(a.data, "train.npy")).astype(np.int64)
    held = np.load(os.path.join(a.data, "heldout.npy")).astype(np.int64)
    counts = np.bincount(train, minlength=V).astype(np.float64)
    uni = (counts + 1) / (counts.sum() + V)  # add-one smoothed unigram from the training split
    logu = torch.from_numpy(np.log(uni))
    pool = np.array(ck["pool"], dtype=np.int64)

    with torch.no_grad():
        # 1. held-out loss vs unigram, on the whole held-out stream in windows of T
        n = (len(held) - 1) // T
        X = torch.from_numpy(held[:n * T + 1])
        tot, cnt = 0.0, 0
        for k in range(0, n, 32):
            m = min(32, n - k)
            inp = torch.stack([X[(k + j) * T:(k + j + 1) * T] for j in range(m)])
            tgt = torch.stack([X[(k + j) * T + 1:(k + j + 1) * T + 1] for j in range(m)])
            lg, _, _ = model(inp)
            tot += F.cross_entropy(lg.reshape(-1, V), tgt.reshape(-1), reduction="sum").item()
            cnt += tgt.numel()
        held_loss_full = tot / cnt
        uni_loss_full = float(-logu[torch.from_numpy(held[1:n * T + 1])].mean())

        # fixed held-out sample: 8 x 64
        g = np.random.default_rng(2024)
        starts = sorted(g.integers(0, len(held) - 65, 8).tolist())
        sample = np.stack([held[s:s + 64] for s in starts])
        S = torch.from_numpy(sample)
        lg, _, resid = model(S, want_resid=True)
        sample_loss = ce(lg[:, :-1], S[:, 1:])
        sample_uni = float(-logu[S[:, 1:]].mean())
        lens = [ce(model.unembed(r)[:, :-1], S[:, 1:]) for r in resid]

        # 2. induction scores, P=10, batch 64
        P = 10
        ind = induction_batch(pool, P=P, B=64, seed=1234)
        lg, attns, _ = model(ind, want_attn=True)
        i = torch.arange(P, 2 * P)
        scores = [a_[:, :, i, i - P + 1].mean(dim=(0, 2)).tolist() for a_ in attns]
        q = torch.arange(P, 2 * P - 1)  # second half predictions: logits at q predict ids[q+1]
        base = ce(lg[:, q], ind[:, q + 1])
        flat = sorted(((s, l, h) for l in range(L) for h, s in enumerate(scores[l])), reverse=True)
        top2 = [(l, h) for _, l, h in flat[:2]]
        masks = [torch.ones(NH) for _ in range(L)]
        for l, h in top2:
            masks[l][h] = 0.0
        lg2, _, _ = model(ind, head_masks=masks)
        abl = ce(lg2[:, q], ind[:, q + 1])
        first = ce(lg[:, torch.arange(0, P - 1)], ind[:, 1:P])
        ip = torch.arange(1, 2 * P)
        prev = [a_[:, :, ip, ip - 1].mean(dim=(0, 2)).tolist() for a_ in attns]
        single = []
        for l in range(L):
            row = []
            for h in range(NH):
                mk = [torch.ones(NH) for _ in range(L)]
                mk[l][h] = 0.0
                o, _, _ = model(ind, head_masks=mk)
                row.append(ce(o[:, q], ind[:, q + 1]))
            single.append(row)

    ioi = None
    if a.ioi_eval:
        pr = json.load(open(a.ioi_eval))["prompts"]
        frac, ld = ioi_eval(model, pr)
        ioi = {"prompts": len(pr), "io_preferred_fraction": frac, "ioi_ld_clean": ld,
               "note": "neoscope ioi's prompts (probes/ioi.BuildDataset, n=200, seed 1, BOS "
                       "prepended; held-out templates: none is a training template), "
                       "LD = logit(IO) - logit(S) at the last position"}

    exp = {
        "model": "neo-tiny",
        "weights_dtype": "F16 (measured with F16 weights upcast to F32)",
        "heldout_loss": held_loss_full,
        "unigram_loss": uni_loss_full,
        "heldout_loss_note": "mean next-token CE (nats) over the whole held-out split in "
                             f"non-overlapping windows of {T}; unigram = add-one smoothed training-split "
                             "token frequencies",
        "sample_heldout_loss": sample_loss,
        "sample_unigram_loss": sample_uni,
        "sample_note": "heldout_tokens.json: 8 rows x 64 ids; loss = mean CE of logits at positions "
                       "0..62 vs ids 1..63, each row run separately from position 0",
        "logit_lens_loss": lens,
        "logit_lens_note": "entry k: CE on heldout_tokens of ln_f(resid_k) @ wte^T, resid_0 = "
                           "embeddings (wte+wpe), resid_k = output of block k-1; last entry = model loss",
        "induction_P": P,
        "induction_scores": scores,
        "induction_note": "induction_tokens.json: 64 rows of 2P ids (P random ids, then the same P "
                          "again; ids uniform from tokens with >= 20 training occurrences, eot "
                          "excluded, numpy default_rng(1234)); score[l][h] = mean attention from "
                          "query i to key i-P+1 over i in [P, 2P-1] and all rows",
        "induction_top_heads": [[l, h, scores[l][h]] for _, l, h in flat[:4]],
        "prev_token_scores": prev,
        "prev_token_note": "mean attention from query i to key i-1 over i in [1, 2P-1], induction_tokens",
        "repeat_second_half_loss_single_head_ablated": single,
        "ablated_heads": [list(x) for x in top2],
        "repeat_first_half_loss": first,
        "repeat_second_half_loss": base,
        "repeat_second_half_loss_ablated": abl,
        "repeat_loss_note": "second half = mean CE of logits at positions P..2P-2 vs ids P+1..2P-1; "
                            "ablated = per-head z (attention output before out_proj) of the two "
                            "ablated heads set to 0, out_proj bias kept",
        "train_step": ck["step"],
    }
    if ioi:
        exp["ioi"] = ioi
    json.dump(exp, open(os.path.join(a.out, "expected.json"), "w"), indent=1)
    json.dump(sample.tolist(), open(os.path.join(a.out, "heldout_tokens.json"), "w"))
    json.dump(ind.tolist(), open(os.path.join(a.out, "induction_tokens.json"), "w"))
    print(json.dumps(exp, indent=1))
    ok = (held_loss_full < uni_loss_full - 0.5 and sum(s >= 0.5 for s, _, _ in flat) >= 2
          and abl > base and all(x > y for x, y in zip(lens, lens[1:]))
          and (ioi is None or (ioi["io_preferred_fraction"] >= 0.9 and ioi["ioi_ld_clean"] >= 1)))
    print("ALL CHECKS PASS" if ok else "SOME CHECK FAILS")


if __name__ == "__main__":
    main()
