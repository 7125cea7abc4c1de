"""Training throughput on this machine's accelerator (or CPU), side by side in one run.

    python benchmarks/gpu_speed.py --dataset amazon-beauty --backbones sasrec --methods id spectran
    python benchmarks/gpu_speed.py --dataset amazon-office --max-users 2000 --workers 2   # a CPU

For every (backbone, method) it prints, measured now on the same data and text matrix:

* ``s/epoch`` of the training loop of main at 2144b5a (``--baseline``: that commit's package,
  unpacked by ``git archive`` or staged beforehand) and of this tree, and their ratio;
* ``run-ep/s``: run-epochs per second with ``--workers`` processes training at once (the card, or
  the cores, filled), against one process alone;
* ``--variants``: s/epoch of this tree with other settings (``train.precision=bf16``,
  ``train.compile=reduce-overhead``; a comma joins several), each against the default recipe;
* ``TFLOP/s``: the floating-point work of an epoch (counted by torch's FLOP counter over the
  matrix products) divided by its time, and its share of this device's matrix-product peak,
  measured in the same run on a large square product (bf16 on a GPU, fp32 on a CPU).

Each measurement is a child process (one torch thread each on a CPU) that trains a warm-up epoch
and then ``--epochs`` timed ones. The recipe is the default one (batch 128), as in the stored rows.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASELINE_COMMIT = "2144b5a"


# -- the child: runs inside either package --------------------------------------------------------
def child(args: argparse.Namespace) -> None:
    """Time ``--epochs`` epochs after one warm-up (and count the FLOPs of one more) of one cell."""
    import torch
    if not torch.cuda.is_available():
        torch.set_num_threads(1)
    from spectran_tutorial.config import Config
    from spectran_tutorial.data import load_dataset
    from spectran_tutorial.train import Trainer, build_model, seed_everything

    device = torch.device(args.device if args.device != "auto" else
                          ("cuda" if torch.cuda.is_available() else "cpu"))
    cfg = Config().replace("data", dataset=args.dataset, max_users=args.max_users)
    cfg = cfg.replace("model", backbone=args.backbone).replace("method", name=args.method)
    if args.set:
        from spectran_tutorial.cli import apply_overrides
        cfg = apply_overrides(cfg, args.set).validate()
    data = load_dataset(args.dataset, args.data_dir, max_users=args.max_users)
    text = torch.load(args.text) if args.text else None
    seed_everything(0)
    trainer = Trainer(cfg, data, build_model(cfg, data, text), device, None, False, lambda *_: None)

    def epoch(k: int) -> float:
        start = time.perf_counter()
        trainer.train_epoch(k)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    epoch(1)                                               # warm-up: allocator, kernels, caches
    began = time.time()
    seconds = [epoch(2 + k) for k in range(args.epochs)]
    ended = time.time()
    flops = None
    if args.count_flops:
        from torch.utils.flop_counter import FlopCounterMode
        counter = FlopCounterMode(display=False)
        with counter:
            trainer.train_epoch(99)
        flops = counter.get_total_flops()
    print(json.dumps({"seconds": seconds, "flops": flops, "began": began, "ended": ended}))


# -- the driver ----------------------------------------------------------------------------------
def baseline_package(path: str | None) -> Path | None:
    """A folder holding ``spectran_tutorial`` of main at 2144b5a: ``path`` when given, else one
    unpacked from git (None when neither is available)."""
    if path:
        return Path(path)
    folder = Path(tempfile.mkdtemp(prefix="spectran-baseline-"))
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", BASELINE_COMMIT, "spectran_tutorial"],
                             capture_output=True)
    if archive.returncode:
        return None
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    return folder


def start_child(package: Path, args: argparse.Namespace, backbone: str, method: str, text: str | None,
                epochs: int, count_flops: bool = False, settings: list[str] = ()) -> subprocess.Popen:
    argv = [sys.executable, __file__, "--child", "--dataset", args.dataset, "--backbone", backbone,
            "--method", method, "--epochs", str(epochs), "--device", args.device]
    argv += ["--max-users", str(args.max_users)] if args.max_users else []
    argv += ["--data-dir", args.data_dir] if args.data_dir else []
    argv += ["--text", text] if text else []
    argv += ["--count-flops"] if count_flops else []
    argv += [x for item in settings for x in ("--set", item)]
    # the measured package first; what the caller's path adds (e.g. staged wheels) stays behind it
    path = os.pathsep.join(filter(None, [str(package), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def result(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate()
    if proc.returncode:
        raise SystemExit(f"a measurement failed:\n{err.strip().splitlines()[-1] if err.strip() else out}")
    return json.loads(out.strip().splitlines()[-1])


def text_file(args: argparse.Namespace, method: str, folder: Path) -> str | None:
    """The text matrix of ``method`` (computed once, by this tree), saved for the children."""
    from spectran_tutorial.config import Config
    from spectran_tutorial.data import load_dataset
    from spectran_tutorial.train import prepare_text
    import torch
    cfg = Config().replace("data", dataset=args.dataset).replace("method", name=method)
    path = folder / f"text-{method}.pt"
    if not path.is_file():
        data = load_dataset(args.dataset, args.data_dir, max_users=args.max_users)
        text = prepare_text(cfg, data, progress=False, log=lambda *_: None)
        if text is None:
            return None
        torch.save(text.matrix, path)
    return str(path)


def matmul_peak(device) -> tuple[float, str]:
    """TFLOP/s of a large square matrix product on ``device``: bf16 on a GPU, fp32 on a CPU."""
    import torch
    cuda = device.type == "cuda"
    n, dtype = (8192, torch.bfloat16) if cuda else (2048, torch.float32)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(2):
        a @ b
    repeats = 20 if cuda else 3
    if cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    if cuda:
        torch.cuda.synchronize()
    return 2 * n ** 3 * repeats / (time.perf_counter() - start) / 1e12, str(dtype).split(".")[-1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="amazon-beauty")
    p.add_argument("--backbones", nargs="+", default=["sasrec"])
    p.add_argument("--methods", nargs="+", default=["id", "spectran"])
    p.add_argument("--epochs", type=int, default=2, help="timed epochs after one warm-up")
    p.add_argument("--workers", type=int, default=8, help="processes training at once to fill the device")
    p.add_argument("--max-users", type=int, default=None, help="a subset, for a quick look on a CPU")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--device", default="auto")
    p.add_argument("--baseline", default=None, help=f"folder holding main at {BASELINE_COMMIT}'s spectran_tutorial")
    # the child's own options
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--backbone", help=argparse.SUPPRESS)
    p.add_argument("--method", help=argparse.SUPPRESS)
    p.add_argument("--text", help=argparse.SUPPRESS)
    p.add_argument("--count-flops", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--set", action="append", default=[], help=argparse.SUPPRESS)
    p.add_argument("--variants", nargs="*", default=[], metavar="SECTION.FIELD=VALUE[,...]",
                   help="settings timed alone beside the default recipe, e.g. train.precision=bf16 "
                        "train.compile=reduce-overhead")
    args = p.parse_args()
    if args.child:
        return child(args)

    sys.path.insert(0, str(ROOT))
    import torch
    from spectran_tutorial.provenance import device_name, git_commit, pick_device
    device = pick_device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(1)          # the peak of one process, as each child runs on one thread
    peak, dtype = matmul_peak(device)
    base = baseline_package(args.baseline)
    print(f"{args.dataset}{f' (first {args.max_users} users)' if args.max_users else ''}; "
          f"{device_name(device) if device.type == 'cuda' else f'cpu, {os.cpu_count()} cores'}; "
          f"commit {git_commit()}; load average {os.getloadavg()[0]:.2f}; "
          f"matrix-product peak of one process measured {peak:.3f} TFLOP/s ({dtype})")
    print(f"{'backbone':9s} {'method':10s} {'s/ep ' + BASELINE_COMMIT:>12s} {'s/ep now':>9s} {'speed-up':>9s} "
          f"{'run-ep/s x1':>12s} {f'run-ep/s x{args.workers}':>12s} {'TFLOP/s':>8s} {'of peak':>8s}")
    with tempfile.TemporaryDirectory() as tmp:
        for backbone in args.backbones:
            for method in args.methods:
                text = text_file(args, method, Path(tmp))
                now = result(start_child(ROOT, args, backbone, method, text, args.epochs, count_flops=True))
                old = result(start_child(base, args, backbone, method, text, args.epochs)) if base else None
                procs = [start_child(ROOT, args, backbone, method, text, args.epochs) for _ in range(args.workers)]
                together = [result(proc) for proc in procs]
                # all timed epochs over the span from the first timed epoch's start to the last one's
                # end (start-up and warm-up are left out; a staggered start only lowers the rate)
                span = max(r["ended"] for r in together) - min(r["began"] for r in together)
                filled = args.workers * args.epochs / span
                alone = sum(now["seconds"]) / len(now["seconds"])
                tflops = now["flops"] / alone / 1e12 if now["flops"] else float("nan")
                old_s = sum(old["seconds"]) / len(old["seconds"]) if old else float("nan")
                print(f"{backbone:9s} {method:10s} {old_s:12.3f} {alone:9.3f} {old_s / alone:8.2f}x "
                      f"{1 / alone:12.2f} {filled:12.2f} {tflops:8.3f} {tflops / peak:7.1%}", flush=True)
                for v in args.variants:        # one line each, printed as soon as it is measured
                    other = result(start_child(ROOT, args, backbone, method, text, args.epochs,
                                               settings=v.split(",")))["seconds"]
                    other_s = sum(other) / len(other)
                    print(f"{backbone:9s} {method:10s} with {v}: {other_s:.3f} s/ep, {alone / other_s:.2f}x "
                          "the default recipe's speed", flush=True)


if __name__ == "__main__":
    main()
