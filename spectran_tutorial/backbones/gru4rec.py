"""GRU4Rec (Hidasi et al., 2016): a GRU over the embedded sequence."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .layers import Dropout


def left_to_right_padding(valid: torch.Tensor) -> torch.Tensor:
    """Column indices that move each left-padded row's items to the front (and back again)."""
    length = valid.shape[1]
    n_pad = (~valid).sum(dim=1, keepdim=True)
    return (torch.arange(length, device=valid.device) + n_pad) % length


class GRU4Rec(nn.Module):
    """A GRU run over the real items only (padding never enters the recurrence); the state at
    each position depends only on the items up to it."""

    causal = True
    objective = "next"
    packed: bool | None = None   # None: packed sequences on the CPU, plain padded ones on a GPU

    def __init__(self, dim: int, max_len: int, num_layers: int = 1, num_heads: int = 1,
                 dropout: float = 0.5, emb_dropout: float = 0.5):
        super().__init__()
        self.max_len = max_len
        self.input_drop = Dropout(emb_dropout)
        self.gru = nn.GRU(dim, dim, num_layers=num_layers, batch_first=True,
                          dropout=dropout if num_layers > 1 else 0.0)
        self.output_drop = Dropout(dropout)
        self.proj = nn.Linear(dim, dim)

    def forward(self, emb: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        order = left_to_right_padding(valid)
        x = self.input_drop(emb).gather(1, order[..., None].expand_as(emb))
        if self.packed if self.packed is not None else x.device.type == "cpu":   # no work on the padding
            lengths = valid.sum(dim=1).clamp(min=1)
            packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
            out, _ = self.gru(packed)
            out, _ = pad_packed_sequence(out, batch_first=True, total_length=emb.shape[1])
        else:       # padding is on the right now, so the outputs at the real positions are the same;
                    # packing would need the lengths on the host. cuDNN's autocast would run the GRU in
                    # float16 whatever the autocast type, so it runs in float32 here
            with torch.autocast(x.device.type, enabled=False):
                out, _ = self.gru(x.float())
        back = (torch.arange(emb.shape[1], device=emb.device) - (~valid).sum(1, keepdim=True)) % emb.shape[1]
        out = out.gather(1, back[..., None].expand_as(out))
        return self.proj(self.output_drop(out)) * valid[..., None]
