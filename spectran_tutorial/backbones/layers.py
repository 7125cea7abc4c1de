"""Building blocks shared by the transformer backbones."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def first_valid_positions(valid: torch.Tensor) -> torch.Tensor:
    """Positions counted from each row's first non-padding item (0 there, clamped at 0 before it),
    so that adding left padding never changes which position embedding an item gets."""
    n_pad = (~valid).sum(dim=1, keepdim=True)
    return (torch.arange(valid.shape[1], device=valid.device) - n_pad).clamp(min=0)


def attention_mask(valid: torch.Tensor, causal: bool) -> torch.Tensor:
    """(B, 1, L, L) boolean mask, True where a query may attend to a key: keys must be real items
    (and not later than the query when causal); padding queries attend to themselves only, so no
    row is empty."""
    length = valid.shape[1]
    allowed = valid[:, None, :].expand(-1, length, -1)
    if causal:
        allowed = allowed & torch.ones(length, length, dtype=torch.bool, device=valid.device).tril()
    allowed = allowed | torch.eye(length, dtype=torch.bool, device=valid.device)
    return allowed[:, None]


def init_weights(module: nn.Module, std: float = 0.02) -> None:
    """Small normal weights and zero biases for linear and embedding layers (as BERT and RecBole)."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, std=std)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)


class Dropout(nn.Module):
    """Inverted dropout. On the CPU it is drawn with ``rand_like`` (the same effect as
    ``nn.Dropout``, about twice as fast there, where ``bernoulli_`` dominated a SASRec step); on a
    GPU it is torch's fused kernel."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        if x.device.type != "cpu":
            return F.dropout(x, self.p, training=True)
        return x * (torch.rand_like(x) >= self.p) * (1.0 / (1.0 - self.p))


class SelfAttention(nn.Module):
    def __init__(self, dim: int, num_heads: int, dropout: float):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"hidden size {dim} is not divisible by {num_heads} heads")
        self.heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.dropout = dropout

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, length, dim = x.shape
        q, k, v = self.qkv(x).view(b, length, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.out(y.transpose(1, 2).reshape(b, length, dim))


class TransformerBlock(nn.Module):
    """Pre-norm block: x + Attention(LN x), then x + FFN(LN x)."""

    def __init__(self, dim: int, num_heads: int, dropout: float, ffn_mult: int = 4):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, num_heads, dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(nn.Linear(dim, ffn_mult * dim), nn.GELU(), Dropout(dropout),
                                 nn.Linear(ffn_mult * dim, dim))
        self.drop = Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.attn(self.norm1(x), mask))
        return x + self.drop(self.ffn(self.norm2(x)))
