"""Write the CPU results that the trainer must keep reproducing (``tests/pinned/cpu-runs.json``).

    python scripts/pin_cpu_results.py

Each case trains a small model on the first 300 users of amazon-office for three epochs on one
CPU thread and stores its loss per epoch and its validation metrics under both protocols.
``tests/test_pinned.py`` trains the same cases and compares: a change of the training loop that
moves a CPU result fails there. Rewrite the file only together with a bump of
``RECIPE_VERSION`` (and say why in the commit).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PINNED = ROOT / "tests" / "pinned" / "cpu-runs.json"

# (backbone, method, loss): every backbone, every loss, an item table with text and one without
CASES = [("sasrec", "id", "ce"), ("sasrec", "spectran", "ce"), ("sasrec", "id", "infonce"),
         ("sasrec", "id", "bce"), ("bert4rec", "id", "ce"), ("hstu", "id", "ce"),
         ("gru4rec", "id", "ce")]


def synthetic_text(num_items: int):
    """A fixed text matrix (no encoder needed), anisotropic like sentence embeddings."""
    from spectran_tutorial.text import TextMatrix
    gen = torch.Generator().manual_seed(1)
    matrix = torch.randn(num_items, 32, generator=gen) * torch.logspace(0, -1.5, 32) + 1.0
    return TextMatrix(matrix, "synthetic", 0, False)


def case_config(backbone: str, method: str, loss: str):
    from spectran_tutorial.config import Config
    cfg = Config().replace("data", dataset="amazon-office", max_users=300)
    cfg = cfg.replace("model", backbone=backbone, dim=16).replace("method", name=method)
    return cfg.replace("train", loss=loss, epochs=3, patience=5, batch_size=64, num_threads=1)


def run_case(data, backbone: str, method: str, loss: str) -> dict:
    """Loss per epoch and validation metrics (both protocols) after three epochs."""
    from spectran_tutorial.train import make_trainer
    cfg = case_config(backbone, method, loss)
    text = synthetic_text(data.num_items) if method != "id" else None
    trainer = make_trainer(cfg, data, text, device="cpu")
    losses = [trainer.train_epoch(epoch) for epoch in (1, 2, 3)]
    return {"losses": losses, "valid": trainer.evaluate("valid")}


def main() -> None:
    from spectran_tutorial.data import load_dataset
    from spectran_tutorial.provenance import git_commit
    torch.set_num_threads(1)
    data_dir = sys.argv[1] if len(sys.argv) > 1 else None
    data = load_dataset("amazon-office", data_dir, max_users=300)
    runs = {"/".join(case): run_case(data, *case) for case in CASES}
    PINNED.parent.mkdir(parents=True, exist_ok=True)
    PINNED.write_text(json.dumps({"commit": git_commit(), "torch": torch.__version__, "runs": runs},
                                 indent=1) + "\n")
    print(f"wrote {PINNED} ({len(runs)} cases)")


if __name__ == "__main__":
    main()
