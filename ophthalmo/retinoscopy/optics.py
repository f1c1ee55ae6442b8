"""Paraxial optics of streak retinoscopy in one meridian (see ``docs/retinoscopy.md`` §1).

All lengths are in metres and powers in dioptres (D = 1/m) unless a name says otherwise.
Symbols follow the science contract:

- ``K``: refractive error of the swept meridian (correcting-lens power; myopia < 0);
- ``d``: working distance, peephole (camera) to the eye's entrance-pupil plane;
- ``u``: distance of the retinoscope's effective source behind the peephole;
- ``W = 1/d`` and ``V = 1/(d + u)``: vergences of the peephole and the source at the eye;
- ``rho``: pupil radius; ``w``: width of the source (filament image).

The forward model gives the reflex band in the pupil and the beam on the face for an
instrument pose; the sweep ratio ``r = Δc/Δx_B`` links them and :func:`power_from_ratio`
inverts it. Functions accept scalars or numpy arrays and broadcast.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "DEFAULT_SOURCE_DISTANCE_M",
    "DEFAULT_VERTEX_DISTANCE_M",
    "ReflexBand",
    "beam_position",
    "beam_to_paper_plane",
    "beam_to_pupil_plane",
    "fills_pupil",
    "meridional_power",
    "neutral_power",
    "power_error_from_distance",
    "power_from_ratio",
    "power_matrix",
    "prescription_from_matrix",
    "ratio_relative_error",
    "reflex_band",
    "reflex_luminance",
    "spherical_equivalent",
    "sweep_ratio",
]

#: Plane-mirror sleeve setting of a common streak retinoscope (calibratable).
DEFAULT_SOURCE_DISTANCE_M = 0.40
#: Pupil plane behind the paper-frame plane.
DEFAULT_VERTEX_DISTANCE_M = 0.012


def _check_positive(name: str, value: ArrayLike) -> np.ndarray:
    arr = np.asarray(value, dtype=float)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if np.any(arr <= 0):
        raise ValueError(f"{name} must be positive, got {value!r}")
    return arr


def _check_finite(name: str, value: ArrayLike) -> np.ndarray:
    arr = np.asarray(value, dtype=float)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return arr


def _scalar_or_array(arr: np.ndarray) -> float | np.ndarray:
    return float(arr) if arr.ndim == 0 else arr


@dataclass(frozen=True)
class ReflexBand:
    """The reflex band in the pupil along the swept meridian (metres, pupil coordinates).

    Attributes
    ----------
    center : centre ``c`` of the band (may lie outside the pupil).
    half_width : outer half-width ``h`` of the trapezoid (``inf`` at neutrality).
    plateau_half_width : half-width of the flat top of the trapezoid.
    edge_half_width : half-width at half maximum (where an edge detector finds the edge).
    """

    center: float | np.ndarray
    half_width: float | np.ndarray
    plateau_half_width: float | np.ndarray
    edge_half_width: float | np.ndarray

    def edges(self, pupil_radius: float) -> tuple[np.ndarray, np.ndarray]:
        """Half-maximum edges ``(lower, upper)``; NaN where an edge is outside the pupil."""
        lo = np.asarray(self.center - self.edge_half_width, dtype=float)
        hi = np.asarray(self.center + self.edge_half_width, dtype=float)
        lo = np.where(np.abs(lo) < pupil_radius, lo, np.nan)
        hi = np.where(np.abs(hi) < pupil_radius, hi, np.nan)
        return lo, hi


def reflex_band(
    power_d: ArrayLike,
    *,
    working_distance_m: ArrayLike,
    source_distance_m: ArrayLike = DEFAULT_SOURCE_DISTANCE_M,
    x_peephole_m: ArrayLike = 0.0,
    x_source_m: ArrayLike = 0.0,
    pupil_radius_m: float,
    source_width_m: float = 0.001,
) -> ReflexBand:
    """Reflex band ``c = (W·x_P − V·x_S)/(K + W)``, ``h = (ρ|K+V| + ½wV)/|K + W|``.

    The band is the source image (width ``w·V/|K+W|``) convolved with the defocus blur
    (width ``2ρ|K+V|/|K+W|``): a trapezoid whose outer half-width is ``h`` and whose
    half-maximum half-width is half the wider of the two.

    Parameters
    ----------
    power_d : refractive error K of the swept meridian (D).
    working_distance_m, source_distance_m : d and u (m).
    x_peephole_m, x_source_m : lateral positions of the peephole and the source relative to
        the eye's axis in the swept meridian (m).
    pupil_radius_m, source_width_m : ρ and w (m).
    """
    k = _check_finite("power_d", power_d)
    d = _check_positive("working_distance_m", working_distance_m)
    u = _check_positive("source_distance_m", source_distance_m)
    rho = float(_check_positive("pupil_radius_m", pupil_radius_m))
    w = float(_check_positive("source_width_m", source_width_m))
    xp = _check_finite("x_peephole_m", x_peephole_m)
    xs = _check_finite("x_source_m", x_source_m)
    big_w, big_v = 1.0 / d, 1.0 / (d + u)
    denom = np.abs(k + big_w)
    with np.errstate(divide="ignore", invalid="ignore"):
        center = (big_w * xp - big_v * xs) / (k + big_w)
        blur = 2.0 * rho * np.abs(k + big_v) / denom  # full width of the defocus blur
        source = w * big_v / denom  # full width of the source image
    center = np.where(denom == 0, 0.0, center)
    blur = np.where(denom == 0, np.inf, blur)
    source = np.where(denom == 0, np.inf, source)
    half = 0.5 * (blur + source)
    with np.errstate(invalid="ignore"):
        plateau = 0.5 * np.abs(blur - source)
    plateau = np.where(np.isinf(half), np.inf, plateau)
    edge = 0.5 * np.maximum(blur, source)
    return ReflexBand(
        center=_scalar_or_array(center),
        half_width=_scalar_or_array(half),
        plateau_half_width=_scalar_or_array(plateau),
        edge_half_width=_scalar_or_array(edge),
    )


def reflex_luminance(
    power_d: ArrayLike,
    *,
    working_distance_m: ArrayLike,
    source_distance_m: ArrayLike = DEFAULT_SOURCE_DISTANCE_M,
    pupil_radius_m: float,
    source_width_m: float = 0.001,
) -> float | np.ndarray:
    """Relative reflex luminance ``∝ 1 / (ρ|K + V| + ½wV)`` (fundus reflectance / patch width).

    Normalised so that an emmetrope (K = 0) has luminance 1 for the same d, u, ρ, w.
    """
    k = _check_finite("power_d", power_d)
    d = _check_positive("working_distance_m", working_distance_m)
    u = _check_positive("source_distance_m", source_distance_m)
    rho = float(_check_positive("pupil_radius_m", pupil_radius_m))
    w = float(_check_positive("source_width_m", source_width_m))
    big_v = 1.0 / (d + u)
    patch = rho * np.abs(k + big_v) + 0.5 * w * big_v
    ref = rho * big_v + 0.5 * w * big_v
    return _scalar_or_array(ref / patch)


def beam_position(
    x_aperture_m: ArrayLike,
    x_source_m: ArrayLike,
    *,
    distance_m: ArrayLike,
    source_distance_m: ArrayLike = DEFAULT_SOURCE_DISTANCE_M,
) -> float | np.ndarray:
    """Beam centre on a plane ``distance_m`` from the aperture: ``x_A + (x_A − x_S)·d/u``."""
    xa = _check_finite("x_aperture_m", x_aperture_m)
    xs = _check_finite("x_source_m", x_source_m)
    d = _check_positive("distance_m", distance_m)
    u = _check_positive("source_distance_m", source_distance_m)
    return _scalar_or_array(xa + (xa - xs) * d / u)


def sweep_ratio(
    power_d: ArrayLike,
    *,
    working_distance_m: ArrayLike,
    source_distance_m: ArrayLike = DEFAULT_SOURCE_DISTANCE_M,
) -> float | np.ndarray:
    """Ratio ``r = Δc/Δx_B = u / ((u + d)(1 + K d))``; ±inf at neutrality (K = −1/d)."""
    k = _check_finite("power_d", power_d)
    d = _check_positive("working_distance_m", working_distance_m)
    u = _check_positive("source_distance_m", source_distance_m)
    denom = (u + d) * (1.0 + k * d)
    with np.errstate(divide="ignore"):
        r = np.where(denom == 0, np.inf, u / np.where(denom == 0, 1.0, denom))
    return _scalar_or_array(r)


def power_from_ratio(
    ratio: ArrayLike,
    *,
    working_distance_m: ArrayLike,
    source_distance_m: ArrayLike = DEFAULT_SOURCE_DISTANCE_M,
) -> float | np.ndarray:
    """Inverse of :func:`sweep_ratio`: ``K = −1/d + u / (r·d·(u + d))``.

    ``r = ±inf`` (neutral: no edge crosses the pupil) gives the neutral power ``−1/d``; ``r = 0``
    (no reflex motion) has no finite answer and raises.
    """
    r = np.asarray(ratio, dtype=float)
    if np.any(np.isnan(r)):
        raise ValueError("ratio must not be NaN")
    if np.any(r == 0):
        raise ValueError("ratio 0 (reflex does not move) has no finite power")
    d = _check_positive("working_distance_m", working_distance_m)
    u = _check_positive("source_distance_m", source_distance_m)
    return _scalar_or_array(-1.0 / d + u / (r * d * (u + d)))


def neutral_power(working_distance_m: ArrayLike) -> float | np.ndarray:
    """The neutral rule: when the pupil fills, the far point is at the peephole, K = −1/d."""
    d = _check_positive("working_distance_m", working_distance_m)
    return _scalar_or_array(-1.0 / d)


def fills_pupil(
    power_d: ArrayLike,
    *,
    working_distance_m: ArrayLike,
    source_distance_m: ArrayLike = DEFAULT_SOURCE_DISTANCE_M,
    x_peephole_m: ArrayLike = 0.0,
    x_source_m: ArrayLike = 0.0,
    pupil_radius_m: float,
    source_width_m: float = 0.001,
) -> bool | np.ndarray:
    """Whether the band covers the whole pupil, so no edge is visible (neutral appearance)."""
    band = reflex_band(
        power_d,
        working_distance_m=working_distance_m,
        source_distance_m=source_distance_m,
        x_peephole_m=x_peephole_m,
        x_source_m=x_source_m,
        pupil_radius_m=pupil_radius_m,
        source_width_m=source_width_m,
    )
    lo, hi = band.center - band.edge_half_width, band.center + band.edge_half_width
    out = (np.asarray(lo) <= -pupil_radius_m) & (np.asarray(hi) >= pupil_radius_m)
    return bool(out) if out.ndim == 0 else out


def meridional_power(
    sphere_d: ArrayLike, cylinder_d: ArrayLike, axis_deg: ArrayLike, meridian_deg: ArrayLike
) -> float | np.ndarray:
    """Power of the prescription ``S / C × α`` in meridian θ: ``S + C·sin²(θ − α)``.

    The horizontal meridian is θ = 0 (≡ 180), the vertical θ = 90 (degrees, TABO convention).
    """
    s = _check_finite("sphere_d", sphere_d)
    c = _check_finite("cylinder_d", cylinder_d)
    a = _check_finite("axis_deg", axis_deg)
    t = _check_finite("meridian_deg", meridian_deg)
    return _scalar_or_array(s + c * np.sin(np.deg2rad(t - a)) ** 2)


def spherical_equivalent(sphere_d: ArrayLike, cylinder_d: ArrayLike) -> float | np.ndarray:
    """Spherical equivalent ``S + C/2`` (D)."""
    s = _check_finite("sphere_d", sphere_d)
    c = _check_finite("cylinder_d", cylinder_d)
    return _scalar_or_array(s + 0.5 * c)


def power_matrix(sphere_d: float, cylinder_d: float, axis_deg: float) -> np.ndarray:
    """2×2 dioptric power matrix of ``S / C × α`` (horizontal, vertical coordinates).

    ``e(θ)ᵀ F e(θ)`` with ``e(θ) = (cos θ, sin θ)`` is the power in meridian θ, which equals
    :func:`meridional_power`; off-diagonal terms are what an oblique axis adds ("skew").
    """
    s = float(_check_finite("sphere_d", sphere_d))
    c = float(_check_finite("cylinder_d", cylinder_d))
    a = np.deg2rad(float(_check_finite("axis_deg", axis_deg)))
    sa, ca = np.sin(a), np.cos(a)
    return np.array([[s + c * sa * sa, -c * sa * ca], [-c * sa * ca, s + c * ca * ca]])


def prescription_from_matrix(matrix: ArrayLike) -> tuple[float, float, float]:
    """Inverse of :func:`power_matrix`: ``(sphere_d, cylinder_d ≤ 0, axis_deg ∈ [0, 180))``."""
    f = np.asarray(matrix, dtype=float)
    if f.shape != (2, 2) or not np.all(np.isfinite(f)):
        raise ValueError(f"a power matrix must be a finite 2×2 array, got shape {f.shape}")
    if not np.isclose(f[0, 1], f[1, 0]):
        raise ValueError("a dioptric power matrix must be symmetric")
    vals, vecs = np.linalg.eigh(f)  # ascending: vals[0] is the more minus meridian
    sphere = float(vals[1])
    cylinder = float(vals[0] - vals[1])
    # The axis of a minus cylinder is the meridian of the larger (sphere) power.
    axis = float(np.rad2deg(np.arctan2(vecs[1, 1], vecs[0, 1]))) % 180.0
    if abs(cylinder) < 1e-12:
        axis = 0.0
    return sphere, cylinder, axis


def ratio_relative_error(
    power_d: ArrayLike,
    *,
    working_distance_m: ArrayLike,
    power_error_d: ArrayLike = 0.25,
) -> float | np.ndarray:
    """Relative change of r that a power error ``ΔK`` produces, ``|Δr / r| ≈ d·ΔK / |1 + K d|``.

    The precision needed in the measured ratio to resolve ``ΔK``: small (hard) for
    hyperopes and high myopes, large (easy) near neutrality. Independent of u.
    """
    k = _check_finite("power_d", power_d)
    d = _check_positive("working_distance_m", working_distance_m)
    dk = _check_finite("power_error_d", power_error_d)
    with np.errstate(divide="ignore"):
        return _scalar_or_array(np.abs(d * dk / (1.0 + k * d)))


def power_error_from_distance(
    power_d: ArrayLike,
    *,
    working_distance_m: ArrayLike,
    distance_error_m: ArrayLike,
    source_distance_m: ArrayLike = DEFAULT_SOURCE_DISTANCE_M,
) -> float | np.ndarray:
    """Error of the estimated K when the ratio is exact but d is mis-measured by ``Δd``.

    ``K̂ − K`` with ``K̂ = power_from_ratio(r(K, d), d + Δd)`` (exact, not linearised).
    """
    k = _check_finite("power_d", power_d)
    d = _check_positive("working_distance_m", working_distance_m)
    dd = _check_finite("distance_error_m", distance_error_m)
    r = np.asarray(sweep_ratio(k, working_distance_m=d, source_distance_m=source_distance_m))
    est = power_from_ratio(r, working_distance_m=d + dd, source_distance_m=source_distance_m)
    return _scalar_or_array(np.asarray(est) - k)


def _check_vertex(vertex_distance_m: ArrayLike, d: np.ndarray) -> np.ndarray:
    """The vertex distance, finite and in [0, d) (the paper lies between camera and eye)."""
    delta = _check_finite("vertex_distance_m", vertex_distance_m)
    if np.any(delta < 0) or np.any(delta >= d):
        raise ValueError(f"vertex distance must be in [0, d), got {vertex_distance_m!r}")
    return delta


def beam_to_pupil_plane(
    x_paper_m: ArrayLike,
    x_aperture_m: ArrayLike,
    *,
    working_distance_m: ArrayLike,
    vertex_distance_m: ArrayLike = DEFAULT_VERTEX_DISTANCE_M,
) -> float | np.ndarray:
    """Parallax correction: ``x_B(pupil) = x_A + (x_B(paper) − x_A)·d / (d − δ)``.

    The paper frame lies δ nearer the instrument than the pupil; the beam diverges from the
    aperture, so it is wider apart at the pupil than on the paper.
    """
    xb = _check_finite("x_paper_m", x_paper_m)
    xa = _check_finite("x_aperture_m", x_aperture_m)
    d = _check_positive("working_distance_m", working_distance_m)
    delta = _check_vertex(vertex_distance_m, d)
    return _scalar_or_array(xa + (xb - xa) * d / (d - delta))


def beam_to_paper_plane(
    x_pupil_m: ArrayLike,
    x_aperture_m: ArrayLike,
    *,
    working_distance_m: ArrayLike,
    vertex_distance_m: ArrayLike = DEFAULT_VERTEX_DISTANCE_M,
) -> float | np.ndarray:
    """Inverse of :func:`beam_to_pupil_plane`."""
    xb = _check_finite("x_pupil_m", x_pupil_m)
    xa = _check_finite("x_aperture_m", x_aperture_m)
    d = _check_positive("working_distance_m", working_distance_m)
    delta = _check_vertex(vertex_distance_m, d)
    return _scalar_or_array(xa + (xb - xa) * (d - delta) / d)
