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
