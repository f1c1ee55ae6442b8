"""Topography science: analytic surfaces → curvature maps → indices (docs/keratoconus.md §1–2)."""

from __future__ import annotations

import numpy as np
import pytest

from ophthalmo.keratoconus.indices import compute_indices, rule_classify, sample_polar
from ophthalmo.keratoconus.topography import (
    Cone,
    CorneaModel,
    biconic_sag,
    conicoid_powers,
    conicoid_sag,
    curvature_maps,
    grid_xy,
    maps_from_zernike,
)
from ophthalmo.keratoconus.zernike import (
    fit_zernike,
    mirror_x,
    n_terms,
    zernike_basis,
    zernike_index,
)

H, N = 0.08, 129


def _maps(z):
    return curvature_maps(z, mm_per_px=H)


def test_sphere_maps_equal_337_5_over_r_in_central_8mm():
    x, y = grid_xy(N, H)
    axial, tangential = _maps(conicoid_sag(x, y, radius_mm=7.8))
    central = np.hypot(x, y) <= 4.0
    expected = 337.5 / 7.8  # 43.27 D
    assert abs(expected - 43.27) < 0.005
    assert np.abs(axial[central] - expected).max() < 0.02
    assert np.abs(tangential[central] - expected).max() < 0.02


@pytest.mark.parametrize(("radius", "q"), [(7.6, -0.3), (8.0, 0.0), (7.4, -0.6), (7.9, 0.2)])
def test_conicoid_maps_match_closed_forms(radius, q):
    x, y = grid_xy(N, H)
    s = np.hypot(x, y)
    axial, tangential = _maps(conicoid_sag(x, y, radius_mm=radius, asphericity=q))
    ax_true, tg_true = conicoid_powers(s, radius_mm=radius, asphericity=q)
    zone = s <= 4.5
    assert np.abs(axial[zone] - ax_true[zone]).max() < 0.05
    assert np.abs(tangential[zone] - tg_true[zone]).max() < 0.05
    # The closed form itself: K_ax = 337.5 / sqrt(R² − Q s²) and K_t = 337.5 R² / (…)^{3/2}.
    assert conicoid_powers(3.0, radius_mm=radius, asphericity=q)[0] == pytest.approx(
        337.5 / np.sqrt(radius**2 - q * 9.0)
    )


@pytest.mark.parametrize("axis", [0.0, 17.0, 90.0, 135.5, 172.0])
def test_toric_simk_and_axis_exact(axis):
    model = CorneaModel(r_flat_mm=7.95, r_steep_mm=7.55, steep_axis_deg=axis, asphericity=0.0)
    axial, _ = _maps(model.elevation_grid(N, H))
    ind = compute_indices(axial, mm_per_px=H, eye="OD")
    assert ind["simk_k1_d"] == pytest.approx(337.5 / 7.55, abs=0.05)
    assert ind["simk_k2_d"] == pytest.approx(337.5 / 7.95, abs=0.05)
    assert ind["ast_d"] == pytest.approx(337.5 / 7.55 - 337.5 / 7.95, abs=0.05)
    diff = abs((ind["simk_axis_deg"] - axis + 90.0) % 180.0 - 90.0)
    assert diff < 1.0
    # Regular astigmatism: symmetric bow tie, no skew, no asymmetry, KISA 0.
    assert ind["srax_deg"] == pytest.approx(0.0, abs=2.0)
    assert abs(ind["i_s_d"]) < 0.01
    assert ind["rule_class"] == "normal"


def test_biconic_reduces_to_conicoid():
    x, y = grid_xy(33, 0.2)
    a = biconic_sag(x, y, r_steep_mm=7.7, r_flat_mm=7.7, steep_axis_deg=33, asphericity=-0.2)
    b = conicoid_sag(x, y, radius_mm=7.7, asphericity=-0.2)
    np.testing.assert_allclose(a, b, atol=1e-12)


def test_mirror_eyes_give_mirrored_maps_and_equal_indices():
    od = CorneaModel(
        r_flat_mm=7.9,
        r_steep_mm=7.65,
        steep_axis_deg=70.0,
        zernike_mm=(0, 0, 0, 0, 0, 0, 0.4e-3, -0.8e-3, 0.6e-3, 0.3e-3),
        cone=Cone(amplitude_mm=0.02, sigma_mm=1.3, inferior_mm=1.2, temporal_mm=0.7),
    )
    os_ = od.mirrored()
    assert os_.eye == "OS" and os_.steep_axis_deg == pytest.approx(110.0)
    a_od, t_od = _maps(od.elevation_grid(N, H))
    a_os, t_os = _maps(os_.elevation_grid(N, H))
    np.testing.assert_allclose(a_os, np.fliplr(a_od), atol=1e-3, equal_nan=True)
    np.testing.assert_allclose(t_os, np.fliplr(t_od), atol=1e-3, equal_nan=True)
    i_od = compute_indices(a_od, mm_per_px=H, eye="OD")
    i_os = compute_indices(a_os, mm_per_px=H, eye="OS")
    for key in ("simk_k1_d", "simk_k2_d", "ast_d", "central_k_d", "i_s_d", "srax_deg", "kisa_pct"):
        assert i_od[key] == pytest.approx(i_os[key], abs=1e-3 * max(1.0, abs(i_od[key])))
    assert (i_od["simk_axis_deg"] + i_os["simk_axis_deg"]) % 180.0 == pytest.approx(
        0.0, abs=1e-3
    ) or (i_od["simk_axis_deg"] + i_os["simk_axis_deg"]) == pytest.approx(180.0, abs=1e-3)


def test_cone_is_inferior_temporal_and_gives_positive_i_s():
    cone = Cone(amplitude_mm=0.03, sigma_mm=1.2, inferior_mm=1.0, temporal_mm=0.8)
    for eye, temporal_sign in (("OD", -1), ("OS", 1)):
        model = CorneaModel(eye=eye, r_flat_mm=7.8, r_steep_mm=7.8, cone=cone)
        axial, tangential = _maps(model.elevation_grid(N, H))
        row, col = np.unravel_index(np.nanargmax(tangential), tangential.shape)
        x_peak, y_peak = (col - (N - 1) / 2) * H, ((N - 1) / 2 - row) * H
        assert y_peak < -0.5  # inferior (row 0 is superior)
        assert np.sign(x_peak) == temporal_sign
        ind = compute_indices(axial, mm_per_px=H, eye=eye)
        assert ind["i_s_d"] > 1.4
        assert ind["rule_class"] == "keratoconus"
    # Steepening ≈ 337.5 · A / σ².
    peak = np.nanmax(tangential) - 337.5 / 7.8
    assert peak == pytest.approx(337.5 * 0.03 / 1.2**2, rel=0.25)


def test_levelled_vertex_has_no_slope():
    model = CorneaModel(cone=Cone(amplitude_mm=0.05, sigma_mm=1.0, inferior_mm=0.8))
    h = 1e-4
    assert abs(model.sag(0.0, 0.0)) < 1e-12
    assert abs(model.sag(h, 0.0) - model.sag(-h, 0.0)) / (2 * h) < 1e-7
    assert abs(model.sag(0.0, h) - model.sag(0.0, -h)) / (2 * h) < 1e-7


def test_zernike_basis_is_orthonormal_and_matches_textbook_terms():
    rng = np.random.default_rng(0)
    x, y = rng.uniform(-1, 1, (2, 40_000))
    inside = x**2 + y**2 < 1
    x, y = x[inside], y[inside]
    basis = zernike_basis(x, y, degree=6, radius=1.0)
    gram = basis.T @ basis / x.size  # ∫ Z_i Z_j dA / π
    assert np.abs(gram - np.eye(n_terms(6))).max() < 0.05
    r2, th = x**2 + y**2, np.arctan2(y, x)
    np.testing.assert_allclose(basis[:, 4], np.sqrt(3) * (2 * r2 - 1), atol=1e-12)
    np.testing.assert_allclose(
        basis[:, 7], np.sqrt(8) * (3 * r2 - 2) * np.sqrt(r2) * np.sin(th), atol=1e-12
    )
    assert [zernike_index(j) for j in (0, 3, 4, 5, 12)] == [(0, 0), (2, -2), (2, 0), (2, 2), (4, 0)]


def test_zernike_fit_recovers_coefficients_and_maps():
    rng = np.random.default_rng(1)
    true = rng.normal(0, 1e-3, n_terms(8))
    rho = np.linspace(0.2, 4.0, 20)[:, None]
    th = np.deg2rad(np.arange(0, 360, 3))[None, :]
    x, y = (rho * np.cos(th)).ravel(), (rho * np.sin(th)).ravel()
    z = zernike_basis(x, y, degree=8, radius=4.0) @ true
    fit = fit_zernike(x, y, z, degree=8, radius=4.0)
    np.testing.assert_allclose(fit.coefficients, true, atol=1e-9)
    # A sphere through scattered samples → maps within 0.12 D (docs: degree 8 on a sphere).
    zs = conicoid_sag(x, y, radius_mm=7.8)
    sphere = fit_zernike(x, y, zs, degree=8)
    axial, tangential = maps_from_zernike(sphere, size=101, mm_per_px=0.08)
    assert np.nanmax(np.abs(axial - 43.269)) < 0.12
    assert np.nanmax(np.abs(tangential - 43.269)) < 0.12


def test_mirror_x_matches_mirrored_evaluation():
    rng = np.random.default_rng(2)
    c = rng.normal(size=n_terms(5))
    x, y = rng.uniform(-0.7, 0.7, (2, 50))
    a = zernike_basis(-x, y, degree=5, radius=1.0) @ c
    b = zernike_basis(x, y, degree=5, radius=1.0) @ mirror_x(c)
    np.testing.assert_allclose(a, b, atol=1e-12)


def test_fit_needs_enough_points():
    with pytest.raises(ValueError, match="at least 90 finite samples"):
        fit_zernike(np.arange(10.0), np.arange(10.0), np.arange(10.0), degree=8)
    with pytest.raises(ValueError, match="degree"):
        fit_zernike(np.arange(10.0), np.arange(10.0), np.arange(10.0), degree=40)


def test_rule_classify_thresholds():
    assert rule_classify(central_k_d=44.0, i_s_d=0.3, kisa_pct=20.0) == "normal"
    assert rule_classify(central_k_d=47.5, i_s_d=0.3, kisa_pct=20.0) == "suspect"
    assert rule_classify(central_k_d=44.0, i_s_d=1.5, kisa_pct=20.0) == "suspect"
    assert rule_classify(central_k_d=44.0, i_s_d=0.5, kisa_pct=80.0) == "suspect"
    assert rule_classify(central_k_d=44.0, i_s_d=0.5, kisa_pct=101.0) == "keratoconus"
    assert rule_classify(central_k_d=47.3, i_s_d=1.5, kisa_pct=50.0) == "keratoconus"
    skew = {"central_k_d": 44.0, "i_s_d": 0.3, "kisa_pct": 30.0, "srax_deg": 30.0}
    assert rule_classify(**skew, ast_d=1.5) == "suspect"
    assert rule_classify(**skew, ast_d=0.3) == "normal"
    assert rule_classify(central_k_d=44.0, i_s_d=float("nan"), kisa_pct=float("nan")) == "normal"
    with pytest.raises(ValueError, match="central K"):
        rule_classify(central_k_d=float("nan"), i_s_d=0.0, kisa_pct=0.0)
    # A mapping (e.g. compute_indices' dict) works too; keywords override it.
    ind = {"central_k_d": 44.0, "i_s_d": 0.3, "kisa_pct": 20.0, "srax_deg": 5.0, "ast_d": 0.5}
    assert rule_classify(ind) == "normal"
    assert rule_classify(ind, kisa_pct=150.0) == "keratoconus"


def test_i_s_falls_back_under_a_lid_and_sample_polar_orientation():
    x, y = grid_xy(N, H)
    axial = (43.0 + 0.5 * y).astype(np.float32)  # steeper superiorly, 0.5 D/mm
    # 90° is superior: row above the centre.
    assert sample_polar(axial, 2.0, 90.0, mm_per_px=H) == pytest.approx(44.0, abs=1e-4)
    ind = compute_indices(axial, mm_per_px=H, eye="OD")
    mean_sin = np.mean(np.sin(np.deg2rad([30, 60, 90, 120, 150])))
    assert ind["i_s_d"] == pytest.approx(-2 * 0.5 * 3.0 * mean_sin, abs=1e-3)
    lidded = axial.copy()
    lidded[y > 2.8] = np.nan
    ind2 = compute_indices(lidded, mm_per_px=H, eye="OD")
    assert ind2["i_s_fallback_points"] > 0 and np.isfinite(ind2["i_s_d"])


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (np.full((65, 65), np.nan), "all NaN"),
        (np.ones((10, 12)) * 43, "square"),
        (np.ones(65) * 43, "square"),
        (np.full((65, 65), 7.8), "not corneal power"),
    ],
)
def test_indices_reject_bad_maps(bad, match):
    with pytest.raises(ValueError, match=match):
        compute_indices(bad, mm_per_px=H, eye="OD")


def test_indices_reject_bad_eye_and_uncovered_centre():
    axial = np.full((N, N), 43.0, dtype=np.float32)
    with pytest.raises(ValueError, match="eye"):
        compute_indices(axial, mm_per_px=H, eye="left")
    x, y = grid_xy(N, H)
    axial[np.hypot(x, y) < 2.0] = np.nan
    with pytest.raises(ValueError, match="3 mm"):
        compute_indices(axial, mm_per_px=H, eye="OD")


def test_curvature_maps_reject_bad_elevation():
    with pytest.raises(ValueError, match="all NaN"):
        curvature_maps(np.full((9, 9), np.nan), mm_per_px=0.1)
    with pytest.raises(ValueError, match="square"):
        curvature_maps(np.zeros((9, 7)), mm_per_px=0.1)
    with pytest.raises(ValueError, match="mm_per_px"):
        curvature_maps(np.zeros((9, 9)), mm_per_px=-1)
    with pytest.raises(ValueError, match="eye"):
        CorneaModel(eye="left")
    with pytest.raises(ValueError, match="r_steep_mm"):
        CorneaModel(r_flat_mm=7.5, r_steep_mm=7.9)
