"""Every item table: shapes, padding, which parameters train, determinism, and the defining
property of each SVD baseline."""
import numpy as np
import pytest
import torch

from spectran_tutorial.config import Config, MethodConfig
from spectran_tutorial.item_tables import METHODS, build_item_table
from spectran_tutorial.train import train

from conftest import check_record

D = 8
N = 40

# the parameters each method trains (prefixes of parameter names); everything else is frozen
TRAINS = {
    "id": {"ids"},
    "spectran": {"queries", "keys", "raw_threshold", "poly", "fusion.ids"},
    "spectran-no-attn": {"poly", "fusion.ids"},
    "spectran-no-pe": {"queries", "keys", "raw_threshold", "fusion.ids"},
    "spectran-softmax": {"queries", "keys", "poly", "fusion.ids"},
    "spectran-topd": {"queries", "keys", "raw_threshold", "poly", "fusion.ids"},
    "mlp": {"net"},
    "unisrec": {"bias", "experts", "gate", "noise", "ids"},
    "whitenrec": {"net"},
    "llmesr": {"adapter", "ids"},
    "rlmrec": {"ids", "projector"},
    "llminit": {"ids"},
    "llminit-select": {"ids"},
    "alphafuse": {"ids"},
    "pca": set(),
}


def build(name, text, **fields):
    torch.manual_seed(0)
    return build_item_table(MethodConfig(name=name, **fields), N, D, text,
                            item_counts=np.arange(N)[::-1].copy())


def test_every_method_is_covered():
    assert set(TRAINS) == set(METHODS)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_shape_padding_and_trained_parameters(name, random_text):
    table = build(name, random_text)
    out = table()
    assert out.shape == (N + 1, D * table.views)
    assert torch.equal(out[0], torch.zeros(D * table.views))
    declared = {n for n, _ in table.named_parameters()}
    if not declared:                                      # a fully frozen table
        assert not out.requires_grad and TRAINS[name] == set()
        return
    loss = out.pow(2).sum() + out.sum()
    aux = table.aux_loss()
    if aux is not None:
        loss = loss + aux
    loss.backward()
    trained = {n for n, p in table.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert trained == declared, name                      # every parameter receives a gradient ...
    prefixes = TRAINS[name]
    assert all(any(n == p or n.startswith(p + ".") for p in prefixes) for n in declared), name
    assert not any(b.requires_grad for b in table.buffers())   # ... and the text stays frozen


@pytest.mark.parametrize("name", sorted(METHODS))
def test_deterministic_under_a_seed(name, random_text):
    a, b = build(name, random_text).eval(), build(name, random_text).eval()
    assert torch.equal(a(), b())


def test_pca_coordinates_are_orthogonal_and_ordered_by_variance(random_text):
    out = build("pca", random_text)()[1:].double()
    gram = out.T @ out
    off = gram - torch.diag(torch.diag(gram))
    assert off.abs().max() < 1e-6 * gram.diag().max()
    variances = gram.diag()
    assert torch.all(variances[:-1] >= variances[1:])


@pytest.mark.parametrize("name", ["llminit", "whitenrec"])
def test_whitened_outputs_have_identity_covariance(name, random_text):
    table = build(name, random_text, text_scale=1.0)
    x = table.white if name == "whitenrec" else table.ids.detach()
    x = x.double()
    cov = (x - x.mean(0)).T @ (x - x.mean(0)) / len(x)
    assert torch.allclose(cov, torch.eye(cov.shape[0], dtype=cov.dtype), atol=1e-4)


def test_zca_whitening_has_identity_covariance(random_text):
    x = build("whitenrec", random_text, whiten="zca").white.double()
    cov = x.T @ x / len(x)
    assert torch.allclose(cov, torch.eye(cov.shape[0], dtype=cov.dtype), atol=1e-4)


def test_alphafuse_touches_only_its_last_null_dim_coordinates(random_text):
    table = build("alphafuse", random_text, null_dim=3)
    before = table().detach().clone()
    with torch.no_grad():
        table.ids.add_(torch.randn_like(table.ids))
    changed = (table().detach() - before).abs().sum(0)
    assert torch.all(changed[: D - 3] == 0) and torch.all(changed[D - 3:] > 0)


def test_llminit_select_column_choices(random_text):
    from spectran_tutorial.item_tables.svd import select_columns
    assert select_columns(random_text, 4, "stride", None).tolist() == [0, 6, 12, 18]
    var = select_columns(random_text, 4, "variance", None)
    assert set(var.tolist()) == set(torch.argsort(random_text.var(0), descending=True)[:4].tolist())
    assert len(set(select_columns(random_text, 4, "random", None).tolist())) == 4


def test_llmesr_views_share_the_backbone(office_small):
    """A two-view table gives hidden states of width 2d, scored against the whole table."""
    from spectran_tutorial.train import build_model
    cfg = Config().replace("model", dim=D).replace("method", name="llmesr")
    torch.manual_seed(0)
    text = torch.randn(office_small.num_items, 24)
    model = build_model(cfg, office_small, text).eval()
    seqs = torch.tensor([[0, 3, 5], [1, 2, 4]])
    table = model.table()
    h = model.hidden(seqs, table)
    assert h.shape == (2, 3, 2 * D)
    text_view = model.backbone(table[seqs][..., :D], seqs > 0)
    assert torch.allclose(h[..., :D], text_view)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_one_epoch_on_a_real_subset(name, office_small):
    gen = torch.Generator().manual_seed(0)
    from spectran_tutorial.text import TextMatrix
    text = TextMatrix(torch.randn(office_small.num_items, 48, generator=gen) + 1, "synthetic", 0, False)
    cfg = Config().replace("model", dim=16).replace("method", name=name)
    cfg = cfg.replace("train", epochs=1, batch_size=64)
    result = train(cfg, data=office_small, text=text, run_dir=None, progress=False, log=lambda *_: None)
    assert result["epochs"] == 1
    check_record(result, office_small.num_users)
