"""Clinical topography indices from an axial power map, and the rule-based screening baseline.

Definitions (docs/keratoconus.md §2), all on the axial map in the display-grid convention of
:mod:`ophthalmo.keratoconus.topography` (row 0 superior, TABO angles):

- **Sim-K**: the axial power is sampled on the 3 mm diameter ring at 1° steps; the meridian
  value at θ (0–179°) is the mean of its two semi-meridians θ and θ + 180°. K1 is the steep
  meridian, located by the second harmonic (cos 2θ) of the meridional profile (robust to
  noise, exact for regular astigmatism), K2 the perpendicular meridian, AST = K1 − K2.
- **central K**: mean axial power within the central 3 mm diameter.
- **I-S** (Rabinowitz): mean of 5 inferior points (210°–330°, 30° apart) minus 5 superior
  points (30°–150°), 3 mm from the centre. A point hidden by the lids falls back to the
  outermost valid value on its semi-meridian between 2.5 and 3 mm; a side with fewer than 3
  valid points makes I-S undefined (NaN).
- **SRAX** (variant ``"perpendicular-to-steep-axis"``): each semi-meridian's steepness is its
  mean axial power from 0.5 to 1.5 mm, smoothed by a ±10° circular running mean; the steepest semi-meridian is found on each side of
  the line perpendicular to the steep Sim-K axis, and SRAX = 180° − the angle between them.
  The classic variant ``"horizontal"`` splits above/below the horizontal instead.
- **KISA %** = central K × |I-S| × AST × SRAX × 100 / 300 (|I-S| so that a superior cone is
  not scored negative).
- **CLMI** (Cone Location and Magnitude Index; Mahmoud et al., Cornea 2008, as implemented in
  SmartKC's ``metrics.clmi_ppk``), on the axial and, if given, the tangential map: within the
  central 8 mm, C1 is the 2 mm-diameter circle of highest mean power (centres on a 0.1 mm
  grid, circles clipped to the valid zone and kept when at least half covered);
  M1 = mean inside C1 − mean of the rest of the 8 mm zone; C2 is the circle diametrically
  opposite (centre −C1) with M2 likewise; CLMI = M1 − M2 when C1's centre is ≥ 1 mm from the
  vertex, else M1 − (distance / 1 mm) · M2. The cone location is C1's centre (x, y in the
  display frame); candidates tied within 0.01 D (a sphere) resolve to the one nearest their
  centroid. C1 is the steepest 2 mm zone, not the protrusion's apex: on simulated Gaussian
  cones it lies up to ~0.7 mm peripheral to the apex on the axial map and ~0.2–0.45 mm
  central to it on the tangential map (the axial map displaces a cone outward). The PPK
  logistic model is not included: its coefficients could not be checked against the paper.

Screening thresholds (Rabinowitz; Rabinowitz & Rasheed 1999): central K > 47.2 D,
I-S > 1.4 D, SRAX > 21°, KISA % 60–100 suspect and > 100 keratoconus. See
:func:`rule_classify` for how they combine; its opt-in ``use_clmi`` adds the axial-CLMI
cut-off 1.82 D (best ROC cut-off for keratoconus versus refractive-surgery candidates,
Semin. Ophthalmol. 31(3):203–209, 2016).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np
from scipy.ndimage import map_coordinates
from scipy.signal import fftconvolve

__all__ = [
    "INDEX_KEYS",
    "CENTRAL_K_THRESHOLD_D",
    "I_S_THRESHOLD_D",
    "KISA_KC_PCT",
    "KISA_SUSPECT_PCT",
    "SRAX_THRESHOLD_DEG",
    "CLMI_AXIAL_KC_D",
    "cone_location_magnitude",
    "compute_indices",
    "rule_classify",
    "sample_polar",
    "simk_from_meridians",
]

#: The clinical indices every report and generated cohort carries, in display order.
INDEX_KEYS = (
    "simk_k1_d",
    "simk_k2_d",
    "simk_axis_deg",
    "ast_d",
    "central_k_d",
    "i_s_d",
    "srax_deg",
    "kisa_pct",
    "rule_class",
)

CENTRAL_K_THRESHOLD_D = 47.2
I_S_THRESHOLD_D = 1.4
SRAX_THRESHOLD_DEG = 21.0
KISA_SUSPECT_PCT = 60.0
KISA_KC_PCT = 100.0
#: SRAX only counts on its own when there is enough astigmatism to define an axis.
SRAX_MIN_AST_D = 1.0
SRAX_VARIANTS = ("perpendicular-to-steep-axis", "horizontal")
#: Axial CLMI above which the opt-in rule calls keratoconus (Semin. Ophthalmol. 2016).
CLMI_AXIAL_KC_D = 1.82
_CLMI_ZONE_RADIUS_MM = 4.0
_CLMI_CIRCLE_RADIUS_MM = 1.0
_CLMI_STEP_MM = 0.1
_CLMI_TIE_D = 0.01


def _check_map(axial_d: np.ndarray, mm_per_px: float) -> np.ndarray:
    a = np.asarray(axial_d, dtype=float)
    if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] < 5:
        raise ValueError(f"axial map must be a square 2-D array of at least 5×5, got {a.shape}")
    if not np.isfinite(a).any():
        raise ValueError("axial map is all NaN (no valid zone)")
    if not (np.isfinite(mm_per_px) and mm_per_px > 0):
        raise ValueError(f"mm_per_px must be a positive number, got {mm_per_px!r}")
    median = float(np.nanmedian(a))
    if not 20.0 <= median <= 100.0:
        raise ValueError(
            f"axial map median is {median:.2f}, not corneal power in dioptres "
            "(expected roughly 35–60 D; radii in mm or curvature in 1/mm are not accepted)"
        )
    return a


def sample_polar(map_d: np.ndarray, radius_mm, angle_deg, *, mm_per_px: float) -> np.ndarray:
    """Bilinear samples of a display-grid map at polar points (mm, TABO degrees); NaN outside."""
    n = map_d.shape[0]
    c = (n - 1) / 2.0
    r = np.asarray(radius_mm, dtype=float)
    t = np.deg2rad(np.asarray(angle_deg, dtype=float))
    r, t = np.broadcast_arrays(r, t)
    cols = c + r * np.cos(t) / mm_per_px
    rows = c - r * np.sin(t) / mm_per_px
    out = map_coordinates(
        np.asarray(map_d, dtype=float), [rows.ravel(), cols.ravel()], order=1, cval=np.nan
    )
    return out.reshape(r.shape)


def _simk(a: np.ndarray, mm_per_px: float) -> tuple[float, float, float, float]:
    angles = np.arange(360.0)
    ring = sample_polar(a, 1.5, angles, mm_per_px=mm_per_px)
    if np.isnan(ring).mean() > 0.25:
        raise ValueError(
            f"the axial map covers only {100 * np.isfinite(ring).mean():.0f}% of the 3 mm ring; "
            "Sim-K needs the central 3 mm"
        )
    pair = np.stack([ring[:180], ring[180:]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN meridians are handled below
        meridian = np.nanmean(pair, axis=0)
    if np.isnan(meridian).any():
        # Fill meridians with both semi-meridians missing by circular interpolation.
        ok = np.isfinite(meridian)
        idx = np.arange(180)
        meridian = np.interp(idx, idx[ok], meridian[ok], period=180)
    return simk_from_meridians(meridian, np.arange(180.0))


def simk_from_meridians(
    meridian_d: np.ndarray, angles_deg: np.ndarray
) -> tuple[float, float, float, float]:
    """Steep K, flat K, steep axis and flat axis of a meridional power profile.

    ``meridian_d`` is the power (D) of the meridians at ``angles_deg``, equally spaced over
    [0, 180). The steep axis comes from the profile's second harmonic (the argmax of a
    nearly flat cos² curve moves by degrees with 0.001 D of interpolation noise); K steep and
    K flat are the profile at that axis and at the perpendicular one (swapped if an
    irregular profile's harmonic peak is not its steepest meridian).
    """
    meridian = np.asarray(meridian_d, dtype=float)
    angles = np.asarray(angles_deg, dtype=float)
    theta = np.deg2rad(2.0 * angles)
    a2 = float(np.mean(meridian * np.cos(theta)))
    b2 = float(np.mean(meridian * np.sin(theta)))
    axis = (0.5 * np.rad2deg(np.arctan2(b2, a2))) % 180.0
    k1 = float(np.interp(axis, angles, meridian, period=180.0))
    k2 = float(np.interp((axis + 90.0) % 180.0, angles, meridian, period=180.0))
    if k2 > k1:
        k1, k2, axis = k2, k1, (axis + 90.0) % 180.0
    return k1, k2, axis, (axis + 90.0) % 180.0


def _i_s(a: np.ndarray, mm_per_px: float) -> tuple[float, int]:
    inferior = np.array([210.0, 240.0, 270.0, 300.0, 330.0])
    superior = np.array([30.0, 60.0, 90.0, 120.0, 150.0])
    radii = np.linspace(3.0, 2.5, 11)  # outermost first: the fallback along the semi-meridian
    fallbacks = 0

    def side(angles: np.ndarray) -> np.ndarray:
        nonlocal fallbacks
        vals = sample_polar(a, radii[:, None], angles[None, :], mm_per_px=mm_per_px)
        out = np.full(angles.size, np.nan)
        for k in range(angles.size):
            ok = np.flatnonzero(np.isfinite(vals[:, k]))
            if ok.size:
                out[k] = vals[ok[0], k]
                fallbacks += int(ok[0] > 0)
        return out

    inf_v, sup_v = side(inferior), side(superior)
    if np.isfinite(inf_v).sum() < 3 or np.isfinite(sup_v).sum() < 3:
        return float("nan"), fallbacks
    return float(np.nanmean(inf_v) - np.nanmean(sup_v)), fallbacks


def _srax(a: np.ndarray, mm_per_px: float, steep_axis: float, variant: str) -> float:
    angles = np.arange(360.0)
    radii = np.linspace(0.5, 1.5, 5)
    vals = sample_polar(a, radii[:, None], angles[None, :], mm_per_px=mm_per_px)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # lid-hidden semi-meridians → NaN
        steep = np.nanmean(vals, axis=0)
        # A ±10° circular running mean: single-degree maxima of noise are not radial axes.
        kernel = np.ones(21)
        ok = np.isfinite(steep)
        wrap = lambda v: np.concatenate([v[-10:], v, v[:10]])  # noqa: E731
        num = np.convolve(wrap(np.where(ok, steep, 0.0)), kernel, mode="valid")
        den = np.convolve(wrap(ok.astype(float)), kernel, mode="valid")
        steep = np.where(ok, num / np.maximum(den, 1.0), np.nan)
    if variant == "horizontal":
        side_a = np.sin(np.deg2rad(angles)) > 0
    else:
        side_a = np.cos(np.deg2rad(angles - steep_axis)) > 0
    sa = np.where(side_a & np.isfinite(steep), steep, -np.inf)
    sb = np.where(~side_a & np.isfinite(steep), steep, -np.inf)
    if not (np.isfinite(sa).any() and np.isfinite(sb).any()):
        return float("nan")
    ta, tb = angles[int(np.argmax(sa))], angles[int(np.argmax(sb))]
    diff = abs(ta - tb) % 360.0
    between = min(diff, 360.0 - diff)
    return float(180.0 - between)


def cone_location_magnitude(map_d: np.ndarray, *, mm_per_px: float) -> dict:
    """CLMI and cone location of one power map (see the module docstring).

    The map is resampled bilinearly on a 0.1 mm grid over the central 8 mm, so results do
    not depend on the input spacing. Undefined parts (too little valid zone, an opposite
    circle hidden by the lids) are NaN, never an error.

    Returns
    -------
    dict
        ``clmi_d, m1_d, m2_d, x_mm, y_mm, dist_mm`` (x to the examiner's right, y superior).
    """
    nan = float("nan")
    out = {"clmi_d": nan, "m1_d": nan, "m2_d": nan, "x_mm": nan, "y_mm": nan, "dist_mm": nan}
    a = np.asarray(map_d, dtype=float)
    step, zone_r, circ_r = _CLMI_STEP_MM, _CLMI_ZONE_RADIUS_MM, _CLMI_CIRCLE_RADIUS_MM
    half = int(round(zone_r / step))
    u = np.arange(-half, half + 1) * step
    gx, gy = np.meshgrid(u, -u)  # row 0 superior, as the display grid
    c = (a.shape[0] - 1) / 2.0
    vals = map_coordinates(a, [c - gy / mm_per_px, c + gx / mm_per_px], order=1, cval=np.nan)
    rr = np.hypot(gx, gy)
    in_zone = rr <= zone_r + 1e-9
    zone = in_zone & np.isfinite(vals)
    if zone.sum() < 0.25 * in_zone.sum():
        return out
    k = int(round(circ_r / step))
    ky, kx = np.mgrid[-k : k + 1, -k : k + 1]
    disk = (np.hypot(kx, ky) <= k + 1e-9).astype(float)
    v0 = np.where(zone, vals, 0.0)
    s_in = fftconvolve(v0, disk, mode="same")
    n_in = np.rint(fftconvolve(zone.astype(float), disk, mode="same"))
    s_all, n_all = float(v0.sum()), float(zone.sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_in = s_in / n_in
        mean_out = (s_all - s_in) / (n_all - n_in)
    cand = in_zone & (n_in >= 0.5 * disk.sum()) & (n_all - n_in > 0)
    if not cand.any():
        return out
    best = float(np.max(mean_in[cand]))
    tied = cand & (mean_in >= best - _CLMI_TIE_D)
    # Ties (a rotationally symmetric map): the tied centre nearest the tied centroid.
    cx, cy = float(gx[tied].mean()), float(gy[tied].mean())
    d2 = np.where(tied, (gx - cx) ** 2 + (gy - cy) ** 2, np.inf)
    i, j = np.unravel_index(int(np.argmin(d2)), d2.shape)
    m1 = float(mean_in[i, j] - mean_out[i, j])
    i2, j2 = 2 * half - i, 2 * half - j  # the grid is symmetric: −(x, y)
    m2 = float(mean_in[i2, j2] - mean_out[i2, j2]) if n_in[i2, j2] > 0 else nan
    dist = float(rr[i, j])
    weight = 1.0 if dist >= circ_r else dist / circ_r
    if weight == 0.0:
        clmi = m1
    else:
        clmi = m1 - weight * m2 if np.isfinite(m2) else nan
    out.update(
        clmi_d=float(clmi),
        m1_d=m1,
        m2_d=m2,
        x_mm=round(float(gx[i, j]), 6),
        y_mm=round(float(gy[i, j]), 6),
        dist_mm=dist,
    )
    return out


def compute_indices(
    axial_d: np.ndarray,
    *,
    mm_per_px: float,
    eye: str,
    srax_variant: str = "perpendicular-to-steep-axis",
    tangential_d: np.ndarray | None = None,
) -> dict:
    """Sim-K, central K, I-S, SRAX, KISA %, CLMI and the rule-based class of an axial map.

    Parameters
    ----------
    axial_d : ndarray (N, N)
        Axial power (D) on the display grid, NaN outside the valid zone.
    mm_per_px : float
        Grid spacing.
    eye : {"OD", "OS"}
        Laterality (recorded; the indices are laterality-symmetric by construction).
    srax_variant : {"perpendicular-to-steep-axis", "horizontal"}
    tangential_d : ndarray (N, N), optional
        Tangential power on the same grid, for the tangential CLMI.

    Returns
    -------
    dict
        ``simk_k1_d, simk_k2_d, simk_axis_deg`` (steep axis), ``simk_k2_axis_deg, ast_d,
        central_k_d, i_s_d, srax_deg, srax_variant, kisa_pct, rule_class, eye,
        i_s_fallback_points``; and the cone indices ``clmi_axial_d, clmi_tangential_d``
        ``cone_x_mm, cone_y_mm, cone_dist_mm`` (C1 on the axial map),
        ``cone_tangential_x_mm, cone_tangential_y_mm, cone_tangential_dist_mm`` (C1 on the
        tangential map; the tangential values are NaN without ``tangential_d``) and
        ``rule_class_clmi`` (:func:`rule_classify` with ``use_clmi=True``). ``rule_class``
        is the default rule, unchanged by the cone indices.
    """
    a = _check_map(axial_d, mm_per_px)
    eye_u = str(eye).strip().upper()
    if eye_u not in ("OD", "OS"):
        raise ValueError(f"eye must be 'OD' or 'OS', got {eye!r}")
    if srax_variant not in SRAX_VARIANTS:
        raise ValueError(f"srax_variant must be one of {SRAX_VARIANTS}, got {srax_variant!r}")
    k1, k2, axis, axis2 = _simk(a, mm_per_px)
    n = a.shape[0]
    c = (n - 1) / 2.0
    rr = np.hypot(*np.meshgrid(np.arange(n) - c, np.arange(n) - c)) * mm_per_px
    central = a[rr <= 1.5]
    if np.isfinite(central).mean() < 0.75:
        raise ValueError("the axial map covers less than 75% of the central 3 mm zone")
    central_k = float(np.nanmean(central))
    i_s, fallbacks = _i_s(a, mm_per_px)
    srax = _srax(a, mm_per_px, axis, srax_variant)
    ast = k1 - k2
    kisa = central_k * abs(i_s) * ast * srax * 100.0 / 300.0
    out = {
        "eye": eye_u,
        "simk_k1_d": k1,
        "simk_k2_d": k2,
        "simk_axis_deg": axis,
        "simk_k2_axis_deg": axis2,
        "ast_d": ast,
        "central_k_d": central_k,
        "i_s_d": i_s,
        "i_s_fallback_points": fallbacks,
        "srax_deg": srax,
        "srax_variant": srax_variant,
        "kisa_pct": float(kisa),
    }
    out["rule_class"] = rule_classify(
        central_k_d=central_k, i_s_d=i_s, srax_deg=srax, kisa_pct=kisa, ast_d=ast
    )
    cone = cone_location_magnitude(a, mm_per_px=mm_per_px)
    nan = float("nan")
    cone_t = {"clmi_d": nan, "x_mm": nan, "y_mm": nan, "dist_mm": nan}
    if tangential_d is not None:
        t = np.asarray(tangential_d, dtype=float)
        if t.shape != a.shape:
            raise ValueError(f"tangential map shape {t.shape} != axial map shape {a.shape}")
        cone_t = cone_location_magnitude(t, mm_per_px=mm_per_px)
    out.update(
        clmi_axial_d=cone["clmi_d"],
        clmi_tangential_d=cone_t["clmi_d"],
        cone_x_mm=cone["x_mm"],
        cone_y_mm=cone["y_mm"],
        cone_dist_mm=cone["dist_mm"],
        cone_tangential_x_mm=cone_t["x_mm"],
        cone_tangential_y_mm=cone_t["y_mm"],
        cone_tangential_dist_mm=cone_t["dist_mm"],
    )
    out["rule_class_clmi"] = rule_classify(out, use_clmi=True)
    return out


def rule_classify(
    indices: Mapping[str, float] | None = None,
    *,
    central_k_d: float = float("nan"),
    i_s_d: float = float("nan"),
    kisa_pct: float = float("nan"),
    srax_deg: float = float("nan"),
    ast_d: float = float("nan"),
    clmi_axial_d: float = float("nan"),
    use_clmi: bool = False,
) -> str:
    """Non-learned screening class from the literature thresholds.

    Give the indices as keywords, or as one mapping (e.g. the dict of
    :func:`compute_indices`; keywords then override its values).

    With ``use_clmi=True`` (opt-in; the default rule is unchanged) an axial CLMI above
    :data:`CLMI_AXIAL_KC_D` (1.82 D) also makes ``"keratoconus"``.

    - ``"keratoconus"``: KISA % > 100, or central K > 47.2 D together with I-S > 1.4 D;
    - ``"suspect"``: KISA % ≥ 60, or central K > 47.2 D, or I-S > 1.4 D, or SRAX > 21° with
      AST ≥ 1 D (an axis skew means little without astigmatism);
    - ``"normal"`` otherwise. An undefined (NaN) index counts as not meeting its criterion;
      if central K is NaN the eye cannot be classified and a ValueError is raised.
    """
    if indices is not None:
        given = {
            "central_k_d": central_k_d,
            "i_s_d": i_s_d,
            "kisa_pct": kisa_pct,
            "srax_deg": srax_deg,
            "ast_d": ast_d,
            "clmi_axial_d": clmi_axial_d,
        }
        merged = {k: float(indices.get(k, float("nan"))) for k in given}
        merged.update({k: v for k, v in given.items() if np.isfinite(v)})
        central_k_d, i_s_d, kisa_pct = merged["central_k_d"], merged["i_s_d"], merged["kisa_pct"]
        srax_deg, ast_d = merged["srax_deg"], merged["ast_d"]
        clmi_axial_d = merged["clmi_axial_d"]
    if not np.isfinite(central_k_d):
        raise ValueError("central K is undefined; the eye cannot be classified")

    def gt(value: float, limit: float) -> bool:
        return bool(np.isfinite(value) and value > limit)

    steep = gt(central_k_d, CENTRAL_K_THRESHOLD_D)
    asym = gt(i_s_d, I_S_THRESHOLD_D)
    if gt(kisa_pct, KISA_KC_PCT) or (steep and asym):
        return "keratoconus"
    if use_clmi and gt(clmi_axial_d, CLMI_AXIAL_KC_D):
        return "keratoconus"
    skew = gt(srax_deg, SRAX_THRESHOLD_DEG) and bool(np.isfinite(ast_d) and ast_d >= SRAX_MIN_AST_D)
    if (np.isfinite(kisa_pct) and kisa_pct >= KISA_SUSPECT_PCT) or steep or asym or skew:
        return "suspect"
    return "normal"
