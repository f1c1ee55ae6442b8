"""Calibrate the source distance u (and optionally a distance scale) from videos of known power.

The measured sweep ratio ``r`` of a video does not depend on u, so u can be fitted after the
fact: with the marker distance ``d`` scaled by ``s`` (a scale error of the camera intrinsics
or of the print), the model is ``K = −1/(s·d) + u / (r·s·d·(u + s·d))`` (and ``K = −1/(s·d)``
for a neutral video). Robust least squares (Cauchy loss) over the gradable videos gives u
(and s); the result is a small JSON that ``healthsense retino estimate --calibration`` reads.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ophthalmo.retinoscopy import optics

__all__ = ["Calibration", "fit_calibration", "model_power", "write_calibration"]


@dataclass(frozen=True)
class Calibration:
    """Fitted instrument constants and how well they explain the calibration videos."""

    source_distance_m: float
    distance_scale: float
    n_videos: int
    rms_residual_d: float
    mae_before_d: float
    mae_after_d: float
    fit_scale: bool
    residuals_d: tuple[float, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def model_power(
    ratio: np.ndarray,
    distance_m: np.ndarray,
    *,
    source_distance_m: float,
    distance_scale: float = 1.0,
) -> np.ndarray:
    """K from measured ratios and distances for given u and distance scale (inf ratio: neutral)."""
    r = np.asarray(ratio, dtype=float)
    d = np.asarray(distance_m, dtype=float) * distance_scale
    u = source_distance_m
    with np.errstate(divide="ignore", invalid="ignore"):
        k = -1.0 / d + np.where(np.isinf(r), 0.0, u / (r * d * (u + d)))
    return k


def fit_calibration(
    ratio: np.ndarray,
    distance_m: np.ndarray,
    true_power_d: np.ndarray,
    *,
    fit_scale: bool = False,
    initial_source_distance_m: float = optics.DEFAULT_SOURCE_DISTANCE_M,
    f_scale_d: float = 0.5,
) -> Calibration:
    """Least-squares u (and s) from per-video ratios, distances and reference powers.

    Raises ValueError with fewer than 2 usable videos (3 when fitting the scale too) or
    when no video has a finite ratio (neutral videos do not constrain u).
    """
    from scipy.optimize import least_squares

    r = np.asarray(ratio, dtype=float)
    d = np.asarray(distance_m, dtype=float)
    k = np.asarray(true_power_d, dtype=float)
    if not (r.shape == d.shape == k.shape and r.ndim == 1):
        raise ValueError("ratio, distance_m and true_power_d must be 1-D arrays of equal length")
    use = ~np.isnan(r) & (r != 0) & np.isfinite(d) & (d > 0) & np.isfinite(k)
    need = 3 if fit_scale else 2
    if use.sum() < need:
        raise ValueError(f"calibration needs at least {need} gradable videos, got {int(use.sum())}")
    if not np.isfinite(r[use]).any():
        raise ValueError("calibration needs videos with a measured ratio (not only neutral ones)")
    r, d, k = r[use], d[use], k[use]

    def resid(p: np.ndarray) -> np.ndarray:
        s = p[1] if fit_scale else 1.0
        return model_power(r, d, source_distance_m=p[0], distance_scale=s) - k

    x0 = [initial_source_distance_m] + ([1.0] if fit_scale else [])
    lo = [0.05] + ([0.5] if fit_scale else [])
    hi = [5.0] + ([2.0] if fit_scale else [])
    sol = least_squares(resid, x0, bounds=(lo, hi), loss="cauchy", f_scale=f_scale_d)
    u = float(sol.x[0])
    s = float(sol.x[1]) if fit_scale else 1.0
    res_after = resid(sol.x)
    res_before = model_power(r, d, source_distance_m=initial_source_distance_m) - k
    return Calibration(
        source_distance_m=u,
        distance_scale=s,
        n_videos=int(use.sum()),
        rms_residual_d=float(math.sqrt(np.mean(res_after**2))),
        mae_before_d=float(np.mean(np.abs(res_before))),
        mae_after_d=float(np.mean(np.abs(res_after))),
        fit_scale=bool(fit_scale),
        residuals_d=tuple(float(v) for v in res_after),
    )


def write_calibration(path: str | Path, calibration: Calibration) -> Path:
    """Write the calibration JSON (atomically) that ``estimate --calibration`` accepts."""
    from healthsense.report import write_json

    return write_json(path, calibration.to_dict())
