"""Decoder language models (LLaMA-, Qwen-, Mistral-class) as item-text encoders.

The paper encodes items with LLaMA3-8B. A decoder model has no sentence embedding of its own, so
an item's vector is pooled from the last hidden layer: the mean over its tokens (``"mean"``) or
the state of its last token (``"last"``, which has attended to the whole text). Texts are encoded
in batches sorted by length (little padding), in bfloat16 on a GPU and float32 on a CPU, with a
progress bar; the result is float32.
"""
from __future__ import annotations

import contextlib
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


@contextlib.contextmanager
def quiet_transformers():
    """transformers without its progress bars and warnings (e.g. the load report that lists the
    language-model head a base model leaves out), restored afterwards; errors still raise."""
    import warnings
    with warnings.catch_warnings():     # tqdm's note, in a notebook without widgets, on import
        warnings.filterwarnings("ignore", message="IProgress not found")
        from transformers.utils import logging as hf_logging
        verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        try:
            yield
        finally:
            hf_logging.set_verbosity(verbosity)
            if bars:
                hf_logging.enable_progress_bar()


def load_decoder(path: str, device: str):
    """The tokenizer (padding on the right, a pad token if the model has none) and the base model
    (no language-model head) of a causal LM, in eval mode on ``device``."""
    try:
        with quiet_transformers():
            from transformers import AutoModel, AutoTokenizer
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
    from tqdm import tqdm
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


def build_tiny_decoder(folder: str | Path, texts: list[str], hidden_size: int = 48, seed: int = 0) -> str:
    """Save a tiny randomly initialised LLaMA-class model into ``folder`` and return its path: a
    word-level tokenizer over the words of ``texts``, two layers of width ``hidden_size``. Its
    vectors carry no meaning (random weights); it runs the decoder path offline, in seconds, where a
    real model (e.g. ``meta-llama/Meta-Llama-3-8B``) cannot be downloaded."""
    import re
    with quiet_transformers():
        from tokenizers import Tokenizer, models, pre_tokenizers
        from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
    words = sorted({w for t in texts for w in re.findall(r"\w+|[^\w\s]+", t)})   # as Whitespace splits
    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", "[EOS]", *words])}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]", eos_token="[EOS]").save_pretrained(folder)
    with torch.random.fork_rng(), quiet_transformers():
        torch.manual_seed(seed)
        config = LlamaConfig(vocab_size=len(vocab), hidden_size=hidden_size, intermediate_size=2 * hidden_size,
                             num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                             max_position_embeddings=512, pad_token_id=None, eos_token_id=2, bos_token_id=None)
        LlamaForCausalLM(config).save_pretrained(folder)
    return str(folder)
