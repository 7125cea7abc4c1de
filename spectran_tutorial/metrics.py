"""Ranking metrics from 0-based ranks (rank 0 = the target scored highest)."""
from __future__ import annotations

import numpy as np
import torch

CUTOFFS = (10, 20)


def target_ranks(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """0-based rank of each target among all items; ties count against the target (a model that
    scores everything equally gets the worst rank, never the best)."""
    target_scores = scores.gather(1, targets[:, None])
    return (scores >= target_scores).sum(dim=1) - 1


def hit_rate(ranks: np.ndarray, k: int) -> float:
    return float(np.mean(ranks < k))


def ndcg(ranks: np.ndarray, k: int) -> float:
    """With a single relevant item, NDCG@k = 1 / log2(rank + 2) if rank < k else 0."""
    gains = np.where(ranks < k, 1.0 / np.log2(ranks + 2.0), 0.0)
    return float(np.mean(gains))


def ranking_metrics(ranks: np.ndarray, cutoffs=CUTOFFS) -> dict[str, float]:
    ranks = np.asarray(ranks)
    out = {}
    for k in cutoffs:
        out[f"ndcg@{k}"] = ndcg(ranks, k)
        out[f"hr@{k}"] = hit_rate(ranks, k)
    return out
