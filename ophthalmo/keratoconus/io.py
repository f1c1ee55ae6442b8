"""Case files (raw maps, elevation grids) and readers for real topographer exports.

Raw-map case (``.npz``): ``axial_d``, ``tangential_d`` (float32 dioptres, NaN outside the valid
zone, square display grids of equal shape), ``mm_per_px`` (scalar), ``eye`` (``"OD"|"OS"``).
Elevation case (``.npz``): ``z_mm`` (sag in mm, positive into the eye, NaN outside),
``mm_per_px``, ``eye``. Grids follow :mod:`ophthalmo.keratoconus.topography` (row 0 superior).

CSO Placido text export (:func:`read_cso`): header with ``Occhio``, ``SIM-k`` (K1/K2 with axes;
K1 is the flatter meridian there), ``N° Anelli`` rings and ``N° Semimeridiani``
semi-meridians, then rings × semi-meridians radial distances ρ (mm) ring by ring, then the
same number of elevations (mm, the CSO sign is negative into the eye), decimal commas,
missing points coded −1 or −1000. :func:`cso_to_case` turns one into a raw-map case through a
degree-8 Zernike fit of the measured points; :func:`cso_simk` computes a device-style
(keratometric) Sim-K directly from the ring points, to report beside the map-based one.
"""

from __future__ import annotations

import os
import re
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

__all__ = [
    "Case",
    "CsoExam",
    "DeviceSimK",
    "Elevation",
    "cso_simk",
    "cso_to_case",
    "load_case",
    "load_elevation",
    "read_cso",
    "save_case",
    "save_elevation",
]


class Case(NamedTuple):
    """A raw-map case; unpacks as ``axial_d, tangential_d, mm_per_px, eye``."""

    axial_d: np.ndarray
    tangential_d: np.ndarray
    mm_per_px: float
    eye: str


class Elevation(NamedTuple):
    """An elevation case; unpacks as ``z_mm, mm_per_px, eye``."""

    z_mm: np.ndarray
    mm_per_px: float
    eye: str


def _open_npz(path: str | os.PathLike, keys: tuple[str, ...]) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"case file not found: {path}")
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: file is empty")
    try:
        data = np.load(path, allow_pickle=False)
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable .npz file ({exc})") from exc
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise ValueError(f"{path}: not an .npz archive (a bare .npy array?)")
    with data:
        missing = [k for k in keys if k not in data.files]
        if missing:
            raise ValueError(
                f"{path}: missing key(s) {', '.join(missing)} (has: {', '.join(data.files)})"
            )
        try:
            return {k: data[k] for k in keys}
        except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
            raise ValueError(f"{path}: a key cannot be read ({exc})") from exc


def _scalar_spacing(value: np.ndarray, where: str) -> float:
    arr = np.asarray(value)
    if arr.size != 1 or not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{where}: mm_per_px must be one number, got {arr!r}")
    mm = float(arr.reshape(()))
    if not (np.isfinite(mm) and 0 < mm < 1.0):
        raise ValueError(f"{where}: mm_per_px must be in (0, 1) mm, got {mm!r}")
    return mm


def _eye(value: object, where: str) -> str:
    eye = str(np.asarray(value).reshape(()) if np.ndim(value) == 0 else value).strip().upper()
    if eye not in ("OD", "OS"):
        raise ValueError(f"{where}: eye must be 'OD' or 'OS', got {value!r}")
    return eye


def _check_grid(arr: np.ndarray, name: str, where: str) -> np.ndarray:
    a = np.asarray(arr)
    if not np.issubdtype(a.dtype, np.floating):
        raise ValueError(f"{where}: {name} must be a float array, got dtype {a.dtype}")
    if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] < 5:
        raise ValueError(f"{where}: {name} must be a square 2-D grid (≥ 5×5), got {a.shape}")
    if np.isinf(a).any():
        raise ValueError(f"{where}: {name} contains infinite values")
    if not np.isfinite(a).any():
        raise ValueError(f"{where}: {name} is all NaN (no valid zone)")
    return a


def _check_power(a: np.ndarray, name: str, where: str) -> np.ndarray:
    a = _check_grid(a, name, where).astype(np.float32)
    median = float(np.nanmedian(a))
    if not 20.0 <= median <= 100.0:
        raise ValueError(
            f"{where}: {name} has median {median:.2f}, not corneal power in dioptres "
            "(expected roughly 35–60 D)"
        )
    return a


def load_case(path: str | os.PathLike) -> Case:
    """Read and validate a raw-map case ``.npz`` (see the module docstring)."""
    data = _open_npz(path, ("axial_d", "tangential_d", "mm_per_px", "eye"))
    where = str(path)
    axial = _check_power(data["axial_d"], "axial_d", where)
    tangential = _check_power(data["tangential_d"], "tangential_d", where)
    if axial.shape != tangential.shape:
        raise ValueError(
            f"{where}: axial_d {axial.shape} and tangential_d {tangential.shape} differ in shape"
        )
    return Case(
        axial, tangential, _scalar_spacing(data["mm_per_px"], where), _eye(data["eye"], where)
    )


def save_case(
    path: str | os.PathLike,
    axial_d: np.ndarray,
    tangential_d: np.ndarray,
    *,
    mm_per_px: float,
    eye: str,
) -> Path:
    """Validate and write a raw-map case ``.npz`` atomically; returns the path."""
    from healthsense.report import atomic_path

    where = f"case for {path}"
    axial = _check_power(axial_d, "axial_d", where)
    tangential = _check_power(tangential_d, "tangential_d", where)
    if axial.shape != tangential.shape:
        raise ValueError(f"{where}: axial_d and tangential_d differ in shape")
    mm = _scalar_spacing(np.asarray(mm_per_px, dtype=float), where)
    eye_u = _eye(eye, where)
    # Rename-atomic (temporary file + os.replace); no fsync, see heatmap.save_png.
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez(
            tmp,
            axial_d=axial,
            tangential_d=tangential,
            mm_per_px=np.float64(mm),
            eye=np.str_(eye_u),
        )
    return Path(path)


def load_elevation(path: str | os.PathLike) -> Elevation:
    """Read and validate an elevation ``.npz`` (``z_mm``, ``mm_per_px``, ``eye``)."""
    data = _open_npz(path, ("z_mm", "mm_per_px", "eye"))
    where = str(path)
    z = _check_grid(data["z_mm"], "z_mm", where).astype(float)
    if np.nanmax(np.abs(z)) > 10:
        raise ValueError(f"{where}: z_mm reaches {np.nanmax(np.abs(z)):.1f} mm; expected sag in mm")
    return Elevation(z, _scalar_spacing(data["mm_per_px"], where), _eye(data["eye"], where))


def save_elevation(
    path: str | os.PathLike, z_mm: np.ndarray, *, mm_per_px: float, eye: str
) -> Path:
    """Write an elevation ``.npz`` atomically; returns the path."""
    from healthsense.report import atomic_writer

    where = f"elevation for {path}"
    z = _check_grid(np.asarray(z_mm, dtype=float), "z_mm", where)
    mm = _scalar_spacing(np.asarray(mm_per_px, dtype=float), where)
    with atomic_writer(path, "wb") as handle:
        np.savez(handle, z_mm=z, mm_per_px=np.float64(mm), eye=np.str_(_eye(eye, where)))
    return Path(path)


# ------------------------------------------------------------------------------- CSO export


@dataclass(frozen=True)
class CsoExam:
    """One CSO Placido export.

    Attributes
    ----------
    path : str
    rho_mm, z_mm : ndarray (rings, semi_meridians)
        Radial distance and elevation (mm, **positive into the eye**, i.e. the CSO sign
        flipped) of each ring point; NaN where the device coded the point missing.
    angles_deg : ndarray (semi_meridians,)
        Semi-meridian angles, ``360 j / n`` counter-clockwise from the examiner's right.
    eye_flag : str
        The raw ``Occhio`` value (``"True"``/``"False"``); see :data:`CSO_EYE_FLAG`.
    header_k_flat_d, header_k_flat_axis_deg, header_k_steep_d, header_k_steep_axis_deg
        The device's own Sim-K (its K1 is the flat meridian).
    """

    path: str
    rho_mm: np.ndarray
    z_mm: np.ndarray
    angles_deg: np.ndarray
    eye_flag: str
    header_k_flat_d: float
    header_k_flat_axis_deg: float
    header_k_steep_d: float
    header_k_steep_axis_deg: float

    @property
    def eye(self) -> str:
        """Laterality inferred from ``Occhio`` (see :data:`CSO_EYE_FLAG`)."""
        return CSO_EYE_FLAG[self.eye_flag]


#: ``Occhio`` flag → eye. Undocumented by the vendor; inferred from the rPACI exports: with
#: ``True`` = OS the steepest tangential point of the keratoconic eyes lies temporal (K02:
#: 2.7 mm, K03: 0.3 mm; K01's cone is central). Weak evidence (datasets/rpaci-cso.md);
#: ``CsoExam.eye_flag`` keeps the raw value.
CSO_EYE_FLAG = {"True": "OS", "False": "OD"}

_NUM = r"(-?\d+(?:[.,]\d+)?)"


def _num(text: str) -> float:
    return float(text.replace(",", "."))


def read_cso(path: str | os.PathLike) -> CsoExam:
    """Parse a CSO Placido text export (see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"CSO export not found: {path}")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        text = path.read_text(encoding="latin-1")
    lines = [ln.strip() for ln in text.splitlines()]
    if not any(lines):
        raise ValueError(f"{path}: file is empty")

    def header(pattern: str, what: str) -> re.Match:
        for ln in lines:
            m = re.match(pattern, ln, flags=re.IGNORECASE)
            if m:
                return m
        raise ValueError(f"{path}: not a CSO export (no {what} line in the header)")

    eye_flag = header(r"Occhio\s*:\s*(\S+)", "'Occhio :'").group(1)
    if eye_flag not in CSO_EYE_FLAG:
        raise ValueError(f"{path}: unknown 'Occhio' value {eye_flag!r} (expected True/False)")
    k1 = header(rf"K1\s*=\s*{_NUM}\s*D\s*@\s*{_NUM}", "'K1 = … D @ …°'")
    k2 = header(rf"K2\s*=\s*{_NUM}\s*D\s*@\s*{_NUM}", "'K2 = … D @ …°'")
    kind = header(r"Dato misurato\s*:\s*(\S+)", "'Dato misurato :'").group(1)
    if not kind.lower().startswith("elevazion"):
        raise ValueError(f"{path}: measured data is {kind!r}; only 'Elevazioni' is supported")
    n_rings = int(header(r"N\S*\s*Anelli\s*:\s*(\d+)", "'N° Anelli :'").group(1))
    n_semi = int(header(r"N\S*\s*Semimeridiani\s*:\s*(\d+)", "'N° Semimeridiani :'").group(1))
    if not (1 <= n_rings <= 100 and 8 <= n_semi <= 4096):
        raise ValueError(f"{path}: implausible grid {n_rings} rings × {n_semi} semi-meridians")
    start = max(i for i, ln in enumerate(lines) if ln.startswith("---")) + 1
    body = [ln for ln in lines[start:] if ln]
    n = n_rings * n_semi
    if len(body) != 2 * n:
        raise ValueError(
            f"{path}: expected {2 * n} values ({n_rings} rings × {n_semi} semi-meridians, "
            f"radius then elevation), found {len(body)}"
        )
    try:
        values = np.array([_num(v) for v in body])
    except ValueError as exc:
        raise ValueError(f"{path}: non-numeric value in the data block ({exc})") from exc
    rho = values[:n].reshape(n_rings, n_semi)
    z = values[n:].reshape(n_rings, n_semi)
    missing = (
        (rho <= 0)
        | (rho == -1000)
        | (z == -1000)
        | (z == -1.0)
        | ~np.isfinite(values[:n]).reshape(rho.shape)
    )
    rho = np.where(missing, np.nan, rho)
    z = np.where(missing, np.nan, -z)
    if np.isfinite(rho).sum() < 100:
        raise ValueError(f"{path}: fewer than 100 measured points; cannot reconstruct the cornea")
    ka, kb = (_num(k1.group(1)), _num(k1.group(2))), (_num(k2.group(1)), _num(k2.group(2)))
    flat, steep = (ka, kb) if ka[0] <= kb[0] else (kb, ka)
    return CsoExam(
        path=str(path),
        rho_mm=rho,
        z_mm=z,
        angles_deg=360.0 * np.arange(n_semi) / n_semi,
        eye_flag=eye_flag,
        header_k_flat_d=flat[0],
        header_k_flat_axis_deg=flat[1],
        header_k_steep_d=steep[0],
        header_k_steep_axis_deg=steep[1],
    )


def cso_to_case(
    exam: CsoExam,
    *,
    size: int = 129,
    mm_per_px: float = 0.08,
    degree: int = 8,
) -> Case:
    """Raw-map case from a CSO exam: Zernike fit of the ring points, maps on the grid.

    The fitted surface is levelled at the vertex (:func:`~ophthalmo.keratoconus.zernike.level_fit`)
    so that axial power stays finite there. The valid zone is the measured coverage: a grid point is kept where its distance from the
    vertex does not exceed the outermost measured ring point of the nearest semi-meridians.
    """
    from ophthalmo.keratoconus.topography import grid_xy, maps_from_zernike
    from ophthalmo.keratoconus.zernike import fit_zernike, level_fit

    theta = np.deg2rad(exam.angles_deg)[None, :]
    x = exam.rho_mm * np.cos(theta)
    y = exam.rho_mm * np.sin(theta)
    fit = level_fit(fit_zernike(x, y, exam.z_mm, degree=degree))
    gx, gy = grid_xy(size, mm_per_px)
    with np.errstate(invalid="ignore"):
        reach = np.nanmax(np.where(np.isfinite(exam.z_mm), exam.rho_mm, np.nan), axis=0)
    reach = np.where(np.isfinite(reach), reach, 0.0)
    ang = np.degrees(np.arctan2(gy, gx)) % 360.0
    limit = np.interp(ang, exam.angles_deg, reach, period=360.0)
    mask = np.hypot(gx, gy) <= np.minimum(limit, fit.radius)
    axial, tangential = maps_from_zernike(fit, size=size, mm_per_px=mm_per_px, valid_mask=mask)
    return Case(axial, tangential, float(mm_per_px), exam.eye)


# ------------------------------------------------------------------- device-style Sim-K


@dataclass(frozen=True)
class DeviceSimK:
    """Keratometric Sim-K from Placido ring data (see :func:`cso_simk`).

    Attributes
    ----------
    k_steep_d, k_steep_axis_deg, k_flat_d, k_flat_axis_deg : float
        Steep and flat meridians (D, TABO degrees); the flat one is perpendicular.
    ast_d : float
        ``k_steep_d − k_flat_d``.
    ring : float
        The (fractional, 1-based) ring used: where the mean reflection angle of the rings
        matches the zone on the reference sphere.
    reflection_sin_spread : float
        Standard deviation over semi-meridians of ``sin θ_n`` on that ring (θ_n the angle of
        the surface normal to the instrument axis): near 0 when, as for a Placido disk, each
        mire reflects at one fixed angle.
    """

    k_steep_d: float
    k_steep_axis_deg: float
    k_flat_d: float
    k_flat_axis_deg: float
    ast_d: float
    ring: float
    reflection_sin_spread: float


def _ring_slopes(rho: np.ndarray, z: np.ndarray) -> np.ndarray:
    """dz/dρ at every ring point: three-point differences on the uneven ring spacing.

    The vertex (ρ = 0, z = 0) is prepended to every semi-meridian; a point with a missing
    neighbour gets NaN (the outermost measured ring gets a one-sided difference).
    """
    zeros = np.zeros((1, rho.shape[1]))
    r = np.vstack([zeros, rho, np.full_like(zeros, np.nan)])
    h = np.vstack([zeros, z, np.full_like(zeros, np.nan)])
    h1 = r[1:-1] - r[:-2]
    h2 = r[2:] - r[1:-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        central = (h1**2 * h[2:] - h2**2 * h[:-2] + (h2**2 - h1**2) * h[1:-1]) / (
            h1 * h2 * (h1 + h2)
        )
        backward = (h[1:-1] - h[:-2]) / h1
    return np.where(np.isfinite(central), central, backward)


def cso_simk(
    exam: CsoExam,
    *,
    zone_diameter_mm: float = 3.0,
    reference_radius_mm: float = 7.8,
) -> DeviceSimK:
    """Device-style Sim-K from the ring data: a simulated keratometer on the Placido mires.

    A keratometer measures a meridian's radius from the size of a mire's image between two
    opposite reflection points, ``r = 2 d h' / h``; with a Placido disk each ring reflects
    at a fixed angle θ_n of the surface normal, so the axial radius of a ring point is
    ``ρ / sin θ_n`` and the meridian radius is the **mean of the two semi-meridians' axial
    radii** (not the mean of their powers), K = 337.5 / radius. The mire is fixed, not the
    zone: it is the (interpolated) ring that reflects on the ``zone_diameter_mm`` diameter
    of a ``reference_radius_mm`` sphere (3 mm on 7.8 mm, 43.27 D), so on a steep cone it
    samples closer to the vertex, as a keratometer does. Slopes come from the exported
    elevations along each semi-meridian (no fit, no levelling); steep and flat K as in
    :func:`ophthalmo.keratoconus.indices.compute_indices`
    (:func:`~ophthalmo.keratoconus.indices.simk_from_meridians`).

    On the six rPACI exports this agrees with the device header within 0.23 D on both
    meridians, K01 included (datasets/rpaci-cso.md); it is our reconstruction of the
    device's method, not a vendor-documented algorithm.
    """
    from ophthalmo.keratoconus.indices import simk_from_meridians

    if not (0 < zone_diameter_mm < 2 * reference_radius_mm):
        raise ValueError(
            f"zone_diameter_mm must be in (0, 2 × reference radius), got {zone_diameter_mm!r}"
        )
    n_semi = exam.rho_mm.shape[1]
    if n_semi % 2:
        raise ValueError(f"{exam.path}: an odd number of semi-meridians ({n_semi})")
    slope = _ring_slopes(exam.rho_mm, exam.z_mm)
    sin_n = slope / np.sqrt(1.0 + slope**2)
    with np.errstate(invalid="ignore", divide="ignore"):
        r_axial = np.where(sin_n > 0, exam.rho_mm / sin_n, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-missing outer rings
        mean_sin = np.nanmean(sin_n, axis=1)
    target = 0.5 * zone_diameter_mm / reference_radius_mm
    ok = np.flatnonzero(np.isfinite(mean_sin))
    above = ok[mean_sin[ok] >= target]
    if above.size == 0 or above[0] == 0 or not np.isfinite(mean_sin[above[0] - 1]):
        raise ValueError(
            f"{exam.path}: no pair of measured rings brackets the {zone_diameter_mm} mm zone"
        )
    hi = int(above[0])
    lo = hi - 1
    w = (target - mean_sin[lo]) / (mean_sin[hi] - mean_sin[lo])
    radius = (1.0 - w) * r_axial[lo] + w * r_axial[hi]
    if np.isnan(radius).mean() > 0.25:
        raise ValueError(
            f"{exam.path}: the rings at the {zone_diameter_mm} mm zone are "
            f"{100 * np.isnan(radius).mean():.0f}% missing"
        )
    half = n_semi // 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        meridian_r = np.nanmean(np.stack([radius[:half], radius[half:]]), axis=0)
    angles = exam.angles_deg[:half]
    good = np.isfinite(meridian_r)
    meridian_r = np.interp(angles, angles[good], meridian_r[good], period=180.0)
    k_steep, k_flat, axis, flat_axis = simk_from_meridians(337.5 / meridian_r, angles)
    return DeviceSimK(
        k_steep_d=k_steep,
        k_steep_axis_deg=axis,
        k_flat_d=k_flat,
        k_flat_axis_deg=flat_axis,
        ast_d=k_steep - k_flat,
        ring=float(lo + 1 + w),
        reflection_sin_spread=float(np.nanstd((1.0 - w) * sin_n[lo] + w * sin_n[hi])),
    )
