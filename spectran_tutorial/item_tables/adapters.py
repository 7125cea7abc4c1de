"""Adapter-based item tables: a trainable network maps the frozen text matrix to d dimensions."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import MethodConfig
from ..spectral import spectral_basis
from .base import ItemTable, id_embedding, text_scale


def mlp(d_in: int, d_out: int, depth: int) -> nn.Sequential:
    """[Linear + GELU] x (depth - 1) -> Linear; ``depth=1`` is Linear followed by GELU."""
    layers: list[nn.Module] = []
    width = d_in
    for _ in range(depth - 1):
        layers += [nn.Linear(width, d_out), nn.GELU()]
        width = d_out
    layers.append(nn.Linear(width, d_out))
    if depth == 1:
        layers.append(nn.GELU())
    return nn.Sequential(*layers)


class TextTable(ItemTable):
    """Base of the tables that read the frozen text matrix (kept out of checkpoints)."""

    uses_text = True

    def __init__(self, num_items: int, dim: int, text: torch.Tensor):
        super().__init__(num_items, dim)
        self.register_buffer("text", text.float().clone(), persistent=False)


class MLPTable(TextTable):
    """MoRec: frozen text -> MLP, replacing the ID table."""

    def __init__(self, num_items: int, dim: int, text: torch.Tensor, cfg: MethodConfig):
        super().__init__(num_items, dim, text)
        self.net = mlp(text.shape[1], dim, cfg.mlp_depth)

    def body(self) -> torch.Tensor:
        return self.net(self.text)


class UniSRecTable(TextTable):
    """UniSRec: a softmax-gated mixture of parametric-whitening experts ``W_k (x - b_k)``, with
    noisy gating in training, added to the ID table (or alone with ``text_only``)."""

    def __init__(self, num_items: int, dim: int, text: torch.Tensor, cfg: MethodConfig):
        super().__init__(num_items, dim, text)
        width = text.shape[1]
        self.bias = nn.Parameter(torch.zeros(cfg.experts, width))
        self.experts = nn.Parameter(torch.randn(cfg.experts, width, dim) * width ** -0.5)
        self.gate = nn.Linear(width, cfg.experts, bias=False)
        self.noise = nn.Linear(width, cfg.experts, bias=False)
        nn.init.zeros_(self.gate.weight)
        nn.init.zeros_(self.noise.weight)
        self.ids = None if cfg.text_only else id_embedding(num_items, dim)

    def body(self) -> torch.Tensor:
        x = self.text
        logits = self.gate(x)
        if self.training:
            logits = logits + torch.randn_like(logits) * F.softplus(self.noise(x))
        weights = torch.softmax(logits, dim=-1)                                  # (N, K)
        per_expert = torch.einsum("nd,kde->nke", x, self.experts) - \
            torch.einsum("kd,kde->ke", self.bias, self.experts)                  # W_k (x - b_k)
        out = (weights[..., None] * per_expert).sum(1)
        return out if self.ids is None else out + self.ids


class LLMESRTable(TextTable):
    """LLM-ESR's two views as one table of width 2d: a text view (frozen text -> Linear(D, D/2)
    -> Linear(D/2, d)) and an ID view initialised from the top-d principal coordinates. The
    recommender runs the shared backbone on each view and concatenates (``views = 2``)."""

    views = 2

    def __init__(self, num_items: int, dim: int, text: torch.Tensor, cfg: MethodConfig):
        super().__init__(num_items, dim, text)
        width = text.shape[1]
        self.adapter = nn.Sequential(nn.Linear(width, width // 2), nn.Linear(width // 2, dim))
        basis = spectral_basis(text, center=cfg.center)
        self.ids = nn.Parameter(basis.principal_coords(dim).clone() * text_scale(cfg.text_scale, dim))

    def body(self) -> torch.Tensor:
        return torch.cat([self.adapter(self.text), self.ids], dim=1)


class RLMRecTable(TextTable):
    """RLMRec (contrastive-free form): a trainable ID table plus ``align_weight`` x the mean cosine
    distance between each ID embedding and an MLP of its text."""

    def __init__(self, num_items: int, dim: int, text: torch.Tensor, cfg: MethodConfig):
        super().__init__(num_items, dim, text)
        self.ids = id_embedding(num_items, dim)
        self.projector = mlp(text.shape[1], dim, 2)
        self.weight = cfg.align_weight

    def body(self) -> torch.Tensor:
        return self.ids

    def aux_loss(self) -> torch.Tensor:
        cos = F.cosine_similarity(self.ids, self.projector(self.text), dim=-1)
        return self.weight * (1 - cos).mean()
