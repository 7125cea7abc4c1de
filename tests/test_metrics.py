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


def test_both_protocols_from_one_pass_by_hand():
    """Unmasked rank = masked rank + distinct history items scored at least as high as the target;
    a target that repeats a history item stays rankable, and a repeated history item counts once."""
    from spectran_tutorial.evaluate import rank_both
    scores = torch.tensor([[0.0, 0.9, 0.8, 0.7, 0.1, 0.75],
                           [0.0, 0.9, 0.8, 0.7, 0.1, 0.75],
                           [0.0, 0.2, 0.9, 0.7, 0.7, 0.1]])
    # equal lengths keep the rows in order (batches are sorted by history length)
    histories = [np.array([1, 2, 1, 2]),    # seen 1 and 2 (above target 3); unseen 5 is above too
                 np.array([1, 3, 4, 1]),    # target 3 repeats a history item; 1 is seen twice
                 np.array([4, 2, 4, 2])]    # 4 ties with target 3: a tie counts against the target
    targets = np.array([3, 3, 3])
    ranks = rank_both(histories, targets, lambda seqs: scores[: len(seqs)].clone(), batch_size=8)
    assert ranks.unmasked.tolist() == [3, 3, 2]
    assert ranks.masked.tolist() == [1, 2, 0]
    # a target below every seen item: masking moves it up by exactly the number of seen items
    low = rank_both([np.array([1, 2, 3])], np.array([4]), lambda seqs: scores[:1].clone())
    assert (low.unmasked - low.masked).tolist() == [3]


def test_popularity_buckets_have_equal_sizes_and_rising_bounds(office_small):
    from spectran_tutorial.evaluate import popularity_buckets
    bucket, bounds = popularity_buckets(office_small, "test", buckets=5)
    sizes = np.bincount(bucket, minlength=5)
    assert sizes.max() - sizes.min() <= 1 and sizes.sum() == office_small.num_users
    lows, highs = zip(*bounds)
    assert list(lows) == sorted(lows) and list(highs) == sorted(highs) and highs[-1] > lows[0]
    pop = office_small.item_popularity()[office_small.eval_pairs("test")[1]]
    assert pop[bucket == 0].max() <= pop[bucket == 4].min()


def test_no_test_target_repeats_its_history(data_dir):
    """Why masking the history is harmless here: in these 5-core datasets the held-out item is
    never one the user already had, so masking removes only wrong answers."""
    from spectran_tutorial.data import load_dataset
    for name in ("amazon-office", "amazon-beauty"):
        data = load_dataset(name, data_dir)
        for split in ("valid", "test"):
            hist, tgt = data.eval_pairs(split)
            assert not any(t in set(h.tolist()) for h, t in zip(hist, tgt)), (name, split)
