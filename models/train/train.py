#!/usr/bin/python3
"""Train neo-tiny (GPT-Neo architecture) on KJV + fortunes + Jargon File + copying sequences.

One CPU thread (torch.set_num_threads(1)). Seeds pinned. Checkpoints to --ckpt every
--ckpt-every seconds; --resume continues from it (model, optimizer, step, data RNG).

Batch mixture (per sequence of T+1 tokens, T = context):
  * frac_rand    : [text prefix (random length)] + R + R (+ R ...) + text filler, where R is P
                   random tokens (P uniform in [4, 48]) drawn uniformly from the "seen" pool
                   (ids with >= 20 occurrences in the training split, eot excluded). The loss on the
                   first copy of R is masked (it is unpredictable).
  * frac_textrep : a natural text span S (length 8..64) followed by S again, then text.
  * frac_ioi     : IOI-style sentences (ioi_data.py), each preceded by <|endoftext|>, packed
                   into the sequence, the loss at each answer (" IO") weighted by --ioi-weight (phase 5 only; 0 in phases 1-4, which then draw exactly as
                   before).
  * rest         : plain windows from the training token stream.

--init FILE starts from the weights of a model.safetensors (F16 upcast to F32) with a fresh
optimizer at step 0; --ioi-eval FILE (written by `go run ./models/train/ioiprompts`) adds the IOI
figures on neoscope's own prompts to each evaluation: the fraction preferring IO and the mean
logit difference logit(IO) - logit(S) at the last position.
"""
import argparse
import json
import math
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

from neo import GPTNeo


def make_cfg(a):
    L = a.layers
    return {
        "activation_function": "gelu_new",
        "architectures": ["GPTNeoForCausalLM"],
        "attention_dropout": 0,
        "attention_layers": (["global", "local"] * L)[:L],
        "attention_types": [[["global", "local"], L // 2]],
        "bos_token_id": a.vocab - 1,
        "embed_dropout": 0,
        "eos_token_id": a.vocab - 1,
        "hidden_size": a.d,
        "initializer_range": 0.02,
        "intermediate_size": 4 * a.d,
        "layer_norm_epsilon": 1e-05,
        "max_position_embeddings": a.ctx,
        "model_type": "gpt_neo",
        "num_heads": a.heads,
        "num_layers": L,
        "resid_dropout": 0,
        "torch_dtype": "float16",
        "use_cache": True,
        "vocab_size": a.vocab,
        "window_size": a.window,
    }


class Sampler:
    def __init__(self, train, pool, T, rng, frac_rand, frac_textrep, frac_ioi=0.0, ioi=None,
                 eot=None, ioi_weight=1.0):
        self.train, self.pool, self.T, self.rng = train, pool, T, rng
        self.fr, self.ft, self.fi = frac_rand, frac_textrep, frac_ioi
        self.ioi, self.eot, self.iw = ioi, eot, ioi_weight

    def ioi_seq(self, n):
        """IOI sentences, each after <|endoftext|>, the first at position 0 (as neoscope's
        prompts, which start with BOS); returns the ids and the positions of the answers."""
        out, ans, k = [], [], 0
        while k < n:
            s = self.ioi[int(self.rng.integers(0, len(self.ioi)))]
            out.append(np.array([self.eot], dtype=np.int64))
            out.append(s)
            ans.append(k + len(s) - 1)  # " IO" is the sentence's last token but the full stop
            k += 1 + len(s)
        return np.concatenate(out)[:n], [p for p in ans if p < n]

    def text(self, n):
        s = self.rng.integers(0, len(self.train) - n)
        return self.train[s:s + n]

    def batch(self, B):
        T1 = self.T + 1
        X = np.empty((B, T1), dtype=np.int64)
        M = np.ones((B, T1), dtype=np.float32)  # mask on the *target* position
        for b in range(B):
            u = self.rng.random()
            if u < self.fr:
                P = int(self.rng.integers(4, min(48, T1 // 2) + 1))
                reps = int(self.rng.integers(2, max(3, T1 // P) + 1))
                reps = min(reps, T1 // P)
                body = np.tile(self.rng.choice(self.pool, P), reps)
                pre = int(self.rng.integers(0, T1 - len(body) + 1))
                seq = np.concatenate([self.text(pre), body, self.text(T1 - pre - len(body))])
                X[b] = seq
                M[b, pre:pre + P] = 0.0
            elif u < self.fr + self.ft:
                Ls = int(self.rng.integers(8, min(64, T1 // 2) + 1))
                span = self.text(Ls)
                pre = int(self.rng.integers(0, T1 - 2 * Ls + 1))
                X[b] = np.concatenate([self.text(pre), span, span, self.text(T1 - pre - 2 * Ls)])
            elif u < self.fr + self.ft + self.fi:
                X[b], ans = self.ioi_seq(T1)
                M[b, ans] = self.iw
            else:
                X[b] = self.text(T1)
        X = torch.from_numpy(X)
        M = torch.from_numpy(M)
        return X[:, :-1], X[:, 1:], M[:, 1:]


def induction_batch(pool, P=10, B=64, seed=1234):
    g = np.random.default_rng(seed)
    r = np.stack([g.choice(pool, P, replace=False) for _ in range(B)])  # distinct within a row
    return torch.from_numpy(np.concatenate([r, r], axis=1).astype(np.int64))


@torch.no_grad()
def induction_scores(model, ids, P=10):
    _, attns, _ = model(ids, want_attn=True)
    out = []
    i = torch.arange(P, 2 * P)
    for a in attns:  # [B, nh, T, T]
        out.append(a[:, :, i, i - P + 1].mean(dim=(0, 2)).tolist())
    return out


@torch.no_grad()
def heldout_loss(model, held, T, n=64, seed=99):
    g = np.random.default_rng(seed)
    starts = g.integers(0, len(held) - T - 1, n)
    X = torch.from_numpy(np.stack([held[s:s + T + 1] for s in starts]).astype(np.int64))
    tot = 0.0
    for k in range(0, n, 16):
        logits, _, _ = model(X[k:k + 16, :-1])
        tot += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), X[k:k + 16, 1:].reshape(-1),
                               reduction="sum").item()
    return tot / (n * T)


@torch.no_grad()
def ioi_eval(model, prompts):
    """Fraction of prompts with logit(IO) > logit(S) at the last position, and the mean of
    logit(IO) - logit(S): what `neoscope ioi` reports as io_preferred_fraction and ioi_ld_clean."""
    lds = []
    for p in prompts:
        lg, _, _ = model(torch.tensor([p["clean_ids"]], dtype=torch.int64))
        lds.append((lg[0, -1, p["io_id"]] - lg[0, -1, p["s_id"]]).item())
    lds = np.array(lds)
    return float((lds > 0).mean()), float(lds.mean())


def load_ioi(a):
    """The IOI training sentences and the evaluation prompts (phase 5)."""
    from ioi_data import check_heldout, sentences
    from prepare_data import BPE, NAMES
    ev = json.load(open(a.ioi_eval)) if a.ioi_eval else {"names": [], "prompts": []}
    if a.frac_ioi <= 0:
        return None, ev["prompts"]
    v = json.load(open(os.path.join(a.tok, "vocab.json"), encoding="utf-8"))
    with open(os.path.join(a.tok, "merges.txt"), encoding="utf-8") as f:
        merges = [tuple(l.split()) for l in f.read().split("\n")[1:] if l.strip()]
    bpe = BPE(merges, v)
    names = list(dict.fromkeys(NAMES + ev["names"]))
    for n in names:
        assert len(bpe.encode(" " + n)) == 1, f"{n} is not one token"
    check_heldout([p["text"] for p in ev["prompts"]])
    sents = sentences(bpe.encode, names, a.ioi_pool, a.ioi_seed)
    print(f"ioi: {len(sents)} training sentences, {len(names)} names, "
          f"{len(ev['prompts'])} evaluation prompts", flush=True)
    return sents, ev["prompts"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="models/train/data")
    ap.add_argument("--ckpt", default="models/train/ckpt/ckpt.pt")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--d", type=int, default=192)
    ap.add_argument("--heads", type=int, default=6)
    ap.add_argument("--ctx", type=int, default=128)
    ap.add_argument("--window", type=int, default=32)
    ap.add_argument("--seq-len", type=int, default=0, help="training sequence length (0: ctx)")
    ap.add_argument("--vocab", type=int, default=4096)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--min-lr-frac", type=float, default=0.1)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--wd", type=float, default=0.01)
    ap.add_argument("--frac-rand", type=float, default=0.25)
    ap.add_argument("--frac-textrep", type=float, default=0.1)
    ap.add_argument("--frac-ioi", type=float, default=0.0)
    ap.add_argument("--ioi-eval", default="", help="IOI evaluation prompts (ioiprompts JSON)")
    ap.add_argument("--ioi-pool", type=int, default=40000, help="IOI training sentences")
    ap.add_argument("--ioi-seed", type=int, default=5)
    ap.add_argument("--ioi-weight", type=float, default=1.0, help="loss weight of IOI answers")
    ap.add_argument("--tok", default="../neo-tiny", help="tokenizer dir (vocab.json, merges.txt)")
    ap.add_argument("--init", default="", help="start from this model.safetensors, fresh optimizer")
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--ckpt-every", type=float, default=240.0, help="seconds")
    ap.add_argument("--stop-after", type=float, default=1e9, help="wall seconds for this process")
    ap.add_argument("--stop-step", type=int, default=0, help="save and exit at this step (phases)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--bench", type=int, default=0, help="time N steps and exit")
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    train = np.load(os.path.join(a.data, "train.npy")).astype(np.int64)
    held = np.load(os.path.join(a.data, "heldout.npy")).astype(np.int64)
    counts = np.bincount(train, minlength=a.vocab)
    pool = np.array([t for t in range(a.vocab - 1) if counts[t] >= 20], dtype=np.int64)
    cfg = make_cfg(a)
    model = GPTNeo(cfg)
    decay = [p for n, p in model.named_parameters() if p.dim() == 2 and "wpe" not in n]
    nodecay = [p for n, p in model.named_parameters() if not (p.dim() == 2 and "wpe" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.wd},
                             {"params": nodecay, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.95))
    step = 0
    hist = []
    if a.resume and os.path.exists(a.ckpt):
        ck = torch.load(a.ckpt)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        step = ck["step"]
        rng.bit_generator.state = ck["rng"]
        torch.set_rng_state(ck["torch_rng"])
        hist = ck.get("hist", [])
        print(f"resumed at step {step}", flush=True)
    elif a.init:
        from export import read_safetensors
        missing, unexpected = model.load_state_dict(read_safetensors(a.init), strict=False)
        assert not missing and not unexpected, (missing, unexpected)
        print(f"initialised from {a.init}", flush=True)
    ioi_sents, ioi_prompts = load_ioi(a)
    sampler = Sampler(train, pool, a.seq_len or a.ctx, rng, a.frac_rand, a.frac_textrep,
                      a.frac_ioi, ioi_sents, a.vocab - 1, a.ioi_weight)
    ind_ids = induction_batch(pool)
    nparam = sum(p.numel() for p in model.parameters())
    print(f"params {nparam}, pool {len(pool)}, train tokens {len(train)}, cfg {json.dumps(cfg)}",
          flush=True)

    def save():
        os.makedirs(os.path.dirname(a.ckpt), exist_ok=True)
        tmp = a.ckpt + ".tmp"
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step,
                    "rng": rng.bit_generator.state, "torch_rng": torch.get_rng_state(),
                    "cfg": cfg, "args": vars(a), "hist": hist, "pool": pool.tolist()}, tmp)
        os.replace(tmp, a.ckpt)

    def lr_at(s):
        if s < a.warmup:
            return a.lr * (s + 1) / a.warmup
        f = min(1.0, (s - a.warmup) / max(1, a.steps - a.warmup))
        return a.lr * (a.min_lr_frac + (1 - a.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * f)))

    t0 = time.time()
    tlast = t0
    tok_seen = 0
    run_loss = None
    while step < a.steps:
        X, Y, M = sampler.batch(a.batch)
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        logits, _, _ = model(X)
        l = F.cross_entropy(logits.reshape(-1, a.vocab), Y.reshape(-1), reduction="none")
        loss = (l * M.reshape(-1)).sum() / M.sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        tok_seen += X.numel()
        run_loss = loss.item() if run_loss is None else 0.98 * run_loss + 0.02 * loss.item()
        if a.bench and step >= a.bench:
            dt = time.time() - t0
            print(f"bench: {a.bench} steps in {dt:.1f}s = {dt / a.bench:.3f} s/step, "
                  f"{tok_seen / dt:.0f} tok/s", flush=True)
            return
        if step % 50 == 0:
            print(f"step {step} loss {run_loss:.3f} lr {lr_at(step):.2e} "
                  f"{(time.time() - t0):.0f}s", flush=True)
        if step % a.eval_every == 0 or step == a.steps:
            model.eval()
            hl = heldout_loss(model, held, a.ctx)
            ind = induction_scores(model, ind_ids)
            ioi = ioi_eval(model, ioi_prompts) if ioi_prompts else None
            model.train()
            flat = sorted(((s, l_, h) for l_, r in enumerate(ind) for h, s in enumerate(r)),
                          reverse=True)[:4]
            hist.append({"step": step, "heldout": hl, "train_ema": run_loss,
                         "top_induction": flat, "ioi": ioi, "time": time.time()})
            print(f"EVAL step {step} heldout {hl:.4f} top induction "
                  + " ".join(f"L{l_}H{h}={s:.3f}" for s, l_, h in flat)
                  + (f" ioi io_preferred {ioi[0]:.3f} mean_ld {ioi[1]:.3f}" if ioi else ""),
                  flush=True)
        if time.time() - tlast > a.ckpt_every or step == a.steps:
            save()
            tlast = time.time()
        if a.stop_step and step >= a.stop_step:
            save()
            print(f"stopping at step {step}", flush=True)
            return
        if time.time() - t0 > a.stop_after:
            save()
            print(f"stopping on wall clock at step {step}", flush=True)
            return
    save()
    print("done", flush=True)


if __name__ == "__main__":
    main()
