"""Datasets in the project's plain layout: loading, validation, re-indexing and the split.

A dataset folder holds ``interactions.tsv`` (``user_id  item_id  order`` [+ ``timestamp``]) and,
when item text exists, ``items.jsonl``. Items are re-indexed ``1..N`` (0 is padding) in sorted
order of their raw ids. Each user's chronological sequence is split leave-one-out: the last item
is the test target, the second-to-last the validation target, the rest is training history.

Rule for short users: users with fewer than ``min_user_len`` (3) interactions cannot provide a
training item, a validation target and a test target; they are dropped and counted in
``SequenceData.stats["dropped_short_users"]``.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import platformdirs

from .errors import DataError

DATASETS = ("amazon-beauty", "amazon-toys", "amazon-office", "amazon-clothing", "ml-100k", "ml-1m")
ENV_VAR = "SPECTRAN_DATA"


def default_cache_dir() -> Path:
    """The per-user folder that the downloader fills."""
    return Path(platformdirs.user_cache_dir("spectran-tutorial")) / "data"


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The data directory: the argument, else ``$SPECTRAN_DATA``, else the download cache."""
    if data_dir is not None:
        source, path = "--data-dir", Path(data_dir)
    elif os.environ.get(ENV_VAR):
        source, path = f"${ENV_VAR}", Path(os.environ[ENV_VAR])
    else:
        source, path = "the download cache", default_cache_dir()
    if not path.is_dir():
        raise DataError(
            f"data directory {path} (from {source}) does not exist. Point to a folder of datasets with "
            f"--data-dir DIR or {ENV_VAR}=DIR, or download one with "
            f"`python -m spectran_tutorial download --dataset NAME`.")
    return path.resolve()


def dataset_dir(name: str, data_dir: str | os.PathLike | None = None) -> Path:
    root = resolve_data_dir(data_dir)
    path = root / name
    if not (path / "interactions.tsv").is_file():
        present = sorted(p.name for p in root.iterdir() if (p / "interactions.tsv").is_file())
        known = f"known datasets: {', '.join(DATASETS)}"
        if name not in DATASETS:
            raise DataError(f"unknown dataset {name!r}; {known}")
        raise DataError(
            f"dataset {name!r} is not in {root} (found: {', '.join(present) or 'none'}). "
            f"Download it with `python -m spectran_tutorial download --dataset {name}`.")
    return path


@dataclass
class SequenceData:
    """A dataset as integer sequences, split leave-one-out."""
    name: str
    item_ids: list[str]                 # raw id of internal item i+1 at position i
    user_ids: list[str]
    sequences: list[np.ndarray]         # full chronological sequence of each user (ids in 1..N)
    items: list[dict] | None = None     # metadata of internal item i+1 at position i, if any
    stats: dict = field(default_factory=dict)
    timestamps: list[np.ndarray] | None = None   # unix seconds aligned with ``sequences``, if known

    @property
    def num_items(self) -> int:
        return len(self.item_ids)

    @property
    def num_users(self) -> int:
        return len(self.user_ids)

    def train_sequences(self) -> list[np.ndarray]:
        return [s[:-2] for s in self.sequences]

    def train_times(self) -> list[np.ndarray] | None:
        """Timestamps aligned with :meth:`train_sequences` (None when the data has none)."""
        return None if self.timestamps is None else [t[:-2] for t in self.timestamps]

    def eval_times(self, split: str) -> list[np.ndarray] | None:
        """Timestamps aligned with the histories of :meth:`eval_pairs`."""
        if self.timestamps is None:
            return None
        cut = {"valid": -2, "test": -1}[split]
        return [t[:cut] for t in self.timestamps]

    def eval_pairs(self, split: str) -> tuple[list[np.ndarray], np.ndarray]:
        """Histories and targets for ``split`` "valid" (second-to-last) or "test" (last item)."""
        if split == "valid":
            return [s[:-2] for s in self.sequences], np.array([s[-2] for s in self.sequences])
        if split == "test":
            return [s[:-1] for s in self.sequences], np.array([s[-1] for s in self.sequences])
        raise ValueError(f"split must be 'valid' or 'test', not {split!r}")

    def item_popularity(self) -> np.ndarray:
        """Training interactions per item, indexed by internal id (entry 0 is padding)."""
        counts = np.zeros(self.num_items + 1, dtype=np.int64)
        for s in self.train_sequences():
            np.add.at(counts, s, 1)
        return counts


def read_interactions(path: Path) -> dict[str, list[tuple]]:
    """``{user: [(order, item), ...]}`` from an interactions file, validated line by line; with a
    ``timestamp`` column the events are ``(order, item, timestamp)`` (integer unix seconds)."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    with path.open(encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        if header == [""]:
            raise DataError(f"{path}: the file is empty")
        need = ["user_id", "item_id", "order"]
        if header[:3] != need:
            raise DataError(f"{path}:1: header must start with {'  '.join(need)} (tab-separated), "
                            f"found {header!r}")
        timed = len(header) > 3 and header[3] == "timestamp"
        users: dict[str, list[tuple]] = {}
        for n, line in enumerate(f, start=2):
            line = line.rstrip("\n")
            if not line:
                continue
            parts = line.split("\t")
            if len(parts) != len(header):
                raise DataError(f"{path}:{n}: expected {len(header)} tab-separated fields, "
                                f"found {len(parts)}: {line[:80]!r}")
            user, item, order = parts[0], parts[1], parts[2]
            if not user or not item:
                raise DataError(f"{path}:{n}: empty user_id or item_id")
            try:
                pos = int(order)
            except ValueError:
                raise DataError(f"{path}:{n}: order must be an integer, found {order!r}") from None
            event = (pos, item)
            if timed:
                try:
                    event += (int(float(parts[3])),)
                except ValueError:
                    raise DataError(f"{path}:{n}: timestamp must be a number of seconds, "
                                    f"found {parts[3]!r}") from None
            users.setdefault(user, []).append(event)
    if not users:
        raise DataError(f"{path}: the file has a header but no interactions")
    return users


def read_items(path: Path) -> dict[str, dict]:
    """``{item_id: record}`` from an items.jsonl file, validated line by line."""
    items = {}
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{n}: not valid JSON ({e.msg})") from None
            if not isinstance(rec, dict) or "item_id" not in rec:
                raise DataError(f"{path}:{n}: each line must be a JSON object with an 'item_id'")
            items[str(rec["item_id"])] = rec
    if not items:
        raise DataError(f"{path}: the file is empty")
    return items


def load_dataset(name: str, data_dir: str | os.PathLike | None = None, *,
                 max_users: int | None = None, min_user_len: int = 3) -> SequenceData:
    """Load, validate, re-index and order a dataset. ``max_users`` keeps the first users
    (in sorted order of their ids), for small real subsets."""
    folder = dataset_dir(name, data_dir)
    raw = read_interactions(folder / "interactions.tsv")
    user_names = sorted(raw)
    if max_users is not None:
        user_names = user_names[:max_users]
    seqs, times, kept, short = [], [], [], 0
    for u in user_names:
        events = sorted(raw[u])
        if len(events) < min_user_len:
            short += 1
            continue
        kept.append(u)
        seqs.append([e[1] for e in events])
        times.append([e[2] for e in events] if len(events[0]) > 2 else None)
    if not kept:
        raise DataError(f"{folder / 'interactions.tsv'}: no user has at least {min_user_len} interactions")
    item_ids = sorted({i for s in seqs for i in s})
    index = {raw_id: k + 1 for k, raw_id in enumerate(item_ids)}
    sequences = [np.array([index[i] for i in s], dtype=np.int64) for s in seqs]
    items = None
    if (folder / "items.jsonl").is_file():
        meta = read_items(folder / "items.jsonl")
        items = [meta.get(i, {"item_id": i}) for i in item_ids]
    stats = {"users": len(kept), "items": len(item_ids),
             "interactions": int(sum(len(s) for s in sequences)), "dropped_short_users": short}
    timestamps = None
    if times[0] is not None:
        timestamps = [np.array(t, dtype=np.int64) for t in times]
    return SequenceData(name, item_ids, kept, sequences, items, stats, timestamps)


def k_core(users: dict[str, list], k: int = 5) -> dict[str, list]:
    """Repeatedly drop users and items with fewer than ``k`` interactions (for raw downloads).
    ``users`` maps a user to a list of ``(order, item)`` pairs."""
    while True:
        item_count: dict[str, int] = {}
        for events in users.values():
            for _, i in events:
                item_count[i] = item_count.get(i, 0) + 1
        kept = {}
        for u, events in users.items():
            ev = [(o, i) for o, i in events if item_count[i] >= k]
            if len(ev) >= k:
                kept[u] = ev
        if sum(map(len, kept.values())) == sum(map(len, users.values())):
            return kept
        users = kept
