"""SVD-based item tables: fixed functions of the text matrix's principal components."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..config import MethodConfig
from ..errors import ConfigError, TextError
from ..spectral import spectral_basis
from .adapters import mlp
from .base import ItemTable, id_embedding, text_scale


def _basis(text: torch.Tensor, cfg: MethodConfig, dim: int):
    basis = spectral_basis(text, center=cfg.center)
    if basis.rank < dim:
        raise TextError(f"the text matrix has rank {basis.rank}, below the embedding size {dim}")
    return basis


class PCATable(ItemTable):
    """Frozen, unwhitened top-d principal coordinates (in units of the top component's std)
    times the text scale: the plainest SVD method, with nothing trainable."""

    uses_text = True

    def __init__(self, num_items: int, dim: int, text: torch.Tensor, cfg: MethodConfig):
        super().__init__(num_items, dim)
        coords = _basis(text, cfg, dim).principal_coords(dim) * text_scale(cfg.text_scale, dim)
        self.register_buffer("coords", coords, persistent=False)

    def body(self) -> torch.Tensor:
        return self.coords


class LLMInitTable(ItemTable):
    """LLMInit as re-implemented by AlphaFuse: a trainable ID table initialised with the whitened
    top-d principal coordinates (times the text scale)."""

    uses_text = True

    def __init__(self, num_items: int, dim: int, text: torch.Tensor, cfg: MethodConfig):
        super().__init__(num_items, dim)
        init = _basis(text, cfg, dim).whitened_coords(dim) * text_scale(cfg.text_scale, dim)
        self.ids = nn.Parameter(init.clone())

    def body(self) -> torch.Tensor:
        return self.ids


def select_columns(text: torch.Tensor, dim: int, how: str, item_counts: np.ndarray | None,
                   seed: int = 0) -> torch.Tensor:
    """LLMInit's column choice: ``random``, every k-th (``stride``), or the ``variance``-richest
    columns over the 20 % most popular items (all items when counts are not given)."""
    width = text.shape[1]
    if how == "random":
        return torch.from_numpy(np.sort(np.random.default_rng(seed).choice(width, dim, replace=False)))
    if how == "stride":
        return torch.arange(0, width, width / dim).long()[:dim]
    if how == "variance":
        rows = text
        if item_counts is not None:
            top = np.argsort(-item_counts, kind="stable")[: max(1, len(item_counts) // 5)]
            rows = text[torch.from_numpy(top)]
        return torch.sort(torch.argsort(rows.var(dim=0), descending=True)[:dim]).values
    raise ConfigError(f"select must be 'random', 'stride' or 'variance', not {how!r}")


class LLMInitSelectTable(ItemTable):
    """The original LLMInit: a trainable ID table initialised with d columns of the text matrix,
    centred and divided by their mean std (unit variance on average), times the text scale."""

    uses_text = True
    uses_popularity = True

    def __init__(self, num_items: int, dim: int, text: torch.Tensor, cfg: MethodConfig,
                 item_counts: np.ndarray | None = None):
        super().__init__(num_items, dim)
        if dim > text.shape[1]:
            raise TextError(f"llminit-select initialises the table with model.dim={dim} columns of the text "
                            f"matrix, which has only {text.shape[1]}; lower model.dim or use llminit")
        cols = text[:, select_columns(text, dim, cfg.select, item_counts)].float()
        cols = cols - cols.mean(0)
        init = cols / cols.std(0).mean() * text_scale(cfg.text_scale, dim)
        self.ids = nn.Parameter(init.clone())

    def body(self) -> torch.Tensor:
        return self.ids


class AlphaFuseTable(ItemTable):
    """AlphaFuse: frozen whitened top-d coordinates whose last ``null_dim`` coordinates carry a
    trainable ID table, added to them (``add``) or replacing them (``cover``)."""

    uses_text = True

    def __init__(self, num_items: int, dim: int, text: torch.Tensor, cfg: MethodConfig):
        super().__init__(num_items, dim)
        if cfg.alphafuse_mode not in ("add", "cover"):
            raise ConfigError(f"alphafuse_mode must be 'add' or 'cover', not {cfg.alphafuse_mode!r}")
        self.null_dim = cfg.null_dim or dim // 2
        if not 0 < self.null_dim <= dim:
            raise ConfigError(f"null_dim must be in 1..{dim}, got {self.null_dim}")
        coords = _basis(text, cfg, dim).whitened_coords(dim) * text_scale(cfg.text_scale, dim)
        if cfg.alphafuse_mode == "cover":
            coords = coords.clone()
            coords[:, dim - self.null_dim:] = 0
        self.register_buffer("coords", coords, persistent=False)
        self.ids = id_embedding(num_items, self.null_dim)

    def body(self) -> torch.Tensor:
        pad = self.ids.new_zeros(self.num_items, self.dim - self.null_dim)
        return self.coords + torch.cat([pad, self.ids], dim=1)


class WhitenRecTable(ItemTable):
    """WhitenRec: the text matrix fully whitened (all components; PCA or ZCA) -> Linear + GELU."""

    uses_text = True

    def __init__(self, num_items: int, dim: int, text: torch.Tensor, cfg: MethodConfig):
        super().__init__(num_items, dim)
        if cfg.whiten not in ("pca", "zca"):
            raise ConfigError(f"whiten must be 'pca' or 'zca', not {cfg.whiten!r}")
        basis = spectral_basis(text, center=cfg.center)
        white = basis.coords
        if cfg.whiten == "zca":          # rotate back to the original axes: sqrt(N) U V^T
            x = text.double() - basis.mean.double()
            vt = torch.diag(1 / basis.singular.double()) @ (basis.coords.double().T / len(x) ** 0.5) @ x
            white = (basis.coords.double() @ vt).float()
        self.register_buffer("white", white, persistent=False)
        self.net = mlp(white.shape[1], dim, 1)

    def body(self) -> torch.Tensor:
        return self.net(self.white)
