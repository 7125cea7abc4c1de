"""Full-ranking evaluation: every history is scored against all items, under two protocols.

* ``unmasked``: the target is ranked among all items, including those already in the history.
  This is what AlphaFuse's evaluation (the framework the SpecTran paper's baselines come from)
  and RecBole 1.2.1 (for sequential models) compute.
* ``masked``: the items of the history (other than the target) are removed before ranking, as the
  original SASRec code's sampled evaluation does for its negatives. It only removes wrong
  answers when no target repeats a history item, so it raises every metric.

Both come from one ranking pass: the unmasked rank of a target is its masked rank plus the number
of (distinct) history items scored at least as high as the target.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .batching import pad_left, trim_padding
from .data import SequenceData
from .metrics import ranking_metrics, target_ranks
from .model import SequentialRecommender

PROTOCOLS = ("masked", "unmasked")
POPULARITY_BUCKETS = 5


@dataclass
class Ranks:
    """0-based ranks of each target under both protocols (``unmasked >= masked``)."""
    masked: np.ndarray
    unmasked: np.ndarray

    def get(self, protocol: str) -> np.ndarray:
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}, not {protocol!r}")
        return getattr(self, protocol)


def history_above_target(scores: torch.Tensor, history: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """How many distinct items of each (left-padded) history, other than the target and the
    padding, score at least as high as the target: what masking the history removes from its rank."""
    in_history = torch.zeros_like(scores, dtype=torch.bool)
    in_history.scatter_(1, history, True)
    in_history[:, 0] = False
    in_history.scatter_(1, targets[:, None], False)
    return ((scores >= scores.gather(1, targets[:, None])) & in_history).sum(dim=1)


def rank_both(histories: list[np.ndarray], targets: np.ndarray, score, *, max_len: int = 50,
              batch_size: int = 1024, device: torch.device | str = "cpu",
              times: list[np.ndarray] | None = None) -> Ranks:
    """Ranks of each target among all items, for any recommender given as
    ``score(seqs) -> (B, N + 1)`` on left-padded histories (column 0, padding, is never ranked);
    with ``times`` (aligned with ``histories``) the call is ``score(seqs, times)``.
    Histories of similar length share a batch, so little padding is computed. The masked rank
    removes the items of the whole history (not only its last ``max_len``), except the target."""
    order = np.argsort([min(len(h), max_len) for h in histories], kind="stable")
    unmasked = torch.empty(len(histories), dtype=torch.long)
    masked = torch.empty(len(histories), dtype=torch.long)
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        hist = [histories[i] for i in idx]
        tgt = torch.as_tensor(targets[idx], device=device)
        if times is None:
            seqs, = trim_padding(pad_left(hist, max_len))
            scores = score(seqs.to(device))
        else:
            seqs, stamps = trim_padding(pad_left(hist, max_len), pad_left([times[i] for i in idx], max_len))
            scores = score(seqs.to(device), stamps.to(device))
        scores[:, 0] = -torch.inf
        full = target_ranks(scores, tgt)
        above = history_above_target(scores, pad_left(hist, max(len(h) for h in hist)).to(device), tgt)
        where = torch.from_numpy(idx)
        unmasked[where] = full.cpu()
        masked[where] = (full - above).cpu()
    return Ranks(masked.numpy(), unmasked.numpy())


def rank_all(histories: list[np.ndarray], targets: np.ndarray, score, *, protocol: str = "masked",
             **kwargs) -> np.ndarray:
    """The ranks of :func:`rank_both` under one ``protocol``."""
    return rank_both(histories, targets, score, **kwargs).get(protocol)


@torch.no_grad()
def rank_targets(model: SequentialRecommender, data: SequenceData, split: str, *, max_len: int,
                 batch_size: int = 1024, device: torch.device | str = "cpu") -> Ranks:
    """Ranks of each user's ``split`` target under full ranking by ``model`` (see :func:`rank_both`)."""
    was_training = model.training
    model.eval()
    table = model.table().to(device)
    histories, targets = data.eval_pairs(split)
    times = data.eval_times(split) if model.uses_time else None
    ranks = rank_both(histories, targets, lambda seqs, *t: model.scores(seqs, table, *t),
                      max_len=max_len, batch_size=batch_size, device=device, times=times)
    model.train(was_training)
    return ranks


def evaluate(model: SequentialRecommender, data: SequenceData, split: str, **kwargs) -> dict[str, dict]:
    """HR@{10,20} and NDCG@{10,20} of a split under full ranking, per protocol:
    ``{"masked": {...}, "unmasked": {...}}``."""
    ranks = rank_targets(model, data, split, **kwargs)
    return {p: ranking_metrics(ranks.get(p)) for p in PROTOCOLS}


def popularity_buckets(data: SequenceData, split: str = "test", buckets: int = POPULARITY_BUCKETS):
    """Split the ``split`` targets into ``buckets`` groups of equal size by the training popularity
    of the target item (rarest first; ties in popularity are broken by item id, so one item's
    targets stay together except at a bucket's edge). Returns the bucket of each target and, per
    bucket, the smallest and largest popularity it holds."""
    counts = data.item_popularity()
    _, targets = data.eval_pairs(split)
    pop = counts[targets]
    buckets = max(1, min(buckets, len(targets)))     # a tiny dataset gets fewer buckets
    order = np.lexsort((targets, pop))
    bucket = np.empty(len(targets), dtype=np.int64)
    for b, part in enumerate(np.array_split(order, buckets)):
        bucket[part] = b
    bounds = [[int(pop[bucket == b].min()), int(pop[bucket == b].max())] for b in range(buckets)]
    return bucket, bounds


def metrics_by_bucket(ranks: Ranks, bucket: np.ndarray, bounds: list) -> dict:
    """Per-bucket metrics under both protocols, with the buckets' popularity bounds and sizes."""
    out = {"popularity": bounds, "targets": [int((bucket == b).sum()) for b in range(len(bounds))]}
    for p in PROTOCOLS:
        per = [ranking_metrics(ranks.get(p)[bucket == b]) for b in range(len(bounds))]
        out[p] = {m: [row[m] for row in per] for m in per[0]}
    return out


def popularity_ranks(data: SequenceData, split: str, protocol: str = "masked") -> np.ndarray:
    """Ranks given by the most-popular-items recommender (training counts): the floor any
    sequential model must clear."""
    counts = torch.as_tensor(data.item_popularity(), dtype=torch.float32)
    histories, targets = data.eval_pairs(split)
    return rank_all(histories, targets, lambda seqs: counts.repeat(len(seqs), 1), protocol=protocol)


def similarity_ranks(data: SequenceData, item_vectors: torch.Tensor, split: str,
                     protocol: str = "masked") -> np.ndarray:
    """Ranks given by a training-free recommender that scores each item by its cosine
    similarity to the last item of the history, in the space of ``item_vectors`` (N, k):
    a probe of how much next-item signal a set of text components carries."""
    vecs = torch.nn.functional.normalize(item_vectors.float(), dim=1)
    vecs = torch.cat([vecs.new_zeros(1, vecs.shape[1]), vecs])
    histories, targets = data.eval_pairs(split)
    return rank_all(histories, targets, lambda seqs: vecs[seqs[:, -1]] @ vecs.T, protocol=protocol)
