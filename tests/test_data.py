import numpy as np
import pytest
import torch

from spectran_tutorial.batching import NextItemBatches, pad_left, trim_padding
from spectran_tutorial.data import k_core, load_dataset, resolve_data_dir
from spectran_tutorial.errors import DataError

from conftest import write_dataset


def test_load_reindexes_orders_and_drops_short_users(tiny_dir):
    data = load_dataset("toy", tiny_dir)
    assert data.item_ids == ["a", "b", "c", "d"]          # 1..4 in sorted raw order, 0 = padding
    assert data.user_ids == ["u1", "u2"]                   # u3 (2 interactions) dropped
    assert data.stats["dropped_short_users"] == 1
    assert data.sequences[1].tolist() == [1, 2, 3]         # sorted by `order`, not by file line
    assert data.items[3]["brand"] == "Acme"


def test_leave_one_out_split(tiny_dir):
    data = load_dataset("toy", tiny_dir)
    assert [s.tolist() for s in data.train_sequences()] == [[1, 2], [1]]
    hist, tgt = data.eval_pairs("valid")
    assert [h.tolist() for h in hist] == [[1, 2], [1]] and tgt.tolist() == [3, 2]
    hist, tgt = data.eval_pairs("test")
    assert [h.tolist() for h in hist] == [[1, 2, 3], [1, 2]] and tgt.tolist() == [4, 3]


def test_real_dataset_statistics(data_dir):
    data = load_dataset("amazon-office", data_dir)
    assert (data.num_users, data.num_items, data.stats["interactions"]) == (4905, 2420, 53258)
    assert data.stats["dropped_short_users"] == 0


def test_missing_data_dir_names_the_fix(tmp_path, monkeypatch):
    monkeypatch.delenv("SPECTRAN_DATA", raising=False)
    with pytest.raises(DataError, match="does not exist.*SPECTRAN_DATA"):
        resolve_data_dir(tmp_path / "nowhere")


def test_environment_variable_is_used(tiny_dir, monkeypatch):
    monkeypatch.setenv("SPECTRAN_DATA", str(tiny_dir))
    assert load_dataset("toy").num_users == 2


def test_unknown_dataset(tiny_dir):
    with pytest.raises(DataError, match="unknown dataset 'amazon-nope'.*amazon-beauty"):
        load_dataset("amazon-nope", tiny_dir)


def test_known_but_absent_dataset_says_how_to_download(tiny_dir):
    with pytest.raises(DataError, match="download --dataset amazon-toys"):
        load_dataset("amazon-toys", tiny_dir)


def test_malformed_line_is_named(tmp_path):
    folder = write_dataset(tmp_path, "bad", [("u1", "a", 0), ("u1", "b", "x")])
    with pytest.raises(DataError, match=r"interactions.tsv:3: order must be an integer"):
        load_dataset("bad", tmp_path)
    (folder / "interactions.tsv").write_text("user_id\titem_id\torder\nu1\ta\n")
    with pytest.raises(DataError, match=r"interactions.tsv:2: expected 3 tab-separated fields"):
        load_dataset("bad", tmp_path)


def test_empty_files(tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    (folder / "interactions.tsv").write_text("")
    with pytest.raises(DataError, match="interactions.tsv: the file is empty"):
        load_dataset("empty", tmp_path)
    (folder / "interactions.tsv").write_text("user_id\titem_id\torder\n")
    with pytest.raises(DataError, match="no interactions"):
        load_dataset("empty", tmp_path)


def test_malformed_items_jsonl(tiny_dir):
    (tiny_dir / "toy" / "items.jsonl").write_text('{"item_id": "a"}\n{oops\n')
    with pytest.raises(DataError, match=r"items.jsonl:2: not valid JSON"):
        load_dataset("toy", tiny_dir)


def test_all_users_too_short(tmp_path):
    write_dataset(tmp_path, "short", [("u1", "a", 0), ("u1", "b", 1)])
    with pytest.raises(DataError, match="no user has at least 3 interactions"):
        load_dataset("short", tmp_path)


def test_k_core_is_a_fixed_point():
    users = {"u1": [(0, "a"), (1, "b")], "u2": [(0, "a"), (1, "b")], "u3": [(0, "a"), (1, "c")]}
    kept = k_core(users, k=2)
    assert sorted(kept) == ["u1", "u2"]                     # dropping c leaves u3 with one item
    assert k_core(kept, k=2) == kept


def test_pad_left_keeps_the_most_recent_items():
    out = pad_left([np.array([1, 2, 3, 4]), np.array([5])], max_len=3)
    assert out.tolist() == [[2, 3, 4], [0, 0, 5]]


def test_trim_padding_drops_only_all_padding_columns():
    x = torch.tensor([[0, 0, 1, 2], [0, 0, 0, 3]])
    (y,) = trim_padding(x)
    assert y.tolist() == [[1, 2], [0, 3]]


def test_batches_cover_every_target_once_and_are_seeded(office_small):
    hist = office_small.train_sequences()
    batches = NextItemBatches(hist, 50, 32, seed=3)
    seen = sum(int((t > 0).sum()) for _, t, *_ in batches.epoch(1))
    assert seen == batches.num_targets == sum(min(max(len(h) - 1, 0), 50) for h in hist)
    first = [x.tolist() for x, *_ in NextItemBatches(hist, 50, 32, seed=3).epoch(1)]
    again = [x.tolist() for x, *_ in NextItemBatches(hist, 50, 32, seed=3).epoch(1)]
    other = [x.tolist() for x, *_ in NextItemBatches(hist, 50, 32, seed=3).epoch(2)]
    assert first == again and first != other
    for x, y, *_ in batches.epoch(1):                          # targets are the inputs shifted by one
        valid = y > 0
        assert torch.equal(valid, x > 0)


def test_cloze_batches_hide_what_they_ask_for(office_small):
    from spectran_tutorial.batching import ClozeBatches
    hist = office_small.train_sequences()
    batches = ClozeBatches(hist, 50, 32, seed=0, mask_ratio=0.3, last_only=0.2)
    total = 0
    for inputs, targets, masked, _ in batches.epoch(1):
        assert torch.equal(masked, targets > 0)            # a target exactly where an item is masked
        assert torch.all(inputs[masked] == 0)              # and its id is hidden from the input
        assert torch.all(masked.any(dim=1))                # every history asks for at least one item
        total += int(masked.sum())
    assert 0.2 < total / batches.num_targets < 0.45


def test_timestamps_are_read_validated_and_split(tmp_path, data_dir):
    ml = load_dataset("ml-100k", data_dir, max_users=50)
    assert ml.timestamps is not None and [len(t) for t in ml.timestamps] == [len(s) for s in ml.sequences]
    assert all(np.all(np.diff(t) >= 0) for t in ml.timestamps)          # chronological
    assert [len(t) for t in ml.train_times()] == [len(s) for s in ml.train_sequences()]
    assert [len(t) for t in ml.eval_times("test")] == [len(h) for h in ml.eval_pairs("test")[0]]
    assert load_dataset("amazon-office", data_dir, max_users=20).timestamps is None
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "interactions.tsv").write_text("user_id\titem_id\torder\ttimestamp\nu\ti\t0\tsoon\n")
    with pytest.raises(DataError, match=r"interactions.tsv:2: timestamp must be a number"):
        load_dataset("bad", tmp_path)


def test_batches_carry_timestamps_with_their_items(data_dir):
    ml = load_dataset("ml-100k", data_dir, max_users=80)
    hist, times = ml.train_sequences(), ml.train_times()
    when = {(u, int(i)): int(t) for u, (s, ts) in enumerate(zip(hist, times)) for i, t in zip(s, ts)}
    pairs = set(when.items())
    for batch in NextItemBatches(hist, 20, 16, seed=0, times=times).epoch(1):
        assert batch.times.shape == batch.inputs.shape
        assert torch.all(batch.times[batch.inputs == 0] == 0)
        for row_items, row_times in zip(batch.inputs.tolist(), batch.times.tolist()):
            real = [(i, t) for i, t in zip(row_items, row_times) if i]
            assert any(all(((u, i), t) in pairs for i, t in real) for u in range(len(hist)))
