"""Seconds per training epoch and per full-ranking evaluation, measured side by side in one run.

    python benchmarks/train_speed.py --dataset amazon-beauty --methods id spectran mlp --epochs 2
    python benchmarks/train_speed.py --backbones sasrec bert4rec hstu gru4rec --methods id --epochs 1

Each (backbone, method) pair trains ``--epochs`` epochs (the first is left out as warm-up when more
than one is run) and evaluates the validation split once; the last column is the ratio of its
epoch time to the first pair's. Run it on an otherwise idle machine: the header
prints the load average so the reader can judge.
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

from spectran_tutorial.config import Config  # noqa: E402
from spectran_tutorial.data import load_dataset  # noqa: E402
from spectran_tutorial.provenance import device_name, git_commit, pick_device  # noqa: E402
from spectran_tutorial.train import make_trainer, prepare_text  # noqa: E402


def measure(cfg: Config, data, device, epochs: int) -> dict:
    trainer = make_trainer(cfg, data, prepare_text(cfg, data), device=device)
    times = []
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        trainer.train_epoch(epoch)
        times.append(time.perf_counter() - start)
    start = time.perf_counter()
    trainer.evaluate("valid")
    steady = times[1:] or times
    return {"epoch": sum(steady) / len(steady), "eval": time.perf_counter() - start}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="amazon-beauty")
    p.add_argument("--methods", nargs="+", default=["id", "spectran"])
    p.add_argument("--backbones", nargs="+", default=["sasrec"])
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="auto")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    data = load_dataset(args.dataset)
    print(f"{args.dataset}: {data.num_users} users, {data.num_items} items; device {device_name(device)}; "
          f"commit {git_commit()}; load average {os.getloadavg()[0]:.2f} at start")
    print(f"{'backbone':10s} {'method':18s} {'s/epoch':>8s} {'s/eval':>8s} {'epoch ratio':>12s}")
    base = None
    for backbone in args.backbones:
        for method in args.methods:
            cfg = Config().replace("data", dataset=args.dataset).replace("method", name=method)
            cfg = cfg.replace("model", backbone=backbone).replace("train", device=args.device)
            r = measure(cfg, data, device, args.epochs)
            base = base or r["epoch"]
            print(f"{backbone:10s} {method:18s} {r['epoch']:8.2f} {r['eval']:8.2f} {r['epoch'] / base:11.2f}x",
                  flush=True)


if __name__ == "__main__":
    main()
