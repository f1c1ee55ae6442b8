"""The static scene of a retinoscopy clip: skin, the printed panels and the eye (albedo maps).

Two planes, both in world millimetres (see :mod:`ophthalmo.retinoscopy.camera`): the paper
plane z = 0 carries skin, the fellow eye's panel and the filmed eye's panel with its opening
(alpha = 0 there); the pupil plane z = δ carries the eye seen through the opening (eyelid
skin, sclera, iris, pupil). Albedos are linear BGR reflectances in [0, 1]. These maps are
built once per clip; only the light (beam, reflex, glint) changes from frame to frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ophthalmo.retinoscopy.frame import EYES, FrameSpec, Rect, check_eye, rasterize_rects

__all__ = ["EyeModel", "PlaneGrid", "eye_albedo", "paper_albedo"]

_SKIN_BGR = np.array([0.20, 0.27, 0.46], dtype=np.float32)
_BACKGROUND_BGR = np.array([0.02, 0.02, 0.025], dtype=np.float32)
_SCLERA_BGR = np.array([0.62, 0.64, 0.66], dtype=np.float32)


@dataclass(frozen=True)
class EyeModel:
    """The filmed eye (lengths mm, colours linear BGR).

    ``offset_mm`` places the pupil centre relative to the centre of the eye opening (the
    frame never sits perfectly centred). ``fissure_half_mm``: half width and half height of
    the palpebral fissure.
    """

    eye: str = "OD"
    pupil_radius_mm: float = 3.0
    iris_radius_mm: float = 5.9
    offset_mm: tuple[float, float] = (0.0, 0.0)
    fissure_half_mm: tuple[float, float] = (14.0, 6.5)
    iris_bgr: tuple[float, float, float] = (0.05, 0.10, 0.16)
    fundus_bgr: tuple[float, float, float] = (0.10, 0.28, 1.0)

    def __post_init__(self) -> None:
        check_eye(self.eye)
        if not 0.5 <= self.pupil_radius_mm <= 5.0:
            raise ValueError(f"pupil radius must be in [0.5, 5] mm, got {self.pupil_radius_mm}")
        if not self.pupil_radius_mm < self.iris_radius_mm:
            raise ValueError(
                f"pupil radius {self.pupil_radius_mm} mm must be smaller than the iris radius "
                f"{self.iris_radius_mm} mm"
            )
        if not self.iris_radius_mm < self.fissure_half_mm[0]:
            raise ValueError("the iris must fit in the palpebral fissure")
        if any(abs(v) > 5.0 for v in self.offset_mm):
            raise ValueError(f"eye offset {self.offset_mm} mm is more than 5 mm off the opening")


@dataclass(frozen=True)
class PlaneGrid:
    """A pixel grid on a world plane: pixel (i, j) covers ``origin + [j, j+1]/px_per_mm``."""

    origin_mm: tuple[float, float]
    px_per_mm: float
    shape: tuple[int, int]

    def centers(self) -> tuple[np.ndarray, np.ndarray]:
        """World x of the column centres and y of the row centres (mm)."""
        h, w = self.shape
        x = self.origin_mm[0] + (np.arange(w) + 0.5) / self.px_per_mm
        y = self.origin_mm[1] + (np.arange(h) + 0.5) / self.px_per_mm
        return x, y

    def to_mm(self) -> np.ndarray:
        """3×3 affine map from pixel indices (OpenCV pixel centres) to plane mm."""
        s = 1.0 / self.px_per_mm
        return np.array(
            [
                [s, 0.0, self.origin_mm[0] + 0.5 * s],
                [0.0, s, self.origin_mm[1] + 0.5 * s],
                [0, 0, 1],
            ]
        )

    def index_range(self, lo_mm: float, hi_mm: float, axis: int) -> tuple[int, int]:
        """Pixel index range ``[i0, i1)`` along ``axis`` (0: x/columns, 1: y/rows) covering mm."""
        n = self.shape[1 - axis]
        o = self.origin_mm[axis]
        i0 = int(np.floor((lo_mm - o) * self.px_per_mm))
        i1 = int(np.ceil((hi_mm - o) * self.px_per_mm))
        return max(i0, 0), min(max(i1, 0), n)


def _smooth_field(shape: tuple[int, int], rng: np.random.Generator, cells: int) -> np.ndarray:
    import cv2

    h, w = shape
    small = rng.standard_normal((max(2, h // cells), max(2, w // cells))).astype(np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def _skin(grid: PlaneGrid, rng: np.random.Generator) -> np.ndarray:
    """Skin albedo with blotches, fine texture and the face outline fading into the dark room."""
    x, y = grid.centers()
    blotch = _smooth_field(grid.shape, rng, max(4, int(6 * grid.px_per_mm)))
    fine = _smooth_field(grid.shape, rng, max(1, int(0.4 * grid.px_per_mm)))
    shade = 1.0 + 0.06 * blotch + 0.03 * fine
    face = np.clip((1.0 - (x[None, :] / 80.0) ** 2 - (y[:, None] / 110.0) ** 2) * 4.0, 0.0, 1.0)
    albedo = _SKIN_BGR[None, None, :] * (shade * face)[..., None]
    albedo += _BACKGROUND_BGR[None, None, :] * (1.0 - face)[..., None]
    return albedo.astype(np.float32)


def eye_albedo(
    x_mm: np.ndarray, y_mm: np.ndarray, model: EyeModel, *, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Albedo of an eye centred at the origin on a grid (``x`` columns, ``y`` rows, mm).

    Returns ``(albedo (h, w, 3), pupil coverage (h, w))``; edges anti-aliased by the
    signed distance over one pixel.
    """
    xx, yy = np.meshgrid(x_mm, y_mm)
    px = float(abs(x_mm[1] - x_mm[0])) if x_mm.size > 1 else 0.1
    r = np.hypot(xx, yy)
    hx, hy = model.fissure_half_mm

    def cover(signed_mm: np.ndarray) -> np.ndarray:  # inside when signed > 0
        return np.clip(signed_mm / px + 0.5, 0.0, 1.0).astype(np.float32)

    # Almond-shaped fissure: |y| < hy (1 − (x/hx)²).
    lid = hy * np.clip(1.0 - (xx / hx) ** 2, 0.0, None)
    in_fissure = cover(lid - np.abs(yy))
    iris_c = cover(model.iris_radius_mm - r)
    pupil_c = cover(model.pupil_radius_mm - r)
    theta = np.arctan2(yy, xx)
    streaks = 1.0 + 0.25 * np.sin(theta * 37.0 + 3.0 * np.sin(theta * 5.0)) * (
        0.5 + 0.5 * rng.uniform()
    )
    limbus = np.clip((r - (model.iris_radius_mm - 0.8)) / 0.8, 0.0, 1.0)
    iris = (
        np.asarray(model.iris_bgr, dtype=np.float32)[None, None, :]
        * (streaks * (1.0 - 0.5 * limbus))[..., None]
    )
    # Eyelid skin is a little darker and shadowed near the lid margin.
    lid_shadow = np.clip(1.0 - 0.5 * np.exp(-np.abs(np.abs(yy) - lid) / 1.2), 0.4, 1.0)
    skin = _SKIN_BGR[None, None, :] * (0.9 * lid_shadow)[..., None]
    sclera = _SCLERA_BGR[None, None, :] * np.ones_like(r)[..., None]
    albedo = sclera * (1 - iris_c)[..., None] + iris * (iris_c - pupil_c)[..., None]
    albedo += 0.008 * pupil_c[..., None]
    albedo = albedo * in_fissure[..., None] + skin * (1.0 - in_fissure)[..., None]
    return albedo.astype(np.float32), (pupil_c * in_fissure).astype(np.float32)


def paper_albedo(
    grid: PlaneGrid,
    spec: FrameSpec,
    eye: str,
    *,
    fellow_model: EyeModel,
    panel_pitch_mm: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Albedo (h, w, 3) premultiplied by the layer alpha, and alpha (0 in the eye opening).

    The filmed panel is centred at the origin; the fellow eye's panel sits ``panel_pitch_mm``
    to the side where the other eye is (OD is on the camera's left), with a static eye
    painted into its opening.
    """
    eye = check_eye(eye)
    fellow = EYES[1 - EYES.index(eye)]
    side = 1.0 if eye == "OD" else -1.0
    dx = side * panel_pitch_mm
    albedo = _skin(grid, rng)
    x, y = grid.centers()
    ox, oy = spec.opening_half_mm

    def coverage(rect: Rect) -> np.ndarray:
        full = Rect(rect.x0, rect.y0, rect.x1, rect.y1, 1.0)
        cov, _ = rasterize_rects(
            [full], shape=grid.shape, origin_mm=grid.origin_mm, px_per_mm=grid.px_per_mm
        )
        return cov

    def paint(rects: list[Rect], base: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # Painted value is already premultiplied by the card's coverage (background 0).
        value, _ = rasterize_rects(
            rects, shape=grid.shape, origin_mm=grid.origin_mm, px_per_mm=grid.px_per_mm
        )
        out = base * (1.0 - coverage(rects[0]))[..., None] + value[..., None]
        return out.astype(np.float32), coverage(rects[1])

    # Fellow panel first (the filmed one overlaps it when the pitch is small).
    fellow_rects = [r.shifted(dx, 0.0) for r in spec.shapes(fellow)]
    i0, i1 = grid.index_range(dx - ox, dx + ox, axis=0)
    j0, j1 = grid.index_range(-oy, oy, axis=1)
    if i1 > i0 and j1 > j0:
        fellow_eye, _ = eye_albedo(x[i0:i1] - dx, y[j0:j1], fellow_model, rng=rng)
        albedo[j0:j1, i0:i1] = fellow_eye
    albedo, fellow_hole = paint(fellow_rects, albedo)
    # The fellow opening shows the static fellow eye: put it back where the card is cut.
    if i1 > i0 and j1 > j0:
        sl = (slice(j0, j1), slice(i0, i1))
        albedo[sl] += fellow_hole[sl][..., None] * fellow_eye
    albedo, hole = paint(spec.shapes(eye), albedo)
    alpha = (1.0 - hole).astype(np.float32)
    return albedo, alpha
