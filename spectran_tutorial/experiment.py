"""A grid of runs (datasets x backbones x methods x seeds) that survives being killed.

Every cell is one :func:`spectran_tutorial.train.train` run in its own resumable folder. A cell
is claimed through a lock file created atomically, so several processes can work through the
same grid on one machine; a finished cell appends one JSON line to the results file and is
never run again. Restarting after a kill resumes the unfinished cells from their checkpoints.

Beyond one machine, ``run_grid(..., ray_address=...)`` sends each unfinished cell to a Ray cluster
as a task (a fraction of a GPU each, so several runs share a card); the driver alone writes the
results file, so no locks are needed across machines. Checkpoints stay in ``runs_root`` on the
node that ran the cell: put it on a shared file system for a killed grid to resume there.
"""
from __future__ import annotations

import itertools
import json
import os
import time
from pathlib import Path

from .config import Config
from .errors import SpectranError
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
             progress: bool = False, log=print, skip_done_in=(), ray_address: str | None = None,
             gpus_per_run: float = 0.0, minutes: float | None = None) -> list[dict]:
    """Run every cell not yet in ``results`` (nor in the results files ``skip_done_in``, which are
    only read); returns the rows of the whole grid that ``results`` holds. With ``ray_address``
    ("local" starts a Ray instance here, "auto" joins this node's cluster, "ray://head:10001" a
    remote one) the cells run as Ray tasks with ``gpus_per_run`` GPUs each (e.g. 0.125: 8 per card).
    With ``minutes``, no cell starts after that time budget and a running one stops after the epoch
    that passes it, its checkpoint kept: the next call resumes it."""
    results = Path(results)
    results.parent.mkdir(parents=True, exist_ok=True)
    elsewhere = {r.get("key") for p in skip_done_in if Path(p).resolve() != results.resolve()
                 for r in read_results(Path(p))}
    done = {r.get("key") for r in read_results(results)} | elsewhere
    todo = [(n, cfg, key) for n, cfg in enumerate(cells, start=1)
            if (key := cell_key(cfg)) not in done]
    deadline = None if minutes is None else time.time() + 60 * minutes
    if todo and ray_address:
        _run_on_ray(todo, len(cells), results, runs_root, log, ray_address, gpus_per_run, deadline)
    elif todo:
        _run_here(todo, len(cells), results, runs_root, progress, log, deadline)
    keys = {cell_key(c) for c in cells}
    return [r for r in read_results(results) if r.get("key") in keys]


def _append(results: Path, key: str, row: dict | None) -> None:
    if row is None:                     # stopped by the time budget: nothing to write yet
        return
    row = {"key": key, **{k: v for k, v in row.items() if k != "history"}}
    with results.open("a") as f:        # one short write per finished cell
        f.write(json.dumps(row) + "\n")


def _run_here(todo, total: int, results: Path, runs_root, progress: bool, log, deadline=None) -> None:
    """The cells one after another in this process, each claimed by a lock in its run folder."""
    for k, (n, cfg, key) in enumerate(todo):
        if deadline is not None and time.time() >= deadline:
            log(f"time budget spent: {len(todo) - k} cells left for a later call")
            return
        folder = run_dir(cfg, runs_root)
        folder.mkdir(parents=True, exist_ok=True)
        lock = folder / "lock"
        if not _claim(lock):
            log(f"[{n}/{total}] {key}: another process is running it")
            continue
        try:
            if any(r.get("key") == key for r in read_results(results)):
                continue
            log(f"[{n}/{total}] {key}")
            row = train(cfg, run_dir=folder, progress=progress, log=lambda line: log(f"  {line}"),
                        deadline=deadline)
            _append(results, key, row)
        finally:
            lock.unlink(missing_ok=True)


def train_cell(cfg: dict, runs_root: str, deadline: float | None = None) -> dict | None:
    """One cell on a Ray worker: its config as a dict in, its result row out (None when the
    time budget stopped it)."""
    cfg = Config.from_dict(cfg)
    return train(cfg, run_dir=run_dir(cfg, runs_root), progress=False, log=lambda *_: None,
                 deadline=deadline)


def _run_on_ray(todo, total: int, results: Path, runs_root, log, address: str, gpus_per_run: float,
                deadline: float | None = None) -> None:
    """The cells as Ray tasks; rows are written here, in the order the tasks finish."""
    try:
        import ray
    except ImportError:
        raise SpectranError("a Ray address was given but Ray is not installed: "
                            "pip install 'spectran-tutorial[ray]'") from None
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    task = ray.remote(num_cpus=1, num_gpus=gpus_per_run)(train_cell)
    pending = {task.remote(cfg.to_dict(), str(runs_root), deadline): (n, key) for n, cfg, key in todo}
    log(f"{len(pending)} cells sent to Ray at {address} ({gpus_per_run:g} GPU each)")
    failed = []
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            n, key = pending.pop(ready[0])
            try:
                row = ray.get(ready[0])
                _append(results, key, row)
                log(f"[{n}/{total}] {key} " + ("finished" if row else "stopped by the time budget"))
            except ray.exceptions.RayError as e:
                failed.append(key)
                reason = (str(e).strip().splitlines() or [type(e).__name__])[-1]
                log(f"[{n}/{total}] {key} failed: {reason}")
    finally:
        if started:
            ray.shutdown()
    if failed:
        raise SpectranError(f"{len(failed)} of {len(todo)} cells failed on Ray (first: {failed[0]}); "
                            "the others are in the results file, and a rerun runs only the failed ones")
