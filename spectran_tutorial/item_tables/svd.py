"""SVD-based item tables: fixed functions of the text matrix's principal components."""
from __future__ import annotations

import torch

from ..config import MethodConfig
from ..spectral import spectral_basis
from .base import ItemTable, text_scale


class PCATable(ItemTable):
    """Frozen, unwhitened top-d principal coordinates (in units of the top component's std)
    times the text scale: the plainest SVD method, with nothing trainable."""

    uses_text = True

    def __init__(self, num_items: int, dim: int, text: torch.Tensor, cfg: MethodConfig):
        super().__init__(num_items, dim)
        basis = spectral_basis(text, center=cfg.center)
        if basis.rank < dim:
            raise ValueError(f"the text matrix has rank {basis.rank}, below the embedding size {dim}")
        self.register_buffer("coords", basis.principal_coords(dim) * text_scale(cfg.text_scale, dim), persistent=False)

    def body(self) -> torch.Tensor:
        return self.coords
