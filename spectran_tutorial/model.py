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
        """Hidden states (B, L, views x d) of left-padded item ids (B, L), given the item table.
        A multi-view table (e.g. LLM-ESR's text and ID views) runs each view through the shared
        backbone; the states are concatenated, so scoring against the whole table sums the views."""
        valid = seqs > 0
        emb = table[seqs]
        if self.table.views == 1:
            return self.backbone(emb, valid)
        return torch.cat([self.backbone(view, valid) for view in emb.chunk(self.table.views, dim=-1)], dim=-1)

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
