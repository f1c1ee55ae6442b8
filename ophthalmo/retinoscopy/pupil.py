"""The pupil in the rectified eye opening: centre and radius per frame, robust over a video.

The pupil is dark when the reflex is off and bright red when it is lit, and the lit band
sweeps across it during every pass. Over a stretch of frames the *union* of the lit red
areas (lit in at least two frames) is therefore the pupil disc, while glints (white), the lit iris and sclera (not red)
and the skin (weakly red) are suppressed by measuring redness ``R − 1.25·max(G, B)``. A disc is
fitted in each stretch of frames (area-equivalent radius and centroid of the closed
bright region), stretches whose disc disagrees with the median are rejected, and the
remaining fits are interpolated to every frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ophthalmo.retinoscopy.rectify import PlaneROI

__all__ = ["PupilTrack", "detect_pupil", "find_pupil_disc", "redness", "redness_rg"]


@dataclass(frozen=True)
class PupilTrack:
    """Pupil centre ``(x, y)`` mm (world, pupil plane) and radius mm for every frame."""

    center_mm: np.ndarray
    radius_mm: np.ndarray
    center_median_mm: tuple[float, float]
    radius_median_mm: float
    n_fits: int
    n_rejected: int


def redness(bgr: np.ndarray, *, factor: float = 1.25) -> np.ndarray:
    """``R − factor·max(G, B)`` clipped to uint8 (any leading shape ``(..., 3)``).

    The fundus reflex is orange-red (red well above green); skin and a lit iris are only
    slightly red and the glint and sclera are white, so a factor above 1 leaves the reflex.
    """
    b = bgr[..., 0].astype(np.float32)
    g = bgr[..., 1].astype(np.float32)
    r = bgr[..., 2].astype(np.float32)
    return np.clip(r - factor * np.maximum(g, b), 0, 255).astype(np.uint8)


def redness_rg(red: np.ndarray, green: np.ndarray, *, factor: float = 1.25) -> np.ndarray:
    """``R − factor·G`` clipped to uint8 from separate red and green arrays (any shape).

    Blue is left out: in the fundus, the iris and skin blue is below green, so
    ``max(G, B) = G`` wherever it matters.
    """
    r = np.asarray(red, dtype=np.uint8).astype(np.int16)
    g = np.asarray(green, dtype=np.uint8).astype(np.int16)
    k = int(round(64 * factor))  # fixed point: (64·R − k·G) / 64
    return np.clip((r * 64 - g * k) >> 6, 0, 255).astype(np.uint8)


def find_pupil_disc(
    image: np.ndarray,
    roi: PlaneROI,
    *,
    min_radius_mm: float = 0.75,
    max_radius_mm: float = 5.0,
    min_contrast: float = 10.0,
) -> tuple[float, float, float] | None:
    """The most disc-like bright blob in a redness image: ``(x_mm, y_mm, radius_mm)``.

    ``None`` when nothing bright, round and of a plausible pupil size is present.
    """
    import cv2

    img = cv2.medianBlur(np.asarray(image, dtype=np.uint8), 3).astype(np.float32)
    bg = float(np.median(img))
    top = float(np.percentile(img, 99.5))
    if top - bg < min_contrast:
        return None
    binary = (img > 0.5 * (bg + top)).astype(np.uint8)
    # Close the gaps the moving band leaves between frames.
    k = max(3, int(round(0.6 * roi.px_per_mm_x)) | 1)
    binary = cv2.morphologyEx(binary, cv2.MORPH_CLOSE, np.ones((k, k), np.uint8))
    n, labels, stats, cents = cv2.connectedComponentsWithStats(binary, connectivity=8)
    ppm = roi.px_per_mm_x
    a_min, a_max = np.pi * (min_radius_mm * ppm) ** 2, np.pi * (max_radius_mm * ppm) ** 2
    rows, cols = img.shape
    best, best_score = None, -np.inf
    for k in range(1, n):
        x, y, w, h, area = stats[k]
        if not a_min <= area <= a_max or min(w, h) < 3:
            continue
        aspect = w / h
        fill = area / float(w * h)
        if not (0.7 < aspect < 1.43 and 0.6 < fill < 0.95):
            continue
        off = np.hypot(cents[k][0] - cols / 2.0, cents[k][1] - rows / 2.0) / max(rows, cols)
        score = np.log(area) - 4.0 * off - 4.0 * abs(fill - np.pi / 4.0)
        if score > best_score:
            best, best_score = k, score
    if best is None:
        return None
    area = float(stats[best][4])
    cx, cy = cents[best]
    return float(roi.x_mm(cx)), float(roi.y_mm(cy)), float(np.sqrt(area / np.pi) / ppm)


def detect_pupil(
    red_stack: np.ndarray,
    roi: PlaneROI,
    *,
    chunk: int = 30,
    min_radius_mm: float = 0.75,
    max_radius_mm: float = 5.0,
    max_deviation_mm: float = 0.5,
) -> PupilTrack | None:
    """Pupil per frame from a stack of rectified redness images, shape (frames, rows, cols).

    The whole video gives a reference disc; stretches of ``chunk`` frames give local fits,
    which are kept when within ``max_deviation_mm`` of the reference (centre and radius).
    ``None`` when no disc is found in the whole video.
    """
    stack = np.asarray(red_stack)
    if stack.ndim != 3 or stack.shape[0] == 0:
        raise ValueError(f"redness stack must have shape (frames, rows, cols), got {stack.shape}")
    t = stack.shape[0]

    def union(s: np.ndarray) -> np.ndarray:
        # Every pixel the reflex lit in at least two frames: the second-largest value per
        # pixel ignores single-frame noise spikes, which the plain maximum would collect.
        k = min(2, s.shape[0])
        return np.partition(s, s.shape[0] - k, axis=0)[s.shape[0] - k]

    kw = {"min_radius_mm": min_radius_mm, "max_radius_mm": max_radius_mm}
    ref = find_pupil_disc(union(stack), roi, **kw)
    if ref is None:
        return None
    fits, mids = [], []
    for start in range(0, t, chunk):
        part = stack[start : start + chunk]
        if part.shape[0] < max(3, chunk // 3):
            continue
        fit = find_pupil_disc(union(part), roi, **kw)
        if fit is not None:
            fits.append(fit)
            mids.append(start + 0.5 * part.shape[0])
    fits_a = np.array(fits).reshape(-1, 3)
    good = (
        np.all(np.abs(fits_a - np.array(ref)) <= max_deviation_mm, axis=1)
        if fits
        else np.zeros(0, bool)
    )
    frames = np.arange(t, dtype=float)
    if good.sum() >= 2:
        kept, at = fits_a[good], np.array(mids)[good]
        per = np.column_stack([np.interp(frames, at, kept[:, k]) for k in range(3)])
    else:
        per = np.tile(np.array(ref), (t, 1))
    med = np.median(per, axis=0)
    return PupilTrack(
        center_mm=per[:, :2],
        radius_mm=per[:, 2],
        center_median_mm=(float(med[0]), float(med[1])),
        radius_median_mm=float(med[2]),
        n_fits=len(fits),
        n_rejected=int(len(fits) - good.sum()),
    )
