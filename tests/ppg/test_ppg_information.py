"""KSG mutual information, KL entropy and the information fraction on cases with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ppg import information_fraction, kl_entropy, ksg_mutual_information
from ppg.information import _kl_with_origins, _ksg_with_origins, dequantize

N = 2000


def _gauss_pair(rho, seed=0):
    rng = np.random.default_rng(seed)
    s = rng.multivariate_normal([0, 0], [[1, rho], [rho, 1]], N)
    return s[:, 0], s[:, 1]


@pytest.mark.parametrize("rho", [0.3, 0.6, 0.9])
def test_bivariate_gaussian_mi(rho):
    x, y = _gauss_pair(rho)
    assert ksg_mutual_information(x, y, k=3) == pytest.approx(-0.5 * math.log(1 - rho**2), abs=0.05)


def test_five_dimensional_gaussian_mi():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(5, 5))
    cov = a @ a.T + np.eye(5)
    s = rng.multivariate_normal(np.zeros(5), cov, N)
    truth = 0.5 * math.log(np.linalg.det(cov[:4, :4]) * cov[4, 4] / np.linalg.det(cov))
    assert ksg_mutual_information(s[:, :4], s[:, 4], k=3) == pytest.approx(truth, abs=0.05)


def test_independent_data_gives_about_zero():
    rng = np.random.default_rng(2)
    assert abs(ksg_mutual_information(rng.normal(size=(N, 3)), rng.normal(size=N))) <= 0.05


@pytest.mark.parametrize("rho", [0.3, 0.6, 0.9])
def test_invariant_under_monotone_transforms(rho):
    # Monotone maps of each variable leave I unchanged; the estimator's finite-sample bias
    # moves a little with the shape (tail-stretching maps like a cube move it most).
    x, y = _gauss_pair(rho, seed=3)
    base = ksg_mutual_information(x, y)
    for fx, fy in [
        (lambda v: np.exp(v / 2), lambda v: 1 / (1 + np.exp(-v))),
        (lambda v: v + v**3 / 3, lambda v: 2 * v + 7),
    ]:
        assert ksg_mutual_information(fx(x), fy(y)) == pytest.approx(base, abs=0.02)


def test_units_bits_vs_nats():
    x, y = _gauss_pair(0.6)
    assert ksg_mutual_information(x, y, units="bits") == pytest.approx(
        ksg_mutual_information(x, y) / math.log(2)
    )


def test_gaussian_entropy_in_natural_unit():
    y = np.random.default_rng(4).normal(120, 15, N)
    assert kl_entropy(y) == pytest.approx(0.5 * math.log(2 * math.pi * math.e * 15**2), abs=0.05)


def test_tied_label_entropy_after_dequantisation():
    y = np.random.default_rng(5).normal(120, 15, N)
    tied = np.round(y / 2) * 2  # 2 mmHg steps: heavy ties
    with pytest.raises(ValueError, match="dequantise"):
        kl_entropy(tied)
    deq, res = dequantize(tied, random_state=0)
    assert res == pytest.approx(2.0)
    # Uniform noise over the step restores the continuous entropy (to within the estimator).
    assert kl_entropy(deq) == pytest.approx(kl_entropy(y), abs=0.05)
    r = information_fraction(y + np.random.default_rng(6).normal(0, 5, N), tied, random_state=0)
    assert r.label_resolution == pytest.approx(2.0)
    assert 5.5 < r.entropy_bits < 6.5  # ½·log2(2πe·15²) ≈ 5.95 bits


def test_information_fraction_relations_and_bootstrap():
    rng = np.random.default_rng(7)
    groups = np.repeat(np.arange(100), 8)
    y = rng.normal(120, 15, 800)
    x = y + rng.normal(0, 5, 800)
    r = information_fraction(
        x, y, k=3, groups=groups, n_bootstrap=20, random_state=0, show_progress=False
    )
    assert r.fraction == pytest.approx(r.mi_bits / r.entropy_bits)
    assert r.n_groups == 100 and r.n == 800 and r.d == 1
    lo, hi = r.fraction_ci
    assert lo <= r.fraction <= hi and hi - lo < 0.2
    # Truth: I = -½ ln(1 - ρ²) with ρ² = 15² / (15² + 5²) = 0.9; KSG is biased low for strong
    # dependence at n = 800 (about 0.1 nats here), never high.
    truth = -0.5 * math.log(0.1)
    assert truth - 0.15 < r.mi_nats <= truth + 0.02
    more = information_fraction(y + rng.normal(0, 1, 800), y, random_state=0)
    assert more.fraction > r.fraction


def test_copy_aware_bootstrap_estimator_equals_kdtree_without_copies():
    rng = np.random.default_rng(8)
    x = rng.normal(size=(300, 2))
    y = x[:, 0] + rng.normal(size=300)
    assert _ksg_with_origins(x, y[:, None], np.arange(300), 3) == pytest.approx(
        ksg_mutual_information(x, y), rel=1e-12
    )
    assert _kl_with_origins(y[:, None], np.arange(300), 3) == pytest.approx(kl_entropy(y))
    # Exact copies are ignored, so duplicating every point changes little (no blow-up).
    idx = np.concatenate([np.arange(300), np.arange(300)])
    dup = _ksg_with_origins(x[idx], y[idx][:, None], idx, 3)
    assert abs(dup - ksg_mutual_information(x, y)) < 0.15


@pytest.mark.parametrize(
    ("X", "y", "match"),
    [
        (np.zeros((10, 2)) + np.arange(10)[:, None], np.arange(9.0), "rows"),
        (np.arange(10.0), np.r_[np.arange(9.0), np.nan], "NaN"),
        (np.arange(3.0), np.arange(3.0), "k \\+ 1"),
        (np.ones(10), np.arange(10.0), "constant"),
    ],
)
def test_bad_input_is_a_clear_error(X, y, match):
    with pytest.raises(ValueError, match=match):
        ksg_mutual_information(X, y, k=3)
    with pytest.raises(ValueError, match=match):
        information_fraction(X, y, k=3, random_state=0)


def test_bad_k_and_units():
    x, y = _gauss_pair(0.5)
    with pytest.raises(ValueError, match="k must"):
        ksg_mutual_information(x, y, k=0)
    with pytest.raises(ValueError, match="units"):
        kl_entropy(y, units="hartley")
