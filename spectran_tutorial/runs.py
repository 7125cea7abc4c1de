"""Where runs live: the key of a run, its folder, its checkpoint and its finished record.

Two runs share a key only when they compute the same thing: the same settings (bookkeeping such
as the device or the data folder aside), the same bytes in every data file the run reads, and the
same recipe versions of the trainer, the item table and the backbone. A result is therefore never
reused for other data (a second copy of a dataset under the same name gets its own key) nor
across a change of recipe: bump ``RECIPE_VERSION`` (trainer, evaluation, defaults), or the
``recipe_version`` of an item table or backbone class, whenever a change alters what it computes.
"""
from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

from .config import RECIPE_VERSION, Config


@functools.lru_cache(maxsize=64)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_digest(path: str | Path) -> str:
    """sha256 of a file's bytes (computed once per process for an unchanged file)."""
    st = Path(path).stat()
    return _file_digest(str(Path(path).resolve()), st.st_size, st.st_mtime_ns)


def data_files(cfg: Config) -> list[Path]:
    """The data files a run of ``cfg`` reads: the interactions, and the item text when its method
    uses text."""
    from .data import dataset_dir
    from .item_tables import needs_text
    folder = dataset_dir(cfg.data.dataset, cfg.data.data_dir)
    files = [folder / "interactions.tsv"]
    if needs_text(cfg.method.name) and (folder / "items.jsonl").is_file():
        files.append(folder / "items.jsonl")
    return files


def data_fingerprint(cfg: Config, data=None) -> dict[str, str]:
    """``{file name: sha256}`` of the data files a run of ``cfg`` reads: from ``data`` (a
    :class:`~spectran_tutorial.data.SequenceData`) when given, else from the data folder."""
    if data is not None:
        from .item_tables import needs_text
        return data.fingerprint(with_text=needs_text(cfg.method.name))
    return {p.name: file_digest(p) for p in data_files(cfg)}


def recipe(cfg: Config) -> dict[str, int]:
    """The recipe versions that a run of ``cfg`` depends on."""
    from .backbones import BACKBONES
    from .item_tables import METHODS
    table = METHODS[cfg.method.name][0] if cfg.method.name in METHODS else None
    backbone = BACKBONES.get(cfg.model.backbone)
    return {"trainer": RECIPE_VERSION, "table": getattr(table, "recipe_version", 1),
            "backbone": getattr(backbone, "recipe_version", 1)}


def run_digest(cfg: Config, data=None) -> str:
    """A short hash of everything that decides a run's result (see the module's docstring)."""
    blob = json.dumps({"recipe": recipe(cfg), "data": data_fingerprint(cfg, data), **cfg.overrides()},
                      sort_keys=True, default=list)
    return hashlib.sha256(blob.encode()).hexdigest()[:10]


def run_key(cfg: Config, data=None) -> str:
    """``dataset/backbone/method/s<seed>/<digest>``: names a grid cell and its results row."""
    return f"{cfg.data.dataset}/{cfg.model.backbone}/{cfg.method.name}/s{cfg.train.seed}/{run_digest(cfg, data)}"


def run_dir(cfg: Config, root: str | Path = "runs", data=None) -> Path:
    """The folder of a run: ``<root>/<dataset>/<backbone>-<method>-s<seed>-<digest>``."""
    return Path(root) / cfg.data.dataset / (
        f"{cfg.model.backbone}-{cfg.method.name}-s{cfg.train.seed}-{run_digest(cfg, data)}")


class RunFolder:
    """One run's folder: ``config.json`` (settings, key, fingerprints), ``checkpoint.pt`` while it
    trains, then ``result.json`` and ``model.pt``. ``RunFolder(None)`` keeps nothing on disk."""

    def __init__(self, path: str | Path | None):
        self.path = Path(path) if path else None

    @property
    def checkpoint(self) -> Path | None:
        return self.path / "checkpoint.pt" if self.path else None

    @property
    def result_path(self) -> Path | None:
        return self.path / "result.json" if self.path else None

    def finished(self) -> dict | None:
        """The stored result of a finished run, else None."""
        if self.result_path and self.result_path.is_file():
            return json.loads(self.result_path.read_text())
        return None

    def start(self, cfg: Config, identity: dict, fresh: bool = False) -> None:
        """Create the folder (emptied of an earlier attempt when ``fresh``) and write its config."""
        if not self.path:
            return
        if fresh:
            for name in ("checkpoint.pt", "result.json", "model.pt"):
                (self.path / name).unlink(missing_ok=True)
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / "config.json").write_text(json.dumps({**identity, "config": cfg.to_dict()}, indent=2))

    def finish(self, result: dict, state_dict: dict) -> None:
        """Store the result and the final weights; the checkpoint is no longer needed."""
        if not self.path:
            return
        import torch
        self.result_path.write_text(json.dumps(result, indent=2))
        self.checkpoint.unlink(missing_ok=True)
        torch.save(state_dict, self.path / "model.pt")
