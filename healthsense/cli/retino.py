"""Smartphone streak retinoscopy: the printable marker frame and synthetic videos with truth.

Sub-commands: ``frame`` prints the paper frame (both eye panels at exact scale), ``simulate``
renders a synthetic cohort (or one clip) with ground-truth sidecars. Video → dioptres
(``estimate``, ``evaluate``, ``calibrate``) lives in :mod:`healthsense.cli.retino_pipeline`.
Run ``healthsense retino SUBCOMMAND --help``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from healthsense.cli._common import (
    EXIT_OK,
    EXIT_USAGE,
    CommandError,
    add_group,
    add_subcommand,
    group_usage,
    print_json,
)

_FRAME_DOC = """Write the printable paper frame (version 1) as PDF, PNG or SVG.

Both eye panels at exact physical scale (A4 landscape, no margins added), a 50 mm ruler to
check the print scale and the version string. Print at 100 %.

Example: healthsense retino frame --out frame.pdf
"""

_SIMULATE_DOC = """Render synthetic retinoscopy videos with known truth.

A cohort (--n eyes with a clinically realistic spread: -6..+5 D, several near neutrality and
emmetropia, both eyes, 0.30-0.40 m, pupil radius 2-3.5 mm) or, with --power, one clip. Each
clip is an MP4 with a JSON sidecar (truth, per-frame beam and reflex edges); the folder gets
camera.json (fx, fy, cx, cy, width, height) and manifest.csv.

Examples:
  healthsense retino simulate --n 40 --seed 1 --out cohort
  healthsense retino simulate --power -1.5 --distance 0.33 --eye OS --out one
"""


def _resolution(text: str) -> tuple[int, int]:
    presets = {"720p": (1280, 720), "1080p": (1920, 1080), "4k": (3840, 2160)}
    if text.lower() in presets:
        return presets[text.lower()]
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"resolution must be WIDTHxHEIGHT or one of {sorted(presets)}, got {text!r}"
        ) from None
    if w < 160 or h < 90:
        raise argparse.ArgumentTypeError(f"resolution {w}x{h} is too small (minimum 160x90)")
    return w, h


def _number(text: str) -> float | int | str:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = add_group(parser, "retino_command")
    p = add_subcommand(sub, "frame", doc=_FRAME_DOC)
    p.add_argument("--out", required=True, type=Path, help="output file: .pdf, .png or .svg")
    p.add_argument("--dpi", type=float, default=600.0, help="PNG resolution (default 600)")
    p.add_argument("--json", action="store_true", help="print one JSON line with the result")
    p.set_defaults(_run=_run_frame)

    p = add_subcommand(sub, "simulate", doc=_SIMULATE_DOC)
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--n", type=int, default=40, help="number of eyes in the cohort (default 40)")
    p.add_argument(
        "--difficulty", choices=("easy", "realistic", "hard"), default="realistic",
        help="hand steadiness, light, noise and compression (default realistic)",
    )  # fmt: skip
    p.add_argument(
        "--meridians", choices=("horizontal", "vertical", "both"), default="horizontal",
        help="swept meridian(s): horizontal = streak vertical (default)",
    )  # fmt: skip
    p.add_argument("--resolution", type=_resolution, default=(1280, 720), metavar="WxH",
                   help="frame size, e.g. 1280x720, 1080p, 4k (default 1280x720)")  # fmt: skip
    p.add_argument("--fps", type=float, default=30.0, help="frame rate (default 30)")
    p.add_argument("--duration", type=float, default=4.0, help="clip length in s (default 4)")
    p.add_argument("--hfov", type=float, default=30.0, help="horizontal field of view, degrees")
    p.add_argument("--source-distance", type=float, default=0.40, metavar="M",
                   help="source distance u behind the peephole, m (default 0.40)")  # fmt: skip
    single = p.add_argument_group("one clip instead of a cohort")
    single.add_argument("--power", type=float, help="K of the swept meridian (D)")
    single.add_argument("--distance", type=float, default=0.35, metavar="M",
                        help="working distance d, m (default 0.35)")  # fmt: skip
    single.add_argument("--eye", default="OD", help="OD or OS (default OD)")
    single.add_argument("--pupil", type=float, default=3.0, metavar="MM", help="pupil radius, mm")
    p.add_argument("--json", action="store_true", help="print one JSON line per clip written")
    p.set_defaults(_run=_run_simulate)

    # Later groups of sub-commands (video → dioptres) register themselves from their own
    # modules, so this file need not change when they arrive.
    # Video → dioptres (estimate, evaluate, calibrate) after the frame and the simulator.
    from healthsense.cli import retino_pipeline

    retino_pipeline.register(sub)


def run(args: argparse.Namespace) -> int:
    # Reached only when no sub-command was given (each sub-command sets its own _run).
    return group_usage("retino")


def _run_frame(args: argparse.Namespace) -> int:
    from healthsense.config import write_config
    from ophthalmo.retinoscopy.frame import FRAME_V1
    from ophthalmo.retinoscopy.sheet import SHEET_FORMATS, write_sheet

    fmt = args.out.suffix.lower().lstrip(".")
    if fmt not in SHEET_FORMATS:
        raise CommandError(
            f"--out must end in .pdf, .png or .svg, got {args.out}", exit_code=EXIT_USAGE
        )
    if not 72 <= args.dpi <= 2400:
        raise CommandError(f"--dpi must be in [72, 2400], got {args.dpi}", exit_code=EXIT_USAGE)
    path = write_sheet(args.out, FRAME_V1, dpi=args.dpi)
    write_config(
        {"out": str(path), "dpi": args.dpi, "frame_version": FRAME_V1.version},
        path.parent,
        name=f"{path.stem}.config.json",
        command="retino frame",
    )
    if args.json:
        print_json({"out": str(path), "format": fmt, "version": FRAME_V1.version_string})
    else:
        print(f"wrote {path} ({FRAME_V1.version_string}); print at 100 % and check the 50 mm ruler")
    return EXIT_OK


def _run_simulate(args: argparse.Namespace) -> int:
    from healthsense.config import write_config
    from ophthalmo.retinoscopy.simulate import make_scenario, simulate_clip, simulate_cohort

    seed = 0 if args.seed is None else int(args.seed)
    width, height = args.resolution
    for name, value in (("--fps", args.fps), ("--duration", args.duration), ("--distance", args.distance),
                        ("--source-distance", args.source_distance)):  # fmt: skip
        if not value > 0:
            raise CommandError(f"{name} must be positive, got {value}", exit_code=EXIT_USAGE)
    common = {
        "difficulty": args.difficulty,
        "resolution": [width, height],
        "fps": args.fps,
        "duration_s": args.duration,
        "hfov_deg": args.hfov,
        "source_distance_m": args.source_distance,
        "seed": seed,
    }
    try:
        if args.power is not None:
            scenario = make_scenario(
                args.power,
                eye=args.eye,
                working_distance_m=args.distance,
                source_distance_m=args.source_distance,
                pupil_radius_mm=args.pupil,
                meridian_deg=90 if args.meridians == "vertical" else 0,
                width=width,
                height=height,
                fps=args.fps,
                duration_s=args.duration,
                hfov_deg=args.hfov,
                difficulty=args.difficulty,
                random_state=seed,
            )
            stem = f"clip_{scenario.eye.eye}_{args.power:+.2f}D".replace(".", "p")
            paths = simulate_clip(
                scenario,
                args.out / f"{stem}.mp4",
                random_state=seed + 1,
                camera_profile_path=args.out / "camera.json",
                extra={"difficulty": args.difficulty, "seed": seed},
            )
            records = [{"video": str(paths["video"]), "sidecar": str(paths["sidecar"]),
                        "power_d": args.power, "eye": scenario.eye.eye}]  # fmt: skip
            config = {**common, "power_d": args.power, "working_distance_m": args.distance,
                      "eye": args.eye, "pupil_radius_mm": args.pupil}  # fmt: skip
        else:
            if args.n < 1:
                raise CommandError(f"--n must be >= 1, got {args.n}", exit_code=EXIT_USAGE)
            manifest = simulate_cohort(
                args.out,
                args.n,
                difficulty=args.difficulty,
                meridians=args.meridians,
                random_state=seed,
                width=width,
                height=height,
                fps=args.fps,
                duration_s=args.duration,
                source_distance_m=args.source_distance,
                hfov_deg=args.hfov,
            )
            import csv

            with open(manifest, encoding="utf-8") as handle:
                records = [
                    {k: _number(v) for k, v in row.items()} for row in csv.DictReader(handle)
                ]
            config = {**common, "n": args.n, "meridians": args.meridians}
    except ValueError as exc:
        raise CommandError(str(exc), exit_code=EXIT_USAGE) from None
    write_config(config, args.out, command="retino simulate")
    if args.json:
        for rec in records:
            print_json(rec)
    else:
        print(f"wrote {len(records)} clip(s) to {args.out}")
    return EXIT_OK
