"""Item tables: every way of turning item IDs and item text into the embedding table.

``build_item_table(cfg, num_items, dim, text)`` is the single entry point; ``METHODS`` lists the
names accepted by ``--method``.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch

from ..config import MethodConfig
from ..errors import ConfigError, TextError
from .adapters import LLMESRTable, MLPTable, RLMRecTable, UniSRecTable
from .base import Fusion, IdTable, ItemTable
from .spectran import SpecTranTable
from .svd import AlphaFuseTable, LLMInitSelectTable, LLMInitTable, PCATable, WhitenRecTable

# name -> (table class, MethodConfig fields that the name implies)
METHODS: dict[str, tuple[type[ItemTable], dict]] = {
    "id": (IdTable, {}),
    "spectran": (SpecTranTable, {}),
    "spectran-no-attn": (SpecTranTable, {"attention": False, "pe_init": "whiten"}),
    "spectran-no-pe": (SpecTranTable, {"position_encoding": False}),
    "spectran-softmax": (SpecTranTable, {"phi": "softmax"}),
    "spectran-topd": (SpecTranTable, {"full_spectrum": False}),
    "mlp": (MLPTable, {}),
    "unisrec": (UniSRecTable, {}),
    "whitenrec": (WhitenRecTable, {}),
    "llmesr": (LLMESRTable, {}),
    "rlmrec": (RLMRecTable, {}),
    "llminit": (LLMInitTable, {}),
    "llminit-select": (LLMInitSelectTable, {}),
    "alphafuse": (AlphaFuseTable, {}),
    "pca": (PCATable, {}),
}


def resolve_method(cfg: MethodConfig) -> MethodConfig:
    """The method settings with the fields implied by its name filled in (the name wins; the
    command line refuses a ``--set`` that contradicts it, see ``check_preset``)."""
    if cfg.name not in METHODS:
        raise ConfigError(f"unknown method {cfg.name!r}; choose one of {', '.join(METHODS)}")
    return dataclasses.replace(cfg, **METHODS[cfg.name][1])


def check_preset(name: str, settings: dict) -> None:
    """Refuse method settings that the method's name fixes to another value (``spectran-no-attn``
    fixes ``attention=False`` and ``pe_init='whiten'``)."""
    preset = METHODS[name][1] if name in METHODS else {}
    clash = {k: v for k, v in settings.items() if k in preset and preset[k] != v}
    if clash:
        said = ", ".join(f"method.{k}={v!r}" for k, v in clash.items())
        fixed = ", ".join(f"{k}={preset[k]!r}" for k in clash)
        raise ConfigError(f"method {name!r} fixes {fixed}; it cannot run with {said}. "
                         f"Drop the setting, or start from a method whose name does not fix it "
                         f"(e.g. 'spectran' with the same settings)")


def needs_text(name: str) -> bool:
    return METHODS[name][0].uses_text if name in METHODS else False


def build_item_table(cfg: MethodConfig, num_items: int, dim: int, text: torch.Tensor | None = None,
                     item_counts: np.ndarray | None = None) -> ItemTable:
    """The item table of ``cfg.name``. ``text`` is the (num_items, D) text matrix (needed by every
    text method); ``item_counts`` (training interactions per item, without padding) is used by
    ``llminit-select``'s popularity-based column choice."""
    cfg = resolve_method(cfg)
    cls = METHODS[cfg.name][0]
    if not cls.uses_text:
        return cls(num_items, dim)
    if text is None:
        raise TextError(f"method {cfg.name!r} needs the item text matrix, and none was given")
    if text.ndim != 2 or text.shape[0] != num_items:
        raise TextError(f"method {cfg.name!r}: the text matrix must be (num_items={num_items}, D), "
                        f"got {tuple(text.shape)}")
    if not torch.isfinite(text).all():
        bad = (~torch.isfinite(text).all(dim=1)).nonzero().flatten()[:5].tolist()
        raise TextError(f"the text matrix has NaN or inf values (rows {bad} among others)")
    extra = {"item_counts": item_counts} if cls.uses_popularity else {}
    return cls(num_items, dim, text, cfg, **extra)


__all__ = ["METHODS", "ItemTable", "IdTable", "Fusion", "SpecTranTable", "MLPTable", "UniSRecTable",
           "WhitenRecTable", "LLMESRTable", "RLMRecTable", "LLMInitTable", "LLMInitSelectTable",
           "AlphaFuseTable", "PCATable",
           "build_item_table", "resolve_method", "check_preset", "needs_text"]
