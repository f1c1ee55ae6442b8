"""Stages 1–4 of the video pipeline: every frame's pose, beam, pupil and reflex edges.

:func:`measure_video` reads a clip once and returns :class:`VideoMeasurements` (positions in
world millimetres on the pupil plane, along the sweep axis); :mod:`.fit` turns them into
slopes and :mod:`.estimate` into dioptres. :class:`EstimateConfig` holds every option of the
pipeline. See :mod:`ophthalmo.retinoscopy.estimate` for the method.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from healthsense.runtime import get_logger
from ophthalmo.retinoscopy import optics
from ophthalmo.retinoscopy.beam import beam_positions, beam_profiles, beam_strip_rois
from ophthalmo.retinoscopy.camera import DEFAULT_HFOV_DEG, CameraModel
from ophthalmo.retinoscopy.frame import EYES, FRAME_V1, FrameSpec
from ophthalmo.retinoscopy.markers import MarkerTracker
from ophthalmo.retinoscopy.pupil import PupilTrack, detect_pupil, redness_rg
from ophthalmo.retinoscopy.rectify import PlaneROI
from ophthalmo.retinoscopy.reflex import ReflexTrack, glint_mask_rg, reflex_edges

__all__ = [
    "DEFAULT_CONFIG",
    "EstimateConfig",
    "VideoMeasurements",
    "load_calibration",
    "measure_video",
]

log = get_logger("retinoscopy.measure")


@dataclass(frozen=True)
class EstimateConfig:
    """Options of the estimator (lengths in metres unless named otherwise).

    Attributes
    ----------
    source_distance_m : u, the retinoscope's effective source behind the peephole.
    vertex_distance_m : δ, pupil plane behind the paper frame (None: the frame spec's).
    distance_scale : multiplies every measured working distance (from ``calibrate``).
    axis : sweep axis, 0 (vertical streak swept horizontally: horizontal meridian) or 1.
    px_per_mm : scale of the rectified regions.
    detect_width : width of the downscaled frame searched for markers.
    max_seconds : only the first seconds of a long video are analysed.
    min_pass_points : frames with both a beam and an edge a pass needs for a slope.
    min_video_points : edge points the whole-video fit needs (pairs of one edge count).
    min_passes : passes that must show reflex edges for an estimate.
    max_abs_power_d : larger estimates are artefacts (ungradable, "no usable pass").
    min_pass_travel_mm : beam travel a pass needs.
    neutral_band_d : estimates within this of ``−1/d`` are reported as neutral motion.
    max_spread_d : a larger robust spread of the per-pass powers is "inconsistent passes".
    min_pose_share : share of frames with a pose needed (else "no markers").
    """

    source_distance_m: float = optics.DEFAULT_SOURCE_DISTANCE_M
    vertex_distance_m: float | None = None
    distance_scale: float = 1.0
    axis: int = 0
    px_per_mm: float = 10.0
    detect_width: int = 640
    max_seconds: float = 30.0
    min_pass_points: int = 4
    min_video_points: int = 2
    min_passes: int = 2
    max_abs_power_d: float = 15.0
    min_pass_travel_mm: float = 4.0
    neutral_band_d: float = 0.25
    max_spread_d: float = 2.0
    min_pose_share: float = 0.3

    def __post_init__(self) -> None:
        if not (math.isfinite(self.source_distance_m) and 0.05 <= self.source_distance_m <= 5):
            raise ValueError(
                f"source distance must be in [0.05, 5] m, got {self.source_distance_m}"
            )
        if self.vertex_distance_m is not None and not 0 <= self.vertex_distance_m < 0.05:
            raise ValueError(
                f"vertex distance must be in [0, 0.05) m, got {self.vertex_distance_m}"
            )
        if not (math.isfinite(self.distance_scale) and 0.5 <= self.distance_scale <= 2.0):
            raise ValueError(f"distance scale must be in [0.5, 2], got {self.distance_scale}")
        if self.axis not in (0, 1):
            raise ValueError(f"sweep axis must be 0 or 1, got {self.axis}")
        if not 2 <= self.px_per_mm <= 40:
            raise ValueError(f"px_per_mm must be in [2, 40], got {self.px_per_mm}")
        if self.detect_width < 160:
            raise ValueError(f"detect_width must be >= 160 px, got {self.detect_width}")
        if self.min_pass_points < 3:
            raise ValueError("min_pass_points must be >= 3")

    def vertex_mm(self, spec: FrameSpec) -> float:
        if self.vertex_distance_m is None:
            return spec.vertex_distance_mm
        return 1000.0 * self.vertex_distance_m


#: The defaults, shared as a keyword default by the pipeline's functions.
DEFAULT_CONFIG = EstimateConfig()


def load_calibration(path: str | Path, config: EstimateConfig | None = None) -> EstimateConfig:
    """Apply a calibration JSON from ``healthsense retino calibrate`` to a configuration."""
    from healthsense.report import read_json

    data = read_json(path)
    if not isinstance(data, dict) or "source_distance_m" not in data:
        raise ValueError(f"{path}: not a calibration file (no 'source_distance_m')")
    try:
        u = float(data["source_distance_m"])
        scale = float(data.get("distance_scale", 1.0))
    except (TypeError, ValueError):
        raise ValueError(f"{path}: calibration values must be numbers") from None
    return replace(config or EstimateConfig(), source_distance_m=u, distance_scale=scale)


@dataclass
class VideoMeasurements:
    """Per-frame measurements of one video (all positions world mm along the sweep axis)."""

    path: str
    fps: float
    width: int
    height: int
    eye: str | None
    t_s: np.ndarray
    has_pose: np.ndarray
    camera_center_mm: np.ndarray  # (t, 3), NaN without a pose
    rotation: np.ndarray  # (t, 3, 3) world → camera, NaN without a pose
    pose_center_mm: np.ndarray  # (t, 3) each frame's own pose centre (paper homography)
    distance_mm: np.ndarray  # camera to pupil plane
    beam_paper_mm: np.ndarray
    beam_pupil_mm: np.ndarray
    brightness: np.ndarray  # mean grey level of the frame
    pupil: PupilTrack | None = None
    reflex: ReflexTrack | None = None
    eye_roi: PlaneROI | None = None
    pupil_apparent: PupilTrack | None = None  # in eye_roi (paper-plane) coordinates
    samples: dict[int, np.ndarray] = field(default_factory=dict)  # a few eye crops for debug


def _eye_roi(spec: FrameSpec, vertex_mm: float, px_per_mm: float) -> PlaneROI:
    ox, oy = spec.opening_half_mm
    return PlaneROI(-ox, -oy, ox, oy, vertex_mm, px_per_mm, px_per_mm)


def measure_video(
    path: str | Path,
    *,
    camera: CameraModel | None = None,
    config: EstimateConfig = DEFAULT_CONFIG,
    spec: FrameSpec = FRAME_V1,
    keep_samples: int = 0,
) -> VideoMeasurements:
    """Stages 1–4 for every frame: pose, beam, pupil and reflex edges (no estimate yet).

    Raises FileNotFoundError / ValueError for unreadable, empty or truncated videos.
    """
    import cv2

    from ophthalmo.retinoscopy.video import iter_frames, probe_video

    info = probe_video(path)
    if camera is None:
        log.warning(
            "%s: no camera profile; assuming a %.0f° horizontal field of view",
            path,
            DEFAULT_HFOV_DEG,
        )
        camera = CameraModel.from_fov(info.width, info.height)
    elif (camera.width, camera.height) != (info.width, info.height):
        raise ValueError(
            f"{path}: camera profile is for {camera.width}x{camera.height} but the video is "
            f"{info.width}x{info.height}"
        )
    vertex = config.vertex_mm(spec)
    axis = config.axis
    tracker = MarkerTracker(camera, spec=spec, detect_width=config.detect_width)
    strips = beam_strip_rois(spec, axis=axis, px_per_mm=config.px_per_mm)
    # The eye opening is sampled on the paper plane: each ROI position is where the camera
    # ray through a pupil point meets the paper, which the frame's markers fix exactly. The
    # rays are carried to the pupil plane afterwards, with the camera centre of the video.
    eye_roi = _eye_roi(spec, 0.0, config.px_per_mm)
    max_frames = int(round(config.max_seconds * info.fps))
    rows, cols = eye_roi.shape
    no_profile = np.full((len(strips), strips[0].shape[1 - axis]), np.nan, np.float32)

    t_s: list[float] = []
    bright: list[float] = []
    per_eye = {e: _EyeFrames() for e in EYES}
    samples: dict[int, np.ndarray] = {}
    centre_px = np.array([info.width / 2.0, info.height / 2.0])
    locked: str | None = None
    for i, t, frame in iter_frames(path, max_frames=max_frames):
        grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        bright.append(float(grey[::8, ::8].mean()))
        t_s.append(t)
        poses = tracker.update(grey)
        for e, acc in per_eye.items():
            pose = poses.get(e)
            if pose is None or (locked is not None and e != locked):
                acc.add_missing(rows, cols, no_profile)
                continue
            h = pose.homography(camera, z_mm=0.0)
            o = h @ np.array([0.0, 0.0, 1.0])
            eye = eye_roi.warp(frame, pose, camera)
            acc.add(
                pose.center_mm if pose.pose_center_mm is None else pose.pose_center_mm,
                pose.rotation,
                beam_profiles([s.warp(grey, pose, camera) for s in strips], axis=axis),
                eye,
                float(np.linalg.norm(o[:2] / o[2] - centre_px)),
            )
        if locked is None and i >= 15:
            # Stop measuring the fellow panel once the beam has clearly picked the eye.
            counts = {e: a.beam_frames() for e, a in per_eye.items()}
            best = max(EYES, key=lambda e: counts[e])
            if counts[best] >= 8 and counts[best] >= 4 * counts[EYES[1 - EYES.index(best)]]:
                locked = best
                tracker.only_eye = best
        if keep_samples and len(samples) < keep_samples and i % 7 == 0:
            samples[i] = frame.copy()
    n = len(t_s)
    # The filmed eye: its panel carries the beam (the fellow panel is out of the streak's
    # reach); with no beam anywhere, the panel nearer the image centre (the examiner aims).
    beams = {
        e: beam_positions(np.stack(a.profiles), strips, axis=axis)[2] for e, a in per_eye.items()
    }
    score = {
        e: (int(np.isfinite(beams[e]).sum()), -float(np.mean(a.offsets)) if a.offsets else -np.inf)
        for e, a in per_eye.items()
    }
    eye = max(EYES, key=lambda e: score[e]) if any(a.offsets for a in per_eye.values()) else None
    acc = per_eye[eye or EYES[0]]
    has = np.array(acc.has_pose, bool)
    c = np.array(acc.centers, float).reshape(n, 3)
    own_centers = c.copy()
    if has.any():
        # The lateral camera position is ill-determined frame by frame (turning and shifting
        # look alike through a narrow field of view) but the instrument turns about the
        # peephole, so one robust position serves the video; the distance is per frame.
        c[has, :2] = np.median(c[has, :2], axis=0)
    dist = (vertex - c[:, 2]) * config.distance_scale
    m = VideoMeasurements(
        path=str(path),
        fps=info.fps,
        width=info.width,
        height=info.height,
        eye=eye,
        t_s=np.array(t_s),
        has_pose=has,
        camera_center_mm=c,
        rotation=np.array(acc.rotations, float).reshape(n, 3, 3),
        pose_center_mm=own_centers,
        distance_mm=dist,
        beam_paper_mm=np.full(n, np.nan),
        beam_pupil_mm=np.full(n, np.nan),
        brightness=np.array(bright),
        eye_roi=eye_roi,
        samples=samples,
    )
    if eye is None or not has.any():
        return m
    # Paper plane → pupil plane, x = C + (x_paper − C)·d/(d − δ): for the beam (it diverges
    # from the aperture, ≈ the camera centre) and for the camera rays through the pupil.
    x_c = c[:, axis]
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = dist / (dist - vertex * config.distance_scale)

    def to_pupil(x_paper: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            return x_c + (x_paper - x_c) * scale

    beam = beams[eye]
    m.beam_paper_mm = beam
    m.beam_pupil_mm = to_pupil(beam)
    red_stack, green_stack = np.stack(acc.reds), np.stack(acc.greens)
    pupil = detect_pupil(redness_rg(red_stack[has], green_stack[has]), eye_roi)
    if pupil is None:
        return m
    # Pupil per frame for all frames (frames without a pose keep the median).
    full_c = np.tile(np.array(pupil.center_median_mm), (n, 1))
    full_r = np.full(n, pupil.radius_median_mm)
    full_c[has] = pupil.center_mm
    full_r[has] = pupil.radius_mm
    apparent = replace(pupil, center_mm=full_c, radius_mm=full_r)
    reflex = reflex_edges(
        red_stack,
        green_stack,
        glint_mask_rg(red_stack, green_stack),
        eye_roi,
        apparent,
        axis=axis,
    )
    rising, falling = to_pupil(reflex.rising_mm), to_pupil(reflex.falling_mm)
    rising[~has] = np.nan
    falling[~has] = np.nan
    m.reflex = replace(reflex, rising_mm=rising, falling_mm=falling, filled=reflex.filled & has)
    sc = np.where(has, scale, np.nanmedian(scale[has]))
    centre = c[:, :2] + (full_c - c[:, :2]) * sc[:, None]
    centre[~has] = np.nanmedian(centre[has], axis=0)
    m.pupil = replace(
        pupil,
        center_mm=centre,
        radius_mm=full_r * sc,
        center_median_mm=tuple(float(v) for v in np.median(centre, axis=0)),
        radius_median_mm=float(np.median(full_r * sc)),
    )
    m.pupil_apparent = apparent
    return m


class _EyeFrames:
    """Per-frame accumulators for one panel (red and green of the eye region are kept)."""

    def __init__(self) -> None:
        self.has_pose: list[bool] = []
        self.centers: list[np.ndarray] = []
        self.rotations: list[np.ndarray] = []
        self.profiles: list[np.ndarray] = []
        self.reds: list[np.ndarray] = []
        self.greens: list[np.ndarray] = []
        self.offsets: list[float] = []
        self._beam_frames = 0

    def beam_frames(self) -> int:
        """Frames so far whose strips show a bright band (a quick test, no edges)."""
        return self._beam_frames

    def add_missing(self, rows: int, cols: int, no_profile: np.ndarray) -> None:
        self.has_pose.append(False)
        self.centers.append(np.full(3, np.nan))
        self.rotations.append(np.full((3, 3), np.nan))
        self.profiles.append(no_profile)
        self.reds.append(np.zeros((rows, cols), np.uint8))
        self.greens.append(np.zeros((rows, cols), np.uint8))

    def add(self, center, rotation, profile, eye_bgr, offset) -> None:
        self.has_pose.append(True)
        self.centers.append(center)
        self.rotations.append(rotation)
        self.profiles.append(profile)
        self.reds.append(np.ascontiguousarray(eye_bgr[..., 2]))
        self.greens.append(np.ascontiguousarray(eye_bgr[..., 1]))
        self.offsets.append(offset)
        top = profile.max(axis=1) - np.median(profile, axis=1)
        self._beam_frames += bool(np.any(top > 24.0))
