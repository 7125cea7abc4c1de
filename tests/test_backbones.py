import pytest
import torch

from spectran_tutorial.backbones import BACKBONES, BERT4Rec, SASRec
from spectran_tutorial.backbones.layers import attention_mask
from spectran_tutorial.config import Config
from spectran_tutorial.text import TextMatrix
from spectran_tutorial.train import build_model, train

from conftest import check_record

CAUSAL = ["sasrec", "hstu", "gru4rec"]


def make(name, dim=16, max_len=12):
    torch.manual_seed(0)
    return BACKBONES[name](dim, max_len, num_layers=2, num_heads=2, dropout=0.0, emb_dropout=0.0).eval()


def test_attention_mask_is_causal_and_skips_padding():
    valid = torch.tensor([[False, True, True]])
    m = attention_mask(valid, causal=True)[0, 0]
    assert m.tolist() == [[True, False, False], [False, True, False], [False, True, True]]


@pytest.mark.parametrize("name", CAUSAL)
def test_causal_backbones(name):
    """Changing the items after position t never changes the output at t."""
    model = make(name)
    emb = torch.randn(3, 12, 16)
    valid = torch.ones(3, 12, dtype=torch.bool)
    out = model(emb, valid)
    for t in range(11):
        changed = emb.clone()
        changed[:, t + 1:] = torch.randn_like(changed[:, t + 1:])
        again = model(changed, valid)
        assert torch.allclose(out[:, : t + 1], again[:, : t + 1], atol=1e-5)
        assert not torch.allclose(out[:, t + 1:], again[:, t + 1:], atol=1e-4)


def test_bert4rec_sees_later_items():
    model = make("bert4rec")
    emb = torch.randn(2, 12, 16)
    valid = torch.ones(2, 12, dtype=torch.bool)
    changed = emb.clone()
    changed[:, 6:] = torch.randn_like(changed[:, 6:])
    assert not torch.allclose(model(emb, valid)[:, :6], model(changed, valid)[:, :6], atol=1e-4)


def test_bert4rec_mask_token_is_its_own_vector():
    model = make("bert4rec")
    emb = torch.randn(1, 12, 16)
    valid = torch.ones(1, 12, dtype=torch.bool)
    masked = torch.zeros(1, 12, dtype=torch.bool)
    masked[0, 4] = True
    other = emb.clone()
    other[0, 4] = torch.randn(16)                 # whatever sits under the mask is not seen
    assert torch.allclose(model(emb, valid, masked), model(other, valid, masked), atol=1e-6)


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_left_padding_changes_nothing(name):
    model = make(name)
    emb = torch.randn(1, 5, 16)
    short = model(emb, torch.ones(1, 5, dtype=torch.bool))
    padded_emb = torch.cat([torch.randn(1, 7, 16), emb], dim=1)       # junk under the padding
    valid = torch.tensor([[False] * 7 + [True] * 5])
    padded = model(padded_emb, valid)
    assert torch.allclose(short, padded[:, 7:], atol=1e-5)


def test_dropout_is_train_only():
    model = SASRec(8, 6, dropout=0.5, emb_dropout=0.5)
    emb, valid = torch.randn(4, 6, 8), torch.ones(4, 6, dtype=torch.bool)
    assert model(emb, valid).shape == (4, 6, 8)
    model.eval()
    assert torch.equal(model(emb, valid), model(emb, valid))
    model.train()
    assert not torch.equal(model(emb, valid), model(emb, valid))


def test_bert4rec_ranks_with_an_appended_mask(office_small):
    cfg = Config().replace("model", backbone="bert4rec", dim=16).replace("data", max_len=5)
    torch.manual_seed(0)
    model = build_model(cfg, office_small).eval()
    assert isinstance(model.backbone, BERT4Rec)
    table = model.table()
    masked = torch.zeros(1, 5, dtype=torch.bool)
    masked[:, -1] = True
    # a short history keeps every item, whatever padding the batch gives it
    short = model.user_vectors(torch.tensor([[1, 2, 4, 6]]), table)
    padded = model.user_vectors(torch.tensor([[0, 0, 1, 2, 4, 6]]), table)
    expected = model.hidden(torch.tensor([[1, 2, 4, 6, 0]]), table, masked)[:, -1]
    assert torch.allclose(short, expected, atol=1e-6) and torch.allclose(padded, expected, atol=1e-6)
    # a history that fills max_len gives up its oldest item to the mask
    full = model.user_vectors(torch.tensor([[1, 2, 3, 4, 6]]), table)
    assert torch.allclose(full, model.hidden(torch.tensor([[2, 3, 4, 6, 0]]), table, masked)[:, -1], atol=1e-6)


@pytest.mark.parametrize("backbone", sorted(BACKBONES))
@pytest.mark.parametrize("method", ["id", "spectran", "mlp"])
def test_every_backbone_trains_with_every_kind_of_table(backbone, method, office_small):
    gen = torch.Generator().manual_seed(0)
    text = TextMatrix(torch.randn(office_small.num_items, 48, generator=gen) + 1, "synthetic", 0, False)
    cfg = Config().replace("model", backbone=backbone, dim=16).replace("method", name=method)
    cfg = cfg.replace("train", epochs=1, batch_size=64)
    result = train(cfg, data=office_small, text=text, run_dir=None, progress=False, log=lambda *_: None)
    assert result["epochs"] == 1
    check_record(result, office_small.num_users)


def test_hstu_time_bias_reads_gaps_causally_and_ignores_padding():
    from spectran_tutorial.backbones.hstu import time_buckets
    assert time_buckets(torch.tensor([[0, 1, 2, 3600, 86400]]))[0, :, 0].tolist() == [0, 0, 2, 27, 37]
    model = make("hstu")
    for layer in model.layers:
        torch.nn.init.normal_(layer.time_bias, std=1.0)
    emb = torch.randn(1, 6, 16)
    valid = torch.ones(1, 6, dtype=torch.bool)
    times = torch.tensor([[100, 200, 5000, 90_000, 90_010, 10**7]])
    out = model(emb, valid, times=times)
    assert not torch.allclose(out, model(emb, valid), atol=1e-4)          # the gaps matter
    later = times.clone()
    later[0, 4:] += 10**6                                                  # later events moved
    assert torch.allclose(out[:, :4], model(emb, valid, times=later)[:, :4], atol=1e-5)
    shifted = model(emb, valid, times=times + 12345)                      # only gaps count
    assert torch.allclose(out, shifted, atol=1e-5)
    padded = model(torch.cat([torch.randn(1, 3, 16), emb], dim=1),
                   torch.tensor([[False] * 3 + [True] * 6]),
                   times=torch.cat([torch.tensor([[7, 0, 3]]), times], dim=1))
    assert torch.allclose(out, padded[:, 3:], atol=1e-5)


def test_hstu_learns_a_time_bias_on_timestamped_data(data_dir):
    from spectran_tutorial.data import load_dataset
    ml = load_dataset("ml-100k", data_dir, max_users=150)
    cfg = Config().replace("model", backbone="hstu", dim=16).replace("train", epochs=1, batch_size=32)
    cfg = cfg.replace("data", max_len=20)
    torch.manual_seed(0)
    model = build_model(cfg, ml)
    assert model.uses_time and all(torch.all(l.time_bias == 0) for l in model.backbone.layers)
    from spectran_tutorial.train import Trainer
    Trainer(cfg, ml, model, torch.device("cpu"), progress=False, log=lambda *_: None).fit()
    assert any(torch.any(l.time_bias != 0) for l in model.backbone.layers)


def test_time_bias_can_be_switched_off(data_dir):
    from spectran_tutorial.data import load_dataset
    ml = load_dataset("ml-100k", data_dir, max_users=30)
    on = build_model(Config().replace("model", backbone="hstu", dim=16), ml)
    off = build_model(Config().replace("model", backbone="hstu", dim=16, time_bias=False), ml)
    assert on.uses_time and not off.uses_time and not build_model(Config(), ml).uses_time


def test_the_gpu_forms_of_gru4rec_and_of_hstus_time_buckets_agree_with_the_cpu_forms():
    """GRU4Rec without packing (as on a GPU) gives the packed outputs at every real position, and
    HSTU's time buckets computed in float32 (as on a GPU) equal the float64 ones for real gaps."""
    from spectran_tutorial.backbones.gru4rec import GRU4Rec
    from spectran_tutorial.backbones.hstu import time_buckets
    torch.manual_seed(0)
    gru = GRU4Rec(dim=8, max_len=6).eval()
    emb = torch.randn(3, 6, 8)
    valid = torch.tensor([[0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1], [0, 0, 0, 0, 0, 1]], dtype=torch.bool)
    gru.packed = True
    packed = gru(emb, valid)
    gru.packed = False
    assert torch.allclose(gru(emb, valid)[valid], packed[valid], atol=1e-6)
    times = torch.cumsum(torch.randint(0, 10**7, (4, 50), generator=torch.Generator().manual_seed(1)), dim=1)
    same = time_buckets(times, torch.float32) == time_buckets(times, torch.float64)
    assert same.float().mean() > 0.999
