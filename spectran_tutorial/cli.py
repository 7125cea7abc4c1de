"""Command line: ``python -m spectran_tutorial {train,download,datasets} ...``."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .config import PROFILES, Config
from .errors import ConfigError, SpectranError


def _train_parser(sub) -> None:
    from .backbones import BACKBONES
    from .item_tables import METHODS
    p = sub.add_parser("train", help="train and evaluate one model on one dataset")
    p.add_argument("--dataset", default="amazon-office")
    p.add_argument("--backbone", default="sasrec", choices=sorted(BACKBONES))
    p.add_argument("--method", default="id", choices=list(METHODS))
    p.add_argument("--profile", default="default", choices=PROFILES)
    p.add_argument("--data-dir", help="folder of datasets (default: $SPECTRAN_DATA, else the download cache)")
    p.add_argument("--encoder", help="the item-text encoder: a sentence-transformers model or a decoder "
                   "language model (LLaMA-, Qwen-, Mistral-class), by name or local path; "
                   "--set text.pooling=last pools a decoder's last token instead of the mean")
    p.add_argument("--epochs", type=int)
    p.add_argument("--patience", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--loss", choices=["ce", "infonce", "bce"])
    p.add_argument("--lr", type=float)
    p.add_argument("--dim", type=int)
    p.add_argument("--max-users", type=int, help="train on the first N users only (a small real subset)")
    p.add_argument("--device", help="'auto' (default), 'cpu' or 'cuda'")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                   help="any config field, e.g. --set method.text_scale=0.1 (repeatable)")
    p.add_argument("--runs-dir", default="runs", help="where run folders (checkpoints, results) go")
    p.add_argument("--fresh", action="store_true", help="ignore an earlier checkpoint or result of this config")
    p.add_argument("--out", help="also write the result JSON here")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def config_from_args(args) -> Config:
    cfg = Config.profile(args.profile)
    direct = [("data", "dataset", args.dataset), ("data", "data_dir", args.data_dir),
              ("data", "max_users", args.max_users), ("model", "backbone", args.backbone),
              ("model", "dim", args.dim), ("method", "name", args.method),
              ("text", "encoder", args.encoder), ("train", "epochs", args.epochs),
              ("train", "patience", args.patience), ("train", "seed", args.seed),
              ("train", "loss", args.loss), ("train", "lr", args.lr),
              ("train", "device", args.device), ("train", "num_threads", args.threads)]
    for section, name, value in direct:
        if value is not None:
            cfg = cfg.replace(section, **{name: value})
    cfg = apply_overrides(cfg, args.set)
    check_method_overrides(cfg.method.name, args.set)
    return cfg


def parse_override(item: str) -> tuple[str, str, object]:
    """``section.field=value`` as (section, field, value); the value is parsed as JSON when it can
    be (numbers, true, null)."""
    try:
        key, raw = item.split("=", 1)
        section, name = key.split(".")
    except ValueError:
        raise ConfigError(f"--set expects SECTION.FIELD=VALUE, got {item!r}") from None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return section, name, value


def apply_overrides(cfg: Config, items: list[str]) -> Config:
    for item in items:
        section, name, value = parse_override(item)
        if not hasattr(cfg, section) or not hasattr(getattr(cfg, section), name):
            raise ConfigError(f"--set: no config field {section}.{name!r}")
        cfg = cfg.replace(section, **{name: value})
    return cfg


def check_method_overrides(method: str, items: list[str]) -> None:
    """Refuse a ``--set method.*`` that the method's name fixes to another value."""
    from .item_tables import check_preset
    check_preset(method, {name: value for section, name, value in map(parse_override, items) if section == "method"})


def cmd_train(args) -> int:
    from .train import train
    cfg = config_from_args(args)
    result = train(cfg, runs_root=args.runs_dir, progress=not args.quiet, fresh=args.fresh)
    summary = {split: {k: round(v, 4) for k, v in result[split].items()} for split in ("valid", "test")}
    print(json.dumps({"method": result["method"], "dataset": result["dataset"], **summary,
                      "epochs": result["epochs"], "seconds_per_epoch": round(result["seconds_per_epoch"], 2),
                      "effective_rank": round(result["diagnostics"]["effective_rank"], 2)}, indent=1))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2))
        print(f"wrote {args.out}")
    return 0


def cmd_experiment(args) -> int:
    from .experiment import grid, run_grid
    cfg = Config.profile(args.profile)
    if args.data_dir:
        cfg = cfg.replace("data", data_dir=args.data_dir)
    if args.threads:
        cfg = cfg.replace("train", num_threads=args.threads)
    cfg = apply_overrides(cfg, args.set)
    for method in args.methods:
        check_method_overrides(method, args.set)
    cells = grid(cfg, args.datasets, args.backbones, args.methods, args.seeds)
    for cell in cells:          # every setting is checked before the first cell runs
        cell.validate()
    rows = run_grid(cells, args.results, args.runs_dir, progress=not args.quiet, skip_done_in=args.skip_done_in,
                    ray_address=args.ray, gpus_per_run=args.gpus_per_run, minutes=args.minutes)
    print(f"{len(rows)} of {len(cells)} cells finished; results in {args.results}"
          + (f" (cells finished in {', '.join(args.skip_done_in)} skipped)" if args.skip_done_in else ""))
    return 0


def cmd_report(args) -> int:
    from .report import load_rows, metric, overview_table, report, version_check
    if args.overview:
        rows = load_rows(args.results)
        problems, note = version_check(rows)
        if problems and not args.allow_mixed:
            raise SpectranError("the results mix versions: " + "; ".join(problems) + " (allow with --allow-mixed)")
        name = args.overview if "." in args.overview else metric(args.overview, args.protocol)
        print(f"{name} ({args.protocol if '.' not in args.overview else 'as named'}); {note}\n")
        print(overview_table(rows, name))
    else:
        print(report(args.results, protocol=args.protocol, allow_mixed=args.allow_mixed))
    return 0


def cmd_datasets(args) -> int:
    from .data import DATASETS, resolve_data_dir
    root = resolve_data_dir(args.data_dir)
    for name in DATASETS:
        here = (root / name / "interactions.tsv").is_file()
        text = (root / name / "items.jsonl").is_file()
        print(f"{name:16s} {'present' if here else 'absent':8s} {'with text' if text else ''}")
    return 0


def cmd_download(args) -> int:
    from .download import download
    path = download(args.dataset, args.data_dir)
    print(f"{args.dataset} is ready in {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m spectran_tutorial",
                                     description="SpecTran and its baselines for sequential recommendation")
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of an input error too (or set SPECTRAN_DEBUG=1)")
    sub = parser.add_subparsers(dest="command", required=True)
    _train_parser(sub)
    p = sub.add_parser("experiment", help="run a grid of configurations, resumably")
    p.add_argument("--datasets", nargs="+", default=["amazon-office"])
    p.add_argument("--backbones", nargs="+", default=["sasrec"])
    p.add_argument("--methods", nargs="+", default=["id", "spectran"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--profile", default="default", choices=PROFILES)
    p.add_argument("--data-dir")
    p.add_argument("--threads", type=int)
    p.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE")
    p.add_argument("--results", default="results/experiments.jsonl")
    p.add_argument("--skip-done-in", nargs="+", default=[], metavar="FILE",
                   help="other results files: cells finished there are not run again")
    p.add_argument("--runs-dir", default="runs")
    p.add_argument("--ray", metavar="ADDRESS",
                   help="run the cells as Ray tasks: 'local' starts Ray here, 'auto' joins this node's "
                        "cluster, 'ray://head:10001' a remote one")
    p.add_argument("--minutes", type=float, metavar="M",
                   help="time budget: no cell starts after M minutes, a running one stops after the "
                        "epoch that passes them (resumable)")
    p.add_argument("--gpus-per-run", type=float, default=0.0, metavar="G",
                   help="with --ray: GPUs per cell, e.g. 0.125 for 8 runs per card (0: on CPUs)")
    p.add_argument("--quiet", action="store_true")
    p = sub.add_parser("report", help="mean and spread over seeds of experiment results, as Markdown")
    p.add_argument("results", nargs="+", help="results files (JSON lines) written by `experiment`")
    p.add_argument("--overview", nargs="?", const="ndcg@10", metavar="METRIC",
                   help="only the methods x datasets table of METRIC (default ndcg@10 on the test split)")
    p.add_argument("--protocol", default="masked", choices=["masked", "unmasked"],
                   help="history-masked or unmasked full ranking (rows stored before both were kept "
                        "have only the masked one)")
    p.add_argument("--allow-mixed", action="store_true",
                   help="report even when one dataset was read from different data files or one "
                        "method ran with different recipe versions")
    p = sub.add_parser("datasets", help="list the datasets present in the data directory")
    p.add_argument("--data-dir")
    p = sub.add_parser("download", help="download and convert an official dataset (needs internet)")
    p.add_argument("--dataset", required=True)
    p.add_argument("--data-dir", help="where to put it (default: $SPECTRAN_DATA, else the download cache)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = {"train": cmd_train, "experiment": cmd_experiment, "report": cmd_report, "datasets": cmd_datasets,
               "download": cmd_download}[args.command]
    try:
        return handler(args)
    except SpectranError as e:      # bad input: one line; any other error keeps its traceback
        if args.debug or os.environ.get("SPECTRAN_DEBUG"):
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to resume from the last finished epoch", file=sys.stderr)
        return 130
