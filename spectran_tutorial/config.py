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
    encoder: str = "all-MiniLM-L6-v2"  # a sentence-transformers model or a decoder LM (name or path)
    batch_size: int = 128
    pooling: str = "mean"              # decoder models: "mean" over tokens or the "last" token
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
    fusion: str = "sum"                 # "sum" with the ID table, "concat" + projection, or "none"
                                        # (no ID table: the text part is the item table)
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
    select_metric: str = "ndcg@10"      # validation metric that picks the epoch and stops early
    select_protocol: str = "masked"     # ... under this protocol ("masked" or "unmasked"; both are
                                        # stored, see evaluate.py); "masked" keeps the stored recipe
    seed: int = 42
    precision: str = "fp32"             # "bf16": autocast matrix products to bfloat16 (a variant:
                                        # it can move metrics, so its rows are not the fp32 cells)
    compile: str = "none"               # torch.compile the forward pass: "default", or
                                        # "reduce-overhead" (CUDA graphs over the fixed batch shape);
                                        # a variant: compiled dropout draws from its own random stream
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

    def to_record(self) -> dict:
        """:meth:`to_dict` for a stored result: the settings, without where this machine keeps its
        data (``data.data_dir``, bookkeeping that no run key includes), so that results files
        carry no machine-specific paths; a reader's ``--data-dir`` or $SPECTRAN_DATA finds the data."""
        d = self.to_dict()
        d["data"]["data_dir"] = None
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Config":
        """The inverse of :meth:`to_dict`: JSON lists become tuples again wherever a field is a
        tuple, and the settings of stored rows written before a rename are read in their new form."""
        out = {}
        for part in dataclasses.fields(cls):
            kind = SECTIONS[part.name]
            values = _upgrade(part.name, dict(d.get(part.name, {})))
            for f in dataclasses.fields(kind):
                if f.name in values and str(f.type).startswith("tuple") and isinstance(values[f.name], list):
                    values[f.name] = tuple(values[f.name])
            out[part.name] = kind(**values)
        return cls(**out)

    def validate(self) -> "Config":
        """Refuse a setting outside its allowed range with one line naming it (returns self)."""
        from .errors import ConfigError
        for key, (ok, allowed) in RULES.items():
            section, name = key.split(".")
            value = getattr(getattr(self, section), name)
            if isinstance(value, bool) and not allowed.startswith("true"):
                ok_now = False
            else:
                try:
                    ok_now = bool(ok(value))
                except TypeError:
                    ok_now = False
            if not ok_now:
                raise ConfigError(f"{key}={value!r} is not allowed: it must be {allowed}")
        if self.model.dim % self.model.num_heads:
            raise ConfigError(f"model.dim={self.model.dim} must be a multiple of model.num_heads="
                              f"{self.model.num_heads}")
        null_dim = self.method.null_dim
        if null_dim is not None and not 1 <= null_dim <= self.model.dim:
            raise ConfigError(f"method.null_dim={null_dim!r} is not allowed: it must be between 1 and "
                              f"model.dim={self.model.dim}, or null")
        return self

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

    @classmethod
    def profile(cls, name: str = "default") -> "Config":
        """Named presets: ``default`` (the full recipe), ``cpu-small`` (minutes on a laptop CPU),
        ``gpu-full`` (the default recipe with larger evaluation batches: it changes no result)."""
        cfg = cls()
        if name == "default":
            return cfg
        if name == "cpu-small":
            cfg = cfg.replace("data", max_users=2000)
            return cfg.replace("train", epochs=20, patience=3)
        if name == "gpu-full":     # bookkeeping only: the same recipe, so GPU rows are the CPU rows' cells
            return cfg.replace("train", eval_batch_size=4096)
        from .errors import ConfigError
        raise ConfigError(f"unknown profile {name!r}; choose one of {PROFILES}")


def _int(lo: int):
    return lambda v: isinstance(v, int) and v >= lo


def _optional_int(lo: int):
    return lambda v: v is None or (isinstance(v, int) and v >= lo)


def _fraction(v) -> bool:
    return isinstance(v, (int, float)) and 0 <= v < 1


def _positive(v) -> bool:
    return isinstance(v, (int, float)) and v > 0


def _one_of(*names):
    return (lambda v: v in names), "one of " + ", ".join(map(repr, names))


# setting -> (test, what is allowed), checked by Config.validate before any work starts
RULES = {
    "data.max_len": (_int(1), "an integer >= 1"),
    "data.max_users": (_optional_int(1), "an integer >= 1, or null for all users"),
    "data.min_user_len": (_int(3), "an integer >= 3 (a user needs a training item, a validation and a test target)"),
    "text.batch_size": (_int(1), "an integer >= 1"),
    "text.missing": _one_of("mean", "error"),
    "text.pooling": _one_of("mean", "last"),
    "text.fields": (lambda v: isinstance(v, tuple) and len(v) > 0 and all(isinstance(x, str) for x in v),
                    "a non-empty list of field names"),
    "model.dim": (_int(1), "an integer >= 1"),
    "model.num_layers": (_int(1), "an integer >= 1"),
    "model.num_heads": (_int(1), "an integer >= 1"),
    "model.dropout": (_fraction, "a number in [0, 1)"),
    "model.emb_dropout": (_fraction, "a number in [0, 1)"),
    "model.mask_ratio": (lambda v: isinstance(v, (int, float)) and 0 < v <= 1, "a number in (0, 1]"),
    "model.last_only": (lambda v: isinstance(v, (int, float)) and 0 <= v <= 1, "a number in [0, 1]"),
    "method.text_scale": (lambda v: v is None or _positive(v), "a number > 0, or null for 1/sqrt(dim)"),
    "method.fusion": _one_of("sum", "concat", "none"),
    "method.heads_dim": (_int(1), "an integer >= 1"),
    "method.phi": _one_of("softshrink", "softmax"),
    "method.threshold_init": (lambda v: isinstance(v, (int, float)) and v >= 0, "a number >= 0"),
    "method.score_init_std": (lambda v: isinstance(v, (int, float)) and v >= 0, "a number >= 0"),
    "method.poly_order": (_int(0), "an integer >= 0"),
    "method.pe_init": _one_of("pca", "whiten"),
    "method.mlp_depth": (_int(1), "an integer >= 1"),
    "method.experts": (_int(1), "an integer >= 1"),
    "method.whiten": _one_of("pca", "zca"),
    "method.align_weight": (lambda v: isinstance(v, (int, float)) and v >= 0, "a number >= 0"),
    "method.select": _one_of("random", "stride", "variance"),
    "method.alphafuse_mode": _one_of("add", "cover"),
    "train.loss": _one_of("ce", "infonce", "bce"),
    "train.temperature": (_positive, "a number > 0"),
    "train.num_negatives": (_int(0), "an integer >= 0 (0: all items)"),
    "train.lr": (_positive, "a number > 0"),
    "train.weight_decay": (lambda v: isinstance(v, (int, float)) and v >= 0, "a number >= 0"),
    "train.batch_size": (_int(1), "an integer >= 1"),
    "train.epochs": (_int(1), "an integer >= 1"),
    "train.patience": (_int(1), "an integer >= 1"),
    "train.eval_every": (_int(1), "an integer >= 1"),
    "train.eval_batch_size": (_int(1), "an integer >= 1"),
    "train.select_metric": _one_of("ndcg@10", "ndcg@20", "hr@10", "hr@20"),
    "train.select_protocol": _one_of("masked", "unmasked"),
    "train.seed": (_int(0), "an integer >= 0"),
    "train.precision": _one_of("fp32", "bf16"),
    "train.compile": _one_of("none", "default", "reduce-overhead", "max-autotune"),
    "train.num_threads": (_optional_int(1), "an integer >= 1, or null for torch's default"),
}


def _upgrade(section: str, values: dict) -> dict:
    """Stored rows name ``train.exclude_history`` (before both protocols were stored): it chose
    the protocol that selected the epoch."""
    if section == "train" and "exclude_history" in values:
        values["select_protocol"] = "masked" if values.pop("exclude_history") else "unmasked"
    return values


SECTIONS = {"data": DataConfig, "text": TextConfig, "model": ModelConfig, "method": MethodConfig,
            "train": TrainConfig}
PROFILES = ("default", "cpu-small", "gpu-full")
BOOKKEEPING = {"train": ("device", "num_threads", "eval_batch_size"), "data": ("data_dir",)}
RECIPE_VERSION = 1   # bump when a default above, the trainer or the evaluation changes what a run computes
