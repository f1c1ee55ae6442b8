"""Multi-valued mapping: the fast blocked implementation against the per-pair contract."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from ppg import multivalued_mapping
from ppg.mvm import pair_test

_spec = importlib.util.spec_from_file_location(
    "mvm_reference", Path(__file__).with_name("mvm_reference.py")
)
_ref = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_ref)
reference_mvm = _ref.reference_mvm


def _pulses(rng, n_win=120, n=60, noise=0.05):
    """Pulse-like windows with random rate and phase, labels in a wide range, 5 records."""
    t = np.arange(n) / 30.0
    f = rng.uniform(1.0, 1.4, n_win)[:, None]
    ph = rng.uniform(0, 2 * np.pi, n_win)[:, None]
    raw = np.sin(2 * np.pi * f * t + ph) + 0.3 * np.sin(4 * np.pi * f * t + 2 * ph)
    raw += rng.normal(0, noise, raw.shape)
    return raw, rng.uniform(90, 170, n_win), rng.integers(0, 5, n_win)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("scope", ["all", "inter", "intra"])
def test_identical_to_per_pair_reference(seed, scope):
    rng = np.random.default_rng(seed)
    raw, y, g = _pulses(rng)
    mv, pairs = reference_mvm(raw, y, g, scope=scope, dist_threshold=0.5)
    res = multivalued_mapping(
        raw, y, groups=g, scope=scope, dist_threshold=0.5, block_size=33, show_progress=False
    )
    assert len(pairs) > 0  # the case must exercise collisions
    np.testing.assert_array_equal(res.multivalued, mv)
    assert list(zip(res.pairs["i"].tolist(), res.pairs["j"].tolist())) == pairs
    assert res.n_pairs == len(pairs)
    assert res.n_multivalued == int(mv.sum())
    assert res.fraction == pytest.approx(mv.mean())


@pytest.mark.parametrize("scope", ["all", "inter", "intra"])
def test_label_band_skip_with_tied_and_boundary_labels(scope):
    # One label per record (like BP), on a 0.1 grid so that differences of exactly the
    # threshold (not > threshold, so no collision) and float rounding both occur; the
    # blocks skipped in label order must not lose a pair.
    rng = np.random.default_rng(11)
    raw, _, g = _pulses(rng, n_win=150)
    g = rng.integers(0, 12, raw.shape[0])
    record_label = np.round(rng.choice([100.1, 108.1, 108.2, 116.1, 124.3, 90.0], 12), 1)
    y = record_label[g]
    y[::7] += 0.1  # a few windows off their record's label (label-minor order in `intra`)
    mv, pairs = reference_mvm(raw, y, g, scope=scope, dist_threshold=0.5)
    for block in (5, 64, 4096):
        res = multivalued_mapping(
            raw,
            y,
            groups=g,
            scope=scope,
            dist_threshold=0.5,
            block_size=block,
            show_progress=False,
        )
        np.testing.assert_array_equal(res.multivalued, mv)
        assert list(zip(res.pairs["i"].tolist(), res.pairs["j"].tolist())) == pairs
    if scope != "intra":
        assert len(pairs) > 0


def _smooth_pulses(rng, n_win=150, n=120):
    """Band-limited windows (no white noise): the compressed correlation screen applies."""
    t = np.arange(n) / 30.0
    f = rng.uniform(1.0, 1.3, n_win)[:, None]
    ph = rng.uniform(0, 2 * np.pi, n_win)[:, None]
    amp2 = rng.uniform(0.2, 0.5, n_win)[:, None]
    raw = np.sin(2 * np.pi * f * t + ph) + amp2 * np.sin(4 * np.pi * f * t + 2 * ph)
    raw += 0.02 * np.sin(2 * np.pi * 0.2 * t + rng.uniform(0, 6, n_win)[:, None])
    return raw, rng.uniform(90, 170, n_win), rng.integers(0, 5, n_win)


def test_compressed_screen_bound_holds():
    from ppg.mvm import _screen_features, zscore_windows

    rng = np.random.default_rng(4)
    raw, _, _ = _smooth_pulses(rng)
    z = zscore_windows(raw)
    feats, resid = _screen_features(z)
    assert feats.shape[1] < z.shape[1] // 2  # compression is used on smooth windows
    exact = z @ z.T
    approx = feats.astype(np.float64) @ feats.astype(np.float64).T
    bound = np.sqrt(np.outer(resid, resid)) + 1e-6 * z.shape[1]  # + float32 rounding
    assert np.all(np.abs(exact - approx) <= bound)
    # White noise spreads energy over every coefficient: the plain windows are used.
    noisy = zscore_windows(raw + rng.normal(0, 0.3, raw.shape))
    feats_noisy, resid_noisy = _screen_features(noisy)
    assert feats_noisy.shape[1] == z.shape[1] and not resid_noisy.any()


@pytest.mark.parametrize("scope", ["all", "inter", "intra"])
def test_compressed_screen_identical_to_reference(scope, monkeypatch):
    # A thin float32 margin, so that the bound on what the compression leaves out (not the
    # margin) is what keeps pairs near the correlation threshold.
    monkeypatch.setattr("ppg.mvm._SCREEN_MARGIN", 2e-5)
    rng = np.random.default_rng(8)
    raw, y, g = _smooth_pulses(rng)
    mv, pairs = reference_mvm(raw, y, g, scope=scope, dist_threshold=0.5)
    res = multivalued_mapping(
        raw, y, groups=g, scope=scope, dist_threshold=0.5, block_size=40, show_progress=False
    )
    assert len(pairs) > 0
    np.testing.assert_array_equal(res.multivalued, mv)
    assert list(zip(res.pairs["i"].tolist(), res.pairs["j"].tolist())) == pairs


def test_compressed_screen_decides_pairs_at_the_threshold(monkeypatch):
    # Windows on a circle of two smooth shapes plus a small high-frequency part that the
    # compressed screen leaves out: pairwise correlations fill [-1, 1] densely, many within
    # the left-out energy of 0.9, and a large distance threshold makes the correlation test
    # decide every collision. Dropping the bound (in the cut or the float64 band) loses or
    # adds pairs here.
    monkeypatch.setattr("ppg.mvm._SCREEN_MARGIN", 2e-5)
    from ppg.mvm import _screen_features

    n, n_win = 128, 160
    t = np.arange(n) / n
    u = np.cos(2 * np.pi * 1.3 * t)
    v = np.sin(2 * np.pi * 2.1 * t + 0.4)
    w = np.cos(2 * np.pi * 45 * t + 0.3)  # far beyond the kept coefficients
    basis = [b - b.mean() for b in (u, v, w)]
    rng = np.random.default_rng(2)
    theta = rng.uniform(0, 2 * np.pi, n_win)
    eps = rng.uniform(-0.02, 0.02, n_win)
    raw = (
        np.cos(theta)[:, None] * basis[0] / np.linalg.norm(basis[0])
        + np.sin(theta)[:, None] * basis[1] / np.linalg.norm(basis[1])
        + eps[:, None] * basis[2] / np.linalg.norm(basis[2])
    )
    y = rng.uniform(0, 100, n_win)
    feats, resid = _screen_features((raw - raw.mean(1, keepdims=True)) / raw.std(1)[:, None])
    assert feats.shape[1] < n // 2 and resid.max() > 0
    mv, pairs = reference_mvm(raw, y, dist_threshold=50.0, label_threshold=1.0)
    assert len(pairs) > 100
    for device in (None, "cpu"):  # numpy/BLAS and the torch path
        res = multivalued_mapping(
            raw,
            y,
            dist_threshold=50.0,
            label_threshold=1.0,
            block_size=64,
            device=device,
            show_progress=False,
        )
        assert list(zip(res.pairs["i"].tolist(), res.pairs["j"].tolist())) == pairs


def test_lags_beyond_the_short_transform_are_found():
    # Narrow bumps at random places: the best lag of a pair is the distance between its
    # bumps, often beyond the short transform's range (n // 5 = 12 here), where the energy
    # bound cannot rule it out, so those pairs are searched again over the full range.
    rng = np.random.default_rng(6)
    n, n_win = 60, 50
    t = np.arange(n)
    centres = rng.uniform(12, 48, n_win)
    raw = np.exp(-0.5 * ((t - centres[:, None]) / 2.5) ** 2) + rng.normal(0, 1e-3, (n_win, n))
    y = rng.uniform(0, 100, n_win)
    kwargs = {"corr_threshold": -1.0, "dist_threshold": 1e9, "label_threshold": 1.0}
    res = multivalued_mapping(raw, y, block_size=16, show_progress=False, **kwargs)
    mv, pairs = reference_mvm(raw, y, **kwargs)
    assert list(zip(res.pairs["i"].tolist(), res.pairs["j"].tolist())) == pairs
    z = (raw - raw.mean(1, keepdims=True)) / raw.std(1, keepdims=True)
    expected = [
        int(np.argmax(np.correlate(z[i], z[j], mode="same"))) - n // 2
        for i, j in zip(res.pairs["i"], res.pairs["j"], strict=True)
    ]
    np.testing.assert_array_equal(res.pairs["lag"], expected)
    assert np.sum(np.abs(expected) > n // 5) >= 100  # the full search was needed


def test_block_size_and_torch_device_do_not_change_counts():
    rng = np.random.default_rng(5)
    raw, y, g = _pulses(rng, n_win=90)
    a = multivalued_mapping(raw, y, groups=g, dist_threshold=0.5, block_size=7, show_progress=False)
    b = multivalued_mapping(
        raw, y, groups=g, dist_threshold=0.5, block_size=1000, show_progress=False
    )
    c = multivalued_mapping(raw, y, groups=g, dist_threshold=0.5, device="cpu", show_progress=False)
    for other in (b, c):
        np.testing.assert_array_equal(a.multivalued, other.multivalued)
        np.testing.assert_array_equal(a.pairs["i"], other.pairs["i"])
        np.testing.assert_array_equal(a.pairs["j"], other.pairs["j"])


def test_shifted_lookalike_collides_only_when_labels_differ():
    n = 100
    t = np.arange(n + 10) / 50.0
    pulse = np.sin(2 * np.pi * 1.1 * t) + 0.4 * np.sin(2 * np.pi * 2.2 * t + 0.5)
    a, b = pulse[:n], pulse[2 : n + 2]  # b is a shifted by 2 samples
    rng = np.random.default_rng(0)
    other = rng.normal(size=n)  # unrelated window
    raw = np.vstack([a, b, other])
    corr, lag, dist = pair_test(a, b, *(((w - w.mean()) / w.std()) for w in (a, b)))
    assert lag == 2 and dist < 1e-12 and corr > 0.9
    res = multivalued_mapping(raw, [100.0, 120.0, 100.0], show_progress=False)
    assert res.n_pairs == 1 and res.multivalued.tolist() == [True, True, False]
    assert res.pairs["lag"].tolist() == [2]
    same = multivalued_mapping(raw, [100.0, 105.0, 150.0], show_progress=False)
    assert same.n_pairs == 0 and same.fraction == 0.0
    # An amplitude change of 3x: shape identical, distance large (raw units).
    far = multivalued_mapping(np.vstack([a, 3 * b]), [100.0, 120.0], show_progress=False)
    assert far.n_pairs == 0


def test_per_group_table_and_summary():
    rng = np.random.default_rng(3)
    raw, y, g = _pulses(rng, n_win=60)
    res = multivalued_mapping(
        raw,
        y,
        groups=g,
        scope="inter",
        dist_threshold=0.5,
        show_progress=False,
        windows_info={"anchor": "grid", "amplitude_scale": "record"},
    )
    assert sum(r["n_windows"] for r in res.per_group) == 60
    assert sum(r["n_multivalued"] for r in res.per_group) == res.n_multivalued
    s = res.summary()
    assert s["windows"]["anchor"] == "grid" and s["scope"] == "inter"
    assert {"fraction", "n_windows", "n_multivalued", "n_pairs"} <= set(s)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"labels": np.zeros(4)}, "labels must have shape"),
        ({"labels": np.array([1.0, np.nan, 2.0])}, "NaN"),
        ({"scope": "inter", "groups": None}, "needs groups"),
        ({"scope": "sideways"}, "scope must be"),
        ({"dist_threshold": 0.0}, "dist_threshold"),
        ({"corr_threshold": 1.5}, "corr_threshold"),
    ],
)
def test_bad_input_is_a_clear_error(kwargs, match):
    rng = np.random.default_rng(0)
    args = {"raw": rng.normal(size=(3, 20)), "labels": np.array([1.0, 2.0, 3.0])}
    args.update(kwargs)
    raw, labels = args.pop("raw"), args.pop("labels")
    with pytest.raises(ValueError, match=match):
        multivalued_mapping(raw, labels, show_progress=False, **args)


def test_constant_and_nan_windows_rejected():
    raw = np.random.default_rng(0).normal(size=(4, 30))
    raw[2] = 5.0
    with pytest.raises(ValueError, match="constant"):
        multivalued_mapping(raw, np.arange(4.0), show_progress=False)
    raw[2, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        multivalued_mapping(raw, np.arange(4.0), show_progress=False)


def test_real_mw_ppg_bp_windows_match_reference(shared_data):
    """Real finger PPG (8 subjects, onset-anchored, record-scaled): fast == per-pair."""
    from ppg.datasets import iter_dataset
    from ppg.windows import WindowConfig, make_windows

    folder = shared_data / "mw-ppg-bp"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent")
    ws = make_windows(
        iter_dataset("mw-ppg-bp", folder, subjects=range(1, 9)),
        WindowConfig(channel="green", labels=("sbp",), scale="record", anchor="onset"),
    )
    raw = ws.raw.astype(np.float64)
    y = ws.labels["sbp"]
    ok = raw.std(axis=1) > 0
    raw, y, rec = raw[ok], y[ok], ws.record_ids[ok]
    for dist in (1.0, 5.0):
        mv, pairs = reference_mvm(raw, y, rec, scope="inter", dist_threshold=dist)
        res = multivalued_mapping(
            raw, y, groups=rec, scope="inter", dist_threshold=dist, show_progress=False
        )
        np.testing.assert_array_equal(res.multivalued, mv)
        assert res.n_pairs == len(pairs)
    assert res.n_pairs > 0  # the relaxed threshold finds look-alikes on real data


@pytest.mark.parametrize("n", [59, 61, 64])
def test_odd_and_even_window_lengths_and_given_z_match_reference(n):
    """The FFT size and 'same'-mode lag range depend on n; a caller's z takes another path."""
    from ppg.mvm import zscore_windows

    rng = np.random.default_rng(n)
    raw, y, g = _pulses(rng, n=n)
    mv, pairs = reference_mvm(raw, y, g, dist_threshold=0.5)
    assert len(pairs) > 0
    for z in (None, zscore_windows(raw)):
        res = multivalued_mapping(raw, y, groups=g, z=z, dist_threshold=0.5, show_progress=False)
        np.testing.assert_array_equal(res.multivalued, mv)
        assert list(zip(res.pairs["i"].tolist(), res.pairs["j"].tolist())) == pairs
