"""Sequential backbones: each maps embedded item sequences to hidden states."""
from __future__ import annotations

from torch import nn

from ..config import DataConfig, ModelConfig
from ..errors import ConfigError
from .bert4rec import BERT4Rec
from .gru4rec import GRU4Rec
from .hstu import HSTU
from .sasrec import SASRec

BACKBONES = {"sasrec": SASRec, "bert4rec": BERT4Rec, "hstu": HSTU, "gru4rec": GRU4Rec}


def build_backbone(model: ModelConfig, data: DataConfig) -> nn.Module:
    if model.backbone not in BACKBONES:
        raise ConfigError(f"unknown backbone {model.backbone!r}; choose one of {', '.join(BACKBONES)}")
    backbone = BACKBONES[model.backbone](model.dim, data.max_len, model.num_layers, model.num_heads,
                                         model.dropout, model.emb_dropout)
    if not model.time_bias:
        backbone.uses_time = False     # HSTU without its relative time bias
    return backbone


__all__ = ["BACKBONES", "SASRec", "BERT4Rec", "HSTU", "GRU4Rec", "build_backbone"]
