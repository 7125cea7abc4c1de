"""Full-ranking evaluation: every history is scored against all items."""
from __future__ import annotations

import numpy as np
import torch

from .batching import pad_left, trim_padding
from .data import SequenceData
from .metrics import ranking_metrics, target_ranks
from .model import SequentialRecommender


@torch.no_grad()
def rank_targets(model: SequentialRecommender, data: SequenceData, split: str, *, max_len: int,
                 batch_size: int = 1024, exclude_history: bool = False,
                 device: torch.device | str = "cpu") -> np.ndarray:
    """0-based rank of each user's ``split`` target among all N items (padding never ranked).
    With ``exclude_history`` the items already in a history are masked, except the target."""
    was_training = model.training
    model.eval()
    histories, targets = data.eval_pairs(split)
    table = model.table().to(device)
    ranks = []
    for start in range(0, len(histories), batch_size):
        hist = histories[start:start + batch_size]
        seqs, = trim_padding(pad_left(hist, max_len))
        seqs = seqs.to(device)
        tgt = torch.as_tensor(targets[start:start + batch_size], device=device)
        scores = model.scores(seqs, table)
        if exclude_history:
            for row, h in enumerate(hist):
                seen = torch.as_tensor(h[h != tgt[row].item()], device=device)
                scores[row, seen] = -torch.inf
        ranks.append(target_ranks(scores, tgt).cpu())
    model.train(was_training)
    return torch.cat(ranks).numpy()


def evaluate(model: SequentialRecommender, data: SequenceData, split: str, **kwargs) -> dict[str, float]:
    """HR@{10,20} and NDCG@{10,20} of a split under full ranking."""
    return ranking_metrics(rank_targets(model, data, split, **kwargs))
