"""Optics of streak retinoscopy against the definitions and sanity values of docs/retinoscopy.md."""

from __future__ import annotations

import numpy as np
import pytest

from ophthalmo.retinoscopy import optics

# docs/retinoscopy.md §1: u = 0.40, d = 0.35.
SANITY = [(4.0, 0.222), (0.0, 0.533), (-1.0, 0.821), (-2.0, 1.778), (-3.5, -2.370),
          (-5.0, -0.711), (-8.0, -0.296)]  # fmt: skip


@pytest.mark.parametrize(("power", "ratio"), SANITY)
def test_retino_sanity_table(power, ratio):
    r = optics.sweep_ratio(power, working_distance_m=0.35, source_distance_m=0.40)
    assert r == pytest.approx(ratio, abs=5e-4)
    # and the inverse recovers K from the rounded table value to within 0.01 D
    k = optics.power_from_ratio(ratio, working_distance_m=0.35, source_distance_m=0.40)
    assert k == pytest.approx(power, abs=0.01)


def test_retino_inverse_roundtrip_vectorised():
    k = np.linspace(-10, 8, 73)
    k = k[np.abs(k + 1 / 0.33) > 1e-6]
    r = optics.sweep_ratio(k, working_distance_m=0.33, source_distance_m=0.5)
    back = optics.power_from_ratio(r, working_distance_m=0.33, source_distance_m=0.5)
    np.testing.assert_allclose(back, k, atol=1e-9)


def test_retino_ratio_equals_finite_difference_of_forward_model():
    """r = Δc/Δx_B for a small turn and for a small translation of the instrument."""
    d, u, k, rho = 0.35, 0.40, 1.5, 0.003
    kw = dict(working_distance_m=d, source_distance_m=u, pupil_radius_m=rho)
    expected = optics.sweep_ratio(k, working_distance_m=d, source_distance_m=u)
    # turn by a small angle about the peephole: the source (u behind) moves the other way
    theta = 1e-3
    xp0, xs0, xp1, xs1 = 0.0, 0.0, 0.0, -u * np.tan(theta)
    # translation by 1 mm: everything moves together
    for (a0, s0), (a1, s1) in (((xp0, xs0), (xp1, xs1)), ((0.0, 0.0), (1e-3, 1e-3))):
        c0 = optics.reflex_band(k, x_peephole_m=a0, x_source_m=s0, **kw).center
        c1 = optics.reflex_band(k, x_peephole_m=a1, x_source_m=s1, **kw).center
        b0 = optics.beam_position(a0, s0, distance_m=d, source_distance_m=u)
        b1 = optics.beam_position(a1, s1, distance_m=d, source_distance_m=u)
        assert (c1 - c0) / (b1 - b0) == pytest.approx(expected, rel=1e-9)


def test_retino_reflex_band_shape_and_neutral_rule():
    d, u, rho, w = 0.35, 0.40, 0.003, 0.001
    band = optics.reflex_band(0.0, working_distance_m=d, pupil_radius_m=rho, source_width_m=w)
    big_w, big_v = 1 / d, 1 / (d + u)
    assert band.half_width == pytest.approx((rho * big_v + 0.5 * w * big_v) / big_w)
    assert band.plateau_half_width < band.edge_half_width < band.half_width
    # half-maximum half-width is half the wider of source image and defocus blur
    assert band.edge_half_width == pytest.approx(max(2 * rho * big_v, w * big_v) / (2 * big_w))
    # neutrality: far point at the peephole, the pupil fills and the estimate is -1/d
    k_n = optics.neutral_power(d)
    assert k_n == pytest.approx(-1 / d)
    assert optics.fills_pupil(k_n + 1e-9, working_distance_m=d, pupil_radius_m=rho)
    assert not optics.fills_pupil(0.0, working_distance_m=d, pupil_radius_m=rho)
    assert optics.power_from_ratio(np.inf, working_distance_m=d) == pytest.approx(k_n)
    lo, hi = band.edges(rho)
    assert lo == pytest.approx(-band.edge_half_width) and hi == pytest.approx(band.edge_half_width)


def test_retino_reflex_brightness_peaks_near_neutrality_side():
    kw = dict(working_distance_m=0.35, pupil_radius_m=0.003)
    lum = optics.reflex_luminance(np.array([-8.0, -2.0, 0.0, 4.0]), **kw)
    assert lum[2] == pytest.approx(1.0)
    assert lum[1] > lum[2] > lum[3]  # brighter nearer neutrality, dim for hyperopes
    assert lum[1] > lum[0]  # and dim for high myopes


def test_retino_meridians_matrix_and_spherical_equivalent():
    s, c, a = -1.0, -2.0, 30.0
    assert optics.meridional_power(s, c, a, 0) == pytest.approx(s + c * np.sin(np.deg2rad(a)) ** 2)
    assert optics.meridional_power(s, c, a, a) == pytest.approx(s)
    assert optics.meridional_power(s, c, a, a + 90) == pytest.approx(s + c)
    f = optics.power_matrix(s, c, a)
    for theta in (0.0, 45.0, 90.0, 137.0):
        e = np.array([np.cos(np.deg2rad(theta)), np.sin(np.deg2rad(theta))])
        assert e @ f @ e == pytest.approx(optics.meridional_power(s, c, a, theta))
    s2, c2, a2 = optics.prescription_from_matrix(f)
    assert (s2, c2, a2) == pytest.approx((s, c, a))
    assert optics.spherical_equivalent(s, c) == pytest.approx(-2.0)
    assert np.trace(f) / 2 == pytest.approx(optics.spherical_equivalent(s, c))


def test_retino_error_sensitivity_matches_docs():
    # at +4 D a 0.25 D error is a 3.6 % error in r
    assert optics.ratio_relative_error(4.0, working_distance_m=0.35) == pytest.approx(
        0.036, abs=1e-3
    )
    # relative precision needed is easiest near neutrality
    near = optics.ratio_relative_error(-2.5, working_distance_m=0.35)
    assert near > optics.ratio_relative_error(-8.0, working_distance_m=0.35)
    # 1 cm of distance error costs 0.2-0.3 D at ±6 D
    for k in (-6.0, 6.0):
        for dd in (0.01, -0.01):
            err = optics.power_error_from_distance(k, working_distance_m=0.35, distance_error_m=dd)
            assert 0.2 <= abs(err) <= 0.3
    assert optics.power_error_from_distance(
        1.0, working_distance_m=0.35, distance_error_m=0
    ) == pytest.approx(0, abs=1e-12)


def test_retino_parallax_correction():
    d, delta = 0.35, 0.012
    xa = 0.002
    paper = np.array([-0.01, 0.0, 0.015])
    pupil = optics.beam_to_pupil_plane(paper, xa, working_distance_m=d, vertex_distance_m=delta)
    # the beam at the pupil is the beam on the paper scaled about the aperture by d/(d-δ)
    np.testing.assert_allclose(pupil - xa, (paper - xa) * d / (d - delta))
    back = optics.beam_to_paper_plane(pupil, xa, working_distance_m=d, vertex_distance_m=delta)
    np.testing.assert_allclose(back, paper)
    # the band on the paper moves 2.5-4 % less than at the pupil for d in 0.30-0.40 m
    for dist in (0.30, 0.35, 0.40):
        shrink = 1 - (dist - delta) / dist
        assert 0.025 <= shrink <= 0.041
    # ignoring it biases the estimate: with the paper motion the ratio looks too large
    k = 3.0
    r_true = optics.sweep_ratio(k, working_distance_m=d)
    r_paper = r_true * d / (d - delta)
    assert optics.power_from_ratio(r_paper, working_distance_m=d) < k - 0.1


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: optics.sweep_ratio(1.0, working_distance_m=-0.3), "working_distance_m"),
        (lambda: optics.sweep_ratio(1.0, working_distance_m=0.3, source_distance_m=0), "source"),
        (lambda: optics.power_from_ratio(0.0, working_distance_m=0.3), "ratio 0"),
        (lambda: optics.power_from_ratio(np.nan, working_distance_m=0.3), "NaN"),
        (lambda: optics.reflex_band(np.nan, working_distance_m=0.3, pupil_radius_m=0.003), "power"),
        (lambda: optics.reflex_band(1.0, working_distance_m=0.3, pupil_radius_m=-1), "pupil"),
        (
            lambda: optics.beam_to_pupil_plane(
                0.0, 0.0, working_distance_m=0.01, vertex_distance_m=0.012
            ),
            "vertex",
        ),  # fmt: skip
        (lambda: optics.prescription_from_matrix(np.eye(3)), "2×2"),
    ],
)
def test_retino_optics_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()
