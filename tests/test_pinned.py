"""The CPU results of the training loop are pinned: a faster loop must compute the same runs.

``tests/pinned/cpu-runs.json`` was written by ``scripts/pin_cpu_results.py`` before the GPU fast
path existed; the same cases trained now must give the same loss per epoch and the same metrics.
"""
import importlib.util
import json
import sys

import pytest
import torch

from conftest import REPO

spec = importlib.util.spec_from_file_location("pin_cpu_results", REPO / "scripts" / "pin_cpu_results.py")
pin = importlib.util.module_from_spec(spec)
spec.loader.exec_module(pin)
PINNED = json.loads(pin.PINNED.read_text())


@pytest.mark.parametrize("case", pin.CASES, ids="/".join)
def test_cpu_results_are_unchanged(office_small, case):
    before = PINNED["runs"]["/".join(case)]
    now = pin.run_case(office_small, *case)
    assert now["losses"] == pytest.approx(before["losses"], rel=1e-6, abs=0)
    for protocol, metrics in before["valid"].items():
        assert now["valid"][protocol] == pytest.approx(metrics, abs=1e-9), protocol


def test_the_loss_is_read_once_every_check_interval(office_small, monkeypatch):
    """Inside the step loop nothing waits for the device but the periodic read of the summed loss:
    one read per CHECK_EVERY steps and at the last step, and one for the epoch's mean."""
    from spectran_tutorial import train as train_module
    from spectran_tutorial.train import make_trainer
    cfg = pin.case_config("sasrec", "id", "ce").replace("train", batch_size=8)
    trainer = make_trainer(cfg, office_small, device="cpu")
    monkeypatch.setattr(train_module, "CHECK_EVERY", 10)
    steps, reads = len(trainer.batches), []
    real = torch.Tensor.item
    def item(self):                  # reads by the training loop (Adam reads its CPU step counters)
        if sys._getframe(1).f_code.co_filename == train_module.__file__:
            reads.append(1)
        return real(self)
    monkeypatch.setattr(torch.Tensor, "item", item)
    trainer.train_epoch(1)
    assert steps > train_module.CHECK_EVERY
    assert len(reads) == -(-steps // train_module.CHECK_EVERY) + 1
