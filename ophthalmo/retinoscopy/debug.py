"""Debug output of the video pipeline: annotated frames and a plot of the edge tracks.

``healthsense retino estimate VIDEO --debug-dir DIR`` writes ``frame_NNNN.png`` (markers'
pose drawn as the panel outline and eye opening, the beam centre on the paper, the pupil
circle and the reflex edges on the pupil plane) and ``tracks.png`` (reflex-edge positions
against beam position per pass, with the fitted slopes), plus ``estimate.json``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ophthalmo.retinoscopy.camera import CameraModel
from ophthalmo.retinoscopy.frame import FRAME_V1, FrameSpec

__all__ = ["write_debug"]


def _project(h: np.ndarray, pts_mm: np.ndarray) -> np.ndarray:
    p = np.column_stack([pts_mm, np.ones(len(pts_mm))]) @ h.T
    return p[:, :2] / p[:, 2:3]


def write_debug(
    out_dir: str | Path,
    m,
    result,
    *,
    config,
    spec: FrameSpec = FRAME_V1,
    camera: CameraModel | None = None,
) -> list[Path]:
    """Write annotated frames, the edge-track plot and the estimate JSON; return the paths."""
    import cv2

    from healthsense.report import atomic_write_bytes, figure_to_png, new_figure, write_json
    from ophthalmo.retinoscopy.fit import segment_passes
    from ophthalmo.retinoscopy.markers import Pose

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = [write_json(out / "estimate.json", result.to_dict(with_fits=True))]
    axis = config.axis
    cam = camera or CameraModel.from_fov(m.width, m.height)
    vertex = config.vertex_mm(spec)
    for i, frame in sorted(m.samples.items()):
        img = frame.copy()
        if m.eye is not None and m.has_pose[i]:
            pose0 = Pose(
                m.eye,
                m.rotation[i],
                m.camera_center_mm[i],
                0,
                float("nan"),
                pose_center_mm=m.pose_center_mm[i],
            )
            if np.all(np.isfinite(pose0.rotation)):
                h0 = pose0.homography(cam, z_mm=0.0)
                hp = pose0.homography(cam, z_mm=vertex)
                px, py = spec.panel_half_mm
                ox, oy = spec.opening_half_mm
                for hx, hy, col in ((px, py, (0, 255, 0)), (ox, oy, (255, 255, 0))):
                    rect = np.array([[-hx, -hy], [hx, -hy], [hx, hy], [-hx, hy]], float)
                    poly = _project(h0, rect).round().astype(np.int32)
                    cv2.polylines(img, [poly], True, col, 1, cv2.LINE_AA)
                if np.isfinite(m.beam_paper_mm[i]):
                    b = m.beam_paper_mm[i]
                    line = [[b, -py], [b, py]] if axis == 0 else [[-px, b], [px, b]]
                    p = _project(h0, np.array(line)).round().astype(np.int32)
                    cv2.line(img, tuple(p[0]), tuple(p[1]), (0, 0, 255), 1, cv2.LINE_AA)
                if m.pupil is not None:
                    cx, cy = m.pupil.center_mm[i]
                    r = m.pupil.radius_mm[i]
                    # Pupil-plane positions are seen through the camera: project them from
                    # the pupil plane with the video's camera centre.
                    ang = np.linspace(0, 2 * np.pi, 48)
                    circ = np.column_stack([cx + r * np.cos(ang), cy + r * np.sin(ang)])
                    poly = _project(hp, circ).round().astype(np.int32)
                    cv2.polylines(img, [poly], True, (255, 0, 255), 1, cv2.LINE_AA)
                    for e, col in (
                        (m.reflex.rising_mm[i], (0, 255, 255)),
                        (m.reflex.falling_mm[i], (255, 128, 0)),
                    ):
                        if np.isfinite(e):
                            seg = (
                                [[e, cy - r], [e, cy + r]]
                                if axis == 0
                                else [[cx - r, e], [cx + r, e]]
                            )
                            p = _project(hp, np.array(seg)).round().astype(np.int32)
                            cv2.line(img, tuple(p[0]), tuple(p[1]), col, 1, cv2.LINE_AA)
        ok, png = cv2.imencode(".png", img)
        if ok:
            written.append(atomic_write_bytes(out / f"frame_{i:04d}.png", png.tobytes()))
    fig, ax = new_figure(figsize=(6.5, 4.5))
    if m.reflex is not None:
        labels = segment_passes(m.beam_pupil_mm, min_travel_mm=config.min_pass_travel_mm)
        colours = ["C0", "C1", "C2", "C3", "C4", "C5", "C6", "C7", "C8", "C9"]
        for p in range(labels.max() + 1):
            sel = labels == p
            col = colours[p % len(colours)]
            ax.plot(m.beam_pupil_mm[sel], m.reflex.rising_mm[sel], "^", color=col, ms=4)
            ax.plot(m.beam_pupil_mm[sel], m.reflex.falling_mm[sel], "v", color=col, ms=4)
        for f in result.fits:
            sel = labels == f.pass_index
            xb = m.beam_pupil_mm[sel]
            for edge in (m.reflex.rising_mm, m.reflex.falling_mm):
                ok = np.isfinite(edge[sel]) & np.isfinite(xb)
                if ok.sum() >= 2:
                    x0 = np.median(xb[ok])
                    y0 = np.median(edge[sel][ok])
                    xx = np.array([xb[ok].min(), xb[ok].max()])
                    ax.plot(
                        xx,
                        y0 + f.ratio * (xx - x0),
                        "-",
                        color=colours[f.pass_index % len(colours)],
                        lw=1,
                    )
    ax.set_xlabel("beam position on the pupil plane (mm)")
    ax.set_ylabel("reflex edge position (mm)")
    status = f"{result.power_d:+.2f} D" if result.status == "ok" else result.reason
    ax.set_title(f"{Path(m.path).name}: {status}")
    written.append(atomic_write_bytes(out / "tracks.png", figure_to_png(fig)))
    return written
