"""Cone indices (CLMI, cone location) and the device-style keratometric Sim-K, on analytic data."""

from __future__ import annotations

import numpy as np
import pytest

from ophthalmo.keratoconus.indices import (
    CLMI_AXIAL_KC_D,
    compute_indices,
    cone_location_magnitude,
    rule_classify,
)
from ophthalmo.keratoconus.io import CsoExam, cso_simk
from ophthalmo.keratoconus.topography import (
    Cone,
    CorneaModel,
    biconic_sag,
    conicoid_sag,
    curvature_maps,
    grid_xy,
)

H, N = 0.08, 121


def _maps(model: CorneaModel):
    return curvature_maps(model.elevation_grid(N, H), mm_per_px=H)


def test_sphere_has_zero_clmi_and_a_central_location():
    x, y = grid_xy(N, H)
    axial, tangential = curvature_maps(conicoid_sag(x, y, radius_mm=7.8), mm_per_px=H)
    for power in (axial, tangential):
        cone = cone_location_magnitude(power, mm_per_px=H)
        assert abs(cone["clmi_d"]) < 0.01 and abs(cone["m1_d"]) < 0.01
        # Every 2 mm circle ties: the location resolves to the centroid of the ties (vertex).
        assert cone["dist_mm"] < 0.15


def test_clmi_by_hand_on_a_step_map():
    # A flat 40 D map with a 2 mm-diameter 50 D disc centred at (+2, −1) mm: C1 is that disc,
    # M1 = 10 D × (1 − its share of the rest) … computed here from pixel counts.
    step = 0.1
    x, y = grid_xy(161, step)
    power = np.full(x.shape, 40.0)
    disc = np.hypot(x - 2.0, y + 1.0) <= 1.0 + 1e-9
    power[disc] = 50.0
    cone = cone_location_magnitude(power, mm_per_px=step)
    assert (cone["x_mm"], cone["y_mm"]) == pytest.approx((2.0, -1.0), abs=1e-9)
    zone = np.hypot(x, y) <= 4.0 + 1e-9
    m1 = 50.0 - 40.0  # inside C1 all 50 D, outside all 40 D
    opposite = np.hypot(x + 2.0, y - 1.0) <= 1.0 + 1e-9
    rest = zone & ~opposite
    m2 = 40.0 - power[rest].mean()  # C2 is flat; the rest of the zone holds the disc
    assert cone["m1_d"] == pytest.approx(m1, abs=1e-6)
    assert cone["m2_d"] == pytest.approx(m2, abs=1e-6)
    assert cone["clmi_d"] == pytest.approx(m1 - m2, abs=1e-6)  # C1 ≥ 1 mm from the vertex
    assert cone["dist_mm"] == pytest.approx(np.sqrt(5.0))


def test_central_cone_weights_m2_by_its_distance():
    step = 0.1
    x, y = grid_xy(161, step)
    power = 40.0 + 5.0 * np.exp(-((x - 0.5) ** 2 + y**2) / 0.5)
    cone = cone_location_magnitude(power, mm_per_px=step)
    assert cone["dist_mm"] < 1.0
    w = cone["dist_mm"] / 1.0
    assert cone["clmi_d"] == pytest.approx(cone["m1_d"] - w * cone["m2_d"], abs=1e-9)


@pytest.mark.parametrize(
    ("cone", "asphericity", "axial_tol", "tangential_tol"),
    [
        # A pronounced paracentral cone: both maps within 0.35 mm of the apex.
        (Cone(0.03, sigma_mm=1.2, inferior_mm=1.0, temporal_mm=0.5), -0.2, 0.3, 0.35),
        # A smaller, more decentred cone: the axial map displaces it outward (known bias).
        (Cone(0.02, sigma_mm=1.0, inferior_mm=2.0, temporal_mm=0.5), 0.0, 0.8, 0.3),
    ],
)
def test_decentred_cone_is_located_and_mirrored(cone, asphericity, axial_tol, tangential_tol):
    results = {}
    for eye in ("OD", "OS"):
        model = CorneaModel(eye=eye, asphericity=asphericity, cone=cone)
        axial, tangential = _maps(model)
        ind = compute_indices(axial, mm_per_px=H, eye=eye, tangential_d=tangential)
        x0, y0 = cone.centre(eye)
        assert np.hypot(ind["cone_x_mm"] - x0, ind["cone_y_mm"] - y0) < axial_tol, eye
        err_t = np.hypot(ind["cone_tangential_x_mm"] - x0, ind["cone_tangential_y_mm"] - y0)
        assert err_t < tangential_tol, eye
        assert ind["clmi_axial_d"] > 1.0 and ind["clmi_tangential_d"] > 1.0
        results[eye] = ind
    od, os_ = results["OD"], results["OS"]
    assert od["cone_x_mm"] < 0 < os_["cone_x_mm"]  # temporal: −x for OD, +x for OS
    assert os_["cone_x_mm"] == pytest.approx(-od["cone_x_mm"], abs=1e-6)
    assert os_["cone_y_mm"] == pytest.approx(od["cone_y_mm"], abs=1e-6)
    assert os_["clmi_axial_d"] == pytest.approx(od["clmi_axial_d"], abs=1e-3)


def test_clmi_grows_with_cone_severity_and_normal_eye_stays_low():
    values = []
    for amplitude in (0.0, 0.01, 0.02, 0.04):
        model = CorneaModel(eye="OD", asphericity=-0.25, cone=Cone(amplitude, sigma_mm=1.1))
        axial, _ = _maps(model)
        values.append(compute_indices(axial, mm_per_px=H, eye="OD")["clmi_axial_d"])
    assert np.all(np.diff(values) > 0)
    assert values[0] < CLMI_AXIAL_KC_D < values[-1]


def test_clmi_rule_is_opt_in():
    ind = {"central_k_d": 44.0, "i_s_d": 0.5, "kisa_pct": 20.0, "srax_deg": 5.0, "ast_d": 0.5}
    ind["clmi_axial_d"] = CLMI_AXIAL_KC_D + 0.5
    assert rule_classify(ind) == "normal"  # the default rule ignores the cone indices
    assert rule_classify(ind, use_clmi=True) == "keratoconus"
    assert rule_classify(ind, use_clmi=True, clmi_axial_d=1.0) == "normal"
    # A NaN CLMI (e.g. lids over the opposite circle) does not count as meeting the criterion.
    nan = float("nan")
    assert rule_classify(central_k_d=44.0, use_clmi=True, clmi_axial_d=nan) == "normal"
    assert rule_classify(central_k_d=44.0, use_clmi=True, clmi_axial_d=2.0) == "keratoconus"


def test_cone_indices_are_nan_not_errors_on_a_small_zone():
    x, y = grid_xy(N, H)
    axial, _ = curvature_maps(conicoid_sag(x, y, radius_mm=7.8), mm_per_px=H)
    axial[np.hypot(x, y) > 1.6] = np.nan  # only the central 3.2 mm measured
    ind = compute_indices(axial, mm_per_px=H, eye="OD")
    assert np.isnan(ind["clmi_axial_d"]) and np.isnan(ind["cone_x_mm"])
    assert np.isnan(ind["clmi_tangential_d"])  # no tangential map given
    assert ind["rule_class"] == ind["rule_class_clmi"] == "normal"
    with pytest.raises(ValueError, match="tangential map shape"):
        compute_indices(axial, mm_per_px=H, eye="OD", tangential_d=np.ones((5, 5)))


# ------------------------------------------------------------- keratometric (device) Sim-K


def _placido_exam(sag, *, n_semi=128, ring_sin=None) -> CsoExam:
    """A synthetic CSO exam: ring i reflects where sin θ_n = ring_sin[i] on each semi-meridian.

    The ring radius ρ is found per semi-meridian by bisection on the meridional slope of
    ``sag`` (a Placido disk's fixed reflection angle per mire).
    """
    if ring_sin is None:  # 24 rings, spaced like the CSO exports' (0.2–0.25 mm apart)
        ring_sin = np.linspace(0.025, 0.45, 24)
    n_rings = len(ring_sin)
    angles = 360.0 * np.arange(n_semi) / n_semi
    t = np.deg2rad(angles)
    rho = np.empty((n_rings, n_semi))
    h = 1e-5
    for i, target in enumerate(ring_sin):
        lo, hi = np.zeros(n_semi), np.full(n_semi, 4.5)
        for _ in range(50):
            mid = 0.5 * (lo + hi)
            s = (
                sag((mid + h) * np.cos(t), (mid + h) * np.sin(t))
                - sag((mid - h) * np.cos(t), (mid - h) * np.sin(t))
            ) / (2 * h)
            sin_n = s / np.sqrt(1 + s**2)
            below = sin_n < target
            lo = np.where(below, mid, lo)
            hi = np.where(below, hi, mid)
        rho[i] = 0.5 * (lo + hi)
    z = sag(rho * np.cos(t), rho * np.sin(t))
    return CsoExam(
        path="synthetic",
        rho_mm=rho,
        z_mm=z,
        angles_deg=angles,
        eye_flag="False",
        header_k_flat_d=float("nan"),
        header_k_flat_axis_deg=float("nan"),
        header_k_steep_d=float("nan"),
        header_k_steep_axis_deg=float("nan"),
    )


def test_keratometric_simk_on_a_sphere():
    exam = _placido_exam(lambda x, y: conicoid_sag(x, y, radius_mm=7.8))
    sim = cso_simk(exam)
    assert sim.k_steep_d == pytest.approx(337.5 / 7.8, abs=0.02)
    assert sim.k_flat_d == pytest.approx(337.5 / 7.8, abs=0.02)
    assert sim.reflection_sin_spread < 1e-3  # every ring reflects at one angle


@pytest.mark.parametrize("axis", [12.0, 90.0, 141.0])
def test_keratometric_simk_on_a_toric(axis):
    def sag(x, y):
        return biconic_sag(x, y, r_steep_mm=7.3, r_flat_mm=7.9, steep_axis_deg=axis)

    sim = cso_simk(_placido_exam(sag))
    # A biconic with Q = 0 has circular principal sections: axial radius = apical radius.
    assert sim.k_steep_d == pytest.approx(337.5 / 7.3, abs=0.05)
    assert sim.k_flat_d == pytest.approx(337.5 / 7.9, abs=0.05)
    assert abs((sim.k_steep_axis_deg - axis + 90) % 180 - 90) < 1.0
    assert sim.k_flat_axis_deg == pytest.approx((sim.k_steep_axis_deg + 90) % 180)


def test_keratometric_simk_averages_radii_not_powers():
    # Two half-spheres joined along the horizontal: superior radius 6.5 mm, inferior (and
    # the horizontal meridian) 8.5 mm. A keratometer's oblique and vertical meridians are the
    # power of the mean radius (7.5 mm: 45.0 D), not the mean power (45.8 D).
    def sag(x, y):
        r = np.where(y > 1e-9, 6.5, 8.5)
        return (x**2 + y**2) / (r + np.sqrt(np.maximum(r**2 - x**2 - y**2, 0.0)))

    sim = cso_simk(_placido_exam(sag, n_semi=256))
    assert sim.k_steep_d == pytest.approx(337.5 / 7.5, abs=0.05)
    assert abs(sim.k_steep_axis_deg - 90.0) < 1.0
    assert sim.k_flat_d == pytest.approx(337.5 / 8.5, abs=0.05)
    assert abs(sim.k_steep_d - 0.5 * (337.5 / 6.5 + 337.5 / 8.5)) > 0.6


def test_keratometric_simk_rejects_unusable_exams():
    exam = _placido_exam(lambda x, y: conicoid_sag(x, y, radius_mm=7.8), ring_sin=[0.03, 0.06])
    with pytest.raises(ValueError, match="brackets"):
        cso_simk(exam)  # three central rings never reach the 3 mm zone
    with pytest.raises(ValueError, match="zone_diameter_mm"):
        cso_simk(exam, zone_diameter_mm=0.0)
