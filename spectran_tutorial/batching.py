"""Left-padded batches of item sequences and seeded negative sampling."""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import NamedTuple

import numpy as np
import torch


class Batch(NamedTuple):
    """One training batch: left-padded ``inputs`` and ``targets`` (B, L); ``masked`` flags the
    positions a cloze backbone must fill in; ``times`` holds the inputs' timestamps when known."""
    inputs: torch.Tensor
    targets: torch.Tensor
    masked: torch.Tensor | None = None
    times: torch.Tensor | None = None


def pad_left(seqs: Sequence[np.ndarray], max_len: int) -> torch.Tensor:
    """The last ``max_len`` items of each sequence, left-padded with 0, as a (B, max_len) tensor."""
    out = np.zeros((len(seqs), max_len), dtype=np.int64)
    for row, s in enumerate(seqs):
        tail = s[-max_len:]
        if len(tail):
            out[row, max_len - len(tail):] = tail
    return torch.from_numpy(out)


class BucketedBatches:
    """Shuffled, length-bucketed batches of aligned left-padded ``inputs`` and ``targets``.

    Each epoch is shuffled with a generator seeded by ``(seed, epoch)``, so a resumed run sees the
    same batches. Within each pool of ``pool`` batches, rows of similar length go together and the
    all-padding columns are trimmed, which saves most of the work on short-history datasets.
    ``times`` (aligned with ``inputs``) travels with the rows when given.
    """

    def __init__(self, inputs: torch.Tensor, targets: torch.Tensor, batch_size: int, seed: int,
                 pool: int = 32, times: torch.Tensor | None = None):
        self.inputs, self.targets, self.times = inputs, targets, times
        self.lengths = (inputs > 0).sum(dim=1)
        self.batch_size, self.seed, self.pool = batch_size, seed, pool

    def __len__(self) -> int:
        return -(-len(self.inputs) // self.batch_size)

    @property
    def num_targets(self) -> int:
        return int((self.targets > 0).sum())

    def pairs(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]]:
        gen = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        order = torch.randperm(len(self.inputs), generator=gen)
        batches = []
        step = self.batch_size * self.pool
        for start in range(0, len(order), step):
            chunk = order[start:start + step]
            chunk = chunk[torch.argsort(self.lengths[chunk], stable=True)]
            batches += list(chunk.split(self.batch_size))
        for k in torch.randperm(len(batches), generator=gen).tolist():
            idx = batches[k]
            if self.times is None:
                yield *trim_padding(self.inputs[idx], self.targets[idx]), None
            else:
                yield trim_padding(self.inputs[idx], self.targets[idx], self.times[idx])


class NextItemBatches(BucketedBatches):
    """Training pairs for next-item prediction at every position.

    For a history ``s`` the input is ``s[:-1]`` and the target ``s[1:]`` (both left-padded to
    ``max_len``); histories of one item give no pair and are skipped. ``times``, aligned with
    ``histories``, gives each input its timestamp. Yields :class:`Batch` es.
    """

    def __init__(self, histories: Sequence[np.ndarray], max_len: int, batch_size: int, seed: int,
                 pool: int = 32, times: Sequence[np.ndarray] | None = None):
        keep = [k for k, s in enumerate(histories) if len(s) >= 2]
        stamps = None if times is None else pad_left([times[k][:-1] for k in keep], max_len)
        super().__init__(pad_left([histories[k][:-1] for k in keep], max_len),
                         pad_left([histories[k][1:] for k in keep], max_len), batch_size, seed,
                         pool, stamps)

    def epoch(self, epoch: int) -> Iterator[Batch]:
        for inputs, targets, times in self.pairs(epoch):
            yield Batch(inputs, targets, None, times)


def trim_padding(seqs: torch.Tensor, *others: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Drop the leading columns in which every row of ``seqs`` and of the aligned ``others`` is
    zero (positions count from each row's first item, so the backbones' outputs do not change)."""
    used = seqs > 0
    for t in others:
        used = used | (t != 0)
    filled = used.any(dim=0).nonzero()
    start = int(filled[0]) if len(filled) else seqs.shape[1] - 1
    return tuple(t[:, start:] for t in (seqs, *others))


class ClozeBatches(BucketedBatches):
    """Training examples for a cloze (masked-item) backbone such as BERT4Rec.

    Each history (its last ``max_len`` items) has every item masked with probability
    ``mask_ratio`` (at least one per history); with probability ``last_only`` a history instead
    has only its last item masked, the case met at evaluation. Yields ``(inputs, targets, masked)``:
    masked positions have input id 0 and the hidden item as target; other targets are 0.
    """

    def __init__(self, histories: Sequence[np.ndarray], max_len: int, batch_size: int, seed: int,
                 mask_ratio: float = 0.2, last_only: float = 0.1, pool: int = 32,
                 times: Sequence[np.ndarray] | None = None):
        keep = [k for k, s in enumerate(histories) if len(s) >= 1]
        items = pad_left([histories[k] for k in keep], max_len)
        stamps = None if times is None else pad_left([times[k] for k in keep], max_len)
        super().__init__(items, items, batch_size, seed, pool, stamps)
        self.mask_ratio, self.last_only = mask_ratio, last_only

    def epoch(self, epoch: int) -> Iterator[Batch]:
        gen = torch.Generator().manual_seed(self.seed * 100_003 + epoch + 7)
        for inputs, _, times in self.pairs(epoch):
            real = inputs > 0
            masked = (torch.rand(inputs.shape, generator=gen) < self.mask_ratio) & real
            last_only = torch.rand(len(inputs), generator=gen) < self.last_only
            none = ~masked.any(dim=1)
            masked[last_only | none] = False
            masked[last_only | none, -1] = True               # left padding: the last item is real
            targets = torch.where(masked, inputs, torch.zeros_like(inputs))
            yield Batch(inputs.masked_fill(masked, 0), targets, masked, times)


def sample_negatives(gen: torch.Generator, num_items: int, shape: tuple[int, ...],
                     device: torch.device | str = "cpu") -> torch.Tensor:
    """Uniform item ids in ``1..num_items`` (never padding) drawn from an explicit generator, on
    the generator's device (a CUDA generator draws them on the card: no copy, no wait)."""
    return torch.randint(1, num_items + 1, shape, generator=gen, device=gen.device).to(device)
