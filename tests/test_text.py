import numpy as np
import pytest
import torch

from spectran_tutorial import text as textmod
from spectran_tutorial.data import load_dataset
from spectran_tutorial.errors import TextError
from spectran_tutorial.text import check_matrix, embed_texts, item_text, item_texts


def test_template_joins_non_empty_fields():
    rec = {"title": "Stapler", "brand": "Acme", "categories": ["Office", "Desk"], "price": "3"}
    assert item_text(rec) == "Stapler. Brand: Acme. Categories: Office, Desk."
    assert item_text({"title": "  ", "brand": None}) == ""


def test_dataset_without_items_file_is_refused(tiny_dir):
    (tiny_dir / "toy" / "items.jsonl").unlink()
    with pytest.raises(TextError, match="no item text"):
        item_texts(load_dataset("toy", tiny_dir))


@pytest.fixture
def fake_encoder(monkeypatch):
    """Count encoder calls; return deterministic vectors derived from the texts."""
    calls = []

    def encode(texts, encoder, batch_size, progress, pooling="mean"):
        calls.append(list(texts))
        return np.stack([np.random.default_rng(abs(hash(t)) % 2**32).normal(size=6) for t in texts]).astype(np.float32)

    monkeypatch.setattr(textmod, "encode", encode)
    return calls


def test_cache_is_hit_and_invalidated_by_a_changed_title(tmp_path, monkeypatch, fake_encoder):
    monkeypatch.setenv("SPECTRAN_CACHE", str(tmp_path))
    texts = ["Red pen.", "Blue pen.", "Stapler."]
    first = embed_texts(texts, "fake-model")
    second = embed_texts(texts, "fake-model")
    assert not first.from_cache and second.from_cache and len(fake_encoder) == 1
    assert torch.equal(first.matrix, second.matrix)
    changed = embed_texts(["Red pen.", "Green pen.", "Stapler."], "fake-model")
    assert not changed.from_cache and len(fake_encoder) == 2
    other_model = embed_texts(texts, "other-model")
    assert not other_model.from_cache


def test_missing_text_gets_the_mean_and_is_counted(tmp_path, monkeypatch, fake_encoder):
    monkeypatch.setenv("SPECTRAN_CACHE", str(tmp_path))
    out = embed_texts(["Red pen.", "", "Stapler."], "fake-model")
    assert out.missing == 1
    assert fake_encoder[-1] == ["Red pen.", "Stapler."]          # empty texts are never encoded
    assert torch.allclose(out.matrix[1], (out.matrix[0] + out.matrix[2]) / 2)
    with pytest.raises(TextError, match="1 of 3 items have no text"):
        embed_texts(["Red pen.", "", "Stapler."], "fake-model", missing="error")


@pytest.mark.parametrize("damage", ["nan", "truncated", "garbage", "empty", "wrong rows"])
def test_damaged_cache_is_named_and_rebuilt(tmp_path, monkeypatch, fake_encoder, damage):
    monkeypatch.setenv("SPECTRAN_CACHE", str(tmp_path))
    embed_texts(["a.", "b."], "fake-model", log=lambda *_: None)
    (cached,) = (tmp_path / "embeddings").glob("*.npy")
    if damage == "nan":
        np.save(cached, np.full((2, 6), np.nan, dtype=np.float32))
    elif damage == "wrong rows":
        np.save(cached, np.zeros((5, 6), dtype=np.float32))
    else:
        good = cached.read_bytes()
        cached.write_bytes({"truncated": good[: len(good) - 20], "garbage": b"not a numpy file at all" * 4,
                            "empty": b""}[damage])
    said = []
    out = embed_texts(["a.", "b."], "fake-model", log=said.append)
    assert torch.isfinite(out.matrix).all() and len(fake_encoder) == 2 and not out.from_cache
    assert len(said) == 1 and str(cached) in said[0] and "damaged" in said[0]
    again = embed_texts(["a.", "b."], "fake-model", log=said.append)       # rebuilt, so read back
    assert again.from_cache and len(said) == 1


def test_items_without_title_use_their_other_fields():
    """Clothing's items have no titles: the text starts with the brand or the categories, and an
    item with nothing at all stays missing."""
    rec = {"item_id": "B1", "title": "", "brand": "Levi's", "categories": ["Clothing, Shoes & Jewelry", "Men"]}
    assert item_text(rec) == "Brand: Levi's. Categories: Clothing, Shoes & Jewelry, Men."
    assert item_text({"item_id": "B2", "title": "", "categories": ["Women"]}) == "Categories: Women."
    assert item_text({"item_id": "B3", "title": "", "brand": "", "categories": []}) == ""


def test_check_matrix_names_the_problem():
    with pytest.raises(TextError, match="3 rows for 4 items"):
        check_matrix(np.zeros((3, 5)), 4)
    with pytest.raises(TextError, match="dimension 5, expected 8"):
        check_matrix(np.zeros((4, 5)), 4, dim=8)
    bad = np.zeros((4, 5))
    bad[2, 1] = np.inf
    with pytest.raises(TextError, match="NaN or inf in 1 rows"):
        check_matrix(bad, 4)


def test_default_encoder_runs_offline(tmp_path, monkeypatch):
    """The real all-MiniLM-L6-v2, from the offline package, on a few titles."""
    monkeypatch.setenv("SPECTRAN_CACHE", str(tmp_path))
    out = embed_texts(["Red ballpoint pen", "Blue ballpoint pen", "Electric stapler"], progress=False)
    assert out.matrix.shape == (3, 384)
    m = torch.nn.functional.normalize(out.matrix, dim=1)
    assert m[0] @ m[1] > m[0] @ m[2]            # two pens are closer than a pen and a stapler
