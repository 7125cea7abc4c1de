"""The full experiment grid on a borrowed GPU machine, in one call.

The machine is lent for minutes and reaches nothing (no data, no encoder model, no package index),
so everything it needs is staged here first, into the git-ignored folder ``.gpu/``:

    python scripts/gpu_grid.py stage amazon-beauty          # data, cached text embeddings, wheels

Then, on the GPU machine, with ``.gpu`` carried along and its own python (which has torch):

    python3 scripts/gpu_grid.py run --seconds 480 --workers 8 amazon-beauty
    python3 scripts/gpu_grid.py run --seconds 480 --workers 12 --plan scripts/gpu_plan.json

``--plan`` names several grids in order of priority (``scripts/gpu_plan.json`` holds the next
session's: what the book lists as not run yet); the workers move on to the next grid as soon as
every cell of one is taken, so the card stays full to the end. Each grid writes ``$OUT/<name>.jsonl``.

``run`` first measures the training loop (``benchmarks/gpu_speed.py``: alone, with the card
filled, against main at 2144b5a, staged in ``.gpu/baseline``; ``benchmarks/packed_runs.py``: models
packed in one process), then starts ``--workers`` experiment
processes that share one grid (every backbone x every method x seeds 0-2, seed-major, each cell
claimed by a lock) with the time left as their budget (``--minutes``). Finished rows go to
``$OUT/gpu-grid.jsonl``, which starts as a copy of ``results/gpu-grid.jsonl``: copy it back into
``results/`` and commit it, and the next lease resumes the grid where this one stopped. Cells
finished in the other files of ``results/`` (runs on a CPU) are skipped too. Cells cut
off by the deadline are simply not written. The recipe is the default one (batch size included),
so GPU rows are the same cells as CPU rows; only the evaluation batch is larger.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = "gpu-grid.jsonl"
BACKBONES = ("sasrec", "bert4rec", "hstu", "gru4rec")
BASELINE = "2144b5a"                 # the benchmark's reference: main before the GPU fast path
WHEELS = ("platformdirs",)           # imported by the package, absent from the GPU machine's image


def stage(datasets: list[str], data_dir: str | None, folder: Path, wheels: bool = True) -> None:
    """Copy the datasets, their text-embedding cache files and the missing wheels into ``folder``."""
    sys.path.insert(0, str(ROOT))
    from spectran_tutorial.config import TextConfig
    from spectran_tutorial.data import dataset_dir, load_dataset
    from spectran_tutorial.provenance import git_commit
    from spectran_tutorial.text import cache_path, item_texts, text_matrix

    if folder.is_dir() and any(folder.iterdir()) and not (folder / "COMMIT").is_file():
        raise SystemExit(f"{folder} is not empty and not a staging folder: choose another --stage")
    sources = {name: dataset_dir(name, data_dir) for name in datasets}   # fails before anything is removed
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "cache" / "embeddings").mkdir(parents=True)
    text_cfg = TextConfig()
    for name in datasets:
        shutil.copytree(sources[name], folder / "data" / name)
        data = load_dataset(name, data_dir)
        text_matrix(data, text_cfg, progress=True)             # computes the cache file if missing
        cached = cache_path(text_cfg.encoder, item_texts(data, text_cfg.fields))
        shutil.copy2(cached, folder / "cache" / "embeddings" / cached.name)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", BASELINE, "spectran_tutorial"],
                             capture_output=True)
    if archive.returncode == 0:     # the trainer of main at that commit, for the benchmark's ratio
        (folder / "baseline").mkdir()
        subprocess.run(["tar", "-x", "-C", str(folder / "baseline")], input=archive.stdout, check=True)
    if wheels:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                        "-d", str(folder / "wheels"), *WHEELS], check=True)
    (folder / "COMMIT").write_text(git_commit() or "unknown")
    size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    print(f"staged {', '.join(datasets)} at commit {git_commit()} in {folder} ({size / 2**20:.1f} MiB); "
          "commit first if the commit is -dirty")


def worker_environment(folder: Path, site: Path) -> dict:
    """Install the staged wheels into ``site`` and return the variables that make them, the staged
    data, the embedding cache and the commit visible to the package."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_WAIT_POLICY="PASSIVE")
    wheels = sorted((folder / "wheels").glob("*.whl"))
    if wheels:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--upgrade", "--no-index", "--no-deps", "--no-compile",
                        "--target", str(site), *map(str, wheels)], check=True)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), str(ROOT), env.get("PYTHONPATH")]))
    if (folder / "data").is_dir():
        env["SPECTRAN_DATA"] = str(folder / "data")
    if (folder / "cache").is_dir():
        env["SPECTRAN_CACHE"] = str(folder / "cache")
    if (folder / "COMMIT").is_file():
        env["SPECTRAN_COMMIT"] = (folder / "COMMIT").read_text().strip()
    return env


def load_plan(args) -> list[dict]:
    """The grids to run, in order of priority: ``--plan FILE`` (a JSON list of grids, each with
    ``name`` (its results file, without .jsonl), ``datasets``, and optionally ``backbones``,
    ``methods``, ``seeds``, ``set`` and ``rerun``: true to run again cells finished in other
    results files, e.g. for metrics their rows lack), else the one grid of the command line,
    named gpu-grid."""
    if args.plan:
        plan = json.loads(Path(args.plan).read_text())
    else:
        plan = [{"name": RESULTS.removesuffix(".jsonl"), "datasets": args.datasets, "backbones": args.backbones,
                 "methods": args.methods, "seeds": args.seeds, "set": args.set}]
    for grid in plan:
        grid.setdefault("backbones", list(BACKBONES))
        grid["methods"] = grid.get("methods") or default_methods(Path(args.site))
        grid.setdefault("seeds", [0, 1, 2])
        grid.setdefault("set", [])
    return plan


def experiment_command(grid: dict, results: Path, args) -> list[str]:
    """The ``experiment`` call of one grid (its time budget is added when it starts)."""
    own = {str(ROOT / "results" / f"{grid['name']}.jsonl"), str(results)}
    elsewhere = [] if grid.get("rerun") else [f for f in args.skip_done_in or [] if f not in own]
    return [sys.executable, "-m", "spectran_tutorial", "experiment", "--datasets", *grid["datasets"],
            "--backbones", *grid["backbones"], "--methods", *grid["methods"], "--seeds", *map(str, grid["seeds"]),
            "--threads", str(args.threads), "--set", "train.eval_batch_size=4096",
            *sum((["--set", s] for s in grid["set"]), []),
            "--results", str(results), "--runs-dir", args.runs_dir, "--quiet",
            *(["--skip-done-in", *elsewhere] if elsewhere else [])]


START_UP = 30     # seconds an experiment process needs before its budget starts counting


def work(commands: list[list[str]], deadline: float) -> None:
    """One worker: the grids in order, each with the time left as its budget. Cells are claimed by
    locks, so the workers spread over a grid and move on to the next once all its cells are taken."""
    for command in commands:
        left = deadline - time.time() - START_UP
        if left < START_UP:
            return
        subprocess.run(command + ["--minutes", f"{left / 60:.2f}"], cwd=ROOT)


def stop(proc: subprocess.Popen, timeout: float) -> None:
    """Wait for ``proc``; past ``timeout``, end it with every process it started (its session)."""
    try:
        proc.wait(timeout=max(timeout, 1))
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait()


def run(args) -> int:
    out = Path(os.environ.get("OUT") or args.out)
    out.mkdir(parents=True, exist_ok=True)
    env = worker_environment(Path(args.stage), Path(args.site))
    probe = "import torch; print(torch.cuda.get_device_name() if torch.cuda.is_available() else '')"
    gpu = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True).stdout.strip()
    if not gpu and not args.allow_cpu:
        print("no CUDA device visible: stopping (pass --allow-cpu to run the grid on the CPU)")
        return 1
    plan = load_plan(args)
    print(f"device: {gpu or 'cpu'}; {args.workers} workers for {args.seconds:.0f} s; grids: "
          + ", ".join(g["name"] for g in plan), flush=True)
    deadline = time.time() + args.seconds
    if args.speed:
        baseline = Path(args.stage) / "baseline"
        with (out / "gpu-speed.txt").open("w") as f:
            speed = subprocess.Popen([sys.executable, str(ROOT / "benchmarks" / "gpu_speed.py"), "--dataset",
                                      plan[0]["datasets"][0], "--backbones", *args.speed_backbones, "--methods",
                                      "id", "spectran", "--epochs", "2", "--workers", str(args.workers),
                                      "--variants", "train.precision=bf16", "train.compile=reduce-overhead",
                                      *(["--baseline", str(baseline)] if baseline.is_dir() else [])],
                                     env=env, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
            stop(speed, args.seconds / 4)
        with (out / "packed-runs.txt").open("w") as f:    # the other way to fill the card: models packed
            packed = subprocess.Popen([sys.executable, str(ROOT / "benchmarks" / "packed_runs.py"), "--dataset",
                                       plan[0]["datasets"][0], "--methods", "id", "spectran", "--packs", "1", "8", "32"],
                                      env=env, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
            stop(packed, args.seconds / 12)
    commands = []
    for grid in plan:      # each grid's rows start as a copy of its stored file, so done cells are skipped
        results = out / f"{grid['name']}.jsonl"
        if (ROOT / "results" / results.name).is_file() and not results.exists():
            shutil.copy2(ROOT / "results" / results.name, results)
        commands.append(experiment_command(grid, results, args))
    (out / "plan.json").write_text(json.dumps({"deadline": deadline, "commands": commands}, indent=1))
    worker = [sys.executable, str(Path(__file__).resolve()), "work", str(out / "plan.json")]
    log = (out / "gpu-workers.log").open("w")
    workers = []
    for _ in range(args.workers):
        workers.append(subprocess.Popen(worker, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
                                        start_new_session=True))
        time.sleep(1)                  # the first cells go to different workers in order
    for w in workers:                  # a minute's grace to finish an epoch and its evaluation
        stop(w, deadline - time.time() + 60)
    log.close()
    names = list(dict.fromkeys(g["name"] for g in plan))      # several grids may share a results file
    with (out / "gpu-report.md").open("w") as f:
        for name in names:
            grid = {"name": name}
            results = out / f"{grid['name']}.jsonl"
            if results.is_file():
                f.write(f"## {grid['name']}\n\n")
                f.flush()
                subprocess.run([sys.executable, "-m", "spectran_tutorial", "report", str(results), "--allow-mixed"],
                               env=env, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT)
    for name in names:
        results = out / f"{name}.jsonl"
        rows = sum(1 for line in results.read_text().splitlines() if line.strip()) if results.exists() else 0
        print(f"{name}: {rows} rows in {results}")
    print(f"report in {out / 'gpu-report.md'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("stage", help="here: copy data, text embeddings and wheels into .gpu/")
    s.add_argument("datasets", nargs="+")
    s.add_argument("--data-dir", help="folder of datasets (default: $SPECTRAN_DATA)")
    s.add_argument("--no-wheels", dest="wheels", action="store_false",
                   help="do not download the wheels (the machine has the packages)")
    r = sub.add_parser("run", help="on the GPU machine: the grid until the time is up")
    r.add_argument("datasets", nargs="*")
    r.add_argument("--seconds", type=float, default=480, help="wall-clock budget of the grid")
    r.add_argument("--workers", type=int, default=8, help="experiment processes sharing the GPU")
    r.add_argument("--threads", type=int, default=2, help="CPU threads per worker")
    r.add_argument("--backbones", nargs="+", default=list(BACKBONES))
    r.add_argument("--speed-backbones", nargs="+", default=list(BACKBONES),
                   help="backbones whose epoch is timed alone before the grid (default: all)")
    r.add_argument("--methods", nargs="+", help="default: every method, SpecTran's ablations last")
    r.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    r.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE")
    r.add_argument("--skip-done-in", nargs="*", metavar="FILE",
                   default=[str(p) for p in sorted((ROOT / "results").glob("*.jsonl")) if p.name != RESULTS],
                   help="results files whose finished cells are not run again (default: the other files "
                        "in results/; give the option alone to run every cell)")
    r.add_argument("--plan", help="a JSON list of grids to run in order (see load_plan); replaces "
                                  "the datasets, backbones, methods, seeds and --set of the command line")
    r.add_argument("--allow-cpu", action="store_true", help="run even when no GPU is visible")
    r.add_argument("--no-speed", dest="speed", action="store_false", help="skip the epoch timings")
    r.add_argument("--out", default="gpu-out", help="output folder when $OUT is not set")
    r.add_argument("--runs-dir", default=str(Path(tempfile.gettempdir()) / "spectran-runs"))
    r.add_argument("--site", default=str(Path(tempfile.gettempdir()) / "spectran-site"),
                   help="where the staged wheels are installed")
    for command in (s, r):
        command.add_argument("--stage", default=str(ROOT / ".gpu"), help="the staging folder (default: .gpu)")
    w = sub.add_parser("work", help=argparse.SUPPRESS)
    w.add_argument("plan")
    args = p.parse_args(argv)
    if args.command == "work":
        plan = json.loads(Path(args.plan).read_text())
        work(plan["commands"], plan["deadline"])
        return 0
    if args.command == "run" and not (args.plan or args.datasets):
        p.error("run needs datasets or --plan")
    if args.command == "stage":
        stage(args.datasets, args.data_dir, Path(args.stage), args.wheels)
        return 0
    return run(args)


def default_methods(site: Path) -> list[str]:
    """Every method, SpecTran's ablations last (read after the staged wheels are installed)."""
    sys.path[:0] = [str(site), str(ROOT)]
    from spectran_tutorial.item_tables import METHODS
    ablations = [m for m in METHODS if m.startswith("spectran-")]
    return [m for m in METHODS if m not in ablations] + ablations


if __name__ == "__main__":
    raise SystemExit(main())
