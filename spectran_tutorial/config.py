"""Run configuration as dataclasses, with named profiles.

A :class:`Config` fully describes one training run. ``Config.profile(name)`` returns a preset,
``cfg.replace(section, **fields)`` a modified copy, and ``cfg.to_dict()`` the resolved values that
are saved next to every result.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field


@dataclass
class DataConfig:
    dataset: str = "amazon-office"
    data_dir: str | None = None       # None: --data-dir, else $SPECTRAN_DATA, else the download cache
    max_len: int = 50                 # items of history fed to the backbone
    max_users: int | None = None      # keep only the first users (small subsets for tests and laptops)
    min_user_len: int = 3             # shorter users are dropped: they cannot give train, valid and test


@dataclass
class TextConfig:
    encoder: str = "all-MiniLM-L6-v2"  # any sentence-transformers model name or local path
    batch_size: int = 128
    missing: str = "mean"              # items without text: "mean" of the others, or "error"
    fields: tuple[str, ...] = ("title", "brand", "categories")


@dataclass
class ModelConfig:
    backbone: str = "sasrec"
    dim: int = 64
    num_layers: int = 2
    num_heads: int = 1
    dropout: float = 0.5
    emb_dropout: float = 0.5
    mask_ratio: float = 0.2             # bert4rec: share of items masked in training
    last_only: float = 0.1              # bert4rec: share of histories with only the last item masked
    time_bias: bool = True              # hstu: relative time bias when the data has timestamps


@dataclass
class MethodConfig:
    """Settings of the item table (the transformation of the text matrix into item embeddings)."""
    name: str = "id"
    text_scale: float | None = None     # multiplier of the text part; None = 1/sqrt(dim)
    fusion: str = "sum"                 # "sum" with the ID table, or "concat" + projection
    # SpecTran
    heads_dim: int = 64                 # h: width of the queries and keys
    phi: str = "softshrink"             # "softshrink" or "softmax"
    threshold_init: float = 1e-3        # initial Softshrink threshold (kept >= 0 by softplus)
    per_query_threshold: bool = False   # one Softshrink threshold per query (output dim) instead of one
    score_init_std: float = 1e-2        # std of the initial attention scores Q K^T / sqrt(h)
    poly_order: int = 2                 # order of the polynomial g in the position encoding A
    pe_init: str = "pca"                # g(x) = x ("pca") or g = 1 ("whiten") at initialisation
    pe_trainable: bool = True           # False: g stays at its initial polynomial
    pe_normalize: bool = False          # divide g by its RMS over the d components: A learns the
                                        # shape of the spectrum, the text scale stays the setting's
    attention: bool = True              # False: the A-only ablation
    position_encoding: bool = True      # False: the attention-only ablation
    full_spectrum: bool = True          # False: keys over the top-d components only
    center: bool = True                 # centre the text matrix before the SVD
    # baselines
    mlp_depth: int = 2                  # mlp: Linear layers (GELU between them; 1 = Linear + GELU)
    experts: int = 8                    # unisrec: parametric-whitening experts
    text_only: bool = False             # unisrec: no ID table
    whiten: str = "pca"                 # whitenrec: "pca" or "zca" whitening of all components
    align_weight: float = 0.1           # rlmrec: weight of the cosine alignment loss
    select: str = "variance"            # llminit-select: "random", "stride" or "variance" columns
    null_dim: int | None = None         # alphafuse: ID coordinates (None: half of dim)
    alphafuse_mode: str = "add"         # alphafuse: "add" the ID table to, or "cover", those coordinates


@dataclass
class TrainConfig:
    loss: str = "ce"                    # "ce" (full softmax), "infonce" or "bce"
    temperature: float = 0.07           # InfoNCE
    num_negatives: int = 64             # InfoNCE sampled negatives (0 = all items)
    lr: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 128
    epochs: int = 200
    patience: int = 10                  # evaluations without improvement before stopping
    eval_every: int = 1
    eval_batch_size: int = 1024
    exclude_history: bool = True        # rank only items not yet in the history (RecBole's protocol)
    seed: int = 42
    device: str = "auto"                # "auto": CUDA when present, else CPU
    num_threads: int | None = None      # torch threads on the CPU (None: torch's default)


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    text: TextConfig = field(default_factory=TextConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def replace(self, section: str, **fields) -> "Config":
        """A copy with some fields of one section changed (unknown fields raise)."""
        part = dataclasses.replace(getattr(self, section), **fields)
        return dataclasses.replace(self, **{section: part})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Config":
        parts = {f.name: f.type for f in dataclasses.fields(cls)}
        kinds = {"data": DataConfig, "text": TextConfig, "model": ModelConfig,
                 "method": MethodConfig, "train": TrainConfig}
        out = {}
        for name in parts:
            values = dict(d.get(name, {}))
            if "fields" in values:
                values["fields"] = tuple(values["fields"])
            out[name] = kinds[name](**values)
        return cls(**out)

    def overrides(self) -> dict:
        """``{"section.field": value}`` for every setting that differs from the defaults and can
        change a result (bookkeeping such as the device, threads or data folder is left out)."""
        mine, defaults = self.to_dict(), Config().to_dict()
        return {f"{section}.{name}": value
                for section, fields in mine.items() for name, value in fields.items()
                if name not in BOOKKEEPING.get(section, ()) and value != defaults[section][name]}

    def variant(self, implied: dict | None = None) -> str:
        """The overrides other than dataset, backbone, method and seed: names a variant in tables.
        ``implied`` holds method fields that the method's name sets anyway; they are not shown."""
        cell = ("data.dataset", "model.backbone", "method.name", "train.seed")
        implied = {f"method.{k}": v for k, v in (implied or {}).items()}
        return ", ".join(f"{k.split('.', 1)[1]}={v}" for k, v in sorted(self.overrides().items())
                         if k not in cell and implied.get(k, object()) != v)

    def digest(self) -> str:
        """A short hash of what changes the result (it names a run folder and a grid cell).

        Only the settings that differ from the defaults are hashed, together with
        ``RECIPE_VERSION``: a new field whose default keeps the old behaviour leaves earlier
        digests valid, and changing a default requires bumping ``RECIPE_VERSION``."""
        blob = json.dumps({"recipe": RECIPE_VERSION, **self.overrides()}, sort_keys=True, default=list)
        return hashlib.sha256(blob.encode()).hexdigest()[:10]

    @classmethod
    def profile(cls, name: str = "default") -> "Config":
        """Named presets: ``default`` (the full recipe), ``cpu-small`` (minutes on a laptop CPU),
        ``gpu-full`` (the default recipe, larger evaluation batches)."""
        cfg = cls()
        if name == "default":
            return cfg
        if name == "cpu-small":
            cfg = cfg.replace("data", max_users=2000)
            return cfg.replace("train", epochs=20, patience=3)
        if name == "gpu-full":
            return cfg.replace("train", eval_batch_size=4096, batch_size=256)
        raise ValueError(f"unknown profile {name!r}; choose one of {PROFILES}")


PROFILES = ("default", "cpu-small", "gpu-full")
BOOKKEEPING = {"train": ("device", "num_threads", "eval_batch_size"), "data": ("data_dir",)}
RECIPE_VERSION = 1   # bump when a default above changes what a run computes
