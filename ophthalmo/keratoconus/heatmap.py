"""Curvature heatmaps: the absolute 26-colour scale, device styles, legend, and its inverse.

The canonical scale follows the layout of the Smolek–Klyce universal standard scale: 26
colours in 1.5 D steps, colour ``k`` centred on ``28.0 + 1.5 k`` D (28.0 … 65.5 D), i.e. bin
``k`` covers ``[27.25 + 1.5 k, 28.75 + 1.5 k)``; values beyond either end take the end colour.
Cool colours are flat, greens are normal (≈ 41.5–46 D), warm colours steep. Because colours
encode dioptres, images must never get photometric augmentation (hue/brightness jitter).

Device styles change geometry and resolution only, never the colours, so
:func:`map_from_rgb` inverts every style (to the 1.5 D bin centre):

- ``"canonical"``: the map as given (one pixel per grid point unless ``size`` is set);
- ``"topographer"``: the whole field (≈ 10 mm), rendered smoothly at ``size`` (default 512),
  as a medical-grade topographer exports it;
- ``"smartkc"``: the central 80 % of the field (the phone's rings cover less cornea), rendered
  at a coarse native resolution (5/8 of ``size``, default 160 px) and enlarged with
  nearest-neighbour, like the smartphone app's lower-resolution heatmap.

Pixels outside the valid zone (NaN) are :data:`BACKGROUND_RGB` (black), a colour not in the
palette.
"""

from __future__ import annotations

import os

import numpy as np

__all__ = [
    "BACKGROUND_RGB",
    "PALETTE_CENTERS_D",
    "PALETTE_EDGES_D",
    "PALETTE_RGB",
    "STYLES",
    "colour_index",
    "legend_image",
    "map_from_rgb",
    "read_png",
    "render_map",
    "resample_map",
    "save_png",
]

#: 26 colours, flat (dark blue) → normal (green) → steep (red → magenta → pink).
PALETTE_RGB = np.array(
    [
        [40, 0, 100],  # 28.0
        [50, 0, 140],
        [30, 0, 180],
        [0, 0, 220],
        [0, 30, 255],
        [0, 70, 255],  # 35.5
        [0, 110, 255],
        [0, 150, 255],
        [0, 190, 255],
        [0, 225, 235],  # 41.5
        [0, 200, 130],  # 43.0
        [0, 175, 60],
        [100, 210, 0],
        [180, 235, 0],  # 47.5
        [255, 255, 0],
        [255, 220, 0],
        [255, 185, 0],  # 52.0
        [255, 150, 0],
        [255, 110, 0],
        [255, 60, 0],  # 56.5
        [235, 0, 0],
        [200, 0, 0],
        [165, 0, 40],  # 61.0
        [200, 0, 140],
        [240, 60, 220],
        [255, 170, 255],  # 65.5
    ],
    dtype=np.uint8,
)
PALETTE_RGB.setflags(write=False)
#: Centre of each colour bin (D).
PALETTE_CENTERS_D = 28.0 + 1.5 * np.arange(26)
#: The 27 bin edges (D): colour k covers [edges[k], edges[k + 1]).
PALETTE_EDGES_D = 27.25 + 1.5 * np.arange(27)
#: Colour of pixels outside the valid zone.
BACKGROUND_RGB = np.array([0, 0, 0], dtype=np.uint8)
STYLES = ("canonical", "topographer", "smartkc")
_STYLE_CROP = {"canonical": 1.0, "topographer": 1.0, "smartkc": 0.8}
_STYLE_DEFAULT_SIZE = {"canonical": None, "topographer": 512, "smartkc": 256}


def colour_index(power_d: np.ndarray) -> np.ndarray:
    """Palette index (0–25) of each value; −1 where the value is NaN."""
    p = np.asarray(power_d, dtype=np.float32)
    with np.errstate(invalid="ignore"):
        idx = np.clip((p - PALETTE_EDGES_D[0]) / 1.5, 0, 25.5).astype(np.int16)
    idx[np.isnan(p)] = -1
    return idx


def _check_map(power_d: np.ndarray) -> np.ndarray:
    p = np.asarray(power_d, dtype=np.float32)
    if p.ndim != 2 or min(p.shape) < 2:
        raise ValueError(f"a power map must be a 2-D array, got shape {p.shape}")
    if not np.isfinite(p).any():
        raise ValueError("the power map is all NaN (nothing to render)")
    return p


def resample_map(power_d: np.ndarray, size: int) -> np.ndarray:
    """Resize a map with NaN to ``size × size``: bilinear inside, NaN mask kept.

    Normalised interpolation (values and mask interpolated separately) keeps the rim of the
    valid zone from being darkened by the NaN outside it.
    """
    import cv2

    p = _check_map(power_d)
    if not isinstance(size, int | np.integer) or size < 2:
        raise ValueError(f"size must be an integer >= 2, got {size!r}")
    if p.shape == (size, size):
        return p.copy()
    mask = np.isfinite(p).astype(np.float32)
    filled = np.where(mask > 0, p, 0.0).astype(np.float32)
    v = cv2.resize(filled, (int(size), int(size)), interpolation=cv2.INTER_LINEAR)
    w = cv2.resize(mask, (int(size), int(size)), interpolation=cv2.INTER_LINEAR)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(w >= 0.5, v / np.maximum(w, 1e-6), np.nan)
    return out.astype(np.float32)


def _crop(p: np.ndarray, fraction: float) -> np.ndarray:
    if fraction >= 1.0:
        return p
    n0, n1 = p.shape
    k0 = max(2, int(round(n0 * fraction)))
    k1 = max(2, int(round(n1 * fraction)))
    r0, c0 = (n0 - k0) // 2, (n1 - k1) // 2
    return p[r0 : r0 + k0, c0 : c0 + k1]


_LUT = np.vstack([PALETTE_RGB, BACKGROUND_RGB[None, :]])  # index −1 → row 26: background


def _colourise(p: np.ndarray) -> np.ndarray:
    idx = colour_index(p).astype(np.intp)
    idx[idx < 0] = 26
    return _LUT.take(idx, axis=0)


def render_map(
    power_d: np.ndarray, *, style: str = "canonical", size: int | None = None
) -> np.ndarray:
    """Render a power map (D, NaN outside the valid zone) as an RGB heatmap.

    Parameters
    ----------
    power_d : ndarray (N, N)
        Axial or tangential power in dioptres.
    style : {"canonical", "topographer", "smartkc"}
        See the module docstring.
    size : int, optional
        Output is ``size × size``; default: the map's own size for ``canonical``, 512 for
        ``topographer``, 256 for ``smartkc``.

    Returns
    -------
    ndarray (H, W, 3) uint8
    """
    import cv2

    if style not in STYLES:
        raise ValueError(f"unknown heatmap style {style!r}; use one of {', '.join(STYLES)}")
    p = _crop(_check_map(power_d), _STYLE_CROP[style])
    size = size if size is not None else _STYLE_DEFAULT_SIZE[style]
    if size is None:
        return _colourise(p)
    if not isinstance(size, int | np.integer) or size < 8:
        raise ValueError(f"size must be an integer >= 8, got {size!r}")
    if style == "smartkc":
        native = max(8, int(round(size * 5 / 8)))
        img = _colourise(resample_map(p, native))
        return cv2.resize(img, (int(size), int(size)), interpolation=cv2.INTER_NEAREST)
    return _colourise(resample_map(p, int(size)))


def map_from_rgb(image: np.ndarray, *, max_distance: float = 40.0) -> np.ndarray:
    """Dioptres (bin centres) from a heatmap rendered with :data:`PALETTE_RGB`.

    Each pixel takes the nearest palette colour or the background; pixels farther than
    ``max_distance`` (RGB Euclidean) from all of them, and background pixels, are NaN.
    Exact for PNGs written by this module (to the 1.5 D bin); approximate for JPEG.
    """
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] not in (3, 4):
        raise ValueError(f"expected an (H, W, 3) RGB image, got shape {img.shape}")
    rgb = img[..., :3].astype(np.int32)
    code = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    uniq, inverse = np.unique(code.ravel(), return_inverse=True)
    cols = np.stack([(uniq >> 16) & 255, (uniq >> 8) & 255, uniq & 255], axis=1).astype(float)
    ref = np.vstack([PALETTE_RGB, BACKGROUND_RGB[None, :]]).astype(float)
    dist = np.linalg.norm(cols[:, None, :] - ref[None, :, :], axis=2)
    best = np.argmin(dist, axis=1)
    values = np.append(PALETTE_CENTERS_D, np.nan)[best]
    values[dist[np.arange(best.size), best] > max_distance] = np.nan
    return values[inverse].reshape(code.shape).astype(np.float32)


def legend_image(*, height: int = 512, width: int = 96) -> np.ndarray:
    """A vertical colour bar of the 26-colour scale (steep at the top) with dioptre labels."""
    import cv2

    if height < 52 or width < 32:
        raise ValueError(f"legend needs at least 52×32 pixels, got {height}×{width}")
    img = np.full((height, width, 3), 255, dtype=np.uint8)
    bar_w = max(12, width // 3)
    edges = np.linspace(0, height, 27).round().astype(int)
    for k in range(26):
        top, bottom = edges[25 - k], edges[26 - k]
        img[top:bottom, :bar_w] = PALETTE_RGB[k]
        if k % 2 == 0 and bottom - top >= 6:
            scale = min(0.4, (bottom - top) / 30)
            cv2.putText(
                img,
                f"{PALETTE_CENTERS_D[k]:.1f}",
                (bar_w + 3, bottom - 2),
                cv2.FONT_HERSHEY_SIMPLEX,
                max(scale, 0.25),
                (0, 0, 0),
                1,
                cv2.LINE_AA,
            )
    return img


def save_png(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write an RGB uint8 image as PNG atomically (temporary file + rename)."""
    import cv2

    from healthsense.report import atomic_path

    img = np.asarray(image)
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {img.dtype} {img.shape}")
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(img[..., ::-1]))
    if not ok:
        raise ValueError(f"could not encode PNG for {path}")
    # Rename-atomic without fsync: a cohort writes thousands of files and fsync dominated
    # its run time; a crash leaves either no file or a complete one, never a torn PNG.
    with atomic_path(path) as tmp:
        buf.tofile(tmp)


def read_png(path: str | os.PathLike) -> np.ndarray:
    """Read a heatmap image as RGB uint8; clear errors for missing or undecodable files."""
    import cv2

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"heatmap image not found: {path}")
    data = np.fromfile(path, dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if img is None:
        raise ValueError(f"{path}: not a readable image (empty or corrupt)")
    return np.ascontiguousarray(img[..., ::-1])
