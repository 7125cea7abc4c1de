"""Next-item losses on hidden states ``h`` (M, d) of the positions that have a target.

All take the full item table (N + 1, d) and the target ids (M,) in 1..N.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .batching import sample_negatives


def cross_entropy(h: torch.Tensor, table: torch.Tensor, targets: torch.Tensor, **_) -> torch.Tensor:
    """Full-softmax cross-entropy over all real items."""
    return F.cross_entropy(h @ table[1:].T, targets - 1)


def info_nce(h: torch.Tensor, table: torch.Tensor, targets: torch.Tensor, *, gen: torch.Generator,
             temperature: float = 0.07, num_negatives: int = 64, **_) -> torch.Tensor:
    """InfoNCE on L2-normalised vectors: the target against ``num_negatives`` uniformly sampled
    items per position (0: against all items)."""
    h = F.normalize(h, dim=-1)
    items = F.normalize(table, dim=-1)
    if num_negatives == 0:
        return F.cross_entropy(h @ items[1:].T / temperature, targets - 1)
    neg = sample_negatives(gen, table.shape[0] - 1, (len(targets), num_negatives), h.device)
    pos_logit = (h * items[targets]).sum(-1, keepdim=True)
    neg_logit = torch.einsum("md,mkd->mk", h, items[neg])
    neg_logit = neg_logit.masked_fill(neg == targets[:, None], -torch.inf)   # a negative equal to the target
    logits = torch.cat([pos_logit, neg_logit], dim=1) / temperature
    return F.cross_entropy(logits, torch.zeros_like(targets))


def binary_cross_entropy(h: torch.Tensor, table: torch.Tensor, targets: torch.Tensor, *,
                         gen: torch.Generator, **_) -> torch.Tensor:
    """SASRec's original loss: the target against one sampled negative, as two logistic terms."""
    neg = sample_negatives(gen, table.shape[0] - 1, (len(targets),), h.device)
    pos = (h * table[targets]).sum(-1)
    negs = (h * table[neg]).sum(-1)
    return F.binary_cross_entropy_with_logits(pos, torch.ones_like(pos)) + \
        F.binary_cross_entropy_with_logits(negs, torch.zeros_like(negs))


LOSSES = {"ce": cross_entropy, "infonce": info_nce, "bce": binary_cross_entropy}
