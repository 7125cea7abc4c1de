"""A sequential recommender: an item table feeding a backbone, scored against the same table."""
from __future__ import annotations

import torch
from torch import nn

from .item_tables import ItemTable


class SequentialRecommender(nn.Module):
    def __init__(self, table: ItemTable, backbone: nn.Module):
        super().__init__()
        self.table = table
        self.backbone = backbone

    def hidden(self, seqs: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        """Hidden states (B, L, d) of left-padded item ids (B, L), given the item table."""
        return self.backbone(table[seqs], seqs > 0)

    def user_vectors(self, seqs: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        """The representation used to rank the next item: the state at the last position."""
        return self.hidden(seqs, table)[:, -1]

    @torch.no_grad()
    def scores(self, seqs: torch.Tensor, table: torch.Tensor | None = None) -> torch.Tensor:
        """Scores (B, N + 1) of every item for each history; column 0 (padding) is -inf."""
        table = self.table() if table is None else table
        s = self.user_vectors(seqs, table) @ table.T
        s[:, 0] = -torch.inf
        return s
