"""Retinoscopy renderer speed: cached static scene + ROI relighting vs a full re-render.

Renders the same 1280x720 realistic clip twice in one run: with the static scene built once
per clip (the simulator's default) and with the straightforward baseline that rebuilds and
relights the whole scene every frame. Prints frames/s of each, the ratio, and the cost of
MP4 (mp4v) encoding on top. Target: >= 20 rendered frames/s at 1280x720 on 2 cores.

    .venv/bin/python benchmarks/bench_retino_render.py [--frames 60] [--resolution 1280x720]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2

from ophthalmo.retinoscopy.render import ClipRenderer
from ophthalmo.retinoscopy.simulate import make_scenario


def _fps(renderer: ClipRenderer, n: int) -> float:
    renderer.render(0)  # warm-up (allocations, first-touch of textures)
    start = time.perf_counter()
    for i in range(1, n + 1):
        renderer.render(i % renderer.sc.n_frames)
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--resolution", default="1280x720")
    parser.add_argument("--baseline-frames", type=int, default=10)
    args = parser.parse_args()
    width, height = (int(v) for v in args.resolution.split("x"))
    sc = make_scenario(-1.0, width=width, height=height, duration_s=4.0, random_state=1)
    print(f"cv2 threads: {cv2.getNumThreads()}, clip {width}x{height}, {sc.n_frames} frames")

    start = time.perf_counter()
    fast = ClipRenderer(sc, random_state=2)
    setup = time.perf_counter() - start
    fps_fast = _fps(fast, args.frames)
    slow = ClipRenderer(sc, random_state=2, cache_static=False)
    fps_slow = _fps(slow, args.baseline_frames)

    writer_dir = Path(tempfile.mkdtemp())
    writer = cv2.VideoWriter(
        str(writer_dir / "b.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 30, (width, height)
    )
    start = time.perf_counter()
    for i in range(args.frames):
        writer.write(fast.render(i % sc.n_frames))
    writer.release()
    fps_write = args.frames / (time.perf_counter() - start)

    print(f"static scene setup (once per clip): {setup:.2f} s")
    print(f"cached scene + ROI relighting: {fps_fast:6.1f} frames/s  (target >= 20)")
    print(f"naive full re-render baseline: {fps_slow:6.1f} frames/s")
    print(f"speed-up: {fps_fast / fps_slow:.1f}x")
    print(f"render + mp4v encode:          {fps_write:6.1f} frames/s")
    print(f"a 40-eye cohort of 4 s clips at 30 fps: ~{40 * (setup + 120 / fps_write) / 60:.1f} min")


if __name__ == "__main__":
    main()
