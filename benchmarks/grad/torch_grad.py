"""PyTorch autograd anchor for `neoscope attribute` (AtP, EAP) and `neoscope grad`, float32 on the CPU.

    PYTHONPATH=../shared/bench /usr/bin/python3 benchmarks/grad/torch_grad.py MODEL_DIR --threads 2

Same task as benchmarks/grad (main.go): B=8 prompts of T=20 random tokens, the corrupt prompts with two
positions replaced, M = mean over rows of logits[b,T-1,io_b] - logits[b,T-1,s_b] on the clean run. Times,
in units of a forward pass (ref.run(..., cache=False) under inference_mode, logits for the batch):
  (a) AtP as TransformerLens users write it: the corrupt run caching z and mlp_out (no grad), the clean run
      with the residual made to require grad, torch.autograd.grad of M with respect to every z and mlp_out,
      then (z_corrupt - z_clean) * grad summed per head, per head and position, and per MLP;
  (b) EAP: a forward with a separate input for every receiver (each head's q, k and v input, each MLP's,
      the logits') as TransformerLens's use_split_qkv_input does, vectorised over heads: one autograd.grad
      gives dM/d(input of R) for all receivers, then every edge's (out_S(corrupt) - out_S(clean)) . grad,
      as one matrix product per layer of receivers;
  (c) the parameter gradients of the mean next-token loss (loss.backward() with every parameter a leaf).
The model code is ../shared/bench/ref.py (import it via PYTHONPATH); the edge graph is CIRCUITS.md's.
Prints the median of --runs after a warm-up, wall seconds and forward-pass units.
"""
import argparse
import json
import os
import statistics
import time

import torch

import ref
from torch_bench import blas_in_use  # ../shared/bench: the BLAS library torch actually mapped


def task(cfg, B, T, seed=1):
    g = torch.Generator().manual_seed(seed)
    clean = torch.randint(0, cfg.vocab, (B, T), generator=g)
    corrupt = clean.clone()
    for t in (2, T // 2):
        corrupt[:, t] = torch.randint(0, cfg.vocab, (B,), generator=g)
    return clean, corrupt, clean[:, 2].clone(), clean[:, T // 2].clone()


def atp(model, clean, corrupt, io, s):
    L = model.cfg.n_layers
    with torch.no_grad():
        ck = ref.run(model, corrupt)
    acts = {}

    def keep(point, l):
        def f(a):
            acts[(point, l)] = a
            return a
        return f
    hooks = {(point, l): keep(point, l) for l in range(L) for point in ("z", "mlp_out")}
    hooks[("resid_pre", 0)] = lambda x: x.requires_grad_(True)
    out = ref.run(model, clean, cache=False, hooks=hooks)
    M = ref.logit_diff(out["logits"], io, s).mean()
    zs = [acts[("z", l)] for l in range(L)]
    ms = [acts[("mlp_out", l)] for l in range(L)]
    gr = torch.autograd.grad(M, zs + ms)
    with torch.no_grad():
        head_pos = torch.stack([((ck["z"][l] - zs[l]) * gr[l]).sum(dim=(0, 3)) for l in range(L)])  # [L,T,H]
        head = head_pos.sum(1)
        mlp = torch.stack([((ck["mlp_out"][l] - ms[l]) * gr[L + l]).sum() for l in range(L)])
    return head, mlp


def split_forward(model, tokens, leaves=None):
    """Forward with a separate input per receiver; returns logits and every sender's output [B,T,D]."""
    cfg = model.cfg
    B, T = tokens.shape
    H, dh, D = cfg.n_heads, cfg.d_head, cfg.d_model
    x = ref.embed(model, tokens)
    outs = [x]
    for l, P in enumerate(model.layers):
        xin = x[:, :, None, None, :].expand(B, T, 3, H, D)                       # q,k,v input of each head
        if leaves is not None:
            xin = xin + leaves[2 * l]
        hn = ref.layer_norm(xin, P["ln1"], cfg.eps)
        q = torch.einsum("bthd,dhe->bthe", hn[:, :, 0], P["W_Q"].view(D, H, dh)) + P["b_Q"].view(H, dh)
        k = torch.einsum("bthd,dhe->bthe", hn[:, :, 1], P["W_K"].view(D, H, dh)) + P["b_K"].view(H, dh)
        v = torch.einsum("bthd,dhe->bthe", hn[:, :, 2], P["W_V"].view(D, H, dh)) + P["b_V"].view(H, dh)
        sc = torch.einsum("bqhd,bkhd->bhqk", q, k) * cfg.scale
        sc = sc.masked_fill(~model.mask(l, T), float("-inf"))
        z = torch.einsum("bhqk,bkhd->bqhd", torch.softmax(sc, -1), v)
        ho = torch.einsum("bthe,hed->bthd", z, P["W_O"].view(H, dh, D))              # [B,T,H,D], no b_O
        outs += list(ho.unbind(2))
        x = x + ho.sum(2) + P["b_O"]
        m_in = x if leaves is None else x + leaves[2 * l + 1]
        mo = ref.act(ref.layer_norm(m_in, P["ln2"], cfg.eps) @ P["W_in"] + P["b_in"], cfg) @ P["W_out"] + P["b_out"]
        outs.append(mo)
        x = x + mo
    if leaves is not None:
        x = x + leaves[-1]
    return ref.unembed(model, x), outs


def eap(model, clean, corrupt, io, s):
    cfg = model.cfg
    L, H, D = cfg.n_layers, cfg.n_heads, cfg.d_model
    B, T = clean.shape
    with torch.no_grad():
        _, ok = split_forward(model, corrupt)
    leaves = []
    for l in range(L):
        leaves.append(torch.zeros(B, T, 3, H, D, dtype=model.dtype, requires_grad=True))
        leaves.append(torch.zeros(B, T, D, dtype=model.dtype, requires_grad=True))
    leaves.append(torch.zeros(B, T, D, dtype=model.dtype, requires_grad=True))
    logits, oc = split_forward(model, clean, leaves)
    M = ref.logit_diff(logits, io, s).mean()
    gr = torch.autograd.grad(M, leaves)
    with torch.no_grad():
        Dlt = torch.stack([a - b for a, b in zip(ok, oc)]).reshape(len(ok), -1)     # [S, B*T*D]
        scores = {}
        for l in range(L):
            n_before = 1 + l * (H + 1)                                             # embed, heads and MLPs of layers < l
            G = gr[2 * l].permute(2, 3, 0, 1, 4).reshape(3 * H, -1)                # [(q|k|v) x H, N]
            scores[("attn", l)] = G @ Dlt[:n_before].T
            scores[("mlp", l)] = gr[2 * l + 1].reshape(1, -1) @ Dlt[:n_before + H].T
        scores["logits"] = gr[-1].reshape(1, -1) @ Dlt.T
    n_edges = sum(3 * H * (1 + l * (H + 1)) + 1 + l * (H + 1) + H for l in range(L)) + len(ok)
    return scores, n_edges


def grad_model(model_dir):
    """A float32 model whose every stored tensor (but the mask buffers) is a leaf requiring grad."""
    sd, _ = ref.read_safetensors(os.path.join(model_dir, "model.safetensors"))
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = ref.Config(json.load(f))
    leaves = {k: v.to(torch.float32).requires_grad_(True) for k, v in sd.items() if not k.endswith(ref.BUFFER_SUFFIXES)}
    return ref.Model(cfg, leaves, torch.float32), leaves


def param_grads(gm, tokens):
    model, leaves = gm
    for v in leaves.values():
        v.grad = None
    ref.loss(ref.run(model, tokens, cache=False)["logits"], tokens).backward()
    return {k: v.grad for k, v in leaves.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=20)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    model = ref.load(a.model_dir, torch.float32)
    clean, corrupt, io, s = task(model.cfg, a.batch, a.seq)

    gm = grad_model(a.model_dir)

    def fwd():
        with torch.inference_mode():
            ref.run(model, clean, cache=False)
    _, n_edges = eap(model, clean, corrupt, io, s)
    fns = [("forward (logits)", fwd), ("AtP, all heads/positions/MLPs", lambda: atp(model, clean, corrupt, io, s)),
           (f"EAP, all {n_edges} edges", lambda: eap(model, clean, corrupt, io, s)),
           ("parameter gradients (loss)", lambda: param_grads(gm, clean))]
    times = {n: [] for n, _ in fns}
    cpus = {n: [] for n, _ in fns}
    for n, f in fns:  # warm-up
        f()
    for _ in range(a.runs):
        for n, f in fns:
            t0, c0 = time.perf_counter(), time.process_time()
            f()
            times[n].append(time.perf_counter() - t0)
            cpus[n].append(time.process_time() - c0)
    f0, c0 = statistics.median(times[fns[0][0]]), statistics.median(cpus[fns[0][0]])
    print(f"torch {torch.__version__} (BLAS {', '.join(blas_in_use()) or 'built in'}), {torch.get_num_threads()} threads, "
          f"B={a.batch} T={a.seq}, median of {a.runs} (wall; CPU seconds of the process beside)")
    for n, _ in fns:
        t, c = statistics.median(times[n]), statistics.median(cpus[n])
        print(f"  {n:34s} {t:7.3f} s wall {t / f0:5.2f} forwards   {c:7.3f} s CPU {c / c0:5.2f} forwards")


if __name__ == "__main__":
    main()
