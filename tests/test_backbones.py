import torch

from spectran_tutorial.backbones import SASRec
from spectran_tutorial.backbones.layers import attention_mask


def make_sasrec(dim=16, max_len=12):
    torch.manual_seed(0)
    return SASRec(dim, max_len, num_layers=2, num_heads=2, dropout=0.0, emb_dropout=0.0).eval()


def test_attention_mask_is_causal_and_skips_padding():
    valid = torch.tensor([[False, True, True]])
    m = attention_mask(valid, causal=True)[0, 0]
    assert m.tolist() == [[True, False, False], [False, True, False], [False, True, True]]


def test_sasrec_is_causal():
    """Changing the items after position t never changes the output at t."""
    model = make_sasrec()
    emb = torch.randn(3, 12, 16)
    valid = torch.ones(3, 12, dtype=torch.bool)
    out = model(emb, valid)
    for t in range(11):
        changed = emb.clone()
        changed[:, t + 1:] = torch.randn_like(changed[:, t + 1:])
        again = model(changed, valid)
        assert torch.allclose(out[:, : t + 1], again[:, : t + 1], atol=1e-5)
        assert not torch.allclose(out[:, t + 1:], again[:, t + 1:], atol=1e-3)


def test_sasrec_ignores_left_padding():
    model = make_sasrec()
    emb = torch.randn(1, 5, 16)
    short = model(emb, torch.ones(1, 5, dtype=torch.bool))
    padded_emb = torch.cat([torch.randn(1, 7, 16), emb], dim=1)       # junk under the padding
    valid = torch.tensor([[False] * 7 + [True] * 5])
    padded = model(padded_emb, valid)
    assert torch.allclose(short, padded[:, 7:], atol=1e-5)


def test_sasrec_output_shape_and_dropout_is_train_only():
    model = SASRec(8, 6, dropout=0.5, emb_dropout=0.5)
    emb, valid = torch.randn(4, 6, 8), torch.ones(4, 6, dtype=torch.bool)
    assert model(emb, valid).shape == (4, 6, 8)
    model.eval()
    assert torch.equal(model(emb, valid), model(emb, valid))
    model.train()
    assert not torch.equal(model(emb, valid), model(emb, valid))
