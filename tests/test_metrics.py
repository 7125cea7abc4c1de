import math

import numpy as np
import pytest
import torch

from spectran_tutorial.metrics import ranking_metrics, target_ranks


def test_ranks_by_hand():
    scores = torch.tensor([[-math.inf, 0.9, 0.1, 0.5, 0.3],     # target 3 -> one item above: rank 1
                           [-math.inf, 0.2, 0.8, 0.1, 0.0],     # target 2 -> rank 0
                           [-math.inf, 0.5, 0.5, 0.5, 0.5]])    # all tied: the worst rank, 3
    ranks = target_ranks(scores, torch.tensor([3, 2, 4]))
    assert ranks.tolist() == [1, 0, 3]


def test_metrics_by_hand():
    ranks = np.array([0, 1, 9, 10, 19, 25])
    m = ranking_metrics(ranks)
    assert m["hr@10"] == pytest.approx(3 / 6)
    assert m["hr@20"] == pytest.approx(5 / 6)
    expected10 = (1 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(11)) / 6
    expected20 = expected10 + (1 / math.log2(12) + 1 / math.log2(21)) / 6
    assert m["ndcg@10"] == pytest.approx(expected10)
    assert m["ndcg@20"] == pytest.approx(expected20)


def test_mask_history_keeps_the_target_and_hides_seen_items():
    from spectran_tutorial.evaluate import mask_history
    scores = torch.tensor([[0.0, 0.9, 0.8, 0.7, 0.1],
                           [0.0, 0.9, 0.8, 0.7, 0.1]])
    history = torch.tensor([[0, 1, 2],       # seen items 1 and 2; target 3
                            [1, 3, 4]])      # the target 3 repeats a history item: it stays rankable
    mask_history(scores, history, torch.tensor([3, 3]))
    assert target_ranks(scores, torch.tensor([3, 3])).tolist() == [0, 1]
    assert torch.equal(scores[0], torch.tensor([-math.inf, -math.inf, -math.inf, 0.7, 0.1]))


def test_no_test_target_repeats_its_history(data_dir):
    """Why masking the history is harmless here: in these 5-core datasets the held-out item is
    never one the user already had, so masking removes only wrong answers."""
    from spectran_tutorial.data import load_dataset
    for name in ("amazon-office", "amazon-beauty"):
        data = load_dataset(name, data_dir)
        for split in ("valid", "test"):
            hist, tgt = data.eval_pairs(split)
            assert not any(t in set(h.tolist()) for h, t in zip(hist, tgt)), (name, split)
