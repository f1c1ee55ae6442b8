"""Retinoscopy video pipeline commands: estimate, evaluate, calibrate (``healthsense retino``).

Registered into the ``retino`` group by :func:`register`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from healthsense.cli._common import (
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_USAGE,
    CommandError,
    add_subcommand,
    print_json,
)

__all__ = ["register"]

_ESTIMATE_DOC = """Estimate the refractive error of the swept meridian from a retinoscopy video.

Fully automatic: the frame's ArUco markers give the eye, the camera pose and the working
distance; the streak's edges on the paper and the reflex edges in the pupil give, per pass,
the ratio r of reflex to beam motion, and K = -1/d + u/(r d (u + d)).

Exit codes: 0 the video was graded; 1 ungradable (the reason is printed: unreadable file,
too dark, no markers, no pupil, no usable pass, inconsistent passes); 2 usage error.

Examples:
  healthsense retino estimate clip.mp4 --camera camera.json --json
  healthsense retino estimate clip.mp4 --debug-dir debug/
  healthsense retino estimate --horizontal sweep_h.mp4 --vertical sweep_v.mp4 --json
"""

_EVALUATE_DOC = """Evaluate the pipeline on a cohort manifest (e.g. from 'retino simulate').

Runs every video (in parallel with --workers), writes predictions.csv, metrics.json,
report.html and config.json into --out: MAE +/- SD, Bland-Altman, share within +/-0.5 and
+/-1.0 D, sensitivity/specificity with Wilson CIs at |K| >= --threshold, per-range table,
neutral detection and the ungradable rate with reasons. Exit code 1 if any video was
ungradable.

Example: healthsense retino evaluate cohort/manifest.csv --out eval/ --workers 2
"""

_CALIBRATE_DOC = """Fit the source distance u (and with --fit-scale a distance scale) from videos of known power.

Least squares over the manifest's gradable videos; reports the residuals and writes a small
JSON that 'retino estimate --calibration' and 'retino evaluate --calibration' accept.

Example: healthsense retino calibrate known/manifest.csv --out calibration.json
"""


def _positive(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return v


def _add_optics_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--source-distance",
        type=_positive,
        default=None,
        metavar="M",
        help="retinoscope source distance u behind the peephole, m (default 0.40, "
        "or the --calibration value)",
    )
    p.add_argument(
        "--vertex-distance",
        type=float,
        default=None,
        metavar="M",
        help="pupil plane behind the paper frame, m (default 0.012 from the frame)",
    )
    p.add_argument(
        "--calibration",
        type=Path,
        default=None,
        metavar="CAL.json",
        help="calibration from 'retino calibrate' (u and distance scale)",
    )


def _config(args: argparse.Namespace, *, axis: int = 0):
    from dataclasses import replace

    from ophthalmo.retinoscopy.estimate import EstimateConfig, load_calibration

    try:
        cfg = EstimateConfig(axis=axis)
        if args.calibration is not None:
            if not args.calibration.is_file():
                raise CommandError(
                    f"{args.calibration}: calibration file not found", exit_code=EXIT_USAGE
                )
            cfg = load_calibration(args.calibration, cfg)
        if args.source_distance is not None:
            cfg = replace(cfg, source_distance_m=args.source_distance)
        if args.vertex_distance is not None:
            cfg = replace(cfg, vertex_distance_m=args.vertex_distance)
    except ValueError as exc:
        raise CommandError(str(exc), exit_code=EXIT_USAGE) from None
    return cfg


def _camera(args: argparse.Namespace):
    if args.camera is None:
        return None
    from ophthalmo.retinoscopy.camera import CameraModel

    if not args.camera.is_file():
        raise CommandError(f"{args.camera}: camera profile not found", exit_code=EXIT_USAGE)
    try:
        return CameraModel.from_profile(args.camera)
    except ValueError as exc:
        raise CommandError(str(exc), exit_code=EXIT_USAGE) from None


def _run_estimate(args: argparse.Namespace) -> int:
    from ophthalmo.retinoscopy.estimate import estimate_power, estimate_prescription

    pair = args.horizontal is not None or args.vertical is not None
    if pair and args.video is not None:
        raise CommandError(
            "give either VIDEO or --horizontal/--vertical, not both", exit_code=EXIT_USAGE
        )
    if pair and (args.horizontal is None or args.vertical is None):
        raise CommandError("--horizontal and --vertical go together", exit_code=EXIT_USAGE)
    if not pair and args.video is None:
        raise CommandError(
            "a VIDEO (or --horizontal and --vertical) is required", exit_code=EXIT_USAGE
        )
    camera = _camera(args)
    try:
        if pair:
            cfg = _config(args)
            rx = estimate_prescription(args.horizontal, args.vertical, camera=camera, config=cfg)
            if args.json:
                print_json(rx.to_dict())
            elif rx.status == "ok":
                print(
                    f"sphere {rx.sphere_d:+.2f} D  cylinder {rx.cylinder_d:+.2f} D  "
                    f"axis {rx.axis_deg:.0f}  (spherical equivalent {rx.spherical_equivalent_d:+.2f} D)"
                )
            else:
                print(f"ungradable: {rx.reason}")
            return EXIT_OK if rx.status == "ok" else EXIT_FAILURE
        cfg = _config(args, axis=1 if args.meridian == "vertical" else 0)
        res = estimate_power(args.video, camera=camera, config=cfg, debug_dir=args.debug_dir)
    except ValueError as exc:  # e.g. a camera profile for another frame size
        raise CommandError(str(exc), exit_code=EXIT_USAGE) from None
    if args.debug_dir is not None:
        from healthsense.config import write_config

        write_config(
            cfg, args.debug_dir, command="retino estimate", extra={"video": str(args.video)}
        )
    if args.json:
        print_json(res.to_dict())
    elif res.status == "ok":
        print(
            f"{res.video}: {res.eye} {res.power_d:+.2f} D ({res.motion}; ratio {res.ratio:.3f}; "
            f"d = {res.working_distance_m * 100:.1f} cm; passes {res.passes_used}; "
            f"confidence {res.confidence:.2f})"
        )
    else:
        print(f"{res.video}: ungradable: {res.reason}")
    return EXIT_OK if res.status == "ok" else EXIT_FAILURE


def _run_evaluate(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from healthsense.config import write_config
    from ophthalmo.retinoscopy.evaluate import (
        EvaluationConfig,
        cohort_metrics,
        read_manifest,
        run_manifest,
        write_evaluation,
    )

    try:
        rows = read_manifest(args.manifest)
        ev = EvaluationConfig(threshold_d=args.threshold)
    except FileNotFoundError as exc:
        raise CommandError(str(exc), exit_code=EXIT_USAGE) from None
    except ValueError as exc:
        raise CommandError(str(exc), exit_code=EXIT_USAGE) from None
    if args.workers < 1:
        raise CommandError("--workers must be >= 1", exit_code=EXIT_USAGE)
    cfg = _config(args)
    if args.camera is not None:
        _camera(args)
        for r in rows:
            r["camera_path"] = str(args.camera.resolve())
    preds = run_manifest(rows, config=cfg, workers=args.workers)
    metrics = cohort_metrics(preds, config=ev)
    paths = write_evaluation(args.out, preds, metrics)
    write_config(
        {
            "estimate": asdict(cfg),
            "evaluation": asdict(ev),
            "manifest": str(args.manifest),
            "workers": args.workers,
        },
        args.out,
        command="retino evaluate",
    )
    if args.json:
        print_json(metrics)
    else:
        print(
            f"{metrics['n_gradable']}/{metrics['n_videos']} gradable; "
            + (
                f"MAE {metrics['mae_d']:.2f} ± {metrics['sd_abs_error_d']:.2f} D; "
                f"sensitivity {metrics['sensitivity']:.3f}, specificity {metrics['specificity']:.3f}"
                if metrics["n_gradable"]
                else "no gradable video"
            )
            + f"; report: {paths['report']}"
        )
    return EXIT_OK if metrics["n_gradable"] == metrics["n_videos"] else EXIT_FAILURE


def _run_calibrate(args: argparse.Namespace) -> int:
    import numpy as np

    from healthsense.config import write_config
    from ophthalmo.retinoscopy.calibrate import fit_calibration, write_calibration
    from ophthalmo.retinoscopy.evaluate import read_manifest, run_manifest

    try:
        rows = read_manifest(args.manifest)
    except (FileNotFoundError, ValueError) as exc:
        raise CommandError(str(exc), exit_code=EXIT_USAGE) from None
    if args.workers < 1:
        raise CommandError("--workers must be >= 1", exit_code=EXIT_USAGE)
    cfg = _config(args)
    preds = run_manifest(rows, config=cfg, workers=args.workers, desc="calibrate")
    ok = [p for p in preds if p["status"] == "ok"]
    try:
        cal = fit_calibration(
            np.array([p["ratio"] for p in ok], float),
            np.array([p["working_distance_m"] for p in ok], float) / cfg.distance_scale,
            np.array([p["true_power_d"] for p in ok], float),
            fit_scale=args.fit_scale,
            initial_source_distance_m=cfg.source_distance_m,
        )
    except ValueError as exc:
        raise CommandError(f"{args.manifest}: {exc}") from None
    path = write_calibration(args.out, cal)
    write_config(
        {"estimate": cfg.__dict__, "manifest": str(args.manifest), "fit_scale": args.fit_scale},
        Path(args.out).parent,
        name=Path(args.out).stem + ".config.json",
        command="retino calibrate",
    )
    if args.json:
        print_json({**cal.to_dict(), "path": str(path)})
    else:
        print(
            f"u = {cal.source_distance_m:.3f} m, distance scale {cal.distance_scale:.3f} "
            f"from {cal.n_videos} videos; MAE {cal.mae_before_d:.2f} → {cal.mae_after_d:.2f} D "
            f"(RMS residual {cal.rms_residual_d:.2f} D); wrote {path}"
        )
    return EXIT_OK


def register(subparsers) -> None:
    """Add ``estimate``, ``evaluate`` and ``calibrate`` to the ``retino`` group."""
    p = add_subcommand(subparsers, "estimate", doc=_ESTIMATE_DOC)
    p.add_argument("video", nargs="?", type=Path, default=None, help="the retinoscopy video")
    p.add_argument(
        "--horizontal",
        type=Path,
        default=None,
        metavar="VIDEO",
        help="vertical streak swept horizontally (with --vertical: sphere/cyl/axis)",
    )
    p.add_argument(
        "--vertical",
        type=Path,
        default=None,
        metavar="VIDEO",
        help="horizontal streak swept vertically",
    )
    p.add_argument(
        "--meridian",
        choices=("horizontal", "vertical"),
        default="horizontal",
        help="meridian swept in VIDEO (default horizontal: vertical streak)",
    )
    p.add_argument(
        "--camera",
        type=Path,
        default=None,
        metavar="PROFILE.json",
        help="camera profile (fx, fy, cx, cy, width, height); default: from the "
        "frame size and a typical phone field of view",
    )
    _add_optics_options(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument(
        "--debug-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="write annotated frames and a plot of the edge tracks here",
    )
    p.set_defaults(_run=_run_estimate)

    p = add_subcommand(subparsers, "evaluate", doc=_EVALUATE_DOC)
    p.add_argument("manifest", type=Path, help="manifest.csv (video, power_d, ...)")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    p.add_argument("--workers", type=int, default=1, metavar="N", help="parallel processes")
    p.add_argument(
        "--camera",
        type=Path,
        default=None,
        metavar="PROFILE.json",
        help="camera profile for every video (default: the manifest's column)",
    )
    p.add_argument(
        "--threshold",
        type=_positive,
        default=0.75,
        metavar="D",
        help="refractive error present when |K| >= D (default 0.75)",
    )
    _add_optics_options(p)
    p.add_argument("--json", action="store_true", help="print the metrics as one JSON object")
    p.set_defaults(_run=_run_evaluate)

    p = add_subcommand(subparsers, "calibrate", doc=_CALIBRATE_DOC)
    p.add_argument("manifest", type=Path, help="manifest.csv of videos with known power_d")
    p.add_argument(
        "--out",
        type=Path,
        default=Path("calibration.json"),
        metavar="CAL.json",
        help="calibration JSON to write (default calibration.json)",
    )
    p.add_argument(
        "--fit-scale",
        action="store_true",
        help="also fit a scale factor of the measured working distance",
    )
    p.add_argument("--workers", type=int, default=1, metavar="N", help="parallel processes")
    _add_optics_options(p)
    p.add_argument("--json", action="store_true", help="print the calibration as one JSON object")
    p.set_defaults(_run=_run_calibrate)
