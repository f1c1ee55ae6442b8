"""The streak on the paper frame: its band edges in the beam strips, sub-pixel, in mm.

A vertical streak swept horizontally (axis 0) is measured in the plain white strips above
and below the eye opening given by the frame specification; their mean is the beam at the
height of the pupil even when the streak is tilted. A horizontal streak swept vertically
(axis 1) is measured in the plain card beside the opening, between the opening and the
markers (derived from the same specification).
"""

from __future__ import annotations

import warnings

import numpy as np

from ophthalmo.retinoscopy.edges import band_edges
from ophthalmo.retinoscopy.frame import FRAME_V1, FrameSpec
from ophthalmo.retinoscopy.rectify import PlaneROI

__all__ = ["beam_positions", "beam_profiles", "beam_strip_rois"]


def beam_strip_rois(
    spec: FrameSpec = FRAME_V1, *, axis: int = 0, px_per_mm: float = 10.0
) -> list[PlaneROI]:
    """The strips where the beam is measured, on the paper plane (z = 0).

    Sampled finely along the sweep axis and coarsely across it (profiles are averaged
    across anyway).
    """
    if axis == 0:
        return [
            PlaneROI(x0, y0, x1, y1, 0.0, px_per_mm, 2.0) for x0, y0, x1, y1 in spec.beam_strips_mm
        ]
    if axis != 1:
        raise ValueError(f"sweep axis must be 0 or 1, got {axis}")
    # Beside the opening: from 1 mm outside it to 1 mm short of the panel edge, and between
    # the inner edges of the markers above and below (the card is plain white there).
    ox, oy = spec.opening_half_mm
    px, _ = spec.panel_half_mm
    half = spec.marker_side_mm / 2.0
    y_clear = min(abs(cy) - half for _, cy in spec.marker_centers_mm) - 0.5
    return [
        PlaneROI(x0, -y_clear, x1, y_clear, 0.0, 2.0, px_per_mm)
        for x0, x1 in ((-px + 1.0, -ox - 1.0), (ox + 1.0, px - 1.0))
    ]


def beam_profiles(strips: list[np.ndarray], *, axis: int = 0) -> np.ndarray:
    """Mean profile of each warped grey strip along the sweep axis: shape (n_strips, m)."""
    if axis == 0:
        return np.stack([s.astype(np.float32).mean(axis=0) for s in strips])
    return np.stack([s.astype(np.float32).mean(axis=1) for s in strips])


def beam_positions(
    profiles: np.ndarray, rois: list[PlaneROI], *, axis: int = 0, min_contrast: float = 12.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Beam edges and centre (paper-plane mm) from profiles of shape (frames, strips, m).

    Returns ``(lower_edge, upper_edge, centre)``, each of shape (frames,): the edges are
    the mean over strips where the strip shows both edges; the centre is their midpoint.
    NaN where no strip shows the whole band.
    """
    prof = np.asarray(profiles, dtype=np.float64)
    if prof.ndim != 3 or prof.shape[1] != len(rois):
        raise ValueError(f"profiles must have shape (frames, {len(rois)}, m), got {prof.shape}")
    t, s, m = prof.shape
    rise, fall, _ = band_edges(prof.reshape(t * s, m), min_contrast=min_contrast)
    rise, fall = rise.reshape(t, s), fall.reshape(t, s)
    lo = np.full((t, s), np.nan)
    hi = np.full((t, s), np.nan)
    for k, roi in enumerate(rois):
        to_mm = roi.x_mm if axis == 0 else roi.y_mm
        lo[:, k] = to_mm(rise[:, k])
        hi[:, k] = to_mm(fall[:, k])
    both = np.isfinite(lo) & np.isfinite(hi)
    lo = np.where(both, lo, np.nan)
    hi = np.where(both, hi, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        lower = np.nanmean(lo, axis=1)
        upper = np.nanmean(hi, axis=1)
    return lower, upper, 0.5 * (lower + upper)
