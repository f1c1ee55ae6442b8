"""Video → refractive error of the swept meridian, fully automatic.

Pipeline (see ``docs/retinoscopy.md`` §1 and the README section "retino-pipeline"):

1. read frames (:mod:`.video`); find the markers and the camera pose per frame
   (:mod:`.markers`); the panel that carries the beam is the filmed eye;
2. warp small regions at a fixed scale on the paper plane, where each frame's markers fix
   the mapping exactly: the beam strips and the eye opening (there, each position is where
   the camera ray through the pupil meets the paper) (:mod:`.rectify`);
3. beam edges on the strips (:mod:`.beam`); the pupil over the video (:mod:`.pupil`) and
   the reflex edges in it (:mod:`.reflex`);
4. both carried to the pupil plane, ``x = C + (x_paper − C)·d/(d − δ)``: the beam because it
   diverges from the aperture (≈ the camera centre C), the reflex because the camera ray
   does; d per frame, the lateral C one robust value per video (the instrument turns about
   the peephole; frame by frame that position is ill-determined);
5. the ratio ``r`` is the pooled Theil–Sen slope of reflex-edge position against beam
   position (one intercept per edge, all passes), ``K = −1/d + u/(r·d·(u + d))``; one fit
   per pass gives the spread (consistency) and the confidence. A pupil that fills with no
   edge in view is neutral (``K = −1/d``).

Any failure becomes ``status = "ungradable"`` with a ``reason``; no number is reported then.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from healthsense.runtime import get_logger
from ophthalmo.retinoscopy import optics
from ophthalmo.retinoscopy.camera import CameraModel
from ophthalmo.retinoscopy.fit import (
    PassFit,
    _passes_with_edges,
    fit_passes,
    pooled_theil_sen,
    segment_passes,
)
from ophthalmo.retinoscopy.frame import FRAME_V1, FrameSpec
from ophthalmo.retinoscopy.measure import (
    DEFAULT_CONFIG,
    EstimateConfig,
    VideoMeasurements,
    load_calibration,
    measure_video,
)

__all__ = [
    "REASONS",
    "EstimateConfig",
    "PassFit",
    "Prescription",
    "RetinoscopyEstimate",
    "VideoMeasurements",
    "estimate_power",
    "estimate_prescription",
    "fit_passes",
    "load_calibration",
    "measure_video",
    "pooled_theil_sen",
    "prescription_from_meridians",
    "segment_passes",
]

log = get_logger("retinoscopy.estimate")

#: Reasons an estimate is ungradable (``status = "ungradable"``).
REASONS = (
    "unreadable file",
    "too dark",
    "no markers",
    "no pupil",
    "no usable pass",
    "inconsistent passes",
)


@dataclass(frozen=True)
class RetinoscopyEstimate:
    """Result for one video (``power_d`` is NaN unless ``status == "ok"``)."""

    video: str
    eye: str | None
    power_d: float
    working_distance_m: float
    ratio: float
    motion: str | None
    passes_used: int
    confidence: float
    status: str
    reason: str | None
    spread_d: float = float("nan")
    source_distance_m: float = optics.DEFAULT_SOURCE_DISTANCE_M
    n_frames: int = 0
    frames_with_pose: int = 0
    frames_with_reflex: int = 0
    pupil_radius_mm: float = float("nan")
    fits: tuple[PassFit, ...] = ()

    def to_dict(self, *, with_fits: bool = False) -> dict[str, Any]:
        out = {
            "video": self.video,
            "eye": self.eye,
            "power_d": self.power_d,
            "working_distance_m": self.working_distance_m,
            "ratio": self.ratio,
            "motion": self.motion,
            "passes_used": self.passes_used,
            "confidence": self.confidence,
            "status": self.status,
            "reason": self.reason,
            "spread_d": self.spread_d,
            "source_distance_m": self.source_distance_m,
            "n_frames": self.n_frames,
            "frames_with_pose": self.frames_with_pose,
            "frames_with_reflex": self.frames_with_reflex,
            "pupil_radius_mm": self.pupil_radius_mm,
        }
        if with_fits:
            out["fits"] = [f.__dict__ for f in self.fits]
        return out


def _ungradable(video: str, reason: str, config: EstimateConfig, **kw: Any) -> RetinoscopyEstimate:
    nan = float("nan")
    base = {
        "eye": None,
        "power_d": nan,
        "working_distance_m": nan,
        "ratio": nan,
        "motion": None,
        "passes_used": 0,
        "confidence": 0.0,
    }
    base.update(kw)
    return RetinoscopyEstimate(
        video=video,
        status="ungradable",
        reason=reason,
        source_distance_m=config.source_distance_m,
        **base,
    )


def _summarise(
    m: VideoMeasurements, fits: list[PassFit], config: EstimateConfig
) -> RetinoscopyEstimate:
    video = m.path
    has = m.has_pose
    d_m = float(np.nanmedian(m.distance_mm[has])) / 1000.0
    common = {
        "eye": m.eye,
        "working_distance_m": d_m,
        "n_frames": int(m.t_s.size),
        "frames_with_pose": int(has.sum()),
        "pupil_radius_mm": m.pupil.radius_median_mm if m.pupil else float("nan"),
    }
    reflex = m.reflex
    n_edge = 0
    if reflex is not None:
        n_edge = int((np.isfinite(reflex.rising_mm) | np.isfinite(reflex.falling_mm)).sum())
    common["frames_with_reflex"] = n_edge
    k_neutral = float(optics.neutral_power(d_m))
    u = config.source_distance_m
    if not any(f.pass_index < 0 for f in fits):
        n_filled = int(reflex.filled.sum()) if reflex is not None else 0
        if reflex is not None and n_filled >= max(3, n_edge):
            # The pupil fills and no edge crosses it: the far point is at the peephole.
            return RetinoscopyEstimate(
                video=video,
                power_d=k_neutral,
                ratio=float("inf"),
                motion="neutral",
                passes_used=0,
                confidence=float(min(1.0, n_filled / 10.0) * 0.8),
                status="ok",
                reason=None,
                spread_d=float("nan"),
                source_distance_m=u,
                **common,
            )
        return _ungradable(video, "no usable pass", config, **common)
    whole = [f for f in fits if f.pass_index < 0]
    per_pass = [f for f in fits if f.pass_index >= 0]
    powers = np.array([f.power_d for f in per_pass])
    k = float(whole[0].power_d) if whole else float(np.median(powers))
    if powers.size >= 3:
        spread = float(1.4826 * np.median(np.abs(powers - np.median(powers))))
    elif powers.size == 2:
        spread = float(0.5 * abs(powers[0] - powers[1]))
    else:
        spread = float("nan")
    if powers.size >= 3 and spread > config.max_spread_d:
        return _ungradable(video, "inconsistent passes", config, spread_d=spread, **common)
    if abs(k) > config.max_abs_power_d:
        # Beyond what a retinoscope at arm's length resolves: a measurement artefact.
        return _ungradable(video, "no usable pass", config, spread_d=spread, **common)
    ratio = (
        float(whole[0].ratio)
        if whole
        else float(1.0 / np.median([1.0 / f.ratio for f in per_pass]))
    )
    if abs(k - k_neutral) <= config.neutral_band_d:
        motion = "neutral"
    else:
        motion = "with" if k > k_neutral else "against"
    spread_for_conf = spread if np.isfinite(spread) else 0.5  # one pass: assume a typical spread
    n_passes = _passes_with_edges(m, config)
    confidence = (n_passes / (n_passes + 2.0)) * math.exp(-spread_for_conf / 0.5)
    return RetinoscopyEstimate(
        video=video,
        power_d=k,
        ratio=ratio,
        motion=motion,
        passes_used=n_passes,
        confidence=float(confidence),
        status="ok",
        reason=None,
        spread_d=spread,
        source_distance_m=u,
        fits=tuple(fits),
        **common,
    )


def estimate_power(
    video: str | Path,
    *,
    camera: CameraModel | str | Path | dict | None = None,
    config: EstimateConfig = DEFAULT_CONFIG,
    spec: FrameSpec = FRAME_V1,
    debug_dir: str | Path | None = None,
) -> RetinoscopyEstimate:
    """Refractive error of the swept meridian from one retinoscopy video.

    Parameters
    ----------
    video : path of any video OpenCV can read.
    camera : intrinsics (a :class:`CameraModel`, a profile mapping or a profile JSON path);
        by default from the frame size and a typical phone field of view (with a warning).
    config : options, see :class:`EstimateConfig`.
    debug_dir : if given, annotated frames and a plot of the edge tracks are written there.

    Returns
    -------
    RetinoscopyEstimate
        ``status`` is ``"ok"`` or ``"ungradable"`` with a ``reason`` from :data:`REASONS`;
        a missing camera-profile file or an invalid profile raises instead (user error).
    """
    video = str(video)
    if camera is not None and not isinstance(camera, CameraModel):
        camera = CameraModel.from_profile(camera)
    try:
        m = measure_video(
            video, camera=camera, config=config, spec=spec, keep_samples=6 if debug_dir else 0
        )
    except (FileNotFoundError, ValueError, OSError) as exc:
        if "camera profile is for" in str(exc):
            raise
        log.info("%s: unreadable (%s)", video, exc)
        return _ungradable(video, "unreadable file", config)
    n = m.t_s.size
    has = m.has_pose
    if has.sum() < max(3, config.min_pose_share * n):
        if np.percentile(m.brightness, 90) < 20.0:
            return _ungradable(
                video, "too dark", config, n_frames=n, frames_with_pose=int(has.sum())
            )
        return _ungradable(
            video, "no markers", config, n_frames=n, eye=m.eye, frames_with_pose=int(has.sum())
        )
    if m.pupil is None:
        d_m = float(np.nanmedian(m.distance_mm[has])) / 1000.0
        reason = "too dark" if np.percentile(m.brightness, 90) < 20.0 else "no pupil"
        return _ungradable(
            video,
            reason,
            config,
            eye=m.eye,
            n_frames=n,
            working_distance_m=d_m,
            frames_with_pose=int(has.sum()),
        )
    fits = fit_passes(m, config)
    result = _summarise(m, fits, config)
    if debug_dir is not None:
        from ophthalmo.retinoscopy.debug import write_debug

        write_debug(debug_dir, m, result, config=config, spec=spec, camera=camera)
    return result


@dataclass(frozen=True)
class Prescription:
    """Sphere / cylinder × axis from two principal-meridian sweeps (minus-cylinder form)."""

    sphere_d: float
    cylinder_d: float
    axis_deg: float
    spherical_equivalent_d: float
    status: str
    reason: str | None
    horizontal: RetinoscopyEstimate
    vertical: RetinoscopyEstimate

    def to_dict(self) -> dict[str, Any]:
        return {
            "sphere_d": self.sphere_d,
            "cylinder_d": self.cylinder_d,
            "axis_deg": self.axis_deg,
            "spherical_equivalent_d": self.spherical_equivalent_d,
            "status": self.status,
            "reason": self.reason,
            "horizontal": self.horizontal.to_dict(),
            "vertical": self.vertical.to_dict(),
        }


def prescription_from_meridians(
    k_horizontal: float, k_vertical: float
) -> tuple[float, float, float]:
    """``(sphere, cylinder ≤ 0, axis ∈ {90, 180})`` from the two principal meridian powers.

    The horizontal meridian is 180, the vertical 90; a minus cylinder's axis is the meridian
    of the larger (less minus) power.
    """
    kh, kv = float(k_horizontal), float(k_vertical)
    if not (math.isfinite(kh) and math.isfinite(kv)):
        raise ValueError("both meridian powers must be finite")
    sphere = max(kh, kv)
    cylinder = min(kh, kv) - sphere
    axis = 180.0 if kh >= kv else 90.0
    return sphere, cylinder, axis


def estimate_prescription(
    horizontal_video: str | Path,
    vertical_video: str | Path,
    *,
    camera: CameraModel | str | Path | dict | None = None,
    config: EstimateConfig = DEFAULT_CONFIG,
    spec: FrameSpec = FRAME_V1,
) -> Prescription:
    """Sphere, cylinder, axis and spherical equivalent from two sweeps.

    ``horizontal_video``: vertical streak swept horizontally (horizontal meridian, 180);
    ``vertical_video``: horizontal streak swept vertically (vertical meridian, 90).
    """
    h = estimate_power(horizontal_video, camera=camera, config=replace(config, axis=0), spec=spec)
    v = estimate_power(vertical_video, camera=camera, config=replace(config, axis=1), spec=spec)
    nan = float("nan")
    if h.status != "ok" or v.status != "ok":
        bad = h if h.status != "ok" else v
        which = "horizontal" if bad is h else "vertical"
        return Prescription(nan, nan, nan, nan, "ungradable", f"{which}: {bad.reason}", h, v)
    s, c, a = prescription_from_meridians(h.power_d, v.power_d)
    se = float(optics.spherical_equivalent(s, c))
    return Prescription(s, c, a, se, "ok", None, h, v)
