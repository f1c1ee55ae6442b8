"""Pinhole camera: intrinsics, camera profiles and the homographies of the face planes.

World coordinates are the filmed eye's *panel coordinates* (mm): origin at the centre of the
eye opening on the paper plane, +x right as the camera sees it, +y down, +z away from the
camera into the face. The paper frame is the plane z = 0, the pupil plane z = δ (vertex
distance). A pose maps world to camera coordinates, ``X_c = R (X_w − C)`` (OpenCV's
convention with ``tvec = −R C``), so ``cv2.solvePnP`` on the markers recovers it directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "DEFAULT_HFOV_DEG",
    "CameraModel",
    "plane_homography",
    "project_points",
    "rotation_matrix",
]

#: Horizontal field of view of a phone main camera at about 2× zoom, typical when filming
#: through a retinoscope peephole (the simulator's default; profiles override it).
DEFAULT_HFOV_DEG = 30.0


@dataclass(frozen=True)
class CameraModel:
    """Pinhole intrinsics in pixels (no lens distortion) and the frame size."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def __post_init__(self) -> None:
        if self.width < 16 or self.height < 16:
            raise ValueError(f"frame size {self.width}x{self.height} is too small")
        if not (self.fx > 0 and self.fy > 0 and np.isfinite(self.fx) and np.isfinite(self.fy)):
            raise ValueError(f"focal lengths must be positive, got fx={self.fx}, fy={self.fy}")

    @classmethod
    def from_fov(
        cls, width: int, height: int, *, hfov_deg: float = DEFAULT_HFOV_DEG
    ) -> CameraModel:
        """Square pixels, principal point at the image centre, focal length from the HFOV."""
        if not 1.0 < hfov_deg < 150.0:
            raise ValueError(
                f"horizontal field of view must be in (1, 150) degrees, got {hfov_deg}"
            )
        f = (width / 2.0) / np.tan(np.deg2rad(hfov_deg) / 2.0)
        return cls(float(f), float(f), width / 2.0, height / 2.0, int(width), int(height))

    @property
    def matrix(self) -> np.ndarray:
        """The 3×3 intrinsic matrix ``K``."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    def to_profile(self) -> dict[str, float | int]:
        """The camera-profile JSON object (``fx, fy, cx, cy, width, height``)."""
        return {
            "fx": self.fx,
            "fy": self.fy,
            "cx": self.cx,
            "cy": self.cy,
            "width": self.width,
            "height": self.height,
        }

    @classmethod
    def from_profile(cls, profile: dict | str | Path) -> CameraModel:
        """Read a camera profile (a mapping or a JSON file) with clear errors."""
        from healthsense.report import read_json

        source = str(profile) if not isinstance(profile, dict) else "camera profile"
        data = read_json(profile) if not isinstance(profile, dict) else profile
        keys = ("fx", "fy", "cx", "cy", "width", "height")
        missing = [k for k in keys if k not in data]
        if missing:
            raise ValueError(f"{source}: missing keys {missing} (need {list(keys)})")
        try:
            return cls(
                float(data["fx"]),
                float(data["fy"]),
                float(data["cx"]),
                float(data["cy"]),
                int(data["width"]),
                int(data["height"]),
            )
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{source}: invalid camera profile ({exc})") from None


def rotation_matrix(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """World-to-camera rotation for an instrument turned by yaw (about y), pitch, roll (rad).

    Positive yaw turns the optical axis toward +x, positive pitch toward +y (down).
    """
    cy_, sy_ = np.cos(yaw), np.sin(yaw)
    cp, sp = np.cos(pitch), np.sin(pitch)
    cr, sr = np.cos(roll), np.sin(roll)
    r_yaw = np.array([[cy_, 0.0, sy_], [0.0, 1.0, 0.0], [-sy_, 0.0, cy_]])  # camera→world
    r_pitch = np.array([[1.0, 0.0, 0.0], [0.0, cp, sp], [0.0, -sp, cp]])
    r_roll = np.array([[cr, -sr, 0.0], [sr, cr, 0.0], [0.0, 0.0, 1.0]])
    cam_to_world = r_yaw @ r_pitch @ r_roll
    return cam_to_world.T


def project_points(
    points_mm: np.ndarray, camera: CameraModel, rotation: np.ndarray, center_mm: np.ndarray
) -> np.ndarray:
    """Project world points ``(..., 3)`` (mm) to pixels ``(..., 2)`` (OpenCV pixel centres)."""
    pts = np.asarray(points_mm, dtype=float)
    cam = (pts - center_mm) @ rotation.T
    z = cam[..., 2]
    if np.any(z <= 0):
        raise ValueError("a point lies behind the camera")
    u = camera.fx * cam[..., 0] / z + camera.cx
    v = camera.fy * cam[..., 1] / z + camera.cy
    return np.stack([u, v], axis=-1)


def plane_homography(
    camera: CameraModel, rotation: np.ndarray, center_mm: np.ndarray, *, z_mm: float
) -> np.ndarray:
    """Homography from plane coordinates ``(x, y)`` mm on the plane ``z = z_mm`` to pixels."""
    # X_c = R (X − C) with X = (x, y, z): columns r1, r2 and R (0, 0, z) − R C.
    t = rotation @ (np.array([0.0, 0.0, z_mm]) - np.asarray(center_mm, dtype=float))
    h = camera.matrix @ np.column_stack([rotation[:, 0], rotation[:, 1], t])
    return h / h[2, 2]
