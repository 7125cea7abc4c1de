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

    @property
    def objective(self) -> str:
        """"next" (predict the next item at every position) or "cloze" (fill in masked items)."""
        return getattr(self.backbone, "objective", "next")

    @property
    def uses_time(self) -> bool:
        """Whether the backbone reads timestamps (HSTU's relative time bias)."""
        return getattr(self.backbone, "uses_time", False)

    def hidden(self, seqs: torch.Tensor, table: torch.Tensor, masked: torch.Tensor | None = None,
               times: torch.Tensor | None = None) -> torch.Tensor:
        """Hidden states (B, L, views x d) of left-padded item ids (B, L), given the item table.
        ``masked`` flags positions a cloze backbone must fill in (their ids are 0); ``times``
        (B, L) are the items' timestamps, read only by backbones that use them. A multi-view
        table (LLM-ESR's text and ID views) runs each view through the shared backbone; the states
        are concatenated, so scoring against the whole table sums the views."""
        valid = seqs > 0 if masked is None else (seqs > 0) | masked
        extra = {} if masked is None else {"masked": masked}
        if times is not None and self.uses_time:
            extra["times"] = times
        emb = table[seqs]
        if self.table.views == 1:
            return self.backbone(emb, valid, **extra)
        views = emb.chunk(self.table.views, dim=-1)
        return torch.cat([self.backbone(view, valid, **extra) for view in views], dim=-1)

    def user_vectors(self, seqs: torch.Tensor, table: torch.Tensor,
                     times: torch.Tensor | None = None) -> torch.Tensor:
        """The representation that ranks the next item: the state at the last position; for a
        cloze backbone, the state of a mask appended after the history (the oldest item makes room
        only when the history already fills the backbone's ``max_len``)."""
        if self.objective == "cloze":
            seqs = torch.cat([seqs, seqs.new_zeros(len(seqs), 1)], dim=1)[:, -self.backbone.max_len:]
            masked = torch.zeros_like(seqs, dtype=torch.bool)
            masked[:, -1] = True
            if times is not None:
                times = torch.cat([times, times[:, -1:]], dim=1)[:, -self.backbone.max_len:]
            return self.hidden(seqs, table, masked, times)[:, -1]
        return self.hidden(seqs, table, times=times)[:, -1]

    @torch.no_grad()
    def scores(self, seqs: torch.Tensor, table: torch.Tensor | None = None,
               times: torch.Tensor | None = None) -> torch.Tensor:
        """Scores (B, N + 1) of every item for each history; column 0 (padding) is -inf."""
        table = self.table() if table is None else table
        s = self.user_vectors(seqs, table, times) @ table.T
        s[:, 0] = -torch.inf
        return s
