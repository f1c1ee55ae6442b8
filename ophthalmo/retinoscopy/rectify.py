"""Small rectified regions of a face plane, sampled at a fixed scale (px per mm).

Everything after marker detection works in these: the eye opening seen on the pupil plane,
the beam strips on the paper plane. A region is warped straight from the frame with one
``cv2.warpPerspective`` of a few hundred pixels, so the cost does not grow with the video
resolution and every measurement comes out in millimetres of world coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ophthalmo.retinoscopy.camera import CameraModel

__all__ = ["PlaneROI"]


@dataclass(frozen=True)
class PlaneROI:
    """The rectangle ``[x0, x1] × [y0, y1]`` mm of the plane ``z = z_mm``.

    Column ``j`` of the warped image is centred on ``x0 + (j + 0.5) / px_per_mm_x``, row
    ``i`` on ``y0 + (i + 0.5) / px_per_mm_y``.
    """

    x0: float
    y0: float
    x1: float
    y1: float
    z_mm: float
    px_per_mm_x: float
    px_per_mm_y: float

    def __post_init__(self) -> None:
        if not (self.x1 > self.x0 and self.y1 > self.y0):
            raise ValueError(f"empty region [{self.x0}, {self.x1}] × [{self.y0}, {self.y1}] mm")
        if not (self.px_per_mm_x > 0 and self.px_per_mm_y > 0):
            raise ValueError("the sampling scale must be positive")

    @property
    def shape(self) -> tuple[int, int]:
        """``(rows, columns)`` of the warped image."""
        rows = max(1, round((self.y1 - self.y0) * self.px_per_mm_y))
        cols = max(1, round((self.x1 - self.x0) * self.px_per_mm_x))
        return rows, cols

    def index_to_mm(self) -> np.ndarray:
        """3×3 affine map from (column, row) indices to plane mm."""
        sx, sy = 1.0 / self.px_per_mm_x, 1.0 / self.px_per_mm_y
        return np.array([[sx, 0.0, self.x0 + 0.5 * sx], [0.0, sy, self.y0 + 0.5 * sy], [0, 0, 1]])

    def x_mm(self, col: np.ndarray | float) -> np.ndarray | float:
        return self.x0 + (np.asarray(col) + 0.5) / self.px_per_mm_x

    def y_mm(self, row: np.ndarray | float) -> np.ndarray | float:
        return self.y0 + (np.asarray(row) + 0.5) / self.px_per_mm_y

    def col_of(self, x_mm: np.ndarray | float) -> np.ndarray | float:
        return (np.asarray(x_mm) - self.x0) * self.px_per_mm_x - 0.5

    def row_of(self, y_mm: np.ndarray | float) -> np.ndarray | float:
        return (np.asarray(y_mm) - self.y0) * self.px_per_mm_y - 0.5

    def warp(self, image: np.ndarray, pose, camera: CameraModel) -> np.ndarray:
        """Sample the region from ``image`` under ``pose`` (bilinear)."""
        import cv2

        m = pose.homography(camera, z_mm=self.z_mm) @ self.index_to_mm()
        rows, cols = self.shape
        return cv2.warpPerspective(
            image,
            m,
            (cols, rows),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REPLICATE,
        )
