"""BERT4Rec (Sun et al., 2019): a bidirectional transformer trained to fill in masked items."""
from __future__ import annotations

import torch
from torch import nn

from .layers import Dropout, TransformerBlock, attention_mask, first_valid_positions, init_weights


class BERT4Rec(nn.Module):
    """Maps embedded sequences to hidden states; every position sees the whole sequence. Positions
    flagged in ``masked`` get the learned mask embedding (its own vector, not an item's)."""

    causal = False
    objective = "cloze"

    def __init__(self, dim: int, max_len: int, num_layers: int = 2, num_heads: int = 1,
                 dropout: float = 0.5, emb_dropout: float = 0.5):
        super().__init__()
        self.mask_embedding = nn.Parameter(torch.randn(dim) * 0.02)
        self.positions = nn.Embedding(max_len, dim)
        self.input_norm = nn.LayerNorm(dim)
        self.input_drop = Dropout(emb_dropout)
        self.blocks = nn.ModuleList(TransformerBlock(dim, num_heads, dropout) for _ in range(num_layers))
        self.output_norm = nn.LayerNorm(dim)
        self.apply(init_weights)

    def forward(self, emb: torch.Tensor, valid: torch.Tensor, masked: torch.Tensor | None = None) -> torch.Tensor:
        if masked is not None:
            emb = torch.where(masked[..., None], self.mask_embedding, emb)
        x = emb + self.positions(first_valid_positions(valid))
        x = self.input_drop(self.input_norm(x)) * valid[..., None]
        mask = attention_mask(valid, causal=False)
        for block in self.blocks:
            x = block(x, mask)
        return self.output_norm(x)
