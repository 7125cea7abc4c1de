import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real datasets: $SPECTRAN_DATA, else ../shared/data beside the repository."""
    path = Path(os.environ.get("SPECTRAN_DATA") or REPO.parent / "shared" / "data")
    if not (path / "amazon-office" / "interactions.tsv").is_file():
        pytest.fail(f"real datasets not found in {path}; set SPECTRAN_DATA")
    return path


@pytest.fixture(scope="session")
def office_small(data_dir):
    """A small real subset: the first 300 users of amazon-office."""
    from spectran_tutorial.data import load_dataset
    return load_dataset("amazon-office", data_dir, max_users=300)


@pytest.fixture
def random_text():
    """A synthetic, anisotropic text matrix (40 items x 24 dims) with a decaying spectrum."""
    gen = torch.Generator().manual_seed(0)
    base = torch.randn(40, 24, generator=gen) * torch.logspace(0, -2, 24)
    return base + 3.0          # a common offset, like real sentence embeddings


def write_dataset(root: Path, name: str, rows: list[tuple], items: list[dict] | None = None) -> Path:
    """Write a dataset in the project's layout; rows are (user, item, order)."""
    folder = root / name
    folder.mkdir(parents=True)
    lines = ["user_id\titem_id\torder"] + [f"{u}\t{i}\t{o}" for u, i, o in rows]
    (folder / "interactions.tsv").write_text("\n".join(lines) + "\n")
    if items is not None:
        import json
        (folder / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in items))
    return folder


@pytest.fixture
def tiny_dir(tmp_path):
    """Three users; u3 has only two interactions. Orders are given out of file order on purpose."""
    rows = [("u1", "a", 0), ("u1", "b", 1), ("u1", "c", 2), ("u1", "d", 3),
            ("u2", "c", 2), ("u2", "a", 0), ("u2", "b", 1),
            ("u3", "a", 0), ("u3", "d", 1)]
    items = [{"item_id": "a", "title": "Red pen"}, {"item_id": "b", "title": "Blue pen"},
             {"item_id": "c", "title": ""}, {"item_id": "d", "title": "Stapler", "brand": "Acme"}]
    write_dataset(tmp_path, "toy", rows, items)
    return tmp_path


def check_record(result: dict, users: int) -> None:
    """What every result record must satisfy, whatever the model learned: masking only helps,
    metrics are ordered (HR@20 >= HR@10 >= NDCG@10), and the popularity buckets cover every user
    and average back to the whole test metric."""
    import numpy as np
    for split in ("valid", "test"):
        for key, masked in result[split].items():
            assert masked >= result[f"{split}_unmasked"][key], (split, key)
        for m in (result[split], result[f"{split}_unmasked"]):
            assert m["hr@20"] >= m["hr@10"] >= m["ndcg@10"] and m["ndcg@20"] >= m["ndcg@10"]
    buckets = result["test_by_popularity"]
    assert sum(buckets["targets"]) == users
    for protocol, split in (("masked", "test"), ("unmasked", "test_unmasked")):
        for key, values in buckets[protocol].items():
            overall = np.dot(values, buckets["targets"]) / users
            assert abs(overall - result[split][key]) < 1e-9, (protocol, key)


def pytest_collection_modifyitems(items):
    """The tiers: ``notebook`` (the chapters under nbval), ``real_data`` (tests that read the real
    datasets) and the rest, fast unit tests; ``slow`` marks the few that take tens of seconds.
    Select with -m, e.g. ``pytest -m "not notebook and not real_data"`` for the unit tier."""
    for item in items:
        if ".ipynb" in item.nodeid:
            item.add_marker("notebook")
        elif {"data_dir", "office_small"} & set(getattr(item, "fixturenames", ())):
            item.add_marker("real_data")
