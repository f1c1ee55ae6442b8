"""The printable sheet: both eye panels of a :class:`FrameSpec` at exact physical scale.

The sheet is an A4 landscape page (297 × 210 mm) holding the OD panel on the left and the
OS panel on the right (as the camera sees a wearer), a 50 mm ruler to check the print scale
and the version string. PNG output is rasterised with exact area coverage and carries its
resolution in a ``pHYs`` chunk; PDF and SVG are vector drawings through matplotlib with the
figure size equal to the page size (no margins), so 1 mm in the file is 1 mm on paper.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ophthalmo.retinoscopy.frame import EYES, FRAME_V1, FrameSpec, Rect, rasterize_rects

__all__ = ["SHEET_FORMATS", "SheetLayout", "render_sheet_png", "sheet_layout", "write_sheet"]

SHEET_FORMATS = ("pdf", "png", "svg")

_DISCLAIMER = "Research software, not a medical device."


@dataclass(frozen=True)
class SheetLayout:
    """Where things go on the page (mm from the top-left corner of the page, +y down)."""

    page_mm: tuple[float, float]
    panel_origin_mm: dict[str, tuple[float, float]]
    ruler_start_mm: tuple[float, float]
    texts: tuple[tuple[float, float, float, str], ...]  # (x, y baseline, height mm, text)

    __hash__ = object.__hash__


def sheet_layout(spec: FrameSpec = FRAME_V1) -> SheetLayout:
    """The page layout for ``spec``: panel centres, ruler position and the printed texts."""
    page = (297.0, 210.0)
    px, py = spec.panel_half_mm
    gap = 16.0
    cy = 80.0
    centers = {
        "OD": (page[0] / 2 - gap / 2 - px, cy),
        "OS": (page[0] / 2 + gap / 2 + px, cy),
    }
    ruler = (page[0] / 2 - spec.ruler_mm / 2, cy + py + 30.0)
    texts = [
        (centers["OD"][0] - px, cy - py - 4.0, 3.5, "OD (right eye) - camera's left"),
        (centers["OS"][0] - px, cy - py - 4.0, 3.5, "OS (left eye) - camera's right"),
        (ruler[0], ruler[1] - 8.0, 3.0, f"{spec.ruler_mm:g} mm ruler: check the print scale"),
        (20.0, 18.0, 5.0, spec.version_string),
        (20.0, 26.0, 3.0, "Print at 100 % (actual size, no fit-to-page). Cut along the grey"),
        (20.0, 31.0, 3.0, "outlines; cut out the dashed eye openings. Keep the beam strips clean."),
        (20.0, 200.0, 3.0, _DISCLAIMER),
    ]
    return SheetLayout(page, centers, ruler, tuple(texts))


def _sheet_rects(spec: FrameSpec, layout: SheetLayout) -> list[Rect]:
    """Everything except text as rectangles in page mm (values: 1 white, 0 black)."""
    rects: list[Rect] = []
    px, py = spec.panel_half_mm
    ox, oy = spec.opening_half_mm
    line = 0.25
    grey = 0.6
    for eye in EYES:
        cx, cy = layout.panel_origin_mm[eye]
        # Cut outline of the card, just outside it, so the card keeps its full size.
        for r in (
            Rect(-px - line, -py - line, px + line, -py, grey),
            Rect(-px - line, py, px + line, py + line, grey),
            Rect(-px - line, -py, -px, py, grey),
            Rect(px, -py, px + line, py, grey),
        ):
            rects.append(r.shifted(cx, cy))
        for shape in spec.shapes(eye):
            # On paper: the card and the opening (cut away later) are white, ink is black.
            value = 1.0 if (shape.value > 0.5 or shape.alpha == 0.0) else 0.0
            rects.append(Rect(shape.x0, shape.y0, shape.x1, shape.y1, value).shifted(cx, cy))
        # Dashed outline of the opening (inside the hole, which is cut away anyway).
        dash = 2.0
        for x in np.arange(-ox, ox, 2 * dash):
            x1 = min(x + dash, ox)
            rects.append(Rect(x, -oy, x1, -oy + line, grey).shifted(cx, cy))
            rects.append(Rect(x, oy - line, x1, oy, grey).shifted(cx, cy))
        for y in np.arange(-oy, oy, 2 * dash):
            y1 = min(y + dash, oy)
            rects.append(Rect(-ox, y, -ox + line, y1, grey).shifted(cx, cy))
            rects.append(Rect(ox - line, y, ox, y1, grey).shifted(cx, cy))
    rx, ry = layout.ruler_start_mm
    tick = 0.15
    rects.append(
        Rect(rx - tick / 2, ry - tick / 2, rx + spec.ruler_mm + tick / 2, ry + tick / 2, 0.0)
    )
    for mm in range(int(round(spec.ruler_mm)) + 1):
        length = 5.0 if mm % 10 == 0 else 3.5 if mm % 5 == 0 else 2.0
        rects.append(Rect(rx + mm - tick / 2, ry - length, rx + mm + tick / 2, ry, 0.0))
    return rects


def _ruler_labels(spec: FrameSpec, layout: SheetLayout) -> list[tuple[float, float, float, str]]:
    rx, ry = layout.ruler_start_mm
    return [(rx + mm - 1.0, ry + 4.5, 2.5, str(mm)) for mm in range(0, int(spec.ruler_mm) + 1, 10)]


def _png_with_dpi(gray: np.ndarray, dpi: float) -> bytes:
    """Encode an 8-bit grey image as PNG with a ``pHYs`` chunk (pixels per metre)."""
    import cv2

    ok, buf = cv2.imencode(".png", gray)
    if not ok:
        raise ValueError("could not encode the sheet as PNG")
    data = buf.tobytes()
    ppm = int(round(dpi / 0.0254))
    payload = struct.pack(">IIB", ppm, ppm, 1)
    chunk = struct.pack(">I", len(payload)) + b"pHYs" + payload
    chunk += struct.pack(">I", zlib.crc32(b"pHYs" + payload) & 0xFFFFFFFF)
    ihdr_end = 8 + 8 + 13 + 4  # signature, IHDR length+type, IHDR data, CRC
    return data[:ihdr_end] + chunk + data[ihdr_end:]


def render_sheet_png(spec: FrameSpec = FRAME_V1, *, dpi: float = 300.0) -> np.ndarray:
    """Rasterise the sheet as an 8-bit grey image at ``dpi`` (exact area coverage)."""
    import cv2

    if not 72 <= dpi <= 2400:
        raise ValueError(f"dpi must be in [72, 2400], got {dpi}")
    layout = sheet_layout(spec)
    ppm = dpi / 25.4
    w, h = (int(round(v * ppm)) for v in layout.page_mm)
    value, alpha = rasterize_rects(
        _sheet_rects(spec, layout),
        shape=(h, w),
        origin_mm=(0.0, 0.0),
        px_per_mm=ppm,
        background=1.0,
        background_alpha=1.0,
    )
    # The openings are holes in the card: white paper on the sheet.
    img = value * alpha + (1.0 - alpha)
    gray = np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)
    for x, y, height, text in (*layout.texts, *_ruler_labels(spec, layout)):
        scale = height * ppm / 22.0  # Hershey simplex capitals are ~22 px tall at scale 1
        thickness = max(1, int(round(scale * 1.6)))
        org = (int(round(x * ppm)), int(round(y * ppm)))
        cv2.putText(gray, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, 0, thickness, cv2.LINE_AA)
    return gray


def _write_vector(spec: FrameSpec, path: Path, fmt: str) -> None:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    from healthsense.report import atomic_path

    layout = sheet_layout(spec)
    wmm, hmm = layout.page_mm
    fig = Figure(figsize=(wmm / 25.4, hmm / 25.4))
    fig.patch.set_facecolor("white")
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.set_xlim(0, wmm)
    ax.set_ylim(hmm, 0)
    ax.set_axis_off()
    for r in _sheet_rects(spec, layout):
        ax.add_patch(
            Rectangle(
                (r.x0, r.y0),
                r.x1 - r.x0,
                r.y1 - r.y0,
                facecolor=str(r.value),
                edgecolor="none",
                linewidth=0,
            )
        )
    pt_per_mm = 72.0 / 25.4
    for x, y, height, text in (*layout.texts, *_ruler_labels(spec, layout)):
        # Font size ~ 1.4 × cap height.
        ax.text(x, y, text, fontsize=height * pt_per_mm * 1.4, va="baseline", ha="left")
    meta = {"Title": spec.version_string} if fmt == "pdf" else None
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=fmt, metadata=meta)


def write_sheet(path: str | Path, spec: FrameSpec = FRAME_V1, *, dpi: float = 600.0) -> Path:
    """Write the printable sheet as PDF, PNG or SVG (chosen by the file suffix), atomically."""
    from healthsense.report import atomic_write_bytes

    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in SHEET_FORMATS:
        raise ValueError(f"{path}: unsupported sheet format {fmt!r}; use one of {SHEET_FORMATS}")
    spec.validate()
    if fmt == "png":
        atomic_write_bytes(path, _png_with_dpi(render_sheet_png(spec, dpi=dpi), dpi))
    else:
        _write_vector(spec, path, fmt)
    return path
