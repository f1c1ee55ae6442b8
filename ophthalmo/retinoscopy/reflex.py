"""Edges of the reflex band inside the pupil, per frame, sub-pixel, in pupil-plane mm.

Several rows across the pupil (each the mean of a few pixel rows) are profiled along the
sweep axis within the pupil chord, away from the rim; the band's rising and falling
half-level edges are found in all rows of all frames at once (:func:`band_edges`) and the
median over rows is the frame's edge. The signal is linear red minus linear green: the
reflex is red, while the beam's own light on the grey pupil, iris and lids is not, so the
band stands on a flat dark level even when the beam edge crosses the pupil. The corneal glint, a small white spot, is masked
out: samples where blue/green are nearly as bright as red are ignored and an edge that
touches one is dropped. A pupil lit all over with no edge is *filled* (neutral appearance).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ophthalmo.retinoscopy.edges import band_edges, row_percentile
from ophthalmo.retinoscopy.pupil import PupilTrack
from ophthalmo.retinoscopy.rectify import PlaneROI

__all__ = ["ReflexTrack", "glint_mask", "glint_mask_rg", "reflex_edges"]


@dataclass(frozen=True)
class ReflexTrack:
    """Per-frame reflex measurements (positions in mm along the sweep axis, world).

    Attributes
    ----------
    rising_mm, falling_mm : the band's lower and upper edges (NaN when not visible).
    lit_fraction : share of the central pupil brighter than the half level.
    filled : pupil lit all over with no edge in view.
    contrast : reflex brightness above the dark pupil (luma units) per frame.
    """

    rising_mm: np.ndarray
    falling_mm: np.ndarray
    lit_fraction: np.ndarray
    filled: np.ndarray
    contrast: np.ndarray
    dark_level: float
    bright_level: float


def glint_mask(
    bgr: np.ndarray,
    *,
    ratio: float = 0.5,
    min_green: float = 0.12,
    grow_px: int = 3,
    gamma: float = 2.0,
) -> np.ndarray:
    """White, bright pixels (corneal glint, specular highlights), grown by ``grow_px``.

    In linear light the fundus reflex has green well below half its red; a glint (the
    source's white image) has green close to red. The mask is grown because the codec's
    subsampled colour smears the glint into its neighbours.
    """
    import cv2

    lut = (np.arange(256, dtype=np.float32) / 255.0) ** float(gamma)
    g = lut[bgr[..., 1]]
    r = lut[bgr[..., 2]]
    white = (g > ratio * r) & (g > min_green)
    k = 2 * int(grow_px) + 1
    return cv2.dilate(white.astype(np.uint8), np.ones((k, k), np.uint8)).astype(bool)


def glint_mask_rg(
    red: np.ndarray,
    green: np.ndarray,
    *,
    ratio: float = 0.5,
    min_green: float = 0.12,
    grow_px: int = 3,
    gamma: float = 2.0,
) -> np.ndarray:
    """:func:`glint_mask` for stacks of red and green images ``(..., rows, cols)`` at once.

    The linear-light tests become integer comparisons of the encoded values, and the
    growing is a separable running maximum along rows and columns.
    """
    r = np.asarray(red, dtype=np.uint8).astype(np.uint16)
    g8 = np.asarray(green, dtype=np.uint8)
    # g_lin > ratio·r_lin  ⇔  g > ratio^(1/γ)·r for encoded values (16-bit fixed point).
    k = int(round(256 * ratio ** (1.0 / gamma)))
    white = (g8.astype(np.uint16) * 256 > k * r) & (g8 > 255.0 * min_green ** (1.0 / gamma))
    out = white.copy()
    for axis in (-1, -2):
        grown = out.copy()
        n = out.shape[axis]
        for shift in range(1, int(grow_px) + 1):
            if shift >= n:
                break
            lead = [slice(None)] * out.ndim
            lag = [slice(None)] * out.ndim
            lead[axis], lag[axis] = slice(shift, None), slice(None, -shift)
            grown[tuple(lag)] |= out[tuple(lead)]
            grown[tuple(lead)] |= out[tuple(lag)]
        out = grown
    return out


def reflex_edges(
    red: np.ndarray,
    green: np.ndarray,
    glint: np.ndarray,
    roi: PlaneROI,
    pupil: PupilTrack,
    *,
    axis: int = 0,
    n_rows: int = 5,
    row_span: float = 0.5,
    chord_margin: float = 0.93,
    min_contrast: float = 0.02,
    min_rows: int = 3,
    gamma: float = 2.0,
) -> ReflexTrack:
    """Reflex edges for every frame of a rectified eye stack (frames, rows, cols).

    ``axis`` is the sweep axis in world coordinates (0: x, columns; 1: y, rows); the
    profiles run along it. Rows sit at ``±row_span·ρ`` around the pupil centre; profiles
    stop at ``chord_margin`` of the half chord so that the dark iris is never mistaken for
    the dark part of the pupil. Colours are linearised with ``gamma`` first (video is
    gamma-encoded; the half-maximum edge is defined on light, not on code values), so
    ``min_contrast`` and the levels are in linear units (0–1).
    """
    lum = np.asarray(red)
    grn = np.asarray(green)
    gl = np.asarray(glint, dtype=bool)
    if lum.ndim != 3 or gl.shape != lum.shape or grn.shape != lum.shape:
        raise ValueError(
            f"red, green and glint stacks must share shape (frames, rows, cols), got "
            f"{lum.shape}, {grn.shape} and {gl.shape}"
        )
    t = lum.shape[0]
    if pupil.center_mm.shape != (t, 2):
        raise ValueError("the pupil track does not match the number of frames")
    if axis == 1:  # profile along y: exchange the image axes and the pupil coordinates
        lum = lum.transpose(0, 2, 1)
        grn = grn.transpose(0, 2, 1)
        gl = gl.transpose(0, 2, 1)
        along_mm, across_of = roi.y_mm, roi.col_of
        ppm = roi.px_per_mm_y
        c_along, c_across = pupil.center_mm[:, 1], pupil.center_mm[:, 0]
    else:
        along_mm, across_of = roi.x_mm, roi.row_of
        ppm = roi.px_per_mm_x
        c_along, c_across = pupil.center_mm[:, 0], pupil.center_mm[:, 1]
    rho = pupil.radius_mm
    n_img_rows, n_cols = lum.shape[1], lum.shape[2]
    frac = np.linspace(-row_span, row_span, n_rows)
    half = max(1, int(round(0.08 * float(np.median(rho)) * ppm)))  # rows averaged per profile
    offsets = np.arange(-half, half + 1)

    dy = frac[None, :] * rho[:, None]  # (t, n_rows) mm
    centre_rows = np.rint(across_of(c_across[:, None] + dy)).astype(int)
    rows_idx = np.clip(centre_rows[..., None] + offsets, 0, n_img_rows - 1)  # (t, n_rows, k)
    fi = np.arange(t)[:, None, None]
    lut = ((np.arange(256, dtype=np.float32) / 255.0) ** float(gamma)).astype(np.float32)
    # Linear red minus linear green: the reflex (red ≫ green) stays, while the beam's grey
    # light on the pupil, iris and lids (red ≈ green) cancels, so the dark level is flat.
    band = lut[lum[fi, rows_idx]] - lut[grn[fi, rows_idx]]  # (t, n_rows, k, cols)
    gband = gl[fi, rows_idx].any(axis=2)  # (t, n_rows, cols)
    prof = band.mean(axis=2)

    cols_mm = np.asarray(along_mm(np.arange(n_cols)))
    chord = chord_margin * np.sqrt(np.clip(rho[:, None] ** 2 - dy**2, 0.0, None))  # (t, rows)
    inside = np.abs(cols_mm[None, None, :] - c_along[:, None, None]) <= chord[..., None]
    prof = np.where(inside & ~gband, prof, np.nan)

    # Video-level dark and bright pupil levels (a filled frame has no dark sample of its own).
    samples = prof[np.isfinite(prof)]
    if samples.size == 0:
        nan = np.full(t, np.nan)
        return ReflexTrack(nan, nan.copy(), np.zeros(t), np.zeros(t, bool), nan.copy(), 0.0, 0.0)
    dark = float(np.percentile(samples, 5))
    bright = float(np.percentile(samples, 99))
    contrast_min = max(min_contrast, 0.15 * (bright - dark))
    # Light smoothing along the profile: the band's peak is then not inflated by noise
    # (which would raise the half level and narrow the band).
    sm = prof.copy()
    inner = np.isfinite(prof[..., :-2]) & np.isfinite(prof[..., 2:])
    mid3 = 0.25 * prof[..., :-2] + 0.5 * prof[..., 1:-1] + 0.25 * prof[..., 2:]
    sm[..., 1:-1] = np.where(inner, mid3, prof[..., 1:-1])
    flat = sm.reshape(t * n_rows, n_cols)
    rise, fall, _ = band_edges(flat, min_contrast=contrast_min)
    # An edge needs the dark pupil in view: the profile's own dark end must be near the
    # video's dark level (a filled pupil with a little shading has no edge).
    lo_p = row_percentile(flat, 2)
    with np.errstate(all="ignore"):
        hi_p = np.max(np.where(np.isfinite(flat), flat, -np.inf), axis=1)
    dark_ok = ((hi_p - lo_p) >= 0.6 * (hi_p - dark)) & ((hi_p - dark) >= contrast_min)
    rise = np.where(dark_ok, rise, np.nan)
    fall = np.where(dark_ok, fall, np.nan)
    rise = along_mm(rise).reshape(t, n_rows) if rise.size else rise
    fall = along_mm(fall).reshape(t, n_rows) if fall.size else fall

    def combine(edges: np.ndarray) -> np.ndarray:
        count = np.isfinite(edges).sum(axis=1)
        out = np.full(t, np.nan)
        ok = count >= min(min_rows, n_rows)
        if ok.any():
            out[ok] = np.nanmedian(edges[ok], axis=1)
        return out

    with np.errstate(all="ignore"):
        peak = np.nanmax(np.where(np.isfinite(prof), prof, -np.inf), axis=2)  # (t, rows)
        contrast = np.median(peak, axis=1) - dark
        mid = 0.5 * (dark + bright)
        n_in = np.isfinite(prof).sum(axis=(1, 2))
        lit = np.where(n_in > 0, (prof > mid).sum(axis=(1, 2)) / np.maximum(n_in, 1), 0.0)
    rising, falling = combine(rise), combine(fall)
    filled = (lit > 0.95) & ~np.isfinite(rising) & ~np.isfinite(falling)
    return ReflexTrack(rising, falling, lit, filled, contrast, dark, bright)
