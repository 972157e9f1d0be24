"""Minimal GPT-Neo in PyTorch, computing exactly what Hugging Face's GPTNeoForCausalLM computes
(eval mode, no dropout), with HF's parameter names."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


class SelfAttention(nn.Module):
    def __init__(self, cfg, kind):
        super().__init__()
        C, n = cfg["hidden_size"], cfg["max_position_embeddings"]
        self.nh = cfg["num_heads"]
        self.hd = C // self.nh
        bias = torch.tril(torch.ones(n, n, dtype=torch.bool))
        if kind == "local":
            bias = bias ^ torch.tril(bias, -cfg["window_size"])
        self.register_buffer("bias", bias, persistent=False)
        self.q_proj = nn.Linear(C, C, bias=False)
        self.k_proj = nn.Linear(C, C, bias=False)
        self.v_proj = nn.Linear(C, C, bias=False)
        self.out_proj = nn.Linear(C, C, bias=True)

    def forward(self, x, head_mask=None, want_attn=False):
        B, T, C = x.shape
        q = self.q_proj(x).view(B, T, self.nh, self.hd).transpose(1, 2)
        k = self.k_proj(x).view(B, T, self.nh, self.hd).transpose(1, 2)
        v = self.v_proj(x).view(B, T, self.nh, self.hd).transpose(1, 2)
        w = q.float() @ k.float().transpose(-1, -2)  # NO 1/sqrt(d) scaling (GPT-Neo)
        mask = self.bias[:T, :T]
        w = torch.where(mask, w, torch.tensor(torch.finfo(w.dtype).min, dtype=w.dtype))
        a = torch.softmax(w, dim=-1).to(v.dtype)
        z = a @ v  # [B, nh, T, hd]
        if head_mask is not None:  # per-head z multiplier, [nh]
            z = z * head_mask.view(1, -1, 1, 1)
        z = z.transpose(1, 2).reshape(B, T, C)
        return self.out_proj(z), (a if want_attn else None)


class Attention(nn.Module):
    def __init__(self, cfg, kind):
        super().__init__()
        self.attention = SelfAttention(cfg, kind)


class MLP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        C = cfg["hidden_size"]
        Fi = cfg["intermediate_size"] or 4 * C
        self.c_fc = nn.Linear(C, Fi)
        self.c_proj = nn.Linear(Fi, C)

    def forward(self, x):
        return self.c_proj(gelu_new(self.c_fc(x)))


class Block(nn.Module):
    def __init__(self, cfg, kind):
        super().__init__()
        C, eps = cfg["hidden_size"], cfg["layer_norm_epsilon"]
        self.ln_1 = nn.LayerNorm(C, eps=eps)
        self.attn = Attention(cfg, kind)
        self.ln_2 = nn.LayerNorm(C, eps=eps)
        self.mlp = MLP(cfg)

    def forward(self, x, head_mask=None, want_attn=False):
        h, a = self.attn.attention(self.ln_1(x), head_mask, want_attn)
        x = x + h
        x = x + self.mlp(self.ln_2(x))
        return x, a


class Transformer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        C = cfg["hidden_size"]
        self.wte = nn.Embedding(cfg["vocab_size"], C)
        self.wpe = nn.Embedding(cfg["max_position_embeddings"], C)
        self.h = nn.ModuleList([Block(cfg, k) for k in cfg["attention_layers"]])
        self.ln_f = nn.LayerNorm(C, eps=cfg["layer_norm_epsilon"])


class GPTNeo(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.transformer = Transformer(cfg)
        self.apply(self._init)

    def _init(self, m):  # HF GPTNeoPreTrainedModel._init_weights
        std = self.cfg.get("initializer_range", 0.02)
        if isinstance(m, nn.Linear):
            m.weight.data.normal_(0.0, std)
            if m.bias is not None:
                m.bias.data.zero_()
        elif isinstance(m, nn.Embedding):
            m.weight.data.normal_(0.0, std)
        elif isinstance(m, nn.LayerNorm):
            m.weight.data.fill_(1.0)
            m.bias.data.zero_()

    def forward(self, ids, head_masks=None, want_attn=False, want_resid=False):
        t = self.transformer
        T = ids.shape[1]
        x = t.wte(ids) + t.wpe(torch.arange(T, device=ids.device))[None]
        attns, resids = [], [x]
        for l, blk in enumerate(t.h):
            x, a = blk(x, None if head_masks is None else head_masks[l], want_attn)
            attns.append(a)
            resids.append(x)
        logits = t.ln_f(x) @ t.wte.weight.T
        return logits, attns, resids

    def unembed(self, x):
        return self.transformer.ln_f(x) @ self.transformer.wte.weight.T
