"""Adapter-based item tables: a trainable network maps the frozen text matrix to d dimensions."""
from __future__ import annotations

import torch
from torch import nn

from ..config import MethodConfig
from .base import ItemTable


class MLPTable(ItemTable):
    """MoRec-style adapter: frozen text -> [Linear + GELU] x (depth - 1) -> Linear, replacing the ID
    table. The prototype's one-layer form is ``depth=1`` (Linear followed by GELU)."""

    uses_text = True

    def __init__(self, num_items: int, dim: int, text: torch.Tensor, cfg: MethodConfig, depth: int = 2):
        super().__init__(num_items, dim)
        self.register_buffer("text", text.float().clone(), persistent=False)
        width = text.shape[1]
        layers: list[nn.Module] = []
        for _ in range(depth - 1):
            layers += [nn.Linear(width, dim), nn.GELU()]
            width = dim
        layers.append(nn.Linear(width, dim))
        if depth == 1:
            layers.append(nn.GELU())
        self.net = nn.Sequential(*layers)

    def body(self) -> torch.Tensor:
        return self.net(self.text)
