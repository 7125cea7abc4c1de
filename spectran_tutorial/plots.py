"""Figures for the book and for readers' own runs; each returns the matplotlib Figure."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from .diagnostics import effective_rank, singular_spectrum


def spectrum(tables: dict, top: int | None = None, ax=None, drop_padding: bool = False,
             mark: int | None = None, floor: float = 1e-6):
    """Normalised singular values (log scale) of several tables, labelled with their effective rank.
    Values below ``floor`` (directions with no variance, where a table is not of full rank) are not drawn, so
    they do not stretch the axis; ``mark`` draws a line at that component (the table size d)."""
    fig, ax = _axes(ax)
    for name, table in tables.items():
        s = singular_spectrum(table, drop_padding=drop_padding)
        s = s[:top] if top else s
        er = effective_rank(table, drop_padding=drop_padding)
        keep = s >= floor
        ax.semilogy(np.arange(1, len(s) + 1)[keep], s[keep], label=f"{name} (effective rank {er:.1f})")
    if mark is not None:
        ax.axvline(mark, color="0.4", ls="--", lw=1)
        ax.annotate(f"d = {mark}", (mark, 1), xycoords=("data", "axes fraction"), xytext=(4, -12),
                    textcoords="offset points", fontsize=8, color="0.3")
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


def mass_by_component(w, dim: int, ax=None):
    """Share of W's energy (sum of w^2) on each spectral component, with the top-d boundary marked."""
    fig, ax = _axes(ax)
    mass = (np.asarray(w, dtype=float) ** 2).sum(0)
    ax.bar(np.arange(1, len(mass) + 1), mass / mass.sum(), width=1.0)
    ax.axvline(dim + 0.5, color="k", ls="--", lw=1)
    ax.text(dim + 1, ax.get_ylim()[1] * 0.9, f" d = {dim}", va="top")
    ax.set_xlabel("spectral component")
    ax.set_ylabel("share of W's energy (sum of w²)")
    return fig


def spectral_weights(w, dim: int | None = None, ax=None, columns: int | None = None, floor: float = 1e-4):
    """|W| of SpecTran (output dimension x spectral component, the first ``columns`` only when
    given) on a log colour scale, the top-d boundary marked; entries below ``floor`` (Softshrink's
    zeros among them) are drawn as the floor."""
    from matplotlib.colors import LogNorm
    fig, ax = _axes(ax, size=(9, 3.2))
    a = np.abs(np.asarray(w, dtype=float))[:, :columns].clip(min=floor)
    image = ax.imshow(a, aspect="auto", interpolation="nearest", cmap="magma",
                      norm=LogNorm(vmin=floor, vmax=a.max()), extent=(0.5, a.shape[1] + 0.5, a.shape[0] + 0.5, 0.5))
    if dim is not None and dim < a.shape[1]:
        ax.axvline(dim + 0.5, color="w", ls="--", lw=1)
        ax.text(dim + 1 + a.shape[1] / 100, 1, f"d = {dim}", color="w", va="top", fontsize=9,
                bbox=dict(facecolor="black", alpha=0.7, lw=0, pad=1.5))
    ax.set_xlabel("spectral component (singular direction, largest first)")
    ax.set_ylabel("output dimension")
    fig.colorbar(image, ax=ax, label="|w|", pad=0.01)
    return fig


def metric_bars(cells: list[dict], metric: str = "test.ndcg@10", ax=None, highlight: str = "spectran"):
    """Mean ± std of a metric per method, from ``report.summarize``, as horizontal bars (names stay
    legible at any width); ``highlight`` is drawn in its own colour."""
    fig, ax = _axes(ax, size=(6, 0.32 * len(cells) + 1.0))
    y = np.arange(len(cells))[::-1]
    ax.barh(y, [c[metric][0] for c in cells], xerr=[c[metric][1] for c in cells], capsize=2,
            color=["tab:orange" if c["method"] == highlight else "tab:blue" for c in cells])
    ax.set_yticks(y, [_cell_label(c) for c in cells])
    ax.set_xlabel(metric)
    return fig


def _cell_label(cell: dict) -> str:
    """A summarised cell's method, with its variant and seed count when it has them."""
    extra = ", ".join(filter(None, [cell.get("variant"), f"{cell['seeds']} seeds" if "seeds" in cell else None]))
    return cell["method"] + (f" ({extra})" if extra else "")


def rank_vs_metric(cells: list[dict], metric: str = "test_unmasked.ndcg@10", ax=None,
                   reference: str | None = "id", rank: str = "effective_rank"):
    """Each method as a point: the effective rank of its trained table against ``metric``, mean ±
    std over seeds (``report.summarize`` cells holding both). Collapse shows as a point far left;
    the ``reference`` method (the ID table) is drawn as a dashed line across."""
    fig, ax = _axes(ax, size=(7, 4.2))
    for c in cells:
        if c["method"] == reference and not c.get("variant"):
            ax.axhline(c[metric][0], color="grey", ls="--", lw=1)
            ax.annotate(f"{reference}: {c[metric][0]:.4f}", (0.01, c[metric][0]), xycoords=("axes fraction", "data"),
                        va="bottom", fontsize=8, color="grey")
            continue
        ax.errorbar(c[rank][0], c[metric][0], xerr=c[rank][1], yerr=c[metric][1], marker="o", capsize=2,
                    color="tab:orange" if c["method"].startswith("spectran") else "tab:blue")
        ax.annotate(" " + c["method"], (c[rank][0], c[metric][0]), fontsize=8, va="center")
    ax.set_xlabel(f"{rank.replace('_', ' ')} of the trained item table")
    ax.set_ylabel(metric)
    return fig


def _label(row: dict) -> str:
    """A run's method with its variant, without the embedding size."""
    from .report import variant
    rest = ", ".join(p for p in variant(row).split(", ") if p and not p.startswith("dim="))
    return row["method"] + (f" ({rest})" if rest else "")


def metric_vs_dim(rows: list[dict], metric: str = "test_unmasked.ndcg@10", ax=None, highlight: str = "spectran"):
    """Mean ± std over seeds of ``metric`` against the embedding size d, one line per method
    (and variant); the runs named ``highlight`` are drawn thicker."""
    from collections import defaultdict
    from .report import latest_rows, lookup
    fig, ax = _axes(ax, size=(7, 4))
    by = defaultdict(lambda: defaultdict(list))
    for r in latest_rows(rows):
        by[_label(r)][r["config"]["model"]["dim"]].append(lookup(r, metric))
    for label, per_dim in by.items():
        dims = sorted(per_dim)
        means = [np.mean(per_dim[d]) for d in dims]
        stds = [np.std(per_dim[d], ddof=1) if len(per_dim[d]) > 1 else 0.0 for d in dims]
        ax.errorbar(dims, means, yerr=stds, marker="o", capsize=3, label=label,
                    lw=2.5 if label.startswith(highlight + " ") or label == highlight else 1.2)
    ax.set_xscale("log", base=2)
    dims = sorted({d for per in by.values() for d in per})
    ax.set_xticks(dims, [str(d) for d in dims])
    ax.set_xlabel("embedding size d")
    ax.set_ylabel(metric)
    ax.legend(frameon=False, fontsize=8)
    return fig


def by_popularity(rows: list[dict], protocol: str = "unmasked", metric: str = "ndcg@10", ax=None,
                  highlight: str = "spectran"):
    """Mean over seeds of ``metric`` per popularity bucket of the test target (rarest first), one
    line per method (and variant), from the ``test_by_popularity`` field of the rows."""
    from collections import defaultdict
    from .report import latest_rows
    fig, ax = _axes(ax, size=(7, 4))
    rows = [r for r in latest_rows(rows) if "test_by_popularity" in r]
    by = defaultdict(list)
    for r in rows:
        by[_label(r)].append(r["test_by_popularity"][protocol][metric])
    for label, values in by.items():
        ax.plot(np.mean(values, axis=0), marker="o", label=label,
                lw=2.5 if label == highlight else 1.2)
    if rows:
        bounds = rows[0]["test_by_popularity"]["popularity"]
        ax.set_xticks(range(len(bounds)), [f"{lo}-{hi}" for lo, hi in bounds])
    ax.set_yscale("log")                  # the rarest bucket is an order of magnitude below the rest
    ax.set_xlabel("training interactions of the test item (five buckets of equal size; an item\n"
                  "count at a bucket's edge can fall in both neighbours)")
    ax.set_ylabel(f"test {metric} ({protocol}, log scale)")
    ax.legend(frameon=False, fontsize=8)
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
    ax.set_xlim(low - 0.06 * span - 0.35 * span * (high > 0),      # a margin, and room for the labels
                high + 0.06 * span + 0.35 * span * (low < 0))
    ax.set_xlabel(f"{cells[0]['method'] if cells else 'method'} vs best baseline, {metric} (%)")
    return fig


def _axes(ax, size=(6, 3.5)):
    if ax is None:
        fig, ax = plt.subplots(figsize=size, layout="constrained")
        return fig, ax
    return ax.figure, ax


def probe_by_band(ndcg: dict[str, float], chance: float | None = None, ax=None, metric: str = "NDCG@10"):
    """One bar per band of spectral components: the next-item probe's score with that band alone,
    and a line at a random ranking's score."""
    fig, ax = _axes(ax, size=(7, 3.2))
    labels, values = list(ndcg), list(ndcg.values())
    ax.bar(range(len(values)), values, color="#4c72b0")
    ax.set_xticks(range(len(values)), labels, rotation=0, fontsize=8)
    if chance is not None:
        ax.axhline(chance, color="0.4", ls="--", lw=1, label="random ranking")
        ax.legend(frameon=False, fontsize=8, loc="upper right")
    ax.set_xlabel("spectral components (band)")
    ax.set_ylabel(f"probe {metric} (validation)")
    return fig


def learned_g(rows: list[dict], ax=None):
    """SpecTran's learned position-encoding polynomial g(x), x = s_i / s_1, from stored runs
    (``diagnostics.poly``): the mean over seeds of each embedding size, against g(x) = x."""
    fig, ax = _axes(ax)
    x = np.linspace(0, 1, 101)
    by_dim: dict[int, list] = {}
    for r in rows:
        by_dim.setdefault(r["config"]["model"]["dim"], []).append(r["diagnostics"]["poly"])
    for dim, polys in sorted(by_dim.items()):
        coeffs = np.mean(polys, axis=0)
        ax.plot(x, sum(c * x ** k for k, c in enumerate(coeffs)), label=f"d = {dim} ({len(polys)} seeds)")
    ax.plot(x, x, color="k", ls="--", lw=1, label="at initialisation: g(x) = x")
    ax.set_xlabel("x = s_i / s_1 (normalised singular value)")
    ax.set_ylabel("g(x) after training")
    ax.legend(frameon=False, fontsize=8)
    return fig
