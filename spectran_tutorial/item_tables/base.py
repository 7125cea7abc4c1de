"""The item-table interface and the ID-only table.

An item table turns what is known about the items (an ID table to learn, and optionally the
N x D text matrix) into the (N + 1) x d embedding table that a backbone reads; row 0 is padding
and always zero. Backbones see only the table, never which method produced it.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..errors import ConfigError


class ItemTable(nn.Module):
    """Base class: subclasses implement :meth:`body`, the (N, d) embeddings of the real items."""

    recipe_version = 1     # bump in a subclass when a change alters what it computes (re-keys its runs)

    uses_text = False
    views = 1                  # a table of width views x d is split into views that share the backbone
    uses_popularity = False    # True: the constructor also takes ``item_counts`` (training counts per item)

    def __init__(self, num_items: int, dim: int):
        super().__init__()
        self.num_items = num_items
        self.dim = dim

    def body(self) -> torch.Tensor:
        raise NotImplementedError

    def forward(self) -> torch.Tensor:
        """The full table, (num_items + 1, dim), with a zero padding row 0."""
        body = self.body()
        return torch.cat([body.new_zeros(1, body.shape[1]), body], dim=0)

    def aux_loss(self) -> torch.Tensor | None:
        """An optional extra loss term (e.g. an alignment loss); None when the method has none."""
        return None

    def diagnostics(self) -> dict:
        """Method-specific numbers worth recording with a result (e.g. attention sparsity)."""
        return {}


def id_embedding(num_items: int, dim: int, std: float = 0.02) -> nn.Parameter:
    """A trainable (N, d) ID table, normally initialised."""
    return nn.Parameter(torch.randn(num_items, dim) * std)


class IdTable(ItemTable):
    """ID-only: a trainable embedding per item, no text."""

    def __init__(self, num_items: int, dim: int):
        super().__init__(num_items, dim)
        self.ids = id_embedding(num_items, dim)

    def body(self) -> torch.Tensor:
        return self.ids


def text_scale(value: float | None, dim: int) -> float:
    """The multiplier of a text part: the setting, or 1/sqrt(d) so unit-variance rows have norm ~1."""
    return 1.0 / math.sqrt(dim) if value is None else float(value)


class Fusion(nn.Module):
    """Combines a text part with a trainable ID table: ``sum``, ``concat`` + a linear projection,
    or ``none`` (no ID table: the text part is the whole item table)."""

    def __init__(self, num_items: int, dim: int, mode: str = "sum"):
        super().__init__()
        if mode not in ("sum", "concat", "none"):
            raise ConfigError(f"fusion must be 'sum', 'concat' or 'none', not {mode!r}")
        self.mode = mode
        self.ids = id_embedding(num_items, dim) if mode != "none" else None
        self.proj = nn.Linear(2 * dim, dim) if mode == "concat" else None

    def forward(self, text_part: torch.Tensor) -> torch.Tensor:
        if self.mode == "none":
            return text_part
        if self.mode == "sum":
            return text_part + self.ids
        return self.proj(torch.cat([text_part, self.ids], dim=1))
