"""Decoder language models (LLaMA-, Qwen-, Mistral-class) as item-text encoders.

The paper encodes items with LLaMA3-8B. A decoder model has no sentence embedding of its own, so
an item's vector is pooled from the last hidden layer: the mean over its tokens (``"mean"``) or
the state of its last token (``"last"``, which has attended to the whole text). Texts are encoded
in batches sorted by length (little padding), in bfloat16 on a GPU and float32 on a CPU, with a
progress bar; the result is float32.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import torch

from .errors import ConfigError, TextError

POOLINGS = ("mean", "last")


@functools.lru_cache(maxsize=None)
def is_decoder_model(path: str) -> bool:
    """Whether ``path`` (a local folder or a hub name) holds a causal language model rather than
    a sentence-transformers model: its ``config.json`` names a ``...ForCausalLM`` architecture."""
    folder = Path(path).expanduser()
    if folder.is_dir():
        if (folder / "modules.json").is_file():            # a sentence-transformers folder
            return False
        config = folder / "config.json"
        if not config.is_file():
            return False
        architectures = json.loads(config.read_text(encoding="utf-8")).get("architectures") or []
    else:
        architectures = _hub_architectures(path)
    return any(a.endswith("ForCausalLM") for a in architectures)


def _hub_architectures(name: str) -> list[str]:
    """The architectures of a hub model ``owner/model``: from the local hub cache, else (online)
    from the hub; [] for other names or when neither answers (sentence-transformers then names
    the problem)."""
    parts = name.split("/")
    if len(parts) != 2 or not all(parts):
        return []
    from transformers import AutoConfig
    for local in (True, False):
        try:
            return AutoConfig.from_pretrained(name, local_files_only=local).architectures or []
        except Exception:
            continue
    return []


def precision(device: str) -> torch.dtype:
    return torch.bfloat16 if device.startswith("cuda") else torch.float32


def load_decoder(path: str, device: str):
    """The tokenizer (padding on the right, a pad token if the model has none) and the base model
    (no language-model head) of a causal LM, in eval mode on ``device``."""
    from transformers import AutoModel, AutoTokenizer
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModel.from_pretrained(path, dtype=precision(device)).to(device).eval()
    except Exception as e:
        reason = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
        raise TextError(f"cannot load the decoder model {path!r} ({type(e).__name__}: {reason})") from None
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise TextError(f"the tokenizer of {path!r} has neither a pad nor an end-of-sequence token")
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"
    return tokenizer, model


def pool(hidden: torch.Tensor, mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """(B, L, H) states and a (B, L) right-padded mask -> (B, H): the mean over the real tokens
    (``"mean"``), or the state of the last real token (``"last"``)."""
    if pooling == "mean":
        m = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * m).sum(1) / m.sum(1).clamp(min=1)
    return hidden[torch.arange(len(hidden), device=hidden.device), mask.sum(1) - 1]


@torch.no_grad()
def encode_with_decoder(texts: list[str], path: str, pooling: str = "mean", batch_size: int = 32,
                        device: str | None = None, progress: bool = True, max_tokens: int = 512) -> np.ndarray:
    """The (N, H) float32 embeddings of ``texts`` pooled from the last hidden layer of ``path``."""
    from tqdm.auto import tqdm
    if pooling not in POOLINGS:          # before loading a model of several GB
        raise ConfigError(f"text.pooling must be one of {', '.join(POOLINGS)}, not {pooling!r}")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    tokenizer, model = load_decoder(path, device)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
    out = np.empty((len(texts), model.config.hidden_size), dtype=np.float32)
    starts = range(0, len(order), batch_size)
    for start in tqdm(starts, desc=f"encoding with {Path(path).name}", disable=not progress, unit="batch"):
        idx = order[start:start + batch_size]
        batch = tokenizer([texts[i] for i in idx], padding=True, truncation=True, max_length=max_tokens,
                          return_tensors="pt").to(device)
        hidden = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        out[idx] = pool(hidden, batch["attention_mask"], pooling).float().cpu().numpy()
    return out
