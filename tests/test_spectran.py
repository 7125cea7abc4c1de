import pytest
import torch

from spectran_tutorial.config import MethodConfig
from spectran_tutorial.item_tables import METHODS, build_item_table
from spectran_tutorial.item_tables.spectran import SpecTranTable
from spectran_tutorial.spectral import spectral_basis

D = 8


def spectran(text, **fields):
    cfg = MethodConfig(name="spectran", **fields)
    torch.manual_seed(0)
    return build_item_table(cfg, text.shape[0], D, text)


def principal_coords(text, d):
    """PCA by hand: centred text times the top-d right singular vectors."""
    x = (text - text.mean(0)).double()
    _, s, vt = torch.linalg.svd(x, full_matrices=False)
    return x @ vt[:d].T, s


def same_up_to_sign(a, b, atol=1e-4):
    signs = torch.sign((a * b).sum(0))
    return torch.allclose(a * signs, b, atol=atol)


def test_no_attention_with_identity_polynomial_is_pca_truncation(random_text):
    table = spectran(random_text, attention=False, pe_init="pca")
    coords, s = principal_coords(random_text, D)
    n = random_text.shape[0]
    expected = coords * (n ** 0.5 / s[0])        # PCA coordinates in units of the top component's std
    assert same_up_to_sign(table.adapter_output().double(), expected)


def test_no_attention_with_constant_polynomial_is_whitened_pca(random_text):
    table = spectran(random_text, attention=False, pe_init="whiten")
    out = table.adapter_output().double()
    coords, s = principal_coords(random_text, D)
    expected = coords / (s[:D] / random_text.shape[0] ** 0.5)
    assert same_up_to_sign(out, expected)
    cov = out.T @ out / out.shape[0]
    assert torch.allclose(cov, torch.eye(D, dtype=cov.dtype), atol=1e-4)


def test_singular_values_of_adapter_output_are_those_of_w(random_text):
    table = spectran(random_text)
    out = table.adapter_output().detach()
    w = table.spectral_weights().detach()
    n = random_text.shape[0]
    sv_out = torch.linalg.svdvals(out)
    sv_w = torch.linalg.svdvals(w) * n ** 0.5     # C = sqrt(N) U has orthogonal columns of norm sqrt(N)
    assert torch.allclose(sv_out, sv_w, rtol=1e-4, atol=1e-4)


def test_full_spectrum_keys_and_shapes(random_text):
    table = spectran(random_text)
    r = spectral_basis(random_text).rank
    assert table.keys.shape[0] == r > D
    assert table.spectral_weights().shape == (D, r)
    full = table()
    assert full.shape == (random_text.shape[0] + 1, D)
    assert torch.equal(full[0], torch.zeros(D))
    topd = spectran(random_text, full_spectrum=False)
    assert topd.spectral_weights().shape == (D, D)


def test_attention_is_alive_at_initialisation(random_text):
    table = spectran(random_text)
    att = table.attention()
    assert (att != 0).float().mean() > 0.5


def test_gradients_reach_every_spectran_parameter(random_text):
    table = spectran(random_text)
    table().pow(2).sum().backward()
    for name in ("queries", "keys", "raw_threshold", "poly", "fusion.ids"):
        grad = table.get_parameter(name).grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_per_query_thresholds_learn_separately(random_text):
    table = spectran(random_text, per_query_threshold=True, threshold_init=0.005)
    assert table.threshold.shape == (D, 1) and torch.allclose(table.threshold, torch.full((D, 1), 0.005))
    table().pow(2).sum().backward()
    grad = table.raw_threshold.grad
    assert grad.shape == (D, 1) and len(set(grad.flatten().tolist())) == D   # one gradient per query


def test_a_frozen_polynomial_stays_put(random_text):
    table = spectran(random_text, pe_init="whiten", pe_trainable=False)
    table().pow(2).sum().backward()
    assert table.poly.grad is None and table.queries.grad is not None
    assert torch.allclose(table.position_encoding(), torch.ones(D))


def test_a_normalised_polynomial_keeps_the_text_scale(random_text):
    table = spectran(random_text, pe_normalize=True)              # g(x) = x, then divided by its RMS
    g = table.position_encoding()
    x = table.sv[:D]
    assert torch.allclose(g, x / x.pow(2).mean().sqrt()) and torch.allclose(g.pow(2).mean(), torch.tensor(1.0))
    with torch.no_grad():
        table.poly.mul_(0.3)                                      # a global rescale of g changes nothing
    assert torch.allclose(table.position_encoding(), g, atol=1e-6)
    whiten = spectran(random_text, pe_init="whiten", pe_normalize=True)
    assert torch.allclose(whiten.position_encoding(), torch.ones(D))


def test_softmax_rows_sum_to_one(random_text):
    table = spectran(random_text, phi="softmax")
    assert torch.allclose(table.attention().sum(1), torch.ones(D))


def test_ablations_switch_parts_off(random_text):
    no_attn = build_item_table(MethodConfig(name="spectran-no-attn"), 40, D, random_text)
    assert no_attn.attention() is None
    assert no_attn.poly.tolist()[0] == 1.0                 # starts as whitened PCA
    no_pe = build_item_table(MethodConfig(name="spectran-no-pe"), 40, D, random_text)
    assert no_pe.position_encoding() is None
    with pytest.raises(ValueError, match="attention, the position encoding, or both"):
        spectran(random_text, attention=False, position_encoding=False)


def test_concat_fusion_keeps_shape(random_text):
    table = spectran(random_text, fusion="concat")
    assert table().shape == (41, D)


def test_text_matrix_is_checked(random_text):
    from spectran_tutorial.errors import TextError
    with pytest.raises(TextError, match="needs the item text"):
        build_item_table(MethodConfig(name="spectran"), 40, D, None)
    with pytest.raises(TextError, match=r"\(num_items=39, D\)"):
        build_item_table(MethodConfig(name="spectran"), 39, D, random_text)
    bad = random_text.clone()
    bad[5, 2] = float("nan")
    with pytest.raises(TextError, match="NaN"):
        build_item_table(MethodConfig(name="spectran"), 40, D, bad)
    with pytest.raises(ValueError, match="unknown method"):
        build_item_table(MethodConfig(name="spectrum"), 40, D, random_text)


def test_spectran_table_class_is_registered():
    assert METHODS["spectran"][0] is SpecTranTable


def test_text_only_fusion_has_no_id_table(random_text):
    """fusion="none": the table is the scaled adapter output alone, with no ID parameters."""
    from spectran_tutorial.config import MethodConfig
    from spectran_tutorial.item_tables import build_item_table
    table = build_item_table(MethodConfig(name="spectran", fusion="none"), 40, 8, random_text)
    with_ids = build_item_table(MethodConfig(name="spectran"), 40, 8, random_text)
    n = lambda t: sum(p.numel() for p in t.parameters())
    assert n(with_ids) - n(table) == 41 * 8 or n(with_ids) - n(table) == 40 * 8
    out = table()
    assert torch.allclose(out[1:], table.scale * table.adapter_output()) and torch.all(out[0] == 0)
