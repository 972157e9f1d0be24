#!/usr/bin/python3
"""Check neo.py against the shared GPT-Neo fixture (../shared/fixtures/tiny-neo from the project root)."""
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


fx = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared", "fixtures", "tiny-neo")
torch.set_num_threads(1)
cfg = json.load(open(fx + "/config.json"))
m = GPTNeo(cfg).eval()
w = {k: v.float() for k, v in read(fx + "/model.safetensors").items() if not k.endswith("bias") or "attention" not in k or "out_proj" in k}
miss, unexp = m.load_state_dict(w, strict=False)
print("missing", miss, "unexpected", unexp)
ref = read(fx + "/reference.safetensors")
with torch.no_grad():
    lg, at, rs = m(ref["tokens"], want_attn=True)
    print("logits maxdiff", (lg - ref["logits"]).abs().max().item())
    print("attn maxdiff", max((a - ref["attn_pattern"][l]).abs().max().item() for l, a in enumerate(at)))
    print("resid maxdiff", max((r - ref["resid"][l]).abs().max().item() for l, r in enumerate(rs)))
    T = ref["tokens"]
    lens = [F.cross_entropy(m.unembed(r)[:, :-1].reshape(-1, lg.shape[-1]), T[:, 1:].reshape(-1)).item() for r in rs]
    print("lens", np.round(lens, 5), ref["logit_lens_loss"].numpy().round(5))
    L, H = cfg["num_layers"], cfg["num_heads"]
    ab = torch.zeros(L, H)
    for l in range(L):
        for h in range(H):
            mk = [torch.ones(H) for _ in range(L)]; mk[l][h] = 0
            o, _, _ = m(T, head_masks=mk)
            ab[l, h] = F.cross_entropy(o[:, :-1].reshape(-1, o.shape[-1]), T[:, 1:].reshape(-1))
    print("head ablation maxdiff", (ab - ref["head_ablation_loss"]).abs().max().item())
    R = ref["rep_tokens"]; P = R.shape[1] // 2
    _, at, _ = m(R, want_attn=True)
    i = torch.arange(P, 2 * P)
    ind = torch.stack([a[:, :, i, i - P + 1].mean(dim=(0, 2)) for a in at])
    print("induction maxdiff", (ind - ref["induction_score"]).abs().max().item())
