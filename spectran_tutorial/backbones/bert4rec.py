"""BERT4Rec (Sun et al., 2019): a bidirectional transformer trained to fill in masked items."""
from __future__ import annotations

import torch
from torch import nn

from .sasrec import SASRec


class BERT4Rec(SASRec):
    """SASRec's layers without the causal mask: every position sees the whole sequence. Positions
    flagged in ``masked`` get the learned mask embedding (its own vector, not an item's)."""

    causal = False
    objective = "cloze"

    def __init__(self, dim: int, max_len: int, num_layers: int = 2, num_heads: int = 1,
                 dropout: float = 0.5, emb_dropout: float = 0.5):
        super().__init__(dim, max_len, num_layers, num_heads, dropout, emb_dropout)
        self.mask_embedding = nn.Parameter(torch.randn(dim) * 0.02)

    def forward(self, emb: torch.Tensor, valid: torch.Tensor, masked: torch.Tensor | None = None) -> torch.Tensor:
        if masked is not None:
            emb = torch.where(masked[..., None], self.mask_embedding, emb)
        return super().forward(emb, valid)
