"""Tables from experiment results: mean and spread over seeds per (dataset, backbone, method)."""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from .config import Config
from .experiment import read_results


def variant(row: dict) -> str:
    """The non-default settings of a row's run, besides dataset, backbone, method and seed."""
    return Config.from_dict(row["config"]).variant() if "config" in row else ""


def latest_rows(rows: list[dict]) -> list[dict]:
    """One row per (dataset, backbone, method, variant, seed): the last one written."""
    keep = {}
    for r in rows:
        keep[(r["dataset"], r["backbone"], r["method"], variant(r), r["seed"])] = r
    return list(keep.values())


def summarize(rows: list[dict], metrics=("test.ndcg@10", "test.hr@10")) -> list[dict]:
    """Mean and sample std over seeds of each metric (``split.name`` or a top-level or
    ``diagnostics`` key) per (dataset, backbone, method, variant), in first-seen order."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in latest_rows(rows):
        groups[(r["dataset"], r["backbone"], r["method"], variant(r))].append(r)
    out = []
    for (dataset, backbone, method, var), rs in groups.items():
        cell = {"dataset": dataset, "backbone": backbone, "method": method, "variant": var, "seeds": len(rs)}
        for m in metrics:
            values = np.array([lookup(r, m) for r in rs], dtype=float)
            cell[m] = (float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0)
        out.append(cell)
    return out


def lookup(row: dict, name: str):
    if "." in name:
        split, key = name.split(".", 1)
        return row[split][key]
    return row[name] if name in row else row["diagnostics"][name]


def markdown_table(cells: list[dict], metrics, digits: int = 4) -> str:
    show_variant = any(c["variant"] for c in cells)
    head = ["dataset", "backbone", "method", *(["variant"] if show_variant else []), "seeds", *metrics]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in cells:
        vals = [f"{c[m][0]:.{digits}f} ± {c[m][1]:.{digits}f}" for m in metrics]
        name = [c["dataset"], c["backbone"], c["method"], *([c["variant"]] if show_variant else [])]
        lines.append("| " + " | ".join([*name, str(c["seeds"]), *vals]) + " |")
    return "\n".join(lines)


def report(paths: list[str | Path], metrics=("test.ndcg@10", "test.hr@10", "effective_rank",
                                               "seconds_per_epoch")) -> str:
    rows = [r for p in paths for r in read_results(Path(p))]
    return markdown_table(summarize(rows, metrics), metrics)
