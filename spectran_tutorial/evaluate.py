"""Full-ranking evaluation: every history is scored against all items."""
from __future__ import annotations

import numpy as np
import torch

from .batching import pad_left, trim_padding
from .data import SequenceData
from .metrics import ranking_metrics, target_ranks
from .model import SequentialRecommender


def mask_history(scores: torch.Tensor, history: torch.Tensor, targets: torch.Tensor) -> None:
    """Set the scores of items in each (left-padded) history to -inf, in place; the target keeps
    its score even if it occurs in the history, and padding stays -inf."""
    target_scores = scores.gather(1, targets[:, None])
    scores.scatter_(1, history, -torch.inf)
    scores.scatter_(1, targets[:, None], target_scores)
    scores[:, 0] = -torch.inf


def rank_all(histories: list[np.ndarray], targets: np.ndarray, score, *, max_len: int = 50,
             batch_size: int = 1024, exclude_history: bool = True,
             device: torch.device | str = "cpu", times: list[np.ndarray] | None = None) -> np.ndarray:
    """0-based rank of each target among all items, for any recommender given as
    ``score(seqs) -> (B, N + 1)`` on left-padded histories (column 0, padding, is never ranked);
    with ``times`` (aligned with ``histories``) the call is ``score(seqs, times)``.
    Histories of similar length share a batch, so little padding is computed. With
    ``exclude_history`` the items already in a history (all of it, not only the last ``max_len``)
    are masked, except the target."""
    order = np.argsort([min(len(h), max_len) for h in histories], kind="stable")
    ranks = torch.empty(len(histories), dtype=torch.long)
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
        if exclude_history:
            mask_history(scores, pad_left(hist, max(len(h) for h in hist)).to(device), tgt)
        ranks[torch.from_numpy(idx)] = target_ranks(scores, tgt).cpu()
    return ranks.numpy()


@torch.no_grad()
def rank_targets(model: SequentialRecommender, data: SequenceData, split: str, *, max_len: int,
                 batch_size: int = 1024, exclude_history: bool = True,
                 device: torch.device | str = "cpu") -> np.ndarray:
    """Ranks of each user's ``split`` target under full ranking by ``model`` (see :func:`rank_all`)."""
    was_training = model.training
    model.eval()
    table = model.table().to(device)
    histories, targets = data.eval_pairs(split)
    times = data.eval_times(split) if model.uses_time else None
    ranks = rank_all(histories, targets, lambda seqs, *t: model.scores(seqs, table, *t),
                     max_len=max_len, batch_size=batch_size, exclude_history=exclude_history,
                     device=device, times=times)
    model.train(was_training)
    return ranks


def evaluate(model: SequentialRecommender, data: SequenceData, split: str, **kwargs) -> dict[str, float]:
    """HR@{10,20} and NDCG@{10,20} of a split under full ranking."""
    return ranking_metrics(rank_targets(model, data, split, **kwargs))


def popularity_ranks(data: SequenceData, split: str, exclude_history: bool = True) -> np.ndarray:
    """Ranks given by the most-popular-items recommender (training counts): the floor any
    sequential model must clear."""
    counts = torch.as_tensor(data.item_popularity(), dtype=torch.float32)
    histories, targets = data.eval_pairs(split)
    return rank_all(histories, targets, lambda seqs: counts.repeat(len(seqs), 1),
                    exclude_history=exclude_history)


def similarity_ranks(data: SequenceData, item_vectors: torch.Tensor, split: str,
                     exclude_history: bool = True) -> np.ndarray:
    """Ranks given by a training-free recommender that scores each item by its cosine
    similarity to the last item of the history, in the space of ``item_vectors`` (N, k):
    a probe of how much next-item signal a set of text components carries."""
    vecs = torch.nn.functional.normalize(item_vectors.float(), dim=1)
    vecs = torch.cat([vecs.new_zeros(1, vecs.shape[1]), vecs])
    histories, targets = data.eval_pairs(split)
    return rank_all(histories, targets, lambda seqs: vecs[seqs[:, -1]] @ vecs.T,
                    exclude_history=exclude_history)
