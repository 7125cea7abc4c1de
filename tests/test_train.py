import json

import pytest
import torch

from spectran_tutorial.cli import main
from spectran_tutorial.config import Config
from spectran_tutorial.text import TextMatrix
from spectran_tutorial.train import Trainer, build_model, train

from conftest import check_record


def small_config(method="id", **train_fields):
    cfg = Config().replace("data", dataset="amazon-office", max_users=300)
    cfg = cfg.replace("model", dim=16)
    cfg = cfg.replace("method", name=method)
    return cfg.replace("train", **{"epochs": 2, "patience": 5, "batch_size": 64, **train_fields})


def fake_text(data):
    gen = torch.Generator().manual_seed(1)
    return TextMatrix(torch.randn(data.num_items, 32, generator=gen) + 1.0, "synthetic", 0, False)


@pytest.mark.parametrize("loss", ["ce", "infonce", "bce"])
def test_training_lowers_the_loss(office_small, loss):
    cfg = small_config(loss=loss, epochs=3)
    torch.manual_seed(0)
    model = build_model(cfg, office_small)
    trainer = Trainer(cfg, office_small, model, torch.device("cpu"), progress=False, log=lambda *_: None)
    losses = [trainer.train_epoch(e) for e in (1, 2, 3)]
    assert losses[-1] < losses[0]


def test_run_is_deterministic_and_records_everything(office_small, tmp_path):
    cfg = small_config(method="spectran")
    text = fake_text(office_small)
    a = train(cfg, data=office_small, text=text, run_dir=None, progress=False, log=lambda *_: None)
    b = train(cfg, data=office_small, text=text, run_dir=None, progress=False, log=lambda *_: None)
    assert a["test"] == b["test"] and a["valid"] == b["valid"]
    check_record(a, office_small.num_users)
    for key in ("config", "seed", "package_version", "git_commit", "device", "torch_version", "epochs",
                "seconds_per_epoch", "encoder", "text_dim", "text_digest", "cpu_capability"):
        assert key in a
    assert a["diagnostics"]["effective_rank"] > 1
    assert a["diagnostics"]["attention_nonzero"] > 0        # the attention is still alive after training


class Killed(Exception):
    pass


def test_killed_run_resumes_to_the_same_result(office_small, tmp_path):
    """A run killed during epoch 3 and restarted ends exactly as an uninterrupted run."""
    cfg = small_config(epochs=4)
    quiet = dict(data=office_small, progress=False)
    straight = train(cfg, run_dir=tmp_path / "a", log=lambda *_: None, **quiet)

    def killer(line):
        if line.startswith("epoch   3"):
            raise Killed

    with pytest.raises(Killed):
        train(cfg, run_dir=tmp_path / "b", log=killer, **quiet)
    assert (tmp_path / "b" / "checkpoint.pt").is_file() and not (tmp_path / "b" / "result.json").exists()
    logs = []
    resumed = train(cfg, run_dir=tmp_path / "b", log=logs.append, **quiet)
    assert "resuming" in logs[0] and "after epoch 2" in logs[0]
    assert resumed["epochs"] == 4
    assert resumed["history"] == straight["history"]
    assert resumed["test"] == straight["test"]


def test_finished_run_is_not_repeated(office_small, tmp_path):
    logs = []
    first = train(small_config(epochs=1), run_dir=tmp_path, data=office_small, progress=False, log=logs.append)
    again = train(small_config(epochs=1), run_dir=tmp_path, data=office_small, progress=False, log=logs.append)
    assert again["test"] == first["test"] and any("already finished" in line for line in logs)


def test_cli_trains_and_writes_json(data_dir, tmp_path, capsys):
    out = tmp_path / "result.json"
    code = main(["train", "--dataset", "amazon-office", "--method", "id", "--data-dir", str(data_dir),
                 "--max-users", "200", "--epochs", "1", "--dim", "16", "--quiet",
                 "--runs-dir", str(tmp_path / "runs"), "--out", str(out)])
    assert code == 0
    result = json.loads(out.read_text())
    assert set(result["test"]) == {"ndcg@10", "hr@10", "ndcg@20", "hr@20"}
    assert result["config"]["data"]["max_users"] == 200


@pytest.mark.parametrize("argv, message", [
    (["--dataset", "amazon-nope"], "unknown dataset"),
    (["--data-dir", "/nonexistent/folder"], "does not exist"),
    (["--set", "method.nonsense=1"], "no config field"),
    (["--method", "spectran-no-attn", "--set", "method.pe_init=pca"], "fixes pe_init='whiten'"),
])
def test_cli_errors_are_one_line(argv, message, data_dir, capsys, tmp_path):
    base = ["train", "--data-dir", str(data_dir), "--runs-dir", str(tmp_path)]
    if "--data-dir" in argv:
        base = ["train", "--runs-dir", str(tmp_path)]
    code = main(base + argv)
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err


def test_evaluation_gives_both_protocols_and_selects_on_the_configured_one(office_small):
    from spectran_tutorial.evaluate import rank_targets
    torch.manual_seed(0)
    model = build_model(small_config(), office_small)
    ranks = rank_targets(model, office_small, "test", max_len=50)
    assert (ranks.masked <= ranks.unmasked).all() and (ranks.masked < ranks.unmasked).any()
    assert Config().train.select_protocol == "masked"
    assert Config.from_dict({"train": {"exclude_history": False}}).train.select_protocol == "unmasked"


def test_experiment_refuses_a_setting_that_a_method_name_contradicts(data_dir, tmp_path, capsys):
    argv = ["experiment", "--data-dir", str(data_dir), "--datasets", "amazon-office", "--methods", "spectran",
            "spectran-no-attn", "--seeds", "0", "--set", "method.attention=true",
            "--results", str(tmp_path / "r.jsonl"), "--runs-dir", str(tmp_path / "runs")]
    assert main(argv) == 2
    assert "fixes attention=False" in capsys.readouterr().err
    assert not (tmp_path / "r.jsonl").exists()


def test_a_loss_that_becomes_nan_stops_training_with_one_line(office_small):
    cfg = small_config()
    trainer = Trainer(cfg, office_small, build_model(cfg, office_small), torch.device("cpu"), progress=False)
    with torch.no_grad():
        trainer.model.table.ids[5].fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="became nan at epoch 1"):
        trainer.train_epoch(1)


@pytest.mark.parametrize("method", ["id", "spectran", "llmesr"])
def test_bf16_autocast_trains_close_to_fp32(office_small, method):
    text = fake_text(office_small).matrix if method != "id" else None
    losses = {}
    for precision in ("fp32", "bf16"):
        cfg = small_config(method=method, precision=precision)
        torch.manual_seed(0)
        trainer = Trainer(cfg, office_small, build_model(cfg, office_small, text), torch.device("cpu"), progress=False)
        losses[precision] = trainer.train_epoch(1)
    assert losses["bf16"] == pytest.approx(losses["fp32"], rel=0.02)
    assert Config().replace("train", precision="bf16").variant() == "precision=bf16"


def test_a_finished_run_loads_back_as_the_trained_model(office_small, tmp_path):
    from spectran_tutorial.errors import SpectranError
    from spectran_tutorial.train import load_trained
    cfg = small_config(method="spectran")
    text = fake_text(office_small)
    train(cfg, data=office_small, text=text, run_dir=tmp_path / "run", progress=False, log=lambda *_: None)
    saved = torch.load(tmp_path / "run" / "model.pt", weights_only=True)
    model = load_trained(tmp_path / "run", data=office_small, text=text)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in saved.items())
    with torch.no_grad():
        assert model.table.spectral_weights().shape == (16, text.matrix.shape[1])
    with pytest.raises(SpectranError, match="not a finished run"):
        load_trained(tmp_path / "nothing-here")


def test_a_stored_record_names_no_folder_of_this_machine(office_small, tmp_path, data_dir):
    cfg = small_config().replace("data", data_dir=str(data_dir))
    row = train(cfg, data=office_small, run_dir=None, progress=False, log=lambda *_: None)
    assert row["config"]["data"]["data_dir"] is None
    assert str(data_dir) not in json.dumps(row) and str(tmp_path) not in json.dumps(row)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["id", "spectran"])
def test_a_compiled_forward_pass_trains_as_the_eager_one(office_small, method):
    """``train.compile`` compiles the table and the backbone; without dropout (whose compiled masks
    come from another random stream) the losses of an epoch and the trained weights match eager."""
    text = fake_text(office_small).matrix if method != "id" else None
    from torch._dynamo.utils import counters
    counters.clear()
    trained = {}
    for mode in ("none", "default"):
        cfg = small_config(method=method, compile=mode, batch_size=128)
        cfg = cfg.replace("model", dropout=0.0, emb_dropout=0.0)
        torch.manual_seed(0)
        trainer = Trainer(cfg, office_small, build_model(cfg, office_small, text), torch.device("cpu"), progress=False)
        loss = trainer.train_epoch(1)
        trained[mode] = (loss, trainer.model.table().detach())
        assert (counters["stats"]["unique_graphs"] > 0) == (mode != "none")    # compiled only when asked
    assert trained["default"][0] == pytest.approx(trained["none"][0], rel=1e-4)
    assert torch.allclose(trained["default"][1], trained["none"][1], atol=1e-4)
    assert Config().replace("train", compile="reduce-overhead").variant() == "compile=reduce-overhead"


def test_a_deadline_without_a_run_folder_is_refused_before_any_work(office_small):
    from spectran_tutorial.errors import ConfigError
    with pytest.raises(ConfigError, match="a deadline needs a run folder"):
        train(small_config(), data=office_small, run_dir=None, progress=False, deadline=1e12)
