"""The CPU results of the training loop are pinned: a faster loop must compute the same runs.

``tests/pinned/cpu-runs.json`` was written by ``scripts/pin_cpu_results.py`` before the GPU fast
path existed; the same cases trained now must give the same loss per epoch and the same metrics.
"""
import importlib.util
import json

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


def test_the_gpu_step_computes_the_same_training_on_the_cpu(office_small):
    """Scoring every position and ignoring those without a target (the GPU path) trains the same
    model as selecting the rows with a target: same losses up to summation order."""
    from spectran_tutorial.train import make_trainer
    cfg = pin.case_config("sasrec", "spectran", "ce")
    text = pin.synthetic_text(office_small.num_items)
    selected = make_trainer(cfg, office_small, text, device="cpu")
    every = make_trainer(cfg, office_small, text, device="cpu")
    every.all_positions = True
    for epoch in (1, 2):                 # dropout draws from the global generator: same state for both
        torch.manual_seed(epoch)
        before = selected.train_epoch(epoch)
        torch.manual_seed(epoch)
        assert every.train_epoch(epoch) == pytest.approx(before, rel=1e-5)
    for a, b in zip(selected.model.parameters(), every.model.parameters()):
        assert torch.allclose(a, b, atol=1e-4)


@pytest.mark.parametrize("loss", ["ce", "infonce", "bce"])
def test_positions_without_a_target_do_not_count(loss):
    """With ``keep``, rows without a target change neither the loss nor any gradient, and a call
    in which every row is kept equals the call without ``keep``."""
    from spectran_tutorial.losses import LOSSES
    gen = torch.Generator().manual_seed(0)
    table = torch.randn(30, 8, generator=gen)
    h = torch.randn(6, 8, generator=gen, requires_grad=True)
    targets = torch.tensor([3, 0, 7, 0, 29, 1])
    keep = targets > 0

    def value(hidden, keep_rows, tgt):
        return LOSSES[loss](hidden, table, tgt, gen=torch.Generator().manual_seed(1), keep=keep_rows)

    base = value(h, keep, targets)
    base.backward()
    assert torch.all(h.grad[~keep] == 0)
    moved = h.detach().clone()
    moved[~keep] = 100.0
    assert torch.allclose(value(moved, keep, targets), base)
    full = torch.tensor([3, 5, 7, 2, 29, 1])
    assert torch.allclose(value(h, torch.ones(6, dtype=torch.bool), full), value(h, None, full))
