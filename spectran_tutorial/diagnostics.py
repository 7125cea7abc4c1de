"""Spectral diagnostics of embedding tables: is a table collapsed onto a few directions?"""
from __future__ import annotations

import numpy as np
import torch


def _array(table) -> np.ndarray:
    if isinstance(table, torch.Tensor):
        table = table.detach().cpu().numpy()
    return np.asarray(table, dtype=np.float64)


def singular_spectrum(table, center: bool = True, drop_padding: bool = False) -> np.ndarray:
    """Singular values of a table (rows = items), normalised to sum to 1. ``drop_padding`` removes
    row 0 of an (N + 1)-row table."""
    x = _array(table)
    if drop_padding:
        x = x[1:]
    if center:
        x = x - x.mean(axis=0)
    s = np.linalg.svd(x, compute_uv=False)
    total = s.sum()
    return s / total if total > 0 else s


def effective_rank(table, **kwargs) -> float:
    """exp(entropy) of the normalised singular values: d for a perfectly isotropic table, 1 when a
    single direction carries everything."""
    p = singular_spectrum(table, **kwargs)
    p = p[p > 0]
    return float(np.exp(-(p * np.log(p)).sum()))


def energy_share(table, k: int, **kwargs) -> float:
    """Share of the squared singular values (variance) in the top-k components."""
    s2 = singular_spectrum(table, **kwargs) ** 2
    return float(s2[:k].sum() / s2.sum())


def anisotropy(table, sample: int = 2000, seed: int = 0) -> float:
    """Mean cosine similarity between distinct rows (0 for isotropic embeddings, near 1 when all
    rows point the same way); estimated on ``sample`` random rows."""
    x = _array(table)
    if len(x) > sample:
        x = x[np.random.default_rng(seed).choice(len(x), sample, replace=False)]
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    sims = x @ x.T
    n = len(x)
    return float((sims.sum() - np.trace(sims)) / (n * (n - 1)))


def table_report(table, ks=(1, 8)) -> dict:
    """The collapse diagnostics of an (N + 1)-row item table (padding row excluded)."""
    out = {"effective_rank": effective_rank(table, drop_padding=True)}
    for k in ks:
        out[f"energy_top{k}"] = energy_share(table, k, drop_padding=True)
    return out
