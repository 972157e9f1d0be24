#!/usr/bin/python3
"""Check neo.py against the shared GPT-Neo fixture (tiny-neo): exits non-zero when a reference is
further than 10x its recorded float32 floor (cases.json float32_torch_max_abs_dev)."""
import json, os, struct, sys
import numpy as np, torch, torch.nn.functional as F
from neo import GPTNeo

DT = {"F32": "<f4", "F16": "<f2", "I64": "<i8", "U8": "u1"}


def read(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        h = json.loads(f.read(n)); d = f.read()
    return {k: torch.from_numpy(np.frombuffer(d[v["data_offsets"][0]:v["data_offsets"][1]], DT[v["dtype"]]).reshape(v["shape"]).copy())
            for k, v in h.items() if k != "__metadata__"}


def default_fixture():
    """$NEOSCOPE_FIXTURES/tiny-neo, else ../shared/fixtures/tiny-neo beside the repository root."""
    root = os.environ.get("NEOSCOPE_FIXTURES") or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared", "fixtures")
    return os.path.join(root, "tiny-neo")


fx = sys.argv[1] if len(sys.argv) > 1 else default_fixture()
if not os.path.isfile(os.path.join(fx, "config.json")):
    sys.exit(f"check_fixture: no fixture at {fx} (set NEOSCOPE_FIXTURES or pass the fixture directory)")
floor = json.load(open(fx + "/cases.json"))["float32_torch_max_abs_dev"]
failed = []


def check(key, got, want):
    """|got - want| <= max(10 * floor[key], 1e-6 * max(1, |want|)) elementwise: the
    tolerance rule of internal/fixtures (10x the float32 floor the fixture records)."""
    got, want = torch.as_tensor(got, dtype=torch.float64), torch.as_tensor(want, dtype=torch.float64)
    bound = torch.clamp(1e-6 * want.abs(), min=1e-6).clamp(min=10 * floor[key])
    d = (got - want).abs()
    ok = bool((d <= bound).all())
    print(f"{key}: max |diff| {d.max().item():.3g}, max diff/bound {(d / bound).max().item():.2f}{'' if ok else '  FAIL'}")
    if not ok:
        failed.append(key)


torch.set_num_threads(1)
cfg = json.load(open(fx + "/config.json"))
m = GPTNeo(cfg).eval()
w = {k: v.float() for k, v in read(fx + "/model.safetensors").items() if not k.endswith("bias") or "attention" not in k or "out_proj" in k}
miss, unexp = m.load_state_dict(w, strict=False)
print("missing", miss, "unexpected", unexp)
ref = read(fx + "/reference.safetensors")
with torch.no_grad():
    lg, at, rs = m(ref["tokens"], want_attn=True)
    check("logits", lg, ref["logits"])
    check("attn_pattern", torch.stack(list(at)), ref["attn_pattern"])
    check("resid", torch.stack(list(rs)), ref["resid"])
    T = ref["tokens"]
    lens = [F.cross_entropy(m.unembed(r)[:, :-1].reshape(-1, lg.shape[-1]), T[:, 1:].reshape(-1)).item() for r in rs]
    check("logit_lens_loss", lens, ref["logit_lens_loss"])
    L, H = cfg["num_layers"], cfg["num_heads"]
    ab = torch.zeros(L, H)
    for l in range(L):
        for h in range(H):
            mk = [torch.ones(H) for _ in range(L)]; mk[l][h] = 0
            o, _, _ = m(T, head_masks=mk)
            ab[l, h] = F.cross_entropy(o[:, :-1].reshape(-1, o.shape[-1]), T[:, 1:].reshape(-1))
    check("head_ablation_loss", ab, ref["head_ablation_loss"])
    R = ref["rep_tokens"]; P = R.shape[1] // 2
    _, at, _ = m(R, want_attn=True)
    i = torch.arange(P, 2 * P)
    ind = torch.stack([a[:, :, i, i - P + 1].mean(dim=(0, 2)) for a in at])
    check("induction_score", ind, ref["induction_score"])
    i = torch.arange(1, 2 * P)
    prev = torch.stack([a[:, :, i, i - 1].mean(dim=(0, 2)) for a in at])
    check("prev_token_score", prev, ref["prev_token_score"])
if failed:
    sys.exit(f"check_fixture: {len(failed)} reference(s) off: {', '.join(failed)}")
print("check_fixture: neo.py agrees with", fx)
