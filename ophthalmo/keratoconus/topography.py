"""Corneal elevation models and curvature maps (axial and tangential power in dioptres).

Grid convention (docs/keratoconus.md §3): square grid, vertex at the centre, **row 0
superior**, column 0 on the examiner's left; x (mm) grows to the examiner's right and y (mm)
grows superiorly; angles are counter-clockwise from the examiner's right (TABO, 90° superior).
Temporal is −x for a right eye (OD) and +x for a left eye (OS).

Elevation (sag) ``z`` is in mm, positive into the eye, apex at the origin. Power maps use the
keratometric index: ``K = 337.5 / r`` (r in mm). With ``z_s`` and ``z_ss`` the first and
second radial derivatives in the meridional plane through the vertex:

- axial (sagittal) power ``K_ax = 337.5 · z_s / (s · sqrt(1 + z_s²))`` (the distance from the
  surface point to the optical axis along the meridional normal is ``s / sin θ_n``);
- tangential (instantaneous) power ``K_t = 337.5 · z_ss / (1 + z_s²)^{3/2}``.

At the vertex both tend to the normal curvature of the meridian; the vertex pixel itself gets
the mean of the two principal directions, ``(z_xx + z_yy) / 2``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np

from ophthalmo.keratoconus.zernike import ZernikeFit, mirror_x, n_terms

__all__ = [
    "KERATOMETRIC_CONSTANT",
    "Cone",
    "CorneaModel",
    "biconic_sag",
    "conicoid_powers",
    "conicoid_sag",
    "curvature_from_derivatives",
    "curvature_maps",
    "grid_xy",
    "maps_from_zernike",
    "valid_zone_mask",
]

#: 1000 · (n_k − 1) with the keratometric index n_k = 1.3375: dioptres = 337.5 / r[mm].
KERATOMETRIC_CONSTANT = 337.5
_EYES = ("OD", "OS")


def _check_eye(eye: str) -> str:
    eye_u = str(eye).strip().upper()
    if eye_u not in _EYES:
        raise ValueError(f"eye must be 'OD' or 'OS', got {eye!r}")
    return eye_u


def grid_xy(size: int, mm_per_px: float) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates (mm) of a ``size × size`` map grid: x to the right, y superior (row 0 top).

    The vertex is at pixel ``((size - 1) / 2, (size - 1) / 2)``; use an odd size to put it on a
    pixel centre.
    """
    if not isinstance(size, int | np.integer) or size < 3:
        raise ValueError(f"grid size must be an integer >= 3, got {size!r}")
    if not (np.isfinite(mm_per_px) and mm_per_px > 0):
        raise ValueError(f"mm_per_px must be a positive number, got {mm_per_px!r}")
    c = (size - 1) / 2.0
    idx = (np.arange(size) - c) * float(mm_per_px)
    x = np.broadcast_to(idx[None, :], (size, size))
    y = np.broadcast_to(-idx[:, None], (size, size))
    return x.copy(), y.copy()


def valid_zone_mask(size: int, mm_per_px: float, radius_mm: float) -> np.ndarray:
    """Boolean mask of the grid points within ``radius_mm`` of the vertex."""
    x, y = grid_xy(size, mm_per_px)
    return np.hypot(x, y) <= radius_mm


def conicoid_sag(x, y, *, radius_mm: float, asphericity: float = 0.0) -> np.ndarray:
    """Conicoid sag ``s² / (R + sqrt(R² − (1 + Q) s²))`` (mm); NaN beyond the surface's edge."""
    if not radius_mm > 0:
        raise ValueError(f"apical radius must be > 0 mm, got {radius_mm!r}")
    s2 = np.asarray(x, dtype=float) ** 2 + np.asarray(y, dtype=float) ** 2
    root = radius_mm**2 - (1.0 + asphericity) * s2
    with np.errstate(invalid="ignore"):
        return np.where(root >= 0, s2 / (radius_mm + np.sqrt(np.maximum(root, 0.0))), np.nan)


def conicoid_powers(s_mm, *, radius_mm: float, asphericity: float = 0.0) -> tuple:
    """Closed-form (axial, tangential) power (D) of a conicoid at radial distance ``s_mm``."""
    s2 = np.asarray(s_mm, dtype=float) ** 2
    base = radius_mm**2 - asphericity * s2
    return (
        KERATOMETRIC_CONSTANT / np.sqrt(base),
        KERATOMETRIC_CONSTANT * radius_mm**2 / base**1.5,
    )


def biconic_sag(
    x,
    y,
    *,
    r_steep_mm: float,
    r_flat_mm: float,
    steep_axis_deg: float,
    asphericity: float = 0.0,
) -> np.ndarray:
    """Toric (biconic) sag with apical radii ``r_steep_mm`` along ``steep_axis_deg`` (TABO).

    ``z = (c1 u² + c2 v²) / (1 + sqrt(1 − (1+Q) (c1² u² + c2² v²)))`` with u along the steep
    axis and v perpendicular; equal radii give the conicoid.
    """
    if not (r_steep_mm > 0 and r_flat_mm > 0):
        raise ValueError(f"apical radii must be > 0 mm, got {r_steep_mm!r}, {r_flat_mm!r}")
    if r_steep_mm > r_flat_mm:
        raise ValueError(f"r_steep_mm ({r_steep_mm}) must not exceed r_flat_mm ({r_flat_mm})")
    a = np.deg2rad(steep_axis_deg)
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    u = x * np.cos(a) + y * np.sin(a)
    v = -x * np.sin(a) + y * np.cos(a)
    c1, c2 = 1.0 / r_steep_mm, 1.0 / r_flat_mm
    root = 1.0 - (1.0 + asphericity) * (c1**2 * u**2 + c2**2 * v**2)
    with np.errstate(invalid="ignore"):
        return np.where(
            root >= 0, (c1 * u**2 + c2 * v**2) / (1.0 + np.sqrt(np.maximum(root, 0.0))), np.nan
        )


@dataclass(frozen=True)
class Cone:
    """A keratoconic protrusion: a Gaussian bump of the surface towards the observer.

    Parameters
    ----------
    amplitude_mm : float
        Height of the protrusion (mm, > 0); the local steepening is about
        ``337.5 · amplitude_mm / sigma_mm²`` dioptres.
    sigma_mm : float
        Gaussian width (mm), typically 0.8–2.
    inferior_mm, temporal_mm : float
        Decentration of the cone apex from the vertex (inferior and temporal positive).
    """

    amplitude_mm: float
    sigma_mm: float = 1.3
    inferior_mm: float = 1.0
    temporal_mm: float = 0.5

    def __post_init__(self) -> None:
        if not (np.isfinite(self.amplitude_mm) and self.amplitude_mm >= 0):
            raise ValueError(f"cone amplitude must be >= 0 mm, got {self.amplitude_mm!r}")
        if not (np.isfinite(self.sigma_mm) and self.sigma_mm > 0):
            raise ValueError(f"cone sigma must be > 0 mm, got {self.sigma_mm!r}")

    def centre(self, eye: str) -> tuple[float, float]:
        """Apex position (x, y) in mm on the display grid of the given eye."""
        sign = -1.0 if _check_eye(eye) == "OD" else 1.0
        return sign * self.temporal_mm, -self.inferior_mm

    def height(self, x, y, eye: str) -> np.ndarray:
        x0, y0 = self.centre(eye)
        r2 = (np.asarray(x) - x0) ** 2 + (np.asarray(y) - y0) ** 2
        return self.amplitude_mm * np.exp(-r2 / (2.0 * self.sigma_mm**2))


@dataclass(frozen=True)
class CorneaModel:
    """Anterior corneal surface: toric conicoid + Zernike irregularity − keratoconic cone.

    Parameters
    ----------
    eye : {"OD", "OS"}
    r_flat_mm, r_steep_mm : float
        Apical radii of the flat and steep meridians (equal for a rotationally symmetric
        cornea).
    steep_axis_deg : float
        Steep meridian (TABO, display frame of this eye).
    asphericity : float
        Conic constant Q (normal ≈ −0.5 … 0).
    zernike_mm : tuple of float
        Extra OSA/ANSI Zernike coefficients (mm) on a disk of ``zernike_radius_mm``
        (display frame), e.g. coma and trefoil irregularity.
    cone : Cone, optional
    level : bool
        Re-aim the instrument so that the surface normal at the vertex is the optical axis
        (removes the tilt a decentred cone adds at the origin), as a Placido topographer does
        by centring on the corneal reflex.
    """

    eye: str = "OD"
    r_flat_mm: float = 7.8
    r_steep_mm: float = 7.8
    steep_axis_deg: float = 90.0
    asphericity: float = -0.2
    zernike_mm: tuple[float, ...] = field(default_factory=tuple)
    zernike_radius_mm: float = 5.0
    cone: Cone | None = None
    level: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "eye", _check_eye(self.eye))
        object.__setattr__(self, "zernike_mm", tuple(float(c) for c in self.zernike_mm))
        for name in ("r_flat_mm", "r_steep_mm", "asphericity", "steep_axis_deg"):
            if not np.isfinite(getattr(self, name)):
                raise ValueError(f"{name} must be finite, got {getattr(self, name)!r}")
        if not 0 < self.r_steep_mm <= self.r_flat_mm:
            raise ValueError(
                f"need 0 < r_steep_mm <= r_flat_mm, got {self.r_steep_mm!r}, {self.r_flat_mm!r}"
            )

    def _raw_sag(self, x, y) -> np.ndarray:
        z = biconic_sag(
            x,
            y,
            r_steep_mm=self.r_steep_mm,
            r_flat_mm=self.r_flat_mm,
            steep_axis_deg=self.steep_axis_deg,
            asphericity=self.asphericity,
        )
        if self.zernike_mm:
            z = z + self._irregularity.sag(x, y)
        if self.cone is not None and self.cone.amplitude_mm > 0:
            z = z - self.cone.height(x, y, self.eye)
        return z

    @cached_property
    def _irregularity(self) -> ZernikeFit:
        coefs = np.asarray(self.zernike_mm, dtype=float)
        degree = 0
        while n_terms(degree) < coefs.size:
            degree += 1
        full = np.zeros(n_terms(degree))
        full[: coefs.size] = coefs
        return ZernikeFit(coefficients=full, degree=degree, radius=self.zernike_radius_mm)

    @cached_property
    def _level_plane(self) -> tuple[float, float, float]:
        # Sag and slope of the raw surface at the vertex, by central differences.
        h = 1e-4
        pts = self._raw_sag(np.array([0.0, h, -h, 0.0, 0.0]), np.array([0.0, 0.0, 0.0, h, -h]))
        return float(pts[0]), float((pts[1] - pts[2]) / (2 * h)), float((pts[3] - pts[4]) / (2 * h))

    def sag(self, x, y) -> np.ndarray:
        """Elevation (mm, positive into the eye) at points (mm); NaN beyond the surface."""
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        z = self._raw_sag(x, y)
        if self.level:
            z0, gx, gy = self._level_plane
            z = z - z0 - gx * x - gy * y
        return z

    def mirrored(self) -> CorneaModel:
        """The mirror-symmetric fellow eye (enantiomorphism): x → −x, OD ↔ OS."""
        return replace(
            self,
            eye="OS" if self.eye == "OD" else "OD",
            steep_axis_deg=(180.0 - self.steep_axis_deg) % 180.0,
            zernike_mm=tuple(mirror_x(np.asarray(self.zernike_mm))) if self.zernike_mm else (),
        )

    def elevation_grid(self, size: int, mm_per_px: float) -> np.ndarray:
        """Sag sampled on the display grid (see :func:`grid_xy`)."""
        x, y = grid_xy(size, mm_per_px)
        return self.sag(x, y)


def curvature_from_derivatives(
    x: np.ndarray,
    y: np.ndarray,
    zx: np.ndarray,
    zy: np.ndarray,
    zxx: np.ndarray,
    zxy: np.ndarray,
    zyy: np.ndarray,
    *,
    vertex_radius_mm: float = 1e-9,
) -> tuple[np.ndarray, np.ndarray]:
    """Axial and tangential power (D) from surface derivatives at points (x, y).

    Points closer than ``vertex_radius_mm`` to the vertex take the limit value
    ``337.5 · (z_xx + z_yy) / 2``.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    s = np.hypot(x, y)
    at_vertex = s <= vertex_radius_mm
    s_safe = np.where(at_vertex, 1.0, s)
    cx, cy = x / s_safe, y / s_safe
    z_s = cx * zx + cy * zy
    z_ss = cx * cx * zxx + 2.0 * cx * cy * zxy + cy * cy * zyy
    with np.errstate(invalid="ignore", divide="ignore"):
        axial = KERATOMETRIC_CONSTANT * z_s / (s_safe * np.sqrt(1.0 + z_s**2))
        tangential = KERATOMETRIC_CONSTANT * z_ss / (1.0 + z_s**2) ** 1.5
    apex = KERATOMETRIC_CONSTANT * 0.5 * (zxx + zyy)
    axial = np.where(at_vertex, apex, axial)
    tangential = np.where(at_vertex, apex, tangential)
    return axial, tangential


def curvature_maps(
    z_mm: np.ndarray,
    *,
    mm_per_px: float,
    valid_radius_mm: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Axial and tangential power maps (D, float32) from an elevation grid.

    Derivatives are second-order central differences on the grid (accurate to well under
    0.01 D on a normal cornea sampled at ≤ 0.1 mm); NaN elevation (outside the measured
    zone) propagates one or two pixels into the maps. Points outside ``valid_radius_mm`` are
    set to NaN.

    Parameters
    ----------
    z_mm : ndarray (N, N)
        Elevation on the display grid (:func:`grid_xy`), mm, positive into the eye.
    mm_per_px : float
    valid_radius_mm : float, optional

    Returns
    -------
    axial_d, tangential_d : ndarray (N, N) float32
    """
    z = np.asarray(z_mm, dtype=float)
    if z.ndim != 2 or z.shape[0] != z.shape[1] or z.shape[0] < 5:
        raise ValueError(f"elevation must be a square 2-D grid of at least 5×5, got {z.shape}")
    if not np.isfinite(z).any():
        raise ValueError("elevation grid is all NaN")
    x, y = grid_xy(z.shape[0], mm_per_px)
    h = float(mm_per_px)
    # Columns run along +x; rows run along −y (row 0 superior).
    dz_drow, dz_dcol = np.gradient(z, h)
    zx, zy = dz_dcol, -dz_drow
    zxx = np.full_like(z, np.nan)
    zyy = np.full_like(z, np.nan)
    zxx[:, 1:-1] = (z[:, 2:] - 2 * z[:, 1:-1] + z[:, :-2]) / h**2
    zyy[1:-1, :] = (z[2:, :] - 2 * z[1:-1, :] + z[:-2, :]) / h**2
    zxy = np.full_like(z, np.nan)
    zxy[1:-1, 1:-1] = (z[:-2, 2:] - z[:-2, :-2] - z[2:, 2:] + z[2:, :-2]) / (4 * h**2)
    axial, tangential = curvature_from_derivatives(
        x, y, zx, zy, zxx, zxy, zyy, vertex_radius_mm=0.5 * h
    )
    if valid_radius_mm is not None:
        outside = np.hypot(x, y) > valid_radius_mm
        axial[outside] = np.nan
        tangential[outside] = np.nan
    return axial.astype(np.float32), tangential.astype(np.float32)


def maps_from_zernike(
    fit: ZernikeFit,
    *,
    size: int,
    mm_per_px: float,
    valid_mask: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Axial and tangential maps (D, float32) of a fitted Zernike surface on the display grid.

    Only points in ``valid_mask`` are evaluated (default: within the fit radius); the rest
    are NaN.
    """
    x, y = grid_xy(size, mm_per_px)
    if valid_mask is None:
        valid_mask = np.hypot(x, y) <= fit.radius
    valid_mask = np.asarray(valid_mask, dtype=bool)
    if valid_mask.shape != x.shape:
        raise ValueError(f"valid_mask shape {valid_mask.shape} != grid shape {x.shape}")
    axial = np.full(x.shape, np.nan, dtype=np.float32)
    tangential = np.full(x.shape, np.nan, dtype=np.float32)
    if not valid_mask.any():
        return axial, tangential
    xs, ys = x[valid_mask], y[valid_mask]
    _, zx, zy, zxx, zxy, zyy = fit.derivatives(xs, ys)
    ax, tg = curvature_from_derivatives(
        xs, ys, zx, zy, zxx, zxy, zyy, vertex_radius_mm=0.5 * mm_per_px
    )
    axial[valid_mask] = ax
    tangential[valid_mask] = tg
    return axial, tangential
