import numpy as np
import pytest

from spectran_tutorial.diagnostics import anisotropy, effective_rank, energy_share, singular_spectrum


def test_effective_rank_of_isotropic_and_rank_one_tables():
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(200, 16)))
    iso = q * np.sqrt(200)              # 16 orthogonal columns of equal norm
    assert effective_rank(iso, center=False) == pytest.approx(16, rel=1e-6)
    one = np.outer(np.arange(1, 51), np.ones(8))
    assert effective_rank(one) == pytest.approx(1, abs=1e-6)


def test_spectrum_sums_to_one_and_energy_share():
    x = np.diag([3.0, 1.0, 0.0])
    p = singular_spectrum(x, center=False)
    assert p.sum() == pytest.approx(1)
    assert energy_share(x, 1, center=False) == pytest.approx(0.9)


def test_anisotropy():
    rng = np.random.default_rng(0)
    assert abs(anisotropy(rng.normal(size=(500, 64)))) < 0.02
    assert anisotropy(rng.normal(size=(500, 64)) + 5) > 0.9
