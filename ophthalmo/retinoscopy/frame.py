"""The printed paper frame (version 1): one specification for the printer, simulator, detector.

Every size is in millimetres at 100 % print scale, in *panel coordinates*: origin at the
centre of the eye opening, +x to the right as the camera sees it, +y down (see
``docs/retinoscopy.md`` §2). :data:`FRAME_V1` is the single source of truth; the printer
(:mod:`ophthalmo.retinoscopy.sheet`), the renderer and the marker detector all derive their
geometry from it through :meth:`FrameSpec.shapes` and :meth:`FrameSpec.marker_corners_mm`.

A panel is drawn from axis-aligned rectangles only, which :func:`rasterize_rects` renders
with exact area coverage (sub-pixel placement, no seams between marker cells).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

__all__ = [
    "CORNER_NAMES",
    "EYES",
    "FRAME_V1",
    "FrameSpec",
    "Rect",
    "check_eye",
    "marker_bits",
    "rasterize_rects",
]

#: Eyes: OD (right), OS (left).
EYES = ("OD", "OS")
#: Marker positions on a panel, in ID order within the panel.
CORNER_NAMES = ("TL", "TR", "BR", "BL")


def check_eye(eye: str) -> str:
    """Validate an eye label (``"OD"`` or ``"OS"``, case-insensitive); return it upper-case."""
    if not isinstance(eye, str) or eye.upper() not in EYES:
        raise ValueError(f"unknown eye {eye!r}: expected 'OD' (right) or 'OS' (left)")
    return eye.upper()


@dataclass(frozen=True)
class Rect:
    """An axis-aligned rectangle ``[x0, x1] × [y0, y1]`` (mm) filled with ``value``.

    ``value`` is a reflectance in [0, 1]; ``alpha = 0`` cuts a hole (the eye opening).
    """

    x0: float
    y0: float
    x1: float
    y1: float
    value: float = 1.0
    alpha: float = 1.0

    def shifted(self, dx: float, dy: float) -> Rect:
        return Rect(self.x0 + dx, self.y0 + dy, self.x1 + dx, self.y1 + dy, self.value, self.alpha)


@dataclass(frozen=True)
class FrameSpec:
    """Geometry of the printed retinoscopy frame (all lengths mm, panel coordinates).

    Attributes
    ----------
    version : version string printed on the sheet and written in every sidecar.
    dictionary : OpenCV predefined ArUco dictionary name.
    panel_half_mm : half width and half height of a panel card.
    opening_half_mm : half width and half height of the eye opening cut-out.
    marker_side_mm : marker side including its black border.
    marker_centers_mm : marker centres in :data:`CORNER_NAMES` order.
    marker_ids : per eye, the IDs in :data:`CORNER_NAMES` order.
    beam_strips_mm : the plain white strips ``(x0, y0, x1, y1)`` where the beam is measured.
    vertex_distance_mm : the pupil plane lies this far behind the frame plane.
    ruler_mm : length of the print-check ruler.
    paper_reflectance, ink_reflectance : diffuse reflectance of white card and black ink.
    """

    version: str = "1"
    dictionary: str = "DICT_4X4_50"
    panel_half_mm: tuple[float, float] = (32.0, 24.0)
    opening_half_mm: tuple[float, float] = (16.0, 10.0)
    marker_side_mm: float = 8.0
    marker_centers_mm: tuple[tuple[float, float], ...] = (
        (-24.0, -16.0),
        (24.0, -16.0),
        (24.0, 16.0),
        (-24.0, 16.0),
    )
    marker_ids: dict[str, tuple[int, int, int, int]] = field(
        default_factory=lambda: {"OD": (0, 1, 2, 3), "OS": (4, 5, 6, 7)}
    )
    beam_strips_mm: tuple[tuple[float, float, float, float], ...] = (
        (-19.0, -20.0, 19.0, -12.0),
        (-19.0, 12.0, 19.0, 20.0),
    )
    vertex_distance_mm: float = 12.0
    ruler_mm: float = 50.0
    paper_reflectance: float = 0.85
    ink_reflectance: float = 0.04

    # The dict field makes the dataclass unhashable; identity hashing is enough for caching.
    __hash__ = object.__hash__

    @property
    def version_string(self) -> str:
        return f"healthsense retinoscopy frame v{self.version} ({self.dictionary})"

    @property
    def all_marker_ids(self) -> tuple[int, ...]:
        return tuple(i for eye in EYES for i in self.marker_ids[eye])

    def aruco_dictionary(self):
        """The OpenCV ArUco dictionary object."""
        import cv2

        return cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, self.dictionary))

    def eye_of_marker(self, marker_id: int) -> str:
        """Which eye's panel carries ``marker_id`` (ValueError for foreign IDs)."""
        for eye in EYES:
            if int(marker_id) in self.marker_ids[eye]:
                return eye
        raise ValueError(f"marker id {marker_id} is not part of frame v{self.version}")

    def marker_corners_mm(self, eye: str) -> dict[int, np.ndarray]:
        """Marker corners per ID as ``(4, 2)`` arrays in OpenCV's order (TL, TR, BR, BL).

        These are the object points for ``solvePnP`` / homography on the frame plane (z = 0).
        """
        eye = check_eye(eye)
        half = self.marker_side_mm / 2.0
        offsets = np.array([[-half, -half], [half, -half], [half, half], [-half, half]])
        return {
            mid: np.asarray(center, dtype=float) + offsets
            for mid, center in zip(self.marker_ids[eye], self.marker_centers_mm, strict=True)
        }

    def shapes(self, eye: str) -> list[Rect]:
        """The panel as rectangles in painting order: card, opening (hole), marker cells."""
        eye = check_eye(eye)
        px, py = self.panel_half_mm
        ox, oy = self.opening_half_mm
        rects = [
            Rect(-px, -py, px, py, self.paper_reflectance),
            Rect(-ox, -oy, ox, oy, 0.0, alpha=0.0),
        ]
        for mid, (cx, cy) in zip(self.marker_ids[eye], self.marker_centers_mm, strict=True):
            bits = marker_bits(self.dictionary, mid)
            n = bits.shape[0]
            cell = self.marker_side_mm / n
            x0, y0 = cx - self.marker_side_mm / 2.0, cy - self.marker_side_mm / 2.0
            for row in range(n):
                # Merge runs of black cells in a row: fewer shapes, no hairlines in vector output.
                col = 0
                while col < n:
                    if bits[row, col]:
                        col += 1
                        continue
                    start = col
                    while col < n and not bits[row, col]:
                        col += 1
                    rects.append(
                        Rect(
                            x0 + start * cell,
                            y0 + row * cell,
                            x0 + col * cell,
                            y0 + (row + 1) * cell,
                            self.ink_reflectance,
                        )
                    )
        return rects

    def validate(self) -> None:
        """Check the geometry is printable and detectable (markers inside the card, apart)."""
        px, py = self.panel_half_mm
        ox, oy = self.opening_half_mm
        half = self.marker_side_mm / 2.0
        if not (0 < ox < px and 0 < oy < py):
            raise ValueError("the eye opening must lie inside the panel")
        if len(self.marker_centers_mm) != 4 or any(len(v) != 4 for v in self.marker_ids.values()):
            raise ValueError("a panel has exactly 4 markers")
        for cx, cy in self.marker_centers_mm:
            if abs(cx) + half > px or abs(cy) + half > py:
                raise ValueError(f"marker at ({cx}, {cy}) does not fit on the panel")
            if abs(cx) - half < ox and abs(cy) - half < oy:
                raise ValueError(f"marker at ({cx}, {cy}) overlaps the eye opening")
        if len(set(self.all_marker_ids)) != 8:
            raise ValueError("marker IDs must be distinct across both panels")


#: Version 1 of the frame, as fixed in ``docs/retinoscopy.md``.
FRAME_V1 = FrameSpec()


@lru_cache(maxsize=64)
def _marker_bits_cached(dictionary: str, marker_id: int) -> bytes:
    import cv2

    dic = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, dictionary))
    n = dic.markerSize + 2  # data bits plus a one-cell black border
    img = cv2.aruco.generateImageMarker(dic, int(marker_id), n, borderBits=1)
    return (img > 127).astype(np.uint8).tobytes()


def marker_bits(dictionary: str, marker_id: int) -> np.ndarray:
    """Cells of a marker including its border, ``True`` = white, shape ``(n, n)``."""
    import cv2

    dic = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, dictionary))
    n = dic.markerSize + 2
    if not 0 <= int(marker_id) < dic.bytesList.shape[0]:
        raise ValueError(f"marker id {marker_id} is not in {dictionary}")
    raw = _marker_bits_cached(dictionary, int(marker_id))
    return np.frombuffer(raw, dtype=np.uint8).reshape(n, n).astype(bool)


def _coverage(lo: float, hi: float, origin: float, px_per_mm: float, size: int):
    """Per-pixel coverage of the interval ``[lo, hi]`` mm along one axis (first index, values)."""
    a = (lo - origin) * px_per_mm
    b = (hi - origin) * px_per_mm
    i0 = max(int(np.floor(a)), 0)
    i1 = min(int(np.ceil(b)), size)
    if i1 <= i0:
        return i0, np.zeros(0)
    idx = np.arange(i0, i1, dtype=float)
    cov = np.clip(np.minimum(idx + 1.0, b) - np.maximum(idx, a), 0.0, 1.0)
    return i0, cov


def rasterize_rects(
    rects: list[Rect],
    *,
    shape: tuple[int, int],
    origin_mm: tuple[float, float],
    px_per_mm: float,
    background: float = 0.0,
    background_alpha: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Paint rectangles with exact area coverage onto a ``(height, width)`` canvas.

    Pixel ``(i, j)`` covers ``x ∈ origin_x + [j, j+1]/px_per_mm`` and likewise in y, so a
    rectangle edge at any mm position is rendered to sub-pixel accuracy. Returns
    ``(value, alpha)`` float32 arrays (value not premultiplied).
    """
    if px_per_mm <= 0 or not np.isfinite(px_per_mm):
        raise ValueError(f"px_per_mm must be positive, got {px_per_mm}")
    h, w = shape
    value = np.full((h, w), background, dtype=np.float32)
    alpha = np.full((h, w), background_alpha, dtype=np.float32)
    ox, oy = origin_mm
    for rect in rects:
        j0, cx = _coverage(rect.x0, rect.x1, ox, px_per_mm, w)
        i0, cy = _coverage(rect.y0, rect.y1, oy, px_per_mm, h)
        if cx.size == 0 or cy.size == 0:
            continue
        a = np.outer(cy, cx).astype(np.float32)
        sl = (slice(i0, i0 + cy.size), slice(j0, j0 + cx.size))
        value[sl] += a * (rect.value - value[sl])
        alpha[sl] += a * (rect.alpha - alpha[sl])
    return value, alpha
