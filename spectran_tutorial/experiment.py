"""A grid of runs (datasets x backbones x methods x seeds) that survives being killed.

Every cell is one :func:`spectran_tutorial.train.train` run in its own resumable folder. A cell
is claimed through a lock file created atomically, so several processes can work through the
same grid on one machine; a finished cell appends one JSON line to the results file and is
never run again. Restarting after a kill resumes the unfinished cells from their checkpoints.
"""
from __future__ import annotations

import itertools
import json
import os
from pathlib import Path

from .config import Config
from .runs import run_dir, run_key
from .train import train


def grid(base: Config, datasets, backbones, methods, seeds) -> list[Config]:
    """All cells, seed-major: every method gets its first seed before any gets its second."""
    cells = []
    for seed, dataset, backbone, method in itertools.product(seeds, datasets, backbones, methods):
        cfg = base.replace("data", dataset=dataset).replace("model", backbone=backbone)
        cells.append(cfg.replace("method", name=method).replace("train", seed=seed))
    return cells


def cell_key(cfg: Config) -> str:
    """The key of a cell: its settings, the fingerprint of the data it reads and its recipe."""
    return run_key(cfg)


def read_results(path: Path) -> list[dict]:
    """The rows of a results file; a line cut short by a kill is skipped."""
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def _claim(lock: Path) -> bool:
    """Take the lock of a cell. The lock appears with its owner's PID already in it (written to a
    private file, then hard-linked into place, which fails if the lock exists), so no other
    process can see an empty lock and take it over; a lock whose owner has died is taken over."""
    mine = lock.with_name(f"{lock.name}.{os.getpid()}")
    mine.write_text(str(os.getpid()))
    try:
        os.link(mine, lock)
        return True
    except FileExistsError:
        pid = lock.read_text().strip() if lock.is_file() else ""
        if pid.isdigit() and _alive(int(pid)):
            return False
        lock.unlink(missing_ok=True)          # left by a killed process: take it over
        return _claim(lock)
    finally:
        mine.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_grid(cells: list[Config], results: str | Path, runs_root: str | Path = "runs",
             progress: bool = False, log=print, skip_done_in=()) -> list[dict]:
    """Run every cell not yet in ``results`` (nor in the results files ``skip_done_in``, which are
    only read); returns the rows of the whole grid that ``results`` holds."""
    results = Path(results)
    results.parent.mkdir(parents=True, exist_ok=True)
    elsewhere = {r.get("key") for p in skip_done_in if Path(p).resolve() != results.resolve()
                 for r in read_results(Path(p))}
    for n, cfg in enumerate(cells, start=1):
        key = cell_key(cfg)
        if key in elsewhere or any(r.get("key") == key for r in read_results(results)):
            continue
        folder = run_dir(cfg, runs_root)
        folder.mkdir(parents=True, exist_ok=True)
        lock = folder / "lock"
        if not _claim(lock):
            log(f"[{n}/{len(cells)}] {key}: another process is running it")
            continue
        try:
            if any(r.get("key") == key for r in read_results(results)):
                continue
            log(f"[{n}/{len(cells)}] {key}")
            row = train(cfg, run_dir=folder, progress=progress, log=lambda line: log(f"  {line}"))
            row = {"key": key, **{k: v for k, v in row.items() if k != "history"}}
            with results.open("a") as f:        # one short write per finished cell
                f.write(json.dumps(row) + "\n")
        finally:
            lock.unlink(missing_ok=True)
    keys = {cell_key(c) for c in cells}
    return [r for r in read_results(results) if r.get("key") in keys]
