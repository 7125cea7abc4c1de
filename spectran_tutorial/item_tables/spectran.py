"""SpecTran: a spectral-aware attention over the full SVD spectrum of the text matrix.

With the text matrix's spectral coordinates ``C = sqrt(N) U`` (N x r, one column per singular
direction), SpecTran's item embeddings are ``E_s = C W^T`` with the d x r spectral weights

    W = phi(Q K^T / sqrt(h)) + A,

``Q`` (d x h) one learnable query per output dimension, ``K`` (r x h) one learnable key per
spectral component, ``phi`` Softshrink with a learnable threshold (or softmax), and ``A`` the
spectral-position encoding: a d x r matrix, diagonal over the first d components, whose entries
``g(s_i / s_1)`` are a learnable polynomial of the normalised singular values. Because ``C`` has
orthogonal columns of equal norm, the singular values of ``E_s`` are ``sqrt(N)`` times those of
``W``: a well-conditioned ``A`` keeps the table from collapsing. With the attention switched off,
``g(x) = x`` gives PCA truncation and ``g = 1`` whitened PCA.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..config import MethodConfig
from ..errors import ConfigError
from ..spectral import spectral_basis
from .base import Fusion, ItemTable, text_scale


def softshrink(x: torch.Tensor, threshold: torch.Tensor) -> torch.Tensor:
    """Softshrink with a tensor threshold, so that the threshold receives gradients."""
    return torch.sign(x) * torch.relu(x.abs() - threshold)


class SpecTranTable(ItemTable):
    uses_text = True

    def __init__(self, num_items: int, dim: int, text: torch.Tensor, cfg: MethodConfig):
        super().__init__(num_items, dim)
        if cfg.phi not in ("softshrink", "softmax"):
            raise ConfigError(f"phi must be 'softshrink' or 'softmax', not {cfg.phi!r}")
        if cfg.pe_init not in ("pca", "whiten"):
            raise ConfigError(f"pe_init must be 'pca' or 'whiten', not {cfg.pe_init!r}")
        if not (cfg.attention or cfg.position_encoding):
            raise ConfigError("SpecTran needs the attention, the position encoding, or both")
        basis = spectral_basis(text, center=cfg.center)
        r = basis.rank if cfg.full_spectrum else min(dim, basis.rank)
        self.register_buffer("coords", basis.coords[:, :r].clone(), persistent=False)
        self.register_buffer("sv", basis.normalised[:r].clone(), persistent=False)
        self.phi = cfg.phi
        self.scale = text_scale(cfg.text_scale, dim)
        self.pe_dims = min(dim, r)
        if cfg.attention:
            std = math.sqrt(cfg.score_init_std)   # entries of Q K^T / sqrt(h) then have this std
            self.queries = nn.Parameter(torch.randn(dim, cfg.heads_dim) * std)
            self.keys = nn.Parameter(torch.randn(r, cfg.heads_dim) * std)
            raw = math.log(math.expm1(cfg.threshold_init))   # inverse softplus
            shape = (dim, 1) if cfg.per_query_threshold else ()
            self.raw_threshold = nn.Parameter(torch.full(shape, raw)) if cfg.phi == "softshrink" else None
        else:
            self.queries = self.keys = self.raw_threshold = None
        if cfg.position_encoding:
            coeffs = torch.zeros(cfg.poly_order + 1)
            coeffs[1 if cfg.pe_init == "pca" else 0] = 1.0
            self.poly = nn.Parameter(coeffs, requires_grad=cfg.pe_trainable)
        else:
            self.poly = None
        self.pe_normalize = cfg.pe_normalize
        self.fusion = Fusion(num_items, dim, cfg.fusion)

    @property
    def threshold(self) -> torch.Tensor:
        return F.softplus(self.raw_threshold)

    def attention(self) -> torch.Tensor | None:
        """phi(Q K^T / sqrt(h)), d x r, or None in the A-only ablation."""
        if self.queries is None:
            return None
        scores = self.queries @ self.keys.T / math.sqrt(self.queries.shape[1])
        if self.phi == "softmax":
            return torch.softmax(scores, dim=-1)
        return softshrink(scores, self.threshold)

    def position_encoding(self) -> torch.Tensor | None:
        """The diagonal entries g(s_i / s_1) for the first d components (divided by their RMS with
        ``pe_normalize``), or None."""
        if self.poly is None:
            return None
        x = self.sv[: self.pe_dims]
        powers = torch.stack([x ** k for k in range(len(self.poly))], dim=1)
        g = powers @ self.poly
        return g / g.pow(2).mean().sqrt().clamp(min=1e-8) if self.pe_normalize else g

    def spectral_weights(self) -> torch.Tensor:
        """W = phi(Q K^T / sqrt(h)) + A, d x r."""
        w = self.coords.new_zeros(self.dim, self.coords.shape[1])
        att = self.attention()
        if att is not None:
            w = w + att
        diag = self.position_encoding()
        if diag is not None:
            idx = torch.arange(self.pe_dims, device=w.device)
            w = w.index_put((idx, idx), diag.to(w.dtype), accumulate=True)   # bf16 under autocast
        return w

    def adapter_output(self) -> torch.Tensor:
        """E_s = C W^T, the text part before the scale and the fusion, (N, d)."""
        return self.coords @ self.spectral_weights().T

    def body(self) -> torch.Tensor:
        return self.fusion(self.scale * self.adapter_output())

    @torch.no_grad()
    def diagnostics(self) -> dict:
        w = self.spectral_weights().abs()
        tail = w.shape[1] > self.dim
        # share of W past the top d: of sum |w| (as stored since the first runs) and of sum w^2 (energy)
        out = {"tail_weight_share": float(w[:, self.dim:].sum() / w.sum()) if tail else 0.0,
               "tail_energy_share": float((w[:, self.dim:] ** 2).sum() / (w ** 2).sum()) if tail else 0.0}
        att = self.attention()
        if att is not None:
            out["attention_nonzero"] = float((att != 0).float().mean())
            if self.phi == "softshrink":
                out["threshold"] = float(self.threshold.mean())
        if self.poly is not None:
            out["poly"] = [float(c) for c in self.poly]
        return out
