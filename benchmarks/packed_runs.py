"""Packed runs: K models of one grid cell trained in one process, against one run alone.

    python benchmarks/packed_runs.py --dataset amazon-beauty --methods id spectran --packs 1 8 32
    python benchmarks/packed_runs.py --dataset amazon-office --max-users 500 --packs 1 4   # a CPU

The other way to fill a card is many processes (``benchmarks/gpu_speed.py``'s ``run-ep/s xN``).
Here the K models (seeds 0..K-1 of the cell) have their weights stacked
(``torch.func.stack_module_state``) and one step of all of them is one ``vmap``-ed forward and
backward pass; Adam works element by element, so one optimiser over the stacked weights is K
optimisers. Each model reads its own seed's batches (padded to a common shape, which changes no
output) and its loss is the trainer's: the mean cross-entropy over the positions that have a target.
The padding is the price: batches of similar lengths are drawn per seed, so a step of K models is
as wide as the widest of their K batches ("padded columns": the work against unpadded batches).

For every method it prints, measured now side by side: seconds per epoch of one run in the
trainer, and for each K the seconds per packed epoch, run-epochs per second and their ratio to the
trainer's; and, as a check that packing keeps the recipe, the difference between the trainer's
epoch loss and the packed model's for seed 0 with dropout off (the random streams of dropout
differ, so the check turns it off). SASRec only: the cross-entropy recipe, next-item training.
"""
from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from spectran_tutorial.batching import NextItemBatches                          # noqa: E402
from spectran_tutorial.config import Config                                     # noqa: E402
from spectran_tutorial.data import load_dataset                                 # noqa: E402
from spectran_tutorial.provenance import device_name, git_commit, pick_device   # noqa: E402
from spectran_tutorial.train import build_model, make_trainer, prepare_text, seed_everything   # noqa: E402


class PackedRuns:
    """The models of ``seeds`` of one configuration, trained together (one vmap-ed step)."""

    def __init__(self, cfg: Config, data, text, seeds: list[int], device: torch.device):
        from torch.func import stack_module_state
        self.device, self.seeds = device, seeds
        models = []
        for seed in seeds:                     # as make_trainer builds each run
            seed_everything(seed)
            models.append(build_model(cfg.replace("train", seed=seed), data, text).to(device))
        self.params, self.buffers = stack_module_state([NextItemLoss(m) for m in models])
        self.base = copy.deepcopy(NextItemLoss(models[0])).to("meta")
        t = cfg.train
        self.batches = [NextItemBatches(data.train_sequences(), cfg.data.max_len, t.batch_size, seed)
                        for seed in seeds]
        self.optimizer = torch.optim.Adam(self.params.values(), lr=t.lr, weight_decay=t.weight_decay)
        self.columns = [0, 0]     # columns of the batches as drawn, and as padded to a common width
        self.step = torch.func.vmap(self._loss, in_dims=(0, 0, 0, 0, 0), randomness="different")

    def _loss(self, params, buffers, inputs, rows, targets):
        return torch.func.functional_call(self.base, (params, buffers), (inputs, rows, targets))

    def _attention(self):
        """On a CPU, vmap has no batching rule for the fused attention kernel (it would loop over
        the models); the math form of attention is made of batched matrix products."""
        import contextlib
        from torch.nn.attention import SDPBackend, sdpa_kernel
        return sdpa_kernel(SDPBackend.MATH) if self.device.type == "cpu" else contextlib.nullcontext()

    def epoch(self, epoch: int) -> torch.Tensor:
        """One epoch of every model; returns their mean step losses (K,)."""
        self.base.train()
        total, steps = torch.zeros(len(self.seeds), dtype=torch.float64, device=self.device), 0
        for batches in zip(*(b.epoch(epoch) for b in self.batches)):
            rows = max(b.inputs.shape[0] for b in batches)
            width = max(b.inputs.shape[1] for b in batches)
            self.columns[0] += sum(b.inputs.shape[1] for b in batches)
            self.columns[1] += width * len(batches)
            inputs = torch.stack([_pad(b.inputs, rows, width) for b in batches])
            targets = [_pad(b.targets, rows, width).reshape(-1) for b in batches]
            picked = [t.gt(0).nonzero().squeeze(1) for t in targets]
            most = max(len(x) for x in picked)
            positions = torch.stack([F.pad(x, (0, most - len(x))) for x in picked])
            chosen = torch.stack([F.pad(t[x], (0, most - len(x))) for t, x in zip(targets, picked)])
            with self._attention():
                losses = self.step(self.params, self.buffers, *(x.to(self.device, non_blocking=True)
                                                                 for x in (inputs, positions, chosen)))
            self.optimizer.zero_grad(set_to_none=True)
            losses.sum().backward()
            self.optimizer.step()
            total += losses.detach()
            steps += 1
        return total / max(steps, 1)


class NextItemLoss(torch.nn.Module):
    """A model's training loss as its forward pass (what ``functional_call`` calls): the mean
    full-softmax cross-entropy over the positions that have a target, as in the trainer."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, inputs: torch.Tensor, rows: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """``rows``: the flat positions that have a target, padded with position 0 (whose target,
        0, is ignored) to the longest list among the packed models, so that the logits are
        computed for those positions only, as in the trainer."""
        table = self.model.table()
        hidden = self.model.hidden(inputs, table)
        logits = hidden.reshape(-1, hidden.shape[-1]).index_select(0, rows) @ table[1:].T
        return F.cross_entropy(logits, targets - 1, ignore_index=-1)


def _pad(x: torch.Tensor, rows: int, width: int) -> torch.Tensor:
    """Left padding to ``width`` columns and empty rows to ``rows`` (no target: no loss)."""
    out = x.new_zeros(rows, width)
    out[:x.shape[0], width - x.shape[1]:] = x
    return out


def timed(fn, device) -> float:
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="amazon-beauty")
    p.add_argument("--methods", nargs="+", default=["id", "spectran"])
    p.add_argument("--packs", nargs="+", type=int, default=[1, 8, 32], help="models per process")
    p.add_argument("--epochs", type=int, default=1, help="timed epochs after one warm-up")
    p.add_argument("--max-users", type=int, default=None)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--device", default="auto")
    args = p.parse_args()
    device = pick_device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(1)
    cfg = Config().replace("data", dataset=args.dataset, max_users=args.max_users)
    data = load_dataset(args.dataset, args.data_dir, max_users=args.max_users, log=lambda *_: None)
    print(f"{args.dataset}{f' (first {args.max_users} users)' if args.max_users else ''}; "
          f"{device_name(device) if device.type == 'cuda' else f'cpu, {os.cpu_count()} cores, one thread'}; "
          f"commit {git_commit()}; load average {os.getloadavg()[0]:.2f}; SASRec, the default recipe", flush=True)
    print(f"{'method':10s} {'K':>3s} {'s/epoch':>9s} {'run-ep/s':>9s} {'vs alone':>9s}  padded columns", flush=True)
    for method in args.methods:
        mcfg = cfg.replace("method", name=method).replace("train", seed=0)
        text = prepare_text(mcfg, data, progress=False, log=lambda *_: None)
        matrix = text.matrix if text is not None else None
        trainer = make_trainer(mcfg, data, matrix, device=device)
        timed(lambda: trainer.train_epoch(1), device)
        alone = sum(timed(lambda: trainer.train_epoch(2 + k), device) for k in range(args.epochs)) / args.epochs
        print(f"{method:10s} {'1*':>3s} {alone:9.3f} {1 / alone:9.2f} {1.0:8.2f}x   (* the trainer)", flush=True)
        for k in args.packs:
            packed = PackedRuns(mcfg, data, matrix, list(range(k)), device)
            timed(lambda: packed.epoch(1), device)
            took = sum(timed(lambda: packed.epoch(2 + e), device) for e in range(args.epochs)) / args.epochs
            print(f"{method:10s} {k:3d} {took:9.3f} {k / took:9.2f} {k / took * alone:8.2f}x  "
                  f"x{packed.columns[1] / packed.columns[0]:.2f}", flush=True)
            del packed
        quiet = mcfg.replace("model", dropout=0.0, emb_dropout=0.0)
        check = make_trainer(quiet, data, matrix, device=device).train_epoch(1)
        mine = float(PackedRuns(quiet, data, matrix, [0], device).epoch(1)[0])
        print(f"{method:10s} recipe check (seed 0, no dropout): trainer loss {check:.6f}, packed {mine:.6f}, "
              f"difference {abs(check - mine):.1e}", flush=True)


if __name__ == "__main__":
    main()
