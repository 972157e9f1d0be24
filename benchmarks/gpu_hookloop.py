"""The PyTorch hook loop of a pair-ablation sweep, on a GPU (or the CPU), over a sample of the pairs.

    python3 benchmarks/gpu_hookloop.py MODEL_DIR --ref-dir DIR [--device cuda] [--every 40] [--batched 168]

The anchor for `neoscope sweep --backend cuda --task induction --space 'pairs(heads)'`: the same task
shape as ../shared/bench/torch_bench.py --sweep (B=8 prompts of 10 random tokens repeated, mean loss over
the second half's predictions), run with ../shared/bench/ref.py (--ref-dir: where ref.py is) in float32
under torch.inference_mode(), every tensor on --device. Two loops over every --every-th pair of
distinct heads (in the order (l1,h1) < (l2,h2)):
  naive:   one forward pass per pair, ablate_heads=[a, b] (how TransformerLens users write it);
  batched: --batched K pairs per pass, z multiplied by per-row masks through hooks (the nnsight /
           pyvene idiom), K=168 being what neoscope's default --max-memory gives on GPT-Neo-125M.
Each prints one JSON line: pairs timed, seconds (after a warm-up pass, torch.cuda.synchronize()
before reading the clock), pairs/s, and the extrapolation to all pairs. The two loops' losses for
the same pairs are compared (max |diff|), so a broken batched loop cannot pass unseen.
"""
import argparse
import itertools
import json
import sys
import time

import torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir")
    ap.add_argument("--ref-dir", required=True, help="folder holding ref.py")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--every", type=int, default=40, help="time every N-th pair")
    ap.add_argument("--limit", type=int, default=0, help="at most this many pairs (0 = no limit)")
    ap.add_argument("--batched", type=int, default=168, help="pairs per pass in the batched loop (0 = skip it)")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    sys.path.insert(0, a.ref_dir)
    import ref  # noqa: E402

    dev = torch.device(a.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        sys.exit("gpu_hookloop: --device cuda but torch.cuda.is_available() is False")
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32, as neoscope's default kernels
    torch.backends.cudnn.allow_tf32 = False
    model = ref.load(a.model_dir, torch.float32)
    to_device(model, dev)
    if hasattr(torch, "set_default_device"):
        torch.set_default_device(dev)  # ref's masks and aranges are made per call
    cfg = model.cfg
    g = torch.Generator().manual_seed(a.seed)
    B2, P = 8, 10
    half = torch.stack([torch.randperm(cfg.vocab, generator=g)[:P] for _ in range(B2)])
    toks = torch.cat([half, half], dim=1).to(dev)
    heads = [(l, h) for l in range(cfg.n_layers) for h in range(cfg.n_heads)]
    pairs = list(itertools.combinations(heads, 2))
    todo = pairs[::a.every]
    if a.limit:
        todo = todo[:a.limit]

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    def loss_of(logits, t, k):
        return ref.per_token_loss(logits, t)[:, P:2 * P - 1].reshape(k, B2, -1).mean(dim=(1, 2))

    info = {"torch": torch.__version__, "device": torch.cuda.get_device_name() if dev.type == "cuda" else "cpu",
            "pairs_total": len(pairs), "every": a.every}
    print(json.dumps(info), flush=True)
    with torch.inference_mode():
        ref.run(model, toks, cache=False)  # warm-up
        sync()
        t = time.perf_counter()
        naive = []
        for pr in todo:
            logits = ref.run(model, toks, ablate_heads=list(pr), cache=False)["logits"]
            naive.append(loss_of(logits, toks, 1))
        naive = torch.cat(naive).tolist()
        sync()
        report("naive", len(todo), time.perf_counter() - t, len(pairs), 1)
        if a.batched > 0:
            K = a.batched
            batched = []
            first = True
            t = None
            for c0 in range(0, len(todo), K):
                chunk = todo[c0:c0 + K]
                k = len(chunk)
                big = toks.repeat(k, 1)  # config-major rows
                masks = {}
                for i, pr in enumerate(chunk):
                    for (l, h) in pr:
                        m = masks.setdefault(l, torch.ones(k * B2, 1, cfg.n_heads, 1, device=dev))
                        m[i * B2:(i + 1) * B2, 0, h, 0] = 0
                hooks = {("z", l): (lambda z, m=m: z * m) for l, m in masks.items()}
                if first:  # warm-up at this size
                    ref.run(model, big, cache=False, hooks=hooks)
                    sync()
                    t = time.perf_counter()
                    first = False
                logits = ref.run(model, big, cache=False, hooks=hooks)["logits"]
                batched.extend(loss_of(logits, big, k).tolist())
            sync()
            report("batched", len(todo), time.perf_counter() - t, len(pairs), K)
            worst = max(abs(x - y) for x, y in zip(naive, batched))
            print(json.dumps({"check": "naive vs batched loss", "pairs": len(todo), "max_abs_diff": worst,
                              "ok": worst < 1e-3}), flush=True)
            if not worst < 1e-3:
                sys.exit(1)


def report(name, n, sec, total, k):
    print(json.dumps({"loop": name, "pairs_per_pass": k, "pairs_timed": n, "seconds": round(sec, 3),
                      "pairs_per_s": round(n / sec, 2), "extrapolated_all_pairs_s": round(sec / n * total, 1)}),
          flush=True)


def to_device(obj, dev, depth=0):
    """Move every tensor reachable from obj's attributes, lists and dicts to dev (in place)."""
    if depth > 4:
        return
    items = vars(obj).items() if hasattr(obj, "__dict__") else (
        obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ())
    for k, v in list(items):
        if torch.is_tensor(v):
            v = v.to(dev)
            if hasattr(obj, "__dict__") and not isinstance(obj, (dict, list)):
                setattr(obj, k, v)
            else:
                obj[k] = v
        elif isinstance(v, (list, dict)) or (hasattr(v, "__dict__") and not callable(v)):
            to_device(v, dev, depth + 1)


if __name__ == "__main__":
    main()
