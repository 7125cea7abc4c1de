"""Store the spectral weights W of a finished SpecTran run beside the results, for the book.

    python scripts/export_weights.py runs/amazon-office/sasrec-spectran-s0-ab5e7b92cd

writes ``results/weights/<dataset>-<backbone>-<method>-s<seed>.npz`` holding ``W`` (d x r, float32),
the run's key, d, and the test NDCG@10 under both protocols of the retrained run, so a reader can
check it against the stored row with that key.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main(folder: str) -> None:
    from spectran_tutorial.train import load_trained
    run = Path(folder)
    result = json.loads((run / "result.json").read_text())
    with torch.no_grad():
        w = load_trained(run).table.spectral_weights().numpy().astype(np.float32)
    out = ROOT / "results" / "weights" / (
        f"{result['dataset']}-{result['backbone']}-{result['method']}-s{result['seed']}.npz")
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, W=w, key=result["key"], dim=w.shape[0],
                        test_ndcg10=result["test"]["ndcg@10"], test_unmasked_ndcg10=result["test_unmasked"]["ndcg@10"])
    print(f"wrote {out} ({w.shape[0]} x {w.shape[1]}, {out.stat().st_size / 1024:.0f} KiB) for {result['key']}")


if __name__ == "__main__":
    main(sys.argv[1])
