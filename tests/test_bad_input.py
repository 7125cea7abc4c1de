"""Bad input meets a one-line error naming the file or setting, or a console note with counts;
nothing is stored as finished."""
import json
import os

import numpy as np
import pytest
import torch

from spectran_tutorial.cli import main
from spectran_tutorial.config import Config
from spectran_tutorial.data import load_dataset
from spectran_tutorial.errors import ConfigError, DataError, SpectranError, TextError

from conftest import write_dataset


def _cli(argv, data_dir, tmp_path, capsys):
    code = main(["train", "--data-dir", str(data_dir), "--runs-dir", str(tmp_path / "runs"), "--quiet", *argv])
    out = capsys.readouterr()
    return code, out.err.strip()


@pytest.mark.parametrize("argv, setting", [
    (["--epochs", "-3"], "train.epochs=-3"),
    (["--epochs", "0"], "train.epochs=0"),
    (["--set", "model.dim=0"], "model.dim=0"),
    (["--max-users", "-5"], "data.max_users=-5"),
    (["--set", "data.max_len=0"], "data.max_len=0"),
    (["--set", "train.batch_size=0"], "train.batch_size=0"),
    (["--set", "train.lr=-1"], "train.lr=-1"),
    (["--set", "model.dropout=1.5"], "model.dropout=1.5"),
    (["--set", "train.select_protocol=other"], "train.select_protocol='other'"),
])
def test_nonsense_settings_are_refused_before_any_work(argv, setting, data_dir, tmp_path, capsys):
    code, err = _cli(argv, data_dir, tmp_path, capsys)
    assert code == 2 and err.startswith(f"error: {setting} is not allowed") and "\n" not in err
    assert not (tmp_path / "runs").exists()          # nothing started, nothing stored as finished


def test_experiment_checks_every_cell_before_the_first_runs(data_dir, tmp_path, capsys):
    argv = ["experiment", "--data-dir", str(data_dir), "--methods", "id", "--seeds", "0",
            "--set", "train.epochs=0", "--results", str(tmp_path / "r.jsonl"), "--runs-dir", str(tmp_path / "runs")]
    assert main(argv) == 2
    assert "train.epochs=0 is not allowed" in capsys.readouterr().err
    assert not (tmp_path / "r.jsonl").exists()


def _repeat_dataset(root, repeat_all=False, repeat_last=0):
    users = {f"u{u}": [f"i{(u * 7 + k) % 30}" for k in range(6)] for u in range(40)}
    rows = []
    for n, (u, items) in enumerate(users.items()):
        seq = list(items)
        if n < repeat_last:
            seq.append(seq[-1])                       # the last item again
        for k, i in enumerate(seq):
            rows += [(u, i, k)] * (2 if repeat_all else 1)
    write_dataset(root, "rep", rows)
    return users


@pytest.mark.parametrize("how", ["every line twice", "last item repeated"])
def test_repeated_interactions_are_dropped_and_counted(tmp_path, how):
    kwargs = {"repeat_all": True} if how == "every line twice" else {"repeat_last": 10}
    users = _repeat_dataset(tmp_path, **kwargs)
    said = []
    data = load_dataset("rep", tmp_path, log=said.append)
    expected = 240 if how == "every line twice" else 10
    assert data.stats["dropped_repeats"] == expected
    assert any(f"dropped {expected} repeated interactions" in line for line in said)
    for user, seq in zip(data.user_ids, data.sequences):
        assert [data.item_ids[i - 1] for i in seq] == users[user]     # the data as if never repeated
    _, targets = data.eval_pairs("test")
    hist, _ = data.eval_pairs("test")
    assert not any(t == h[-1] for h, t in zip(hist, targets))        # no target is its own history's last item


def test_short_users_are_counted_on_the_console(tiny_dir):
    said = []
    load_dataset("toy", tiny_dir, log=said.append)
    assert any("dropped 1 users with fewer than 3 interactions" in line for line in said)


def test_items_without_text_are_counted_on_the_console(tiny_dir, monkeypatch, tmp_path):
    from spectran_tutorial import text as textmod
    monkeypatch.setenv("SPECTRAN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(textmod, "encode", lambda texts, *a: np.ones((len(texts), 4), dtype=np.float32))
    said = []
    data = load_dataset("toy", tiny_dir, log=lambda *_: None)
    out = textmod.text_matrix(data, log=said.append)
    assert out.missing == 1 and any("1 of 4 items of toy have no text" in line for line in said)


def test_missing_text_error_names_the_raw_item_id(tiny_dir):
    from spectran_tutorial.config import TextConfig
    from spectran_tutorial.text import text_matrix
    data = load_dataset("toy", tiny_dir, log=lambda *_: None)
    with pytest.raises(TextError, match=r"1 of 4 items have no text .*item ids 'c'"):
        text_matrix(data, TextConfig(missing="error"))


def test_non_utf8_items_file_names_file_and_line(tiny_dir):
    path = tiny_dir / "toy" / "items.jsonl"
    path.write_bytes(path.read_bytes() + b'{"item_id": "e", "title": "Caf\xe9"}\n')
    with pytest.raises(DataError, match=r"items.jsonl:5: not UTF-8 text \(byte 0xe9"):
        load_dataset("toy", tiny_dir)


def test_bom_is_named(tiny_dir):
    path = tiny_dir / "toy" / "interactions.tsv"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    with pytest.raises(DataError, match=r"interactions.tsv:1: .*byte order mark \(BOM\)"):
        load_dataset("toy", tiny_dir)


def test_invalid_json_line_gives_the_whole_reason(tiny_dir):
    path = tiny_dir / "toy" / "items.jsonl"
    path.write_text(path.read_text() + '{"item_id": "e", "title": "x",}\n')
    with pytest.raises(DataError, match=r"items.jsonl:5: not valid JSON: .* at column \d+ \(line starts"):
        load_dataset("toy", tiny_dir)


def test_folder_without_interactions_names_the_file(tmp_path):
    (tmp_path / "amazon-office").mkdir()
    (tmp_path / "amazon-office" / "items.jsonl").write_text('{"item_id": "a"}\n')
    with pytest.raises(DataError, match=r"amazon-office/interactions.tsv: file not found.*items.jsonl"):
        load_dataset("amazon-office", tmp_path)


def test_empty_items_file_is_fine_for_a_method_without_text(tiny_dir, tmp_path):
    from spectran_tutorial.train import train
    (tiny_dir / "toy" / "items.jsonl").write_text("")
    said = []
    data = load_dataset("toy", tiny_dir, log=said.append)
    assert data.items is None and any("holds no items" in line for line in said)
    cfg = Config().replace("data", dataset="toy", data_dir=str(tiny_dir)).replace("model", dim=8)
    result = train(cfg.replace("train", epochs=1), run_dir=None, progress=False, log=lambda *_: None)
    assert result["epochs"] == 1
    with pytest.raises(TextError, match="no item text"):
        train(cfg.replace("method", name="pca"), run_dir=None, progress=False, log=lambda *_: None)


def test_llminit_select_wider_than_the_text_is_one_line(random_text):
    from spectran_tutorial.config import MethodConfig
    from spectran_tutorial.item_tables import build_item_table
    with pytest.raises(TextError, match="model.dim=32 columns of the text matrix, which has only 24"):
        build_item_table(MethodConfig(name="llminit-select"), 40, 32, random_text)


def test_encoder_that_cannot_be_loaded_is_one_line(monkeypatch):
    from spectran_tutorial.text import load_encoder
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(TextError, match=r"cannot load the text encoder 'nobody/no-such-encoder-xyz'"):
        load_encoder("nobody/no-such-encoder-xyz", progress=False)
    with pytest.raises(TextError, match=r"no such local folder"):
        load_encoder("./no/such/folder", progress=False)


def test_checkpoint_of_another_run_or_damaged_is_one_line(office_small, tmp_path):
    from spectran_tutorial.train import make_trainer
    cfg = Config().replace("model", dim=8).replace("train", epochs=1, batch_size=64)
    trainer = make_trainer(cfg, office_small, run_dir=tmp_path, log=lambda *_: None)
    trainer.key = "amazon-office/sasrec/id/s42/aaaaaaaaaa"
    trainer.save_checkpoint()
    other = make_trainer(cfg, office_small, run_dir=tmp_path, log=lambda *_: None)
    other.key = "amazon-office/sasrec/id/s42/bbbbbbbbbb"
    with pytest.raises(SpectranError, match="belongs to run amazon-office/sasrec/id/s42/aaaaaaaaaa"):
        other.load_checkpoint()
    wider = make_trainer(cfg.replace("model", dim=16), office_small, run_dir=tmp_path, log=lambda *_: None)
    with pytest.raises(SpectranError, match="holds a model of other shapes"):
        wider.load_checkpoint()
    (tmp_path / "checkpoint.pt").write_bytes(b"\x00" * 10)
    with pytest.raises(SpectranError, match="cannot read the checkpoint"):
        other.load_checkpoint()


def test_a_bug_keeps_its_traceback_and_debug_shows_input_errors(monkeypatch, capsys, data_dir, tmp_path):
    import spectran_tutorial.cli as cli

    def broken(args):
        raise ValueError("an internal bug")
    monkeypatch.setattr(cli, "cmd_datasets", broken)
    with pytest.raises(ValueError, match="an internal bug"):
        main(["datasets", "--data-dir", str(data_dir)])
    with pytest.raises(ConfigError):
        main(["--debug", "train", "--data-dir", str(data_dir), "--epochs", "0"])


def test_config_round_trip_restores_every_tuple_field():
    import dataclasses
    from spectran_tutorial.config import SECTIONS
    cfg = Config()
    back = Config.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert back == cfg
    for name, kind in SECTIONS.items():
        for f in dataclasses.fields(kind):
            if str(f.type).startswith("tuple"):
                assert isinstance(getattr(getattr(back, name), f.name), tuple), f"{name}.{f.name}"


def test_lock_claim_is_atomic_and_takes_over_a_dead_owner(tmp_path):
    from spectran_tutorial.experiment import _claim
    lock = tmp_path / "lock"
    assert _claim(lock) and lock.read_text() == str(os.getpid())     # never visible without its owner
    assert not _claim(lock)                                           # a live owner keeps it
    lock.write_text("999999999")                                      # an owner that no longer exists
    assert _claim(lock) and lock.read_text() == str(os.getpid())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lock"]     # no private files left behind
