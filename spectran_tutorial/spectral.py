"""The spectral view of a text matrix: its (centred) SVD, computed once per matrix.

For a text matrix ``E`` (N x D), centred to ``X = E - mean``, the thin SVD ``X = U S V^T`` keeps all
``r = min(N, D)`` components. ``SpectralBasis.coords`` is ``sqrt(N) U``: each column has unit
variance over the items, so ``coords[:, :d]`` are the whitened top-d principal coordinates and
``coords[:, :d] * S[:d] / S[0]`` the plain principal coordinates (``X V_d``) in units of the
top component's standard deviation.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import torch

_CACHE: dict[str, "SpectralBasis"] = {}


@dataclass(frozen=True)
class SpectralBasis:
    coords: torch.Tensor    # sqrt(N) U, (N, r), float32
    singular: torch.Tensor  # S, (r,), descending, float32
    mean: torch.Tensor      # (D,) the mean that was removed (zeros when not centred)

    @property
    def rank(self) -> int:
        return self.coords.shape[1]

    @property
    def normalised(self) -> torch.Tensor:
        """Singular values divided by the largest, in (0, 1]."""
        return self.singular / self.singular[0]

    def principal_coords(self, d: int) -> torch.Tensor:
        """Top-d principal coordinates in units of the top component's std."""
        return self.coords[:, :d] * self.normalised[:d]

    def whitened_coords(self, d: int) -> torch.Tensor:
        """Top-d principal coordinates with unit variance each (identity covariance)."""
        return self.coords[:, :d]


def spectral_basis(text: torch.Tensor, center: bool = True) -> SpectralBasis:
    """The SVD of ``text`` (N x D), computed in float64 once per distinct matrix."""
    arr = np.ascontiguousarray(text.detach().cpu().numpy(), dtype=np.float32)
    key = hashlib.sha256(arr.tobytes() + str(arr.shape).encode() + bytes([center])).hexdigest()
    if key not in _CACHE:
        x = arr.astype(np.float64)
        mean = x.mean(axis=0) if center else np.zeros(x.shape[1])
        u, s, _ = np.linalg.svd(x - mean, full_matrices=False)
        keep = s > s[0] * 1e-10           # drop numerically null directions (e.g. duplicate rows)
        coords = u[:, keep] * np.sqrt(len(x))
        _CACHE[key] = SpectralBasis(torch.from_numpy(coords).float(), torch.from_numpy(s[keep]).float(),
                                    torch.from_numpy(mean).float())
    return _CACHE[key]
