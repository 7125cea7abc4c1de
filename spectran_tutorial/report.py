"""Tables from experiment results: mean and spread over seeds per (dataset, backbone, method).

Metrics are named ``split.metric``: ``test.ndcg@10`` is the history-masked protocol (the only one
that rows written before both protocols were stored carry), ``test_unmasked.ndcg@10`` the
unmasked one (see :mod:`spectran_tutorial.evaluate`). :func:`metric` builds the name. Tables are
:class:`Table` strings: Markdown when printed, real HTML tables in a notebook.
"""
from __future__ import annotations

import html
import re
from collections import defaultdict
from pathlib import Path

import numpy as np

from .config import Config
from .errors import SpectranError
from .experiment import read_results

SPLITS = {"masked": "", "unmasked": "_unmasked"}


def metric(name: str = "ndcg@10", protocol: str = "masked", split: str = "test") -> str:
    """The row field of a metric under a protocol, e.g. ``test_unmasked.ndcg@10``."""
    if protocol not in SPLITS:
        raise SpectranError(f"protocol must be one of {', '.join(SPLITS)}, not {protocol!r}")
    return f"{split}{SPLITS[protocol]}.{name}"


def protocol_of(name: str) -> str:
    return "unmasked" if name.split(".", 1)[0].endswith("_unmasked") else "masked"


class Table(str):
    """A Markdown table that a notebook shows as an HTML table (myst-nb renders Markdown outputs
    without tables, so the HTML form is the one the book shows)."""

    def _repr_markdown_(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        return markdown_to_html(str(self))


def _inline(text: str) -> str:
    text = html.escape(text.strip())
    text = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", text)


PAD = "padding:0.2em 0.7em"   # room between columns whatever the page's style sheet does


def markdown_to_html(text: str) -> str:
    """HTML of Markdown that holds pipe tables and plain paragraphs (what the report writes)."""
    out, table = [], []

    def flush():
        if not table:
            return
        head, body = table[0], [r for r in table[2:]]
        cells = lambda row: [c for c in row.strip().strip("|").split("|")]
        # a wide table scrolls inside its own box instead of being cut at the page's edge, and a
        # cell such as "0.0484 ± 0.0016 (3)" stays on one line (inline styles: Colab shows them too)
        out.append('<div class="results-table" style="overflow-x:auto">\n<table style="font-size:0.85em">\n'
                   "<thead><tr>" + "".join(f'<th style="{PAD}">{_inline(c)}</th>' for c in cells(head))
                   + "</tr></thead>\n<tbody>\n" + "".join(
                       "<tr>" + "".join(f'<td style="white-space:nowrap;{PAD}">{_inline(c)}</td>' for c in cells(r))
                       + "</tr>\n" for r in body)
                   + "</tbody>\n</table>\n</div>")
        table.clear()

    for line in text.splitlines():
        if line.startswith("|"):
            table.append(line)
            continue
        flush()
        if line.strip():
            out.append(f"<p>{_inline(line)}</p>")
    flush()
    return "\n".join(out)


def variant(row: dict) -> str:
    """The non-default settings of a row's run, besides dataset, backbone, method and seed and
    those its method's name implies (``spectran-no-attn`` starts g at 1 with or without a setting)."""
    if "config" not in row:
        return ""
    from .item_tables import METHODS
    cfg = Config.from_dict(row["config"])
    return cfg.variant(implied=METHODS.get(cfg.method.name, (None, {}))[1])


def latest_rows(rows: list[dict]) -> list[dict]:
    """One row per (dataset, backbone, method, variant, seed): the last one written."""
    keep = {}
    for r in rows:
        keep[(r["dataset"], r["backbone"], r["method"], variant(r), r["seed"])] = r
    return list(keep.values())


def has(row: dict, name: str) -> bool:
    try:
        lookup(row, name)
        return True
    except KeyError:
        return False


def summarize(rows: list[dict], metrics=("test.ndcg@10", "test.hr@10")) -> list[dict]:
    """Mean and sample std over seeds of each metric (``split.name`` or a top-level or
    ``diagnostics`` key) per (dataset, backbone, method, variant): datasets and variants in
    first-seen order, backbones and methods in the package's order. Rows that lack one of the
    metrics (an unmasked metric of a row stored before both protocols were kept) are left out."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in latest_rows(rows):
        if not all(has(r, m) for m in metrics):
            continue
        groups[(r["dataset"], r["backbone"], r["method"], variant(r))].append(r)
    from .backbones import BACKBONES
    from .item_tables import METHODS
    rank = [_rank(known, [key[i] for key in groups]) for i, known in enumerate(((), BACKBONES, METHODS, ()))]
    out = []
    for (dataset, backbone, method, var), rs in sorted(
            groups.items(), key=lambda item: tuple(r(x) for r, x in zip(rank, item[0]))):
        cell = {"dataset": dataset, "backbone": backbone, "method": method, "variant": var, "seeds": len(rs)}
        for m in metrics:
            values = np.array([lookup(r, m) for r in rs], dtype=float)
            cell[m] = (float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0)
        out.append(cell)
    return out


def _rank(known, seen: list):
    """A name's place: the ``known`` names first, in their order, then the others as first seen."""
    order = [*known, *(x for x in dict.fromkeys(seen) if x not in known)]
    return {x: i for i, x in enumerate(order)}.__getitem__


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
        vals = [_number(c[m], c["seeds"], digits, count=m in COUNTS) for m in metrics]
        name = [c["dataset"], c["backbone"], c["method"], *([c["variant"]] if show_variant else [])]
        lines.append("| " + " | ".join([*name, str(c["seeds"]), *vals]) + " |")
    return Table("\n".join(lines))


def provenance_table(rows: list[dict]) -> str:
    """Where the rows come from: per device, the runs, the commits they were trained at and the
    dates of the first and the last, most runs first."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        groups[r.get("device") or "?"].append(r)
    lines = ["| device | runs | commits | first | last |", "|---|---|---|---|---|"]
    for device, rs in sorted(groups.items(), key=lambda item: -len(item[1])):
        dates = sorted(str(r.get("date", ""))[:10] for r in rs)
        commits = len({(r.get("git_commit") or "?")[:12] for r in rs})
        lines.append(f"| {device} | {len(rs)} | {commits} | {dates[0]} | {dates[-1]} |")
    return Table("\n".join(lines))


COUNTS = ("parameters", "epochs", "best_epoch")   # shown as integers where every seed has the same


def _number(value: tuple[float, float], seeds: int, digits: int, count: bool = False) -> str:
    """A mean, with ± sd over more than one seed; a count that no seed changes as an integer."""
    if count and value[1] == 0 and float(value[0]).is_integer():
        return f"{int(value[0])}"
    return f"{value[0]:.{digits}f}" + (f" ± {value[1]:.{digits}f}" if seeds > 1 else "")


def stored_results(names: list[str], folder: str | Path = "../results", repository: str | None = None,
                   branch: str = "main") -> list[Path]:
    """Paths of the stored results files ``names``: from ``folder`` (a clone of the repository),
    else downloaded once from ``repository`` (its ``results/`` on ``branch``) into ``./results``, as
    a Colab session needs. A file that neither has is an error naming it."""
    folder, paths = Path(folder), []
    for name in names:
        here = folder / name
        if here.is_file():
            paths.append(here)
            continue
        local = Path("results") / name
        if not local.is_file():
            if repository is None:
                raise SpectranError(f"{here}: stored results not found, and no repository to fetch them from")
            import urllib.request
            url = f"{repository.rstrip('/')}/raw/{branch}/results/{name}"
            local.parent.mkdir(parents=True, exist_ok=True)
            try:
                with urllib.request.urlopen(url, timeout=60) as response:
                    data = response.read()
            except OSError as e:
                raise SpectranError(f"cannot fetch {url}: {e}") from None
            tmp = local.with_suffix(".part")
            tmp.write_bytes(data)
            tmp.replace(local)
        paths.append(local)
    return paths


def load_rows(paths: list[str | Path]) -> list[dict]:
    """The rows of several results files, in order (a missing file has none)."""
    return [r for p in paths for r in read_results(Path(p))]


def best_baseline(cells: list[dict], metric: str) -> dict | None:
    """The baseline cell with the highest mean of ``metric`` among ``cells`` (None without one)."""
    return max((c for c in cells if is_baseline(c["method"])), key=lambda c: c[metric][0], default=None)


def report(paths: list[str | Path], metrics=("ndcg@10", "hr@10"), protocol: str = "masked",
           allow_mixed: bool = False) -> Table:
    """The Markdown report of results files under one protocol: every cell, then SpecTran against
    the best baseline. Refuses rows of one dataset read from different data files, or of one
    method computed by different recipes, unless ``allow_mixed`` (see :func:`version_check`)."""
    rows = load_rows(paths)
    problems, note = version_check(rows)
    if problems and not allow_mixed:
        raise SpectranError("the results mix versions: " + "; ".join(problems) + " (allow with --allow-mixed)")
    names = tuple(metric(m, protocol) for m in metrics)
    parts = [f"Protocol: {protocol} full ranking. {note}", "",
             markdown_table(summarize(rows, (*names, "effective_rank", "seconds_per_epoch")),
                            (*names, "effective_rank", "seconds_per_epoch"))]
    compared = tuple(metric(m, protocol) for m in ("ndcg@10", "hr@10", "ndcg@20", "hr@20"))
    for setting in dict.fromkeys(variant(r) for r in latest_rows(rows)):
        comp = comparison(rows, setting=setting, metrics=compared)
        if not comp:
            continue
        label = f"Runs with `{setting}`: average improvement" if setting else "Average improvement"
        parts += ["", comparison_table(comp), "",
                  f"{label} over the best baseline: {average_improvement(comp):+.2%} (mean over "
                  f"{len(comp)} dataset x backbone x metric cells of mean(SpecTran) / mean(best baseline) - 1; "
                  "baselines exclude SpecTran's own ablations)."]
    return Table("\n".join(parts))


def version_check(rows: list[dict]) -> tuple[list[str], str]:
    """What the latest rows mix: ``problems`` (one dataset from different data files, one method
    or backbone from different recipe versions) and a ``note`` on their code (commits, rows from
    trees with uncommitted changes, rows stored before fingerprints were recorded)."""
    rows = latest_rows(rows)
    problems = []
    for field, label in (("dataset", "data files"),):
        by: dict[tuple, set] = defaultdict(set)
        for r in rows:
            for name, digest in (r.get("data_files") or {}).items():
                by[(r["dataset"], name)].add(digest)
        problems += [f"{d}/{name} has {len(v)} versions" for (d, name), v in by.items() if len(v) > 1]
    for part, key in (("table", "method"), ("backbone", "backbone"), ("trainer", None)):
        by = defaultdict(set)
        for r in rows:
            if "recipe" in r:
                by[r[key] if key else "trainer"].add(r["recipe"][part])
        problems += [f"{name} ({part}) has recipe versions {sorted(v)}" for name, v in by.items() if len(v) > 1]
    commits = {str(r.get("git_commit")).removesuffix("-dirty") for r in rows}
    dirty = sum(str(r.get("git_commit", "")).endswith("-dirty") for r in rows)
    legacy = sum("data_files" not in r for r in rows)
    note = f"{len(rows)} run{'s' if len(rows) != 1 else ''} from {len(commits)} commit{'s' if len(commits) != 1 else ''}"
    if dirty:
        note += f", {dirty} from trees with uncommitted changes"
    if legacy:
        note += f", {legacy} stored before data fingerprints and recipe versions were recorded"
    return problems, note + "."


def overview_table(rows: list[dict], metric: str = "test.ndcg@10", method: str = "spectran",
                   digits: int = 4) -> str:
    """The paper-style table: one row per method, one column per (dataset, backbone), the mean and
    sample sd over seeds (and their number) of ``metric``; the best baseline of each column in
    bold, and a last row with ``method``'s relative gain over it, marked ``*`` where a paired t-test
    over the shared seeds gives p < 0.05 (``**``: p < 0.01). Rows with a variant are left out; a
    cell without runs shows a dash."""
    from .backbones import BACKBONES
    from .item_tables import METHODS
    plain = [r for r in latest_rows(rows) if not variant(r)]
    cells = summarize(plain, (metric,))
    columns = list(dict.fromkeys((c["dataset"], c["backbone"]) for c in cells))
    dataset_rank, backbone_rank = _rank((), [d for d, _ in columns]), _rank(BACKBONES, [b for _, b in columns])
    columns.sort(key=lambda col: (backbone_rank(col[1]), dataset_rank(col[0])))   # a backbone's columns together
    found = {c["method"] for c in cells}
    known = [m for m in METHODS if m in found] + sorted(found - set(METHODS))
    ablations = [m for m in known if not is_baseline(m) and m != method]
    methods = [m for m in known if is_baseline(m)] + ablations + ([method] if method in found else [])
    value = {(c["dataset"], c["backbone"], c["method"]): c for c in cells}
    best = {col: best_baseline([c for c in cells if (c["dataset"], c["backbone"]) == col], metric)
            for col in columns}
    head = ["method", *(f"{d} ({b})" for d, b in columns)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in methods:
        out = [m]
        for col in columns:
            c = value.get((*col, m))
            text = "–" if c is None else f"{_number(c[metric], c['seeds'], digits)} ({c['seeds']})"
            out.append(f"**{text}**" if c is not None and best.get(col) is c else text)
        lines.append("| " + " | ".join(out) + " |")
    p_value = {(c["dataset"], c["backbone"], name): c["p_value"]       # one paired pass per best baseline
               for name in {b["method"] for b in best.values() if b is not None}
               for c in paired(plain, (method, ""), (name, ""), metric)}
    gains = []
    for col in columns:
        ours = value.get((*col, method))
        if ours is None or best[col] is None:
            gains.append("–")
            continue
        mark = significance(p_value.get((*col, best[col]["method"])))
        gains.append(f"{ours[metric][0] / best[col][metric][0] - 1:+.1%}{mark}")
    lines.append("| " + " | ".join([f"gain of {method} (* p < .05, ** p < .01)", *gains]) + " |")
    return Table("\n".join(lines))


def significance(p: float | None) -> str:
    """`` **`` for p < 0.01, `` *`` for p < 0.05, else nothing (also without a test)."""
    return "" if p is None or not p < 0.05 else " **" if p < 0.01 else " *"


def is_baseline(method: str) -> bool:
    """Baselines are the methods SpecTran is compared with: everything but SpecTran and its ablations."""
    return not method.startswith("spectran")


def comparison(rows: list[dict], method: str = "spectran",
               metrics=("test.ndcg@10", "test.hr@10", "test.ndcg@20", "test.hr@20"),
               setting: str = "", settings: dict[str, str] | None = None) -> list[dict]:
    """``method`` against the best baseline of each (dataset, backbone) and metric.

    The best baseline is the one with the highest mean over seeds. The relative improvement is
    ``mean(method) / mean(best) - 1``; the p-value is a two-sided paired t-test over the seeds
    both have (None with fewer than two). Only runs whose variant label is ``setting`` take part
    (default: the default recipe; e.g. ``"loss=infonce"`` compares the runs trained with InfoNCE);
    ``settings`` names another label for some methods (``{"unisrec": "text_only=True"}``)."""
    label = lambda m: (settings or {}).get(m, setting)
    rows = [r for r in latest_rows(rows) if variant(r) == label(r["method"])]
    cells = summarize(rows, metrics)
    out = []
    for dataset, backbone in dict.fromkeys((c["dataset"], c["backbone"]) for c in cells):
        here = [c for c in cells if (c["dataset"], c["backbone"]) == (dataset, backbone)]
        ours = next((c for c in here if c["method"] == method), None)
        if ours is None or best_baseline(here, metrics[0]) is None:
            continue
        for m in metrics:
            best = best_baseline(here, m)
            pair = next(c for c in paired(rows, (method, label(method)), (best["method"], label(best["method"])), m)
                        if (c["dataset"], c["backbone"]) == (dataset, backbone))
            out.append({"dataset": dataset, "backbone": backbone, "metric": m, "method": method,
                        "mean": ours[m][0], "best_baseline": best["method"], "baseline_mean": best[m][0],
                        "improvement": ours[m][0] / best[m][0] - 1, "paired_seeds": pair["seeds"],
                        "p_value": pair["p_value"]})
    return out


def paired_test(a: dict, b: dict) -> tuple[list, float | None]:
    """The seeds two ``{seed: value}`` maps share, and the two-sided paired t-test p-value over
    them (None with fewer than two seeds; 1.0 when the values are identical)."""
    from scipy.stats import ttest_rel
    seeds = sorted(set(a) & set(b))
    if len(seeds) < 2:
        return seeds, None
    x, y = [a[s] for s in seeds], [b[s] for s in seeds]
    return seeds, (float(ttest_rel(x, y).pvalue) if x != y else 1.0)


def paired(rows: list[dict], a: tuple[str, str], b: tuple[str, str], metric: str = "test.ndcg@10") -> list[dict]:
    """Run ``a`` against run ``b``, each a (method, variant) pair, in every (dataset, backbone) where
    both ran: their means over seeds, the relative gain ``mean(a) / mean(b) - 1``, in how many
    shared seeds ``a`` is higher, and the paired t-test over those seeds."""
    by: dict[tuple, dict] = defaultdict(dict)
    for r in latest_rows(rows):
        by[(r["dataset"], r["backbone"], r["method"], variant(r))][r["seed"]] = lookup(r, metric)
    out = []
    for dataset, backbone in dict.fromkeys((k[0], k[1]) for k in by):
        x, y = by.get((dataset, backbone, *a)), by.get((dataset, backbone, *b))
        if not x or not y:
            continue
        seeds, p = paired_test(x, y)
        mean_a, mean_b = float(np.mean(list(x.values()))), float(np.mean(list(y.values())))
        out.append({"dataset": dataset, "backbone": backbone, "a": a, "b": b, "metric": metric,
                    "mean_a": mean_a, "mean_b": mean_b, "gain": mean_a / mean_b - 1,
                    "seeds": len(seeds), "a_higher": sum(x[s] > y[s] for s in seeds), "p_value": p})
    return out


# SpecTran against its A-only ablation with the same position encoding: the default recipe,
# g frozen at 1, g divided by its RMS (the variant names of the research runs), and the default
# and the RMS-normalised recipes trained with InfoNCE
ATTENTION_TWINS = [(("spectran", ""), ("spectran-no-attn", "")),
                   (("spectran", "pe_init=whiten, pe_trainable=False"), ("spectran-no-attn", "pe_trainable=False")),
                   (("spectran", "pe_init=whiten, pe_normalize=True"), ("spectran-no-attn", "pe_normalize=True")),
                   (("spectran", "loss=infonce"), ("spectran-no-attn", "loss=infonce")),
                   (("spectran", "pe_init=whiten, pe_normalize=True, loss=infonce"),
                    ("spectran-no-attn", "pe_normalize=True, loss=infonce"))]


def twins_table(rows: list[dict], metric: str = "test.ndcg@10") -> str:
    """:func:`paired_table` of every pair in ``ATTENTION_TWINS`` that has runs."""
    return paired_table([c for a, b in ATTENTION_TWINS for c in paired(rows, a, b, metric)])


def paired_table(pairs: list[dict], digits: int = 4) -> str:
    """Markdown rows of :func:`paired` results."""
    lines = ["| dataset | backbone | run | mean | against | its mean | gain | higher in | p (paired t) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for c in pairs:
        p = "–" if c["p_value"] is None else f"{c['p_value']:.3f}"
        a, b = (run[0] + (f" ({run[1]})" if run[1] else "") for run in (c["a"], c["b"]))
        lines.append(f"| {c['dataset']} | {c['backbone']} | {a} | {c['mean_a']:.{digits}f} | {b} | {c['mean_b']:.{digits}f} "
                     f"| {c['gain']:+.1%} | {c['a_higher']} of {c['seeds']} seeds | {p} |")
    return Table("\n".join(lines))


def average_improvement(comparisons: list[dict]) -> float:
    """The paper-style summary: the mean, over datasets x backbones x metrics, of the relative
    gain over the best baseline of each (dataset, backbone, metric)."""
    return float(np.mean([c["improvement"] for c in comparisons])) if comparisons else float("nan")


def settings_table(rows: list[dict], cases: list[tuple[str, str, dict | None]], method: str = "spectran",
                   metrics=("test.ndcg@10", "test.hr@10", "test.ndcg@20", "test.hr@20")) -> str:
    """One line per setting: ``method`` against the best baseline of that setting in the paper's
    sense (the relative gain averaged over ``metrics``), and on the first metric its gain, the
    significance mark and the paired t-test's p. ``cases`` are (name, setting, settings) as
    :func:`comparison` takes them; a setting must hold one dataset and backbone."""
    lines = [f"| setting | best baseline ({metrics[0]}) | average gain | gain on {metrics[0]} | p (paired t) |",
             "|---|---|---|---|---|"]
    for name, setting, settings in cases:
        comp = comparison(rows, method, metrics, setting=setting, settings=settings)
        if not comp:
            continue
        first, p = comp[0], comp[0]["p_value"]
        lines.append(f"| {name} | {first['best_baseline']} | {average_improvement(comp):+.1%} "
                     f"| {first['improvement']:+.1%}{significance(p)} | {'–' if p is None else f'{p:.3f}'} |")
    return Table("\n".join(lines))


def comparison_table(comparisons: list[dict]) -> str:
    lines = ["| dataset | backbone | metric | SpecTran | best baseline | its mean | gain | seeds | p (paired t) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for c in comparisons:
        p = "–" if c["p_value"] is None else f"{c['p_value']:.3f}"
        lines.append(f"| {c['dataset']} | {c['backbone']} | {c['metric']} | {c['mean']:.4f} | {c['best_baseline']} "
                     f"| {c['baseline_mean']:.4f} | {c['improvement']:+.1%} | {c['paired_seeds']} | {p} |")
    return Table("\n".join(lines))


def beside_stored(mine: list[dict], stored: list[dict], metrics=("test.ndcg@10", "test_unmasked.ndcg@10"),
                  digits: int = 4) -> Table:
    """Runs made here beside the stored run of the same cell (same key: the same settings, data
    bytes and recipe), with the device of each; a cell that no stored run shares shows "—"."""
    by_key = {r.get("key"): r for r in stored}
    head = ["dataset", "method", "seed", "device here", *(f"{m} here" for m in metrics), "stored on",
            *(f"{m} stored" for m in metrics)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in mine:
        twin = by_key.get(r.get("key"))
        here = [f"{lookup(r, m):.{digits}f}" if has(r, m) else "—" for m in metrics]
        there = [f"{lookup(twin, m):.{digits}f}" if twin and has(twin, m) else "—" for m in metrics]
        lines.append("| " + " | ".join([r["dataset"], r["method"], str(r["seed"]), r.get("device") or "?",
                                        *here, (twin.get("device") or "?") if twin else "—", *there]) + " |")
    return Table("\n".join(lines))
