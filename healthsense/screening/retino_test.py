"""Adapter: the retinoscopy video pipeline as the screening run's refraction test.

One video (``retinoscopy_video``) measures one meridian; two sweeps (``retinoscopy_horizontal``
and ``retinoscopy_vertical``) give sphere, cylinder, axis and the spherical equivalent (SE).
The test is positive when |SE| ≥ ``refer_power_d`` or, with ``use_meridians``, when any
measured meridian reaches it in magnitude.

Files are checked here first (missing, empty, not decodable), so a bad input gets a precise
reason even where the pipeline is not installed. The pipeline itself
(:mod:`ophthalmo.retinoscopy.estimate`) is looked up at call time; while it is absent the test
raises :class:`~healthsense.screening._common.TestNotAvailable` and is reported as not run.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import math
from pathlib import Path
from typing import Any

from healthsense.screening._common import TestNotAvailable, test_result
from healthsense.screening.config import RefractionOptions
from healthsense.screening.manifest import EyeCase

__all__ = ["combine_meridians", "pipeline_available", "run_refraction"]

_MODULE = "ophthalmo.retinoscopy.estimate"
#: Sweep label → the pipeline's sweep axis (0: vertical streak swept horizontally, which
#: measures the horizontal meridian, 180°; 1: the vertical meridian, 90°). A single video is
#: analysed as a horizontal sweep, the pipeline's default.
_AXIS = {"video": 0, "horizontal": 0, "vertical": 1}


def _pipeline():
    """The pipeline module, or TestNotAvailable while it is not installed/built."""
    try:
        if importlib.util.find_spec(_MODULE) is None:
            raise ModuleNotFoundError(_MODULE)
        module = importlib.import_module(_MODULE)
    except ImportError as exc:
        raise TestNotAvailable(
            f"retinoscopy video pipeline ({_MODULE}) is not available ({exc})"
        ) from None
    if not callable(getattr(module, "estimate_power", None)):
        raise TestNotAvailable(f"{_MODULE} has no estimate_power()")
    return module


def pipeline_available() -> bool:
    """Whether the retinoscopy video pipeline can be called in this installation."""
    try:
        _pipeline()
    except TestNotAvailable:
        return False
    return True


def _as_dict(result: Any) -> dict[str, Any]:
    if isinstance(result, dict):
        return dict(result)
    if hasattr(result, "to_dict"):
        return dict(result.to_dict())
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        return dataclasses.asdict(result)
    raise TypeError(f"unexpected retinoscopy result type {type(result).__name__}")


def _check_video(path: Path) -> None:
    """Missing, empty or undecodable files fail here with the file named."""
    if not path.exists():
        raise FileNotFoundError(f"{path.name}: file not found")
    try:
        from ophthalmo.retinoscopy.video import probe_video
    except ImportError:
        probe_video = None
    if probe_video is not None:
        probe_video(path)
        return
    import cv2

    if path.stat().st_size == 0:
        raise ValueError(f"{path.name}: empty file")
    cap = cv2.VideoCapture(str(path))
    try:
        ok, _ = cap.read() if cap.isOpened() else (False, None)
    finally:
        cap.release()
    if not ok:
        raise ValueError(f"{path.name}: not a readable video")


def camera_profile_path(options: RefractionOptions, root: str | Path) -> Path | None:
    """The camera profile of the config; a relative path is taken from the manifest's folder."""
    if not options.camera_profile:
        return None
    path = Path(options.camera_profile).expanduser()
    return path if path.is_absolute() else Path(root) / path


def _estimate(module, path: Path, label: str, options: RefractionOptions, camera, debug_dir):
    """One sweep through the pipeline with the screening run's optics settings."""
    cfg = module.EstimateConfig(
        source_distance_m=options.source_distance_m,
        vertex_distance_m=options.vertex_distance_m,
        axis=_AXIS[label],
    )
    return _as_dict(module.estimate_power(path, camera=camera, config=cfg, debug_dir=debug_dir))


def combine_meridians(horizontal_d: float, vertical_d: float) -> dict[str, float]:
    """Sphere, cylinder (minus form), axis and SE from the 180° and 90° meridian powers.

    The power in meridian θ is S + C·sin²(θ − α) (docs/retinoscopy.md §1); the pipeline's
    :func:`~ophthalmo.retinoscopy.estimate.prescription_from_meridians` does the algebra.
    """
    from ophthalmo.retinoscopy.estimate import prescription_from_meridians

    sphere, cyl, axis = (float(v) for v in prescription_from_meridians(horizontal_d, vertical_d))
    return {"sphere_d": sphere, "cylinder_d": cyl, "axis_deg": axis, "se_d": sphere + cyl / 2.0}


def _words(power: float) -> str:
    if power <= -0.25:
        return "myopic"
    if power >= 0.25:
        return "hyperopic"
    return "near neutral"


def run_refraction(
    case: EyeCase, options: RefractionOptions, *, debug_dir: Path | None = None
) -> dict[str, Any]:
    """The refraction test of one eye; never raises for bad input (ungradable instead).

    Raises
    ------
    TestNotAvailable
        When the inputs are readable but the video pipeline is not installed.
    """
    if case.given("retinoscopy_video"):
        sweeps = [("video", case.path("retinoscopy_video"))]
    elif case.given("retinoscopy_horizontal"):
        sweeps = [
            ("horizontal", case.path("retinoscopy_horizontal")),
            ("vertical", case.path("retinoscopy_vertical")),
        ]
    else:
        return test_result("refraction", "not_requested", "no retinoscopy video in the manifest")
    problems: dict[str, str] = {}
    for label, path in sweeps:
        try:
            _check_video(path)
        except (OSError, ValueError) as exc:
            problems[label] = str(exc).replace(str(path), path.name)
    if len(problems) == len(sweeps):
        return test_result("refraction", "ungradable", _join(problems))
    camera = case.path("camera_profile") or camera_profile_path(options, case.root)
    if case.given("camera_profile") and not camera.is_file():
        return test_result(
            "refraction", "ungradable", f"camera profile {case.given('camera_profile')}: not found"
        )
    module = _pipeline()
    estimates: dict[str, dict] = {}
    figures: dict[str, str] = {}
    for label, path in sweeps:
        if label in problems:
            continue
        sub = debug_dir / f"retino_{label}" if debug_dir is not None else None
        try:
            est = _estimate(module, path, label, options, camera, sub)
        except (OSError, ValueError) as exc:
            problems[label] = str(exc).replace(str(path), path.name)
            continue
        power = est.get("power_d")
        conf = est.get("confidence")
        seen_eye = est.get("eye")
        if est.get("status", "ok") != "ok":
            problems[label] = f"{path.name}: {est.get('reason') or 'ungradable'}"
        elif seen_eye and seen_eye != case.eye:
            problems[label] = (
                f"{path.name}: laterality mismatch (the frame markers show {seen_eye}, "
                f"the manifest says {case.eye})"
            )
        elif power is None or not math.isfinite(float(power)):
            problems[label] = f"{path.name}: no power estimate"
        elif conf is not None and float(conf) < options.min_confidence:
            problems[label] = (
                f"{path.name}: confidence {float(conf):.2f} below {options.min_confidence}"
            )
        else:
            estimates[label] = est
        if sub is not None and sub.is_dir():
            for png in sorted(sub.rglob("*.png")):
                figures.setdefault(f"retinoscopy {label}: {png.stem}", str(png))
    return _summarise(sweeps, estimates, problems, figures, options)


def _join(problems: dict[str, str]) -> str:
    return "; ".join(f"{k} sweep: {v}" if k != "video" else v for k, v in problems.items())


def _summarise(sweeps, estimates, problems, figures, options: RefractionOptions) -> dict[str, Any]:
    thr = options.refer_power_d
    if not estimates:
        return test_result("refraction", "ungradable", _join(problems), figures=figures)
    first = next(iter(estimates.values()))
    common = {
        "working_distance_m": first.get("working_distance_m"),
        "confidence": min(
            (float(e["confidence"]) for e in estimates.values() if e.get("confidence") is not None),
            default=None,
        ),
        "motion": "/".join(str(e.get("motion", "")) for e in estimates.values()),
    }
    powers = {k: float(e["power_d"]) for k, e in estimates.items()}
    if len(sweeps) == 2 and len(estimates) == 2:
        rx = combine_meridians(powers["horizontal"], powers["vertical"])
        meridian_max = max(abs(p) for p in powers.values())
        positive = abs(rx["se_d"]) >= thr or (options.use_meridians and meridian_max >= thr)
        finding = (
            f"Refraction {rx['sphere_d']:+.2f} / {rx['cylinder_d']:+.2f} × {rx['axis_deg']:.0f}, "
            f"spherical equivalent {rx['se_d']:+.2f} D ({_words(rx['se_d'])}); "
            + ("at or above" if positive else "below")
            + f" the {thr:.2f} D referral threshold."
        )
        res = test_result(
            "refraction", "ok", "", **rx, max_meridian_d=meridian_max, **common, figures=figures
        )
        res.update(positive=positive, finding=finding)
        return res
    # One meridian only (a single video, or one of two sweeps failed).
    ((label, power),) = powers.items()
    positive = abs(power) >= thr
    where = "the swept meridian" if label == "video" else f"the {label} meridian"
    finding = (
        f"Power in {where} {power:+.2f} D ({_words(power)}); "
        + ("at or above" if positive else "below")
        + f" the {thr:.2f} D referral threshold (one meridian measured)."
    )
    if problems and not positive:
        # Half a refraction cannot rule out an error in the other meridian.
        return test_result(
            "refraction",
            "ungradable",
            _join(problems) + f"; the other meridian alone ({power:+.2f} D) cannot rule out",
            power_d=power,
            **common,
            figures=figures,
        )
    res = test_result(
        "refraction",
        "ok",
        _join(problems),
        power_d=power,
        max_meridian_d=abs(power),
        **common,
        figures=figures,
    )
    res.update(positive=positive, finding=finding)
    return res
