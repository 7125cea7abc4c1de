"""Decoder language models as text encoders, on a tiny randomly initialised LLaMA-class model
that the test builds itself (no download)."""
import numpy as np
import pytest
import torch

from spectran_tutorial.errors import ConfigError
from spectran_tutorial.llm_encoder import build_tiny_decoder, encode_with_decoder, is_decoder_model, pool
from spectran_tutorial.text import embed_texts, encoder_label

TEXTS = ["Pens. Brand: Bic. Categories: Office Products, Pens",
         "Stapler",
         "Paper. Categories: Office Products, Paper, Copy Paper, Letter Size",
         "Brand: Bic"]


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory):
    return build_tiny_decoder(tmp_path_factory.mktemp("tiny-llama"), TEXTS)


def test_a_causal_lm_folder_is_recognised_and_a_sentence_model_is_not(tiny_llama, tmp_path):
    assert is_decoder_model(tiny_llama)
    (tmp_path / "modules.json").write_text("[]")
    (tmp_path / "config.json").write_text('{"architectures": ["LlamaForCausalLM"]}')
    assert not is_decoder_model(str(tmp_path))          # sentence-transformers folders keep their pooling


@pytest.mark.parametrize("pooling", ["mean", "last"])
def test_decoder_embeddings_do_not_depend_on_the_batch(tiny_llama, pooling):
    together = encode_with_decoder(TEXTS, tiny_llama, pooling, batch_size=4, progress=False)
    alone = np.stack([encode_with_decoder([t], tiny_llama, pooling, progress=False)[0] for t in TEXTS])
    assert together.shape == (4, 48) and together.dtype == np.float32 and np.isfinite(together).all()
    np.testing.assert_allclose(together, alone, atol=1e-5)   # padding and the length sort change nothing


def test_last_token_pooling_reads_the_last_real_token():
    hidden = torch.arange(2 * 3 * 2, dtype=torch.float32).reshape(2, 3, 2)
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    assert pool(hidden, mask, "last").tolist() == [[2.0, 3.0], [10.0, 11.0]]
    assert pool(hidden, mask, "mean").tolist() == [[1.0, 2.0], [8.0, 9.0]]
    with pytest.raises(ConfigError, match="text.pooling"):      # refused before any model is loaded
        encode_with_decoder(["a"], "/no/such/model", "max")


def test_decoder_embeddings_are_cached_per_pooling(tiny_llama, tmp_path, monkeypatch):
    monkeypatch.setenv("SPECTRAN_CACHE", str(tmp_path))
    first = embed_texts(TEXTS + [""], tiny_llama, pooling="last", progress=False, log=lambda *_: None)
    again = embed_texts(TEXTS + [""], tiny_llama, pooling="last", progress=False, log=lambda *_: None)
    mean = embed_texts(TEXTS + [""], tiny_llama, pooling="mean", progress=False, log=lambda *_: None)
    assert not first.from_cache and again.from_cache and not mean.from_cache
    assert torch.equal(first.matrix, again.matrix) and not torch.allclose(first.matrix, mean.matrix)
    assert first.missing == 1 and first.dim == 48
    assert encoder_label(tiny_llama, "last").endswith("(last pooling, float32)")
    assert len(list((tmp_path / "embeddings").glob("*.npy"))) == 2
