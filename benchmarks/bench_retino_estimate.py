"""Speed of the retinoscopy video pipeline (target: ≥ 60 frames/s at 720p on 2 cores).

Times, on the same clip and in the same run:

- ``decode``: reading the frames only (the floor no pipeline can beat);
- ``baseline``: a straightforward pipeline front end, full-resolution ArUco detection and
  ``solvePnP`` on every frame (what the published research code does per frame);
- ``pipeline``: ``estimate_power`` end to end (detection on a downscaled frame, optical-flow
  tracking between detections, small rectified regions, vectorised edges, estimation).

Usage::

    python benchmarks/bench_retino_estimate.py                 # renders a 5 s 720p clip
    python benchmarks/bench_retino_estimate.py --video clip.mp4 --camera camera.json
    python benchmarks/bench_retino_estimate.py --resolution 1920x1080 --repeat 3
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def _render(folder: Path, width: int, height: int, duration: float) -> tuple[Path, Path]:
    from ophthalmo.retinoscopy.simulate import make_scenario, simulate_clip

    sc = make_scenario(
        -1.0,
        width=width,
        height=height,
        duration_s=duration,
        difficulty="realistic",
        random_state=11,
    )
    paths = simulate_clip(sc, folder / "bench.mp4", random_state=12)
    return paths["video"], paths["camera_profile"]


def _decode(video: Path) -> int:
    from ophthalmo.retinoscopy.video import iter_frames

    n = 0
    for _ in iter_frames(video):
        n += 1
    return n


def _baseline(video: Path, camera) -> int:
    """Full-resolution detection + pose on every frame, nothing else."""
    import cv2

    from ophthalmo.retinoscopy.frame import FRAME_V1
    from ophthalmo.retinoscopy.markers import estimate_pose
    from ophthalmo.retinoscopy.video import iter_frames

    det = cv2.aruco.ArucoDetector(FRAME_V1.aruco_dictionary(), cv2.aruco.DetectorParameters())
    n = 0
    for _, _, frame in iter_frames(video):
        grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        corners, ids, _ = det.detectMarkers(grey)
        if ids is not None:
            found = {int(i): c.reshape(4, 2).astype(float) for c, i in zip(corners, ids.ravel())}
            estimate_pose(found, camera, "OD")
        n += 1
    return n


def _pipeline(video: Path, camera) -> tuple[int, object]:
    from ophthalmo.retinoscopy.estimate import estimate_power

    res = estimate_power(video, camera=camera)
    return res.n_frames, res


def main() -> None:
    import cv2

    from ophthalmo.retinoscopy.camera import CameraModel

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--video", type=Path)
    ap.add_argument("--camera", type=Path)
    ap.add_argument("--resolution", default="1280x720")
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2, help="OpenCV threads (2 cores)")
    args = ap.parse_args()
    cv2.setNumThreads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        if args.video is None:
            w, h = (int(v) for v in args.resolution.lower().split("x"))
            t0 = time.perf_counter()
            video, cam_path = _render(Path(tmp), w, h, args.duration)
            print(
                f"rendered {video.name} ({w}x{h}, {args.duration:g} s) in "
                f"{time.perf_counter() - t0:.1f} s"
            )
        else:
            video, cam_path = args.video, args.camera
        camera = CameraModel.from_profile(cam_path) if cam_path else None
        if camera is None:
            from ophthalmo.retinoscopy.video import probe_video

            info = probe_video(video)
            camera = CameraModel.from_fov(info.width, info.height)
        timings: dict[str, list[float]] = {"decode": [], "baseline": [], "pipeline": []}
        frames = 0
        result = None
        for _ in range(args.repeat):
            for name in timings:
                t0 = time.perf_counter()
                if name == "decode":
                    frames = _decode(video)
                elif name == "baseline":
                    _baseline(video, camera)
                else:
                    _, result = _pipeline(video, camera)
                timings[name].append(time.perf_counter() - t0)
        print(f"{frames} frames, best of {args.repeat}, OpenCV threads {args.threads}")
        best = {k: float(np.min(v)) for k, v in timings.items()}
        for name, sec in best.items():
            print(f"  {name:9s} {sec:6.2f} s  {frames / sec:7.1f} frames/s")
        print(
            f"pipeline vs baseline: {best['baseline'] / best['pipeline']:.2f}x faster; "
            f"pipeline overhead over decoding: "
            f"{(best['pipeline'] - best['decode']) / frames * 1000:.1f} ms/frame"
        )
        fps = frames / best["pipeline"]
        print(f"target >= 60 frames/s: {'met' if fps >= 60 else 'NOT met'} ({fps:.1f})")
        if result is not None:
            truth = " (truth -1.00 D)" if args.video is None else ""
            print(f"estimate: {result.status} {result.power_d:+.2f} D{truth}")


if __name__ == "__main__":
    main()
