"""SASRec (Kang & McAuley, 2018): a causal transformer over the item sequence."""
from __future__ import annotations

import torch
from torch import nn

from .layers import Dropout, TransformerBlock, attention_mask, first_valid_positions, init_weights


class SASRec(nn.Module):
    """Maps embedded sequences (B, L, d) to hidden states (B, L, d); the state at position t
    depends only on items at positions <= t (causal), and not on left padding."""

    causal = True
    objective = "next"     # trained to predict the next item at every position

    def __init__(self, dim: int, max_len: int, num_layers: int = 2, num_heads: int = 1,
                 dropout: float = 0.5, emb_dropout: float = 0.5):
        super().__init__()
        self.max_len = max_len
        self.positions = nn.Embedding(max_len, dim)
        nn.init.normal_(self.positions.weight, std=0.02)
        self.input_norm = nn.LayerNorm(dim)
        self.input_drop = Dropout(emb_dropout)
        self.blocks = nn.ModuleList(TransformerBlock(dim, num_heads, dropout) for _ in range(num_layers))
        self.output_norm = nn.LayerNorm(dim)
        self.apply(init_weights)

    def forward(self, emb: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        x = emb + self.positions(first_valid_positions(valid))
        x = self.input_drop(self.input_norm(x)) * valid[..., None]
        mask = attention_mask(valid, causal=self.causal)
        for block in self.blocks:
            x = block(x, mask)
        return self.output_norm(x)
