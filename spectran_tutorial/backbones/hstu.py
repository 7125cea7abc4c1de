"""HSTU (Zhai et al., ICML 2024, "Actions Speak Louder than Words"): a compact version.

Each layer computes ``U, V, Q, K = split(SiLU(f1(LN x)))``, a pointwise attention
``A = SiLU(Q K^T + rab) / max_len`` (no softmax) under the causal mask, and
``x + f2(LN(A V) * U)``. ``rab`` is a learned bias per relative position plus, when the data has
timestamps, a learned bias per bucket of the time gap ``|t_i - t_j|`` between query and key,
bucketed on a log scale (``floor(ln(max(gap, 1)) / 0.301)``, as in the reference code). The
reference code measures the gap from the time of the action being predicted; here it is measured
from the query item's own time, so nothing about the target, not even when it happened, is read.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import Dropout, attention_mask, first_valid_positions, init_weights


TIME_BUCKETS = 128


def time_buckets(times: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Log-scale bucket (B, L, L) of the gap in seconds between every pair of timestamps (B, L).
    The logarithm is taken in float64 on the CPU (the pinned results) and float32 on a GPU, whose
    float64 rate is a small fraction of its float32 one."""
    gap = (times[:, :, None] - times[:, None, :]).abs().clamp(min=1)
    dtype = dtype or (torch.float64 if gap.device.type == "cpu" else torch.float32)
    gap = gap.to(dtype)
    return (gap.log() / 0.301).long().clamp(max=TIME_BUCKETS - 1)


class HSTULayer(nn.Module):
    def __init__(self, dim: int, num_heads: int, max_len: int, dropout: float):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"hidden size {dim} is not divisible by {num_heads} heads")
        self.heads, self.max_len = num_heads, max_len
        self.norm_in = nn.LayerNorm(dim)
        self.f1 = nn.Linear(dim, 4 * dim)
        self.rel_bias = nn.Embedding(max_len, num_heads)       # bias per distance i - j (clipped)
        # bias per bucket of |t_i - t_j|; starts at zero and draws nothing from the random stream,
        # so a model on data without timestamps is initialised exactly as without this term
        self.time_bias = nn.Parameter(torch.zeros(TIME_BUCKETS, num_heads))
        self.norm_attn = nn.LayerNorm(dim)
        self.f2 = nn.Linear(dim, dim)
        self.drop = Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, buckets: torch.Tensor | None = None) -> torch.Tensor:
        b, length, dim = x.shape
        u, v, q, k = F.silu(self.f1(self.norm_in(x))).chunk(4, dim=-1)
        split = lambda t: t.view(b, length, self.heads, dim // self.heads).transpose(1, 2)  # noqa: E731
        q, k, v = split(q), split(k), split(v)
        idx = torch.arange(length, device=x.device)
        dist = (idx[:, None] - idx[None, :]).clamp(0, self.max_len - 1)
        scores = q @ k.transpose(-1, -2) + self.rel_bias(dist).permute(2, 0, 1)
        if buckets is not None:
            scores = scores + self.time_bias[buckets].permute(0, 3, 1, 2)
        att = F.silu(scores) * mask / self.max_len
        y = (att @ v).transpose(1, 2).reshape(b, length, dim)
        return x + self.drop(self.f2(self.norm_attn(y) * u))


class HSTU(nn.Module):
    causal = True
    objective = "next"
    uses_time = True       # reads ``times`` when the data has timestamps

    def __init__(self, dim: int, max_len: int, num_layers: int = 2, num_heads: int = 1,
                 dropout: float = 0.5, emb_dropout: float = 0.5):
        super().__init__()
        self.max_len = max_len
        self.positions = nn.Embedding(max_len, dim)
        self.input_drop = Dropout(emb_dropout)
        self.layers = nn.ModuleList(HSTULayer(dim, num_heads, max_len, dropout) for _ in range(num_layers))
        self.output_norm = nn.LayerNorm(dim)
        self.apply(init_weights)

    def forward(self, emb: torch.Tensor, valid: torch.Tensor, times: torch.Tensor | None = None) -> torch.Tensor:
        x = self.input_drop(emb + self.positions(first_valid_positions(valid))) * valid[..., None]
        mask = attention_mask(valid, causal=True).float()
        buckets = None if times is None else time_buckets(times)
        for layer in self.layers:
            x = layer(x, mask, buckets)
        return self.output_norm(x)
