"""Benchmark: the screening run on N eyes with retinoscopy at 720p (target: 100 eyes ≤ 5 min
on 2 cores).

Renders a few 720p retinoscopy clips with the simulator and a small synthetic topography
cohort (once, cached in --work), builds a manifest of N eyes that reuse them (each eye is
screened from scratch: nothing is cached between eyes), then times

- the baseline: a plain loop calling the two libraries directly (``estimate_power`` and
  ``compute_indices``) on the first --baseline-eyes eyes, no screening machinery;
- the screening run (``run_screening``) on all N eyes with --workers processes.

Prints both per-eye times, their ratio (screening overhead and parallel speed-up together)
and the projected time for 100 eyes against the 300 s target.

    python benchmarks/bench_screening.py --eyes 100 --workers 2
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HEALTHSENSE_NO_PROGRESS", "1")


def _prepare(
    work: Path, n_clips: int, width: int, height: int, duration: float
) -> tuple[list, list]:
    from ophthalmo.keratoconus.synthetic import generate_cohort
    from ophthalmo.retinoscopy.simulate import simulate_cohort

    clips = work / f"clips_{width}x{height}_{n_clips}_{duration:g}"
    if not (clips / "manifest.csv").is_file():
        t = time.perf_counter()
        simulate_cohort(
            clips, n_clips, difficulty="realistic", random_state=7, width=width, height=height,
            duration_s=duration,
        )  # fmt: skip
        print(f"rendered {n_clips} clips at {width}x{height} in {time.perf_counter() - t:.1f} s")
    topo = work / "topography"
    if not (topo / "labels.csv").is_file():
        generate_cohort(topo, domain="topographer", n_eyes=8, random_state=7, image_size=64)
    with open(clips / "manifest.csv") as handle:
        videos = list(csv.DictReader(handle))
    with open(topo / "labels.csv") as handle:
        maps = list(csv.DictReader(handle))
    return [(clips / v["video"], v["eye"], float(v["power_d"])) for v in videos], [
        (topo / m["raw"], m["eye"]) for m in maps
    ]


def _manifest(path: Path, n_eyes: int, videos: list, maps: list) -> None:
    lines = ["patient_id,eye,retinoscopy_video,topography_npz,reference_power_d"]
    seen = set()
    for i in range(n_eyes):
        video, eye, power = videos[i % len(videos)]
        raw = next((m for m, e in maps if e == eye), maps[0][0])
        patient = f"B{i:04d}"
        while (patient, eye) in seen:
            patient += "x"
        seen.add((patient, eye))
        lines.append(f"{patient},{eye},{video},{raw},{power}")
    path.write_text("\n".join(lines) + "\n")


def _baseline(rows: list[tuple[Path, Path, str]], camera: Path) -> float:
    from ophthalmo.keratoconus.indices import compute_indices
    from ophthalmo.keratoconus.io import load_case
    from ophthalmo.retinoscopy.estimate import estimate_power

    t = time.perf_counter()
    for video, raw, _ in rows:
        estimate_power(video, camera=camera)
        axial, _, mm, eye = load_case(raw)
        compute_indices(axial, mm_per_px=mm, eye=eye)
    return (time.perf_counter() - t) / len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eyes", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clips", type=int, default=6, help="distinct clips rendered")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--duration", type=float, default=4.0, help="clip length (s)")
    parser.add_argument("--baseline-eyes", type=int, default=4)
    parser.add_argument(
        "--work", type=Path, default=Path(tempfile.gettempdir()) / "hs_bench_screen"
    )
    args = parser.parse_args()

    from dataclasses import replace

    from healthsense.screening import ScreeningConfig, run_screening

    args.work.mkdir(parents=True, exist_ok=True)
    videos, maps = _prepare(args.work, args.clips, args.width, args.height, args.duration)
    camera = videos[0][0].parent / "camera.json"
    manifest = args.work / f"manifest_{args.eyes}.csv"
    _manifest(manifest, args.eyes, videos, maps)

    n_base = min(args.baseline_eyes, args.eyes)
    base_rows = [(v, next((m for m, e in maps if e == eye), maps[0][0]), eye)
                 for v, eye, _ in (videos[i % len(videos)] for i in range(n_base))]  # fmt: skip
    per_eye_base = _baseline(base_rows, camera)
    print(f"baseline (direct library calls, serial): {per_eye_base:.2f} s/eye over {n_base} eyes")

    out = args.work / "out"
    shutil.rmtree(out, ignore_errors=True)
    cfg = ScreeningConfig()
    cfg = replace(cfg, refraction=replace(cfg.refraction, camera_profile=str(camera)))
    t = time.perf_counter()
    summary = run_screening(manifest, out, config=cfg, workers=args.workers)
    total = time.perf_counter() - t
    per_eye = total / args.eyes
    print(
        f"screening run: {args.eyes} eyes at {args.width}x{args.height} with {args.workers} "
        f"workers in {total:.1f} s = {per_eye:.2f} s/eye "
        f"(REFER {summary.counts['REFER']}, NO_REFER {summary.counts['NO_REFER']}, "
        f"UNGRADABLE {summary.counts['UNGRADABLE']})"
    )
    print(f"ratio baseline/screening per eye: {per_eye_base / per_eye:.2f}x")
    projected = per_eye * 100
    verdict = "meets" if projected <= 300 else "MISSES"
    print(f"projected for 100 eyes: {projected:.0f} s ({verdict} the 300 s target); "
          f"cpu count {os.cpu_count()}")  # fmt: skip
    internal = [r for r in summary.results if "internal error" in " ".join(r["reasons"])]
    if internal:
        print(f"WARNING: {len(internal)} eyes hit an internal error, e.g. {internal[0]['reasons']}")


if __name__ == "__main__":
    main()
