"""Datasets in the project's plain layout: loading, validation, re-indexing and the split.

A dataset folder holds ``interactions.tsv`` (``user_id  item_id  order`` [+ ``timestamp``]) and,
when item text exists, ``items.jsonl``. Items are re-indexed ``1..N`` (0 is padding) in sorted
order of their raw ids. Each user's chronological sequence is split leave-one-out: the last item
is the test target, the second-to-last the validation target, the rest is training history.

Rules that change the data, each counted in ``SequenceData.stats`` and said on the console:

* repeats: an item that follows itself in a user's chronological sequence (a duplicated line, a
  double click) is kept once (``stats["dropped_repeats"]``). Left in, the copy would be the target
  whose answer is the last history item, and metrics would soar (a file with every line twice
  reaches NDCG@10 = 1).
* short users: users with fewer than ``min_user_len`` (3) interactions cannot provide a training
  item, a validation target and a test target; they are dropped (``stats["dropped_short_users"]``).
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
        if path.is_dir():
            raise DataError(f"{path / 'interactions.tsv'}: file not found; a dataset folder needs its "
                            f"interactions (found: {', '.join(sorted(p.name for p in path.iterdir())) or 'nothing'})")
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
    files: dict[str, str] | None = None          # sha256 of each file it was read from, by file name

    def fingerprint(self, with_text: bool = True) -> dict[str, str]:
        """sha256 of the files this data was read from (the item text only ``with_text``); data
        built in memory gets a digest of its sequences and item ids instead."""
        if self.files is not None:
            return {k: v for k, v in self.files.items() if with_text or k != "items.jsonl"}
        import hashlib
        h = hashlib.sha256("\n".join(self.item_ids).encode())
        for s in self.sequences:
            h.update(np.asarray(s, dtype=np.int64).tobytes() + b"|")
        if with_text and self.items is not None:
            h.update(json.dumps(self.items, sort_keys=True, default=str).encode())
        return {"in-memory": h.hexdigest()}

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


def _text_lines(path: Path):
    """The lines of a UTF-8 text file, with a one-line error naming the file and line for a byte
    order mark or bytes that are not UTF-8."""
    with path.open("rb") as f:
        for n, raw in enumerate(f, start=1):
            if n == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raise DataError(f"{path}:1: the file starts with a UTF-8 byte order mark (BOM); "
                                "save it as UTF-8 without BOM")
            try:
                yield n, raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DataError(f"{path}:{n}: not UTF-8 text (byte {raw[e.start]:#04x} at column "
                                f"{e.start + 1}); save the file as UTF-8") from None


def read_interactions(path: Path) -> dict[str, list[tuple]]:
    """``{user: [(order, item), ...]}`` from an interactions file, validated line by line; with a
    ``timestamp`` column the events are ``(order, item, timestamp)`` (integer unix seconds)."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    lines = _text_lines(path)
    header = next(lines, (1, ""))[1].rstrip("\r\n").split("\t")
    if header == [""]:
        raise DataError(f"{path}: the file is empty")
    need = ["user_id", "item_id", "order"]
    if header[:3] != need:
        raise DataError(f"{path}:1: header must start with {'  '.join(need)} (tab-separated), "
                        f"found {header!r}")
    timed = len(header) > 3 and header[3] == "timestamp"
    users: dict[str, list[tuple]] = {}
    for n, line in lines:
        line = line.rstrip("\r\n")
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
    for n, line in _text_lines(path):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}:{n}: not valid JSON: {e.msg} at column {e.colno} "
                            f"(line starts {line.strip()[:60]!r})") from None
        if not isinstance(rec, dict) or "item_id" not in rec:
            raise DataError(f"{path}:{n}: each line must be a JSON object with an 'item_id'")
        items[str(rec["item_id"])] = rec
    return items


def drop_repeats(events: list[tuple]) -> list[tuple]:
    """A user's chronological events without an item directly repeating the one before it."""
    return [e for k, e in enumerate(events) if k == 0 or e[1] != events[k - 1][1]]


def load_dataset(name: str, data_dir: str | os.PathLike | None = None, *,
                 max_users: int | None = None, min_user_len: int = 3, log=print) -> SequenceData:
    """Load, validate, re-index and order a dataset. ``max_users`` keeps the first users
    (in sorted order of their ids), for small real subsets. What the rules of the module's
    docstring drop is counted in ``stats`` and said through ``log``."""
    if max_users is not None and max_users < 1:
        raise DataError(f"max_users must be at least 1, not {max_users}")
    folder = dataset_dir(name, data_dir)
    raw = read_interactions(folder / "interactions.tsv")
    user_names = sorted(raw)
    if max_users is not None:
        user_names = user_names[:max_users]
    seqs, times, kept, short, repeats, repeat_users = [], [], [], 0, 0, 0
    for u in user_names:
        events = drop_repeats(sorted(raw[u]))
        if len(events) < len(raw[u]):
            repeats += len(raw[u]) - len(events)
            repeat_users += 1
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
        if meta:
            items = [meta.get(i, {"item_id": i}) for i in item_ids]
        else:
            log(f"note: {folder / 'items.jsonl'} holds no items; methods that read item text will refuse")
    stats = {"users": len(kept), "items": len(item_ids),
             "interactions": int(sum(len(s) for s in sequences)), "dropped_short_users": short,
             "dropped_repeats": repeats}
    if repeats:
        log(f"note: {folder / 'interactions.tsv'}: dropped {repeats} repeated interactions (an item directly "
            f"following itself) of {repeat_users} users")
    if short:
        log(f"note: {folder / 'interactions.tsv'}: dropped {short} users with fewer than {min_user_len} "
            f"interactions")
    timestamps = None
    if times[0] is not None:
        timestamps = [np.array(t, dtype=np.int64) for t in times]
    from .runs import file_digest
    files = {"interactions.tsv": file_digest(folder / "interactions.tsv")}
    if items is not None:
        files["items.jsonl"] = file_digest(folder / "items.jsonl")
    return SequenceData(name, item_ids, kept, sequences, items, stats, timestamps, files)


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
