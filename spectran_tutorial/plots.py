"""Figures for the book and for readers' own runs; each returns the matplotlib Figure."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from .diagnostics import effective_rank, singular_spectrum


def spectrum(tables: dict, top: int | None = None, ax=None, drop_padding: bool = False):
    """Normalised singular values (log scale) of several tables, labelled with their effective rank."""
    fig, ax = _axes(ax)
    for name, table in tables.items():
        s = singular_spectrum(table, drop_padding=drop_padding)
        s = s[:top] if top else s
        er = effective_rank(table, drop_padding=drop_padding)
        ax.semilogy(np.arange(1, len(s) + 1), s, label=f"{name} (effective rank {er:.1f})")
    ax.set_xlabel("component")
    ax.set_ylabel("singular value / sum")
    ax.legend(frameon=False)
    return fig


def training_curve(histories: dict, metric: str = "valid_ndcg@10", ax=None):
    """Validation metric per epoch for several runs (``history`` lists from results)."""
    fig, ax = _axes(ax)
    for name, history in histories.items():
        ax.plot([h["epoch"] for h in history], [h[metric] for h in history], label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric.replace("_", " "))
    ax.legend(frameon=False)
    return fig


def spectral_weights(w, dim: int | None = None, ax=None, columns: int | None = None):
    """|W| of SpecTran (outputs x spectral components); a line marks component d."""
    fig, ax = _axes(ax, size=(8, 3))
    w = np.abs(np.asarray(w))
    if columns:
        w = w[:, :columns]
    im = ax.imshow(w, aspect="auto", cmap="magma", interpolation="nearest",
                   norm=plt.matplotlib.colors.PowerNorm(0.5))
    if dim is not None and dim < w.shape[1]:
        ax.axvline(dim - 0.5, color="cyan", lw=1, ls="--")
    ax.set_xlabel("spectral component (by singular value)")
    ax.set_ylabel("output dimension")
    fig.colorbar(im, ax=ax, label="|W|")
    return fig


def mass_by_component(w, dim: int, ax=None):
    """Share of the total |W| on each spectral component, with the top-d boundary marked."""
    fig, ax = _axes(ax)
    mass = np.abs(np.asarray(w)).sum(0)
    ax.bar(np.arange(1, len(mass) + 1), mass / mass.sum(), width=1.0)
    ax.axvline(dim + 0.5, color="k", ls="--", lw=1)
    ax.set_xlabel("spectral component")
    ax.set_ylabel("share of |W|")
    return fig


def metric_bars(cells: list[dict], metric: str = "test.ndcg@10", ax=None):
    """Mean ± std of a metric per method, from ``report.summarize``."""
    fig, ax = _axes(ax, size=(7, 3.2))
    names = [c["method"] for c in cells]
    means = [c[metric][0] for c in cells]
    stds = [c[metric][1] for c in cells]
    ax.bar(names, means, yerr=stds, capsize=3, color="tab:blue")
    ax.set_ylabel(metric)
    ax.tick_params(axis="x", rotation=45)
    return fig


def gains(comparison: list[dict], metric: str = "test.ndcg@10", ax=None):
    """One bar per (dataset, backbone): the relative gain over the best baseline, from
    ``report.comparison``; each bar is labelled with that baseline and the seeds behind it."""
    cells = [c for c in comparison if c["metric"] == metric]
    fig, ax = _axes(ax, size=(7, 0.45 * len(cells) + 1.2))
    y = np.arange(len(cells))[::-1]
    values = [100 * c["improvement"] for c in cells]
    ax.barh(y, values, color=["tab:green" if v > 0 else "tab:red" for v in values])
    ax.set_yticks(y, [f"{c['dataset']} ({c['backbone']})" for c in cells])
    for yi, v, c in zip(y, values, cells):
        ax.annotate(f" {c['best_baseline']}, {c['paired_seeds']} seed{'s' * (c['paired_seeds'] != 1)} ",
                    (0, yi), ha="left" if v < 0 else "right", va="center", fontsize=8)
    ax.axvline(0, color="k", lw=1)
    low, high = min(values + [0]), max(values + [0])
    span = (high - low) or 1.0
    ax.set_xlim(low - 0.35 * span * (high > 0), high + 0.35 * span * (low < 0))   # room for the labels
    ax.set_xlabel(f"{cells[0]['method'] if cells else 'method'} vs best baseline, {metric} (%)")
    return fig


def _axes(ax, size=(6, 3.5)):
    if ax is None:
        fig, ax = plt.subplots(figsize=size, layout="constrained")
        return fig, ax
    return ax.figure, ax
