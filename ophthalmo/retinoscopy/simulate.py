"""Synthetic retinoscopy videos with known truth: one clip, or a clinically spread cohort.

A clip is an MP4 (OpenCV ``mp4v`` MPEG-4 Part 2, which every stock ``opencv-python-headless``
build can write and read) plus a JSON sidecar holding the truth (``power_d``, distances,
eye, pupil, the frame spec, the camera) and, for every frame, the true beam and reflex-edge
positions in millimetres and pixels, the camera pose and the marker corners. A camera
profile JSON (``fx, fy, cx, cy, width, height``) sits beside the clips. See the README
section "retino" for the sidecar fields.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ophthalmo.retinoscopy import optics
from ophthalmo.retinoscopy.camera import DEFAULT_HFOV_DEG, CameraModel
from ophthalmo.retinoscopy.frame import EYES, FRAME_V1, FrameSpec, check_eye
from ophthalmo.retinoscopy.motion import HandMotion
from ophthalmo.retinoscopy.render import CameraEffects, ClipRenderer, Instrument, Scenario
from ophthalmo.retinoscopy.scene import EyeModel

__all__ = [
    "DIFFICULTIES",
    "SIDECAR_SCHEMA",
    "cohort_manifest_row",
    "draw_cohort",
    "make_scenario",
    "render_cohort_clip",
    "render_frames",
    "simulate_clip",
    "simulate_cohort",
]

SIDECAR_SCHEMA = "healthsense.retinoscopy.sidecar/1"
VIDEO_FOURCC = "mp4v"

#: Difficulty presets: hand steadiness, light, noise, blur, framing, extra compression.
DIFFICULTIES: dict[str, dict[str, Any]] = {
    "easy": {
        "motion": HandMotion(tremor_mm=0.03, tremor_deg=0.01, drift_mm=0.2, drift_deg=0.05,
                             distance_drift_mm=0.5, pass_jitter=0.05),
        "effects": CameraEffects(exposure_s=1 / 250, ambient=0.12, read_noise=0.002,
                                 shot_noise=0.006, optical_blur_px=0.5, vignetting=0.15),
        "eye_offset_mm": 0.5,
        "mount_roll_deg": 0.0,
    },
    "realistic": {
        "motion": HandMotion(),
        "effects": CameraEffects(),
        "eye_offset_mm": 2.0,
        "mount_roll_deg": 3.0,
    },
    "hard": {
        "motion": HandMotion(tremor_mm=0.3, tremor_deg=0.1, drift_mm=2.5, drift_deg=0.8,
                             distance_drift_mm=5.0, pass_s=0.7, pass_jitter=0.3),
        "effects": CameraEffects(exposure_s=1 / 30, ambient=0.04, read_noise=0.01,
                                 shot_noise=0.03, optical_blur_px=1.2, vignetting=0.4,
                                 jpeg_quality=55),
        "eye_offset_mm": 3.5,
        "mount_roll_deg": 6.0,
    },
}  # fmt: skip


#: Truth label "neutral" within this many dioptres of K = −1/d.
NEUTRAL_BAND_D = 0.25


def _check_difficulty(difficulty: str) -> dict[str, Any]:
    if difficulty not in DIFFICULTIES:
        raise ValueError(f"unknown difficulty {difficulty!r}; use one of {sorted(DIFFICULTIES)}")
    return DIFFICULTIES[difficulty]


def make_scenario(
    power_d: float,
    *,
    eye: str = "OD",
    working_distance_m: float = 0.35,
    source_distance_m: float = optics.DEFAULT_SOURCE_DISTANCE_M,
    pupil_radius_mm: float = 3.0,
    meridian_deg: int = 0,
    width: int = 1280,
    height: int = 720,
    fps: float = 30.0,
    duration_s: float = 4.0,
    hfov_deg: float = DEFAULT_HFOV_DEG,
    difficulty: str = "realistic",
    random_state: int | np.random.Generator | None = None,
) -> Scenario:
    """A :class:`Scenario` from clinical quantities and a difficulty preset.

    Raises ValueError for impossible values (negative distances, an unknown eye, a pupil
    larger than the iris, ...), naming the parameter.
    """
    preset = _check_difficulty(difficulty)
    eye = check_eye(eye)
    if not np.isfinite(duration_s) or duration_s <= 0:
        raise ValueError(f"duration must be positive, got {duration_s} s")
    if not (np.isfinite(source_distance_m) and source_distance_m > 0):
        raise ValueError(f"source distance must be positive, got {source_distance_m} m")
    if not np.isfinite(working_distance_m) or working_distance_m <= 0:
        raise ValueError(f"working distance must be positive, got {working_distance_m} m")
    rng = np.random.default_rng(random_state)
    off = preset["eye_offset_mm"]
    effects = dataclasses.replace(
        preset["effects"], mount_roll_deg=float(rng.uniform(-1, 1) * preset["mount_roll_deg"])
    )
    return Scenario(
        power_d=float(power_d),
        working_distance_m=float(working_distance_m),
        meridian_deg=int(meridian_deg),
        eye=EyeModel(
            eye=eye,
            pupil_radius_mm=float(pupil_radius_mm),
            offset_mm=(float(rng.uniform(-off, off)), float(rng.uniform(-off, off) * 0.5)),
        ),
        camera=CameraModel.from_fov(int(width), int(height), hfov_deg=hfov_deg),
        fps=float(fps),
        n_frames=max(1, int(round(duration_s * fps))),
        instrument=Instrument(source_distance_m=float(source_distance_m)),
        effects=effects,
        motion=preset["motion"],
    )


def render_frames(
    scenario: Scenario,
    *,
    spec: FrameSpec = FRAME_V1,
    random_state: int | np.random.Generator | None = None,
) -> tuple[ClipRenderer, Iterator[np.ndarray]]:
    """The renderer of a clip and an iterator over its uint8 BGR frames (nothing written)."""
    renderer = ClipRenderer(scenario, spec=spec, random_state=random_state)
    return renderer, (renderer.render(i) for i in range(scenario.n_frames))


def _sidecar(renderer: ClipRenderer, scenario: Scenario, extra: dict[str, Any]) -> dict[str, Any]:
    sc = scenario
    k = sc.power_d
    d = sc.working_distance_m
    u = sc.instrument.source_distance_m
    ratio = optics.sweep_ratio(k, working_distance_m=d, source_distance_m=u)
    truth = {
        "power_d": k,
        "meridian_deg": sc.meridian_deg,
        "streak": "vertical" if sc.meridian_deg == 0 else "horizontal",
        "eye": sc.eye.eye,
        "working_distance_m": d,
        "source_distance_m": u,
        "vertex_distance_mm": renderer.spec.vertex_distance_mm,
        "pupil_radius_mm": sc.eye.pupil_radius_mm,
        "iris_radius_mm": sc.eye.iris_radius_mm,
        "eye_offset_mm": list(sc.eye.offset_mm),
        "source_width_mm": sc.instrument.source_width_mm,
        "aperture_mm": sc.instrument.aperture_mm,
        "ratio": ratio,
        "neutral_power_d": optics.neutral_power(d),
        # What an examiner would call the motion; within the band the whole pupil fills and
        # no edge moves (the same band the estimator and the cohort evaluation use).
        "motion": (
            "neutral"
            if abs(k - optics.neutral_power(d)) <= NEUTRAL_BAND_D
            else ("with" if ratio > 0 else "against")
        ),
        "neutral_band_d": NEUTRAL_BAND_D,
    }
    truth.update(
        {key: v for key, v in extra.items() if key in {"sphere_d", "cylinder_d", "axis_deg"}}
    )
    frames = renderer.truth()
    return {
        "schema": SIDECAR_SCHEMA,
        "truth": truth,
        "camera": {
            **sc.camera.to_profile(),
            "distortion": [0.0] * 5,
            "mount_roll_deg": sc.effects.mount_roll_deg,
        },
        "frame_spec": {
            **dataclasses.asdict(renderer.spec),
            "version_string": renderer.spec.version_string,
        },
        "render": {
            "fps": sc.fps,
            "n_frames": sc.n_frames,
            "codec": VIDEO_FOURCC,
            "instrument": dataclasses.asdict(sc.instrument),
            "effects": dataclasses.asdict(sc.effects),
            "motion": dataclasses.asdict(sc.motion),
            "panel_pitch_mm": sc.panel_pitch_mm,
            **{key: v for key, v in extra.items() if key in {"difficulty", "seed"}},
        },
        "conventions": {
            "world": "panel coordinates of the filmed eye, mm: origin at the centre of the eye "
            "opening on the paper plane, +x right as the camera sees it, +y down, +z into the "
            "face; paper plane z=0, pupil plane z=vertex_distance_mm",
            "pose": "X_cam = R(rvec) @ X_world + tvec (OpenCV); camera_center_mm = -R^T tvec",
            "pixels": "OpenCV convention, (0, 0) is the centre of the top-left pixel",
            "sweep_axis": "x for meridian 0 (vertical streak), y for meridian 90",
            "times": "frame i is exposed around t_s[i] = i / fps; truth is at mid-exposure",
            "reflex_edges": "half-maximum points of the reflex band along the sweep axis on the "
            "pupil plane, NaN when outside the pupil or the reflex is not visible",
            "beam_edges": "half-maximum points of the beam on the paper plane along the sweep "
            "axis; beam_edges_px sampled on the lines beam_probe_mm (y for meridian 0, x for 90)",
        },
        "frames": frames,
    }


def simulate_clip(
    scenario: Scenario,
    video_path: str | Path,
    *,
    spec: FrameSpec = FRAME_V1,
    random_state: int | np.random.Generator | None = None,
    camera_profile_path: str | Path | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Path]:
    """Render ``scenario`` to ``video_path`` (.mp4) with its sidecar (.json) and camera profile.

    Returns the paths written: ``video``, ``sidecar``, ``camera_profile``. Every file is
    written atomically.
    """
    import cv2

    from healthsense.report import atomic_path, write_json
    from healthsense.runtime import get_logger

    video_path = Path(video_path)
    if video_path.suffix.lower() != ".mp4":
        raise ValueError(f"{video_path}: the video must be an .mp4 file")
    renderer, frames = render_frames(scenario, spec=spec, random_state=random_state)
    cam = scenario.camera
    with atomic_path(video_path) as tmp:
        writer = cv2.VideoWriter(
            str(tmp), cv2.VideoWriter_fourcc(*VIDEO_FOURCC), scenario.fps, (cam.width, cam.height)
        )
        if not writer.isOpened():
            raise ValueError(f"{video_path}: OpenCV cannot open an {VIDEO_FOURCC} MP4 writer")
        try:
            for frame in frames:
                writer.write(frame)
        finally:
            writer.release()
    sidecar_path = video_path.with_suffix(".json")
    write_json(sidecar_path, _sidecar(renderer, scenario, dict(extra or {})), indent=None)
    profile = (
        Path(camera_profile_path) if camera_profile_path else video_path.with_suffix(".camera.json")
    )
    write_json(profile, cam.to_profile())
    get_logger("retinoscopy.simulate").debug("wrote %s (%d frames)", video_path, scenario.n_frames)
    return {"video": video_path, "sidecar": sidecar_path, "camera_profile": profile}


def draw_cohort(
    n: int,
    *,
    difficulty: str = "realistic",
    meridians: str = "horizontal",
    random_state: int | np.random.Generator | None = None,
    width: int = 1280,
    height: int = 720,
    fps: float = 30.0,
    duration_s: float = 4.0,
    source_distance_m: float = optics.DEFAULT_SOURCE_DISTANCE_M,
) -> list[dict[str, Any]]:
    """Draw ``n`` eyes with a clinically realistic spread; one row per clip to render.

    Sphere mixture: ~20 % near neutrality (K within ±0.5 D of −1/d), ~20 % emmetropia
    (±0.5 D), the rest spread over −6…+5 D with myopia more frequent; 60 % carry a minus
    cylinder (0.25–2 D) with the axis near 180 or 90. The swept-meridian power is clipped to
    −6…+5 D. Both eyes alternate; d ∈ [0.30, 0.40] m; pupil radius ∈ [2, 3.5] mm.
    ``meridians``: ``horizontal`` (streak vertical, one clip per eye), ``vertical`` or
    ``both`` (two clips per eye).
    """
    if not isinstance(n, int | np.integer) or n < 1:
        raise ValueError(f"cohort size must be a positive integer, got {n!r}")
    _check_difficulty(difficulty)
    choices = {"horizontal": (0,), "vertical": (90,), "both": (0, 90)}
    if meridians not in choices:
        raise ValueError(f"meridians must be one of {sorted(choices)}, got {meridians!r}")
    rng = np.random.default_rng(random_state)
    rows: list[dict[str, Any]] = []
    kinds = rng.permutation(np.resize(["neutral", "emmetrope", "myope", "myope", "hyperope"], n))
    for i in range(n):
        d = float(np.round(rng.uniform(0.30, 0.40), 3))
        eye = EYES[i % 2]
        kind = kinds[i]
        if kind == "neutral":
            sphere = -1.0 / d + rng.uniform(-0.5, 0.5)
        elif kind == "emmetrope":
            sphere = rng.uniform(-0.5, 0.5)
        elif kind == "myope":
            sphere = rng.uniform(-6.0, -0.5)
        else:
            sphere = rng.uniform(0.5, 5.0)
        if rng.uniform() < 0.6:
            cyl = -float(np.round(rng.uniform(0.25, 2.0) * 4) / 4)
            axis = float((rng.choice([180.0, 90.0]) + rng.normal(0, 8)) % 180)
        else:
            cyl, axis = 0.0, 0.0
        sphere = (
            float(np.round(sphere * 4) / 4) if kind != "neutral" else float(np.round(sphere, 2))
        )
        pupil = float(np.round(rng.uniform(2.0, 3.5), 2))
        seed = int(rng.integers(2**31))
        for meridian in choices[meridians]:
            power = optics.meridional_power(sphere, cyl, axis, meridian)
            power = float(np.clip(power, -6.0, 5.0))
            rows.append(
                {
                    "name": f"eye{i + 1:03d}_{eye}_m{meridian:03d}",
                    "eye": eye,
                    "power_d": power,
                    "working_distance_m": d,
                    "source_distance_m": source_distance_m,
                    "meridian_deg": meridian,
                    "sphere_d": sphere,
                    "cylinder_d": cyl,
                    "axis_deg": axis,
                    "pupil_radius_mm": pupil,
                    "difficulty": difficulty,
                    "seed": seed + meridian,
                    "width": width,
                    "height": height,
                    "fps": fps,
                    "duration_s": duration_s,
                    "category": kind,
                }
            )
    return rows


MANIFEST_COLUMNS = (
    "video",
    "eye",
    "power_d",
    "working_distance_m",
    "source_distance_m",
    "camera_profile",
    "meridian_deg",
    "sphere_d",
    "cylinder_d",
    "axis_deg",
    "pupil_radius_mm",
    "sidecar",
    "difficulty",
    "category",
)


def cohort_manifest_row(row: dict[str, Any], video: Path, camera_profile: Path) -> dict:
    """The manifest record of a drawn cohort row (see :func:`draw_cohort`) and its files."""
    record = {
        **row,
        "video": video.name,
        "sidecar": video.with_suffix(".json").name,
        "camera_profile": camera_profile.name,
    }
    return {key: record[key] for key in MANIFEST_COLUMNS}


def render_cohort_clip(
    row: dict[str, Any],
    out_dir: str | Path,
    *,
    camera_profile: Path,
    width: int,
    height: int,
    fps: float,
    duration_s: float,
    difficulty: str,
    hfov_deg: float = DEFAULT_HFOV_DEG,
) -> dict:
    """Render one drawn cohort row into ``out_dir`` (``<name>.mp4`` + sidecar).

    Returns its manifest record (:func:`cohort_manifest_row`). A scenario the renderer
    cannot draw raises ``ValueError`` from :func:`simulate_clip`.
    """
    scenario = make_scenario(
        row["power_d"],
        eye=row["eye"],
        working_distance_m=row["working_distance_m"],
        source_distance_m=row["source_distance_m"],
        pupil_radius_mm=row["pupil_radius_mm"],
        meridian_deg=row["meridian_deg"],
        width=width,
        height=height,
        fps=fps,
        duration_s=duration_s,
        hfov_deg=hfov_deg,
        difficulty=difficulty,
        random_state=row["seed"],
    )
    paths = simulate_clip(
        scenario,
        Path(out_dir) / f"{row['name']}.mp4",
        random_state=row["seed"] + 1,
        camera_profile_path=camera_profile,
        extra=row,
    )
    return cohort_manifest_row(row, paths["video"], camera_profile)


def simulate_cohort(
    out_dir: str | Path,
    n: int,
    *,
    difficulty: str = "realistic",
    meridians: str = "horizontal",
    random_state: int | None = 0,
    width: int = 1280,
    height: int = 720,
    fps: float = 30.0,
    duration_s: float = 4.0,
    source_distance_m: float = optics.DEFAULT_SOURCE_DISTANCE_M,
    hfov_deg: float = DEFAULT_HFOV_DEG,
) -> Path:
    """Render a cohort into ``out_dir``: clips, sidecars, ``camera.json`` and ``manifest.csv``.

    Returns the manifest path. Paths in the manifest are relative to ``out_dir``.
    """
    from healthsense.report import write_csv, write_json
    from healthsense.runtime import progress

    out = Path(out_dir)
    rows = draw_cohort(
        n,
        difficulty=difficulty,
        meridians=meridians,
        random_state=random_state,
        width=width,
        height=height,
        fps=fps,
        duration_s=duration_s,
        source_distance_m=source_distance_m,
    )
    camera = CameraModel.from_fov(width, height, hfov_deg=hfov_deg)
    profile = out / "camera.json"
    write_json(profile, camera.to_profile())
    manifest = [
        render_cohort_clip(
            row,
            out,
            camera_profile=profile,
            width=width,
            height=height,
            fps=fps,
            duration_s=duration_s,
            difficulty=difficulty,
            hfov_deg=hfov_deg,
        )
        for row in progress(rows, total=len(rows), desc="render", unit="clip")
    ]
    return write_csv(out / "manifest.csv", manifest, columns=MANIFEST_COLUMNS)
