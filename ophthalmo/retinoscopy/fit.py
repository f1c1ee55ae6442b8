"""Stage 5 of the video pipeline: passes, and the slope of reflex edge against beam.

For a rigid instrument each reflex edge obeys ``edge = c₀ + r·x_B`` over the whole video
(``docs/retinoscopy.md`` §1); the slope r is estimated robustly with a pooled Theil–Sen
estimator (pairwise slopes within each edge), over all passes and per pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ophthalmo.retinoscopy import optics
from ophthalmo.retinoscopy.measure import DEFAULT_CONFIG, EstimateConfig, VideoMeasurements

__all__ = ["PassFit", "fit_passes", "pooled_theil_sen", "segment_passes"]


@dataclass(frozen=True)
class PassFit:
    """Slope of one edge in one pass: ``ratio = Δedge/Δbeam`` (pupil plane)."""

    pass_index: int
    edge: str  # the edges pooled: "rising", "falling" or "rising+falling"
    direction: int
    n_points: int
    ratio: float
    intercept: float
    power_d: float
    distance_m: float


def segment_passes(
    beam_mm: np.ndarray, *, min_travel_mm: float = 4.0, smooth: int = 3
) -> np.ndarray:
    """Label each frame with its pass (0, 1, …) or −1: runs of one direction of beam travel.

    Gaps of a few frames are bridged by interpolation; the direction is the sign of the
    smoothed velocity; a run counts as a pass when the beam travels at least
    ``min_travel_mm`` in it.
    """
    x = np.asarray(beam_mm, dtype=float)
    n = x.size
    labels = np.full(n, -1)
    ok = np.isfinite(x)
    if ok.sum() < 3:
        return labels
    idx = np.arange(n)
    xi = np.interp(idx, idx[ok], x[ok])
    k = max(1, int(smooth))
    xs = np.convolve(np.pad(xi, k, mode="edge"), np.ones(2 * k + 1) / (2 * k + 1), "valid")
    v = np.gradient(xs)
    scale = np.nanmax(np.abs(v)) if np.any(v) else 0.0
    moving = np.abs(v) > 0.15 * scale
    sign = np.where(moving, np.sign(v), 0).astype(int)
    current, start = 0, 0
    pass_no = 0
    for i in range(n + 1):
        s = sign[i] if i < n else 0
        if s != current:
            if current != 0:
                travel = abs(xi[i - 1] - xi[start])
                if travel >= min_travel_mm:
                    labels[start:i] = pass_no
                    pass_no += 1
            current, start = s, i
    labels[~ok] = -1
    return labels


def pooled_theil_sen(
    x: np.ndarray, y: np.ndarray, groups: np.ndarray, *, min_dx: float = 0.0
) -> float:
    """Median of the pairwise slopes ``Δy/Δx`` taken only within each group.

    Theil–Sen with a separate intercept per group (here: per edge): robust to outliers, and
    every edge track contributes although each is only a few frames long. Pairs closer than
    ``min_dx`` in x carry little slope information and are left out.
    """
    slopes = []
    for g in np.unique(groups):
        sel = groups == g
        xs, ys = x[sel], y[sel]
        if xs.size < 2:
            continue
        i, j = np.triu_indices(xs.size, k=1)
        dx = xs[j] - xs[i]
        keep = np.abs(dx) > max(min_dx, 1e-9)
        slopes.append((ys[j] - ys[i])[keep] / dx[keep])
    if not slopes:
        return float("nan")
    allv = np.concatenate(slopes)
    return float(np.median(allv)) if allv.size else float("nan")


def _edge_points(m: VideoMeasurements, sel: np.ndarray):
    """Beam positions, edge positions and edge labels (0 rising, 1 falling) of frames ``sel``."""
    xs, ys, gs, names = [], [], [], []
    beam = m.beam_pupil_mm
    for g, (edge, values) in enumerate(
        (("rising", m.reflex.rising_mm), ("falling", m.reflex.falling_mm))
    ):
        ok = sel & np.isfinite(values) & np.isfinite(beam)
        if ok.sum() < 2:
            continue
        xs.append(beam[ok])
        ys.append(values[ok])
        gs.append(np.full(int(ok.sum()), g))
        names.append(edge)
    if not xs:
        return np.zeros(0), np.zeros(0), np.zeros(0, int), []
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(gs), names


def fit_passes(m: VideoMeasurements, config: EstimateConfig = DEFAULT_CONFIG) -> list[PassFit]:
    """Slopes of the reflex edges against the beam (pupil plane), pooled Theil–Sen.

    For a rigid instrument each edge obeys ``edge = c₀ + r·x_B`` over the whole video
    (``docs/retinoscopy.md`` §1), so the first fit (``pass_index = −1``) pools all frames,
    one intercept per edge. Fast-moving reflexes (near neutrality, "against" motion at
    30 fps) leave only a couple of frames per pass, which this still uses. Then one fit per
    pass where the pass alone has enough points: their spread measures consistency.
    """
    if m.reflex is None:
        return []
    labels = segment_passes(m.beam_pupil_mm, min_travel_mm=config.min_pass_travel_mm)
    u = config.source_distance_m
    fits = []
    beam = m.beam_pupil_mm
    edges_any = np.isfinite(m.reflex.rising_mm) | np.isfinite(m.reflex.falling_mm)

    def fit(sel: np.ndarray, index: int, direction: int, min_points: int) -> PassFit | None:
        x, y, g, names = _edge_points(m, sel)
        if x.size < min_points or np.ptp(x) < 0.5:
            return None
        slope = pooled_theil_sen(x, y, g, min_dx=0.3)
        if not np.isfinite(slope) or slope == 0:
            return None
        d_m = float(np.nanmedian(m.distance_mm[sel & edges_any])) / 1000.0
        k = float(optics.power_from_ratio(slope, working_distance_m=d_m, source_distance_m=u))
        return PassFit(index, "+".join(names), direction, int(x.size), slope, float("nan"), k, d_m)

    # The whole video needs fewer points: a fast reflex (high myopia seen at 30 fps) may
    # leave only a pair of frames per edge, and its direction still separates it from a
    # neutral pupil.
    whole = fit(labels >= 0, -1, 0, config.min_video_points)
    edge_passes = set(labels[(labels >= 0) & edges_any].tolist())
    # One pass alone is not corroborated: a noisy clip can show a few spurious "edges".
    if whole is not None and len(edge_passes) >= config.min_passes:
        fits.append(whole)
    for p in range(labels.max() + 1):
        in_pass = labels == p
        xb_all = beam[in_pass]
        direction = int(np.sign(xb_all[-1] - xb_all[0])) if xb_all.size > 1 else 0
        one = fit(in_pass, p, direction, config.min_pass_points)
        if one is not None:
            fits.append(one)
    return fits


def _passes_with_edges(m: VideoMeasurements, config: EstimateConfig) -> int:
    labels = segment_passes(m.beam_pupil_mm, min_travel_mm=config.min_pass_travel_mm)
    edges_any = np.isfinite(m.reflex.rising_mm) | np.isfinite(m.reflex.falling_mm)
    return len(set(labels[(labels >= 0) & edges_any].tolist()))
