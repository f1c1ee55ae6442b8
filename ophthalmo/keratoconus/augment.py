"""Domain-specific augmentations of corneal curvature maps (docs/keratoconus.md, section 4).

Two levels, applied in this order by :class:`KCAugment`:

1. **Map level**, on the raw dioptre maps *before* colouring (our own code): a dioptre offset
   shared by both maps (calibration differences between devices), smooth measurement noise,
   a random shrink of the valid zone, eyelid/lash occlusion at the top, and ring artefacts
   (radial streaks where a ring was mis-localised). Colours encode dioptres on an absolute
   scale, so changing dioptres and then colouring is the only correct "photometric"
   augmentation; colour jitter or hue shifts of the rendered image are never applied.
2. **Geometric**, on the rendered RGB pair (albumentations ``Affine``, identical for both
   maps): small rotations (cyclotorsion, +-10 deg), scale and decentration shifts, with
   nearest-neighbour interpolation so that every pixel keeps a palette colour; then a mirror
   flip (our own code) that **swaps laterality** (OD <-> OS), because a mirrored right eye
   looks like a left eye (temporal side on the other side).

Grid convention (docs section 3): row 0 superior, column 0 on the examiner's left.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

__all__ = [
    "AugmentConfig",
    "KCAugment",
    "eyelid_occlusion",
    "flip_pair",
    "ring_artefacts",
    "shrink_valid_zone",
]


@dataclass(frozen=True)
class AugmentConfig:
    """Strengths and probabilities of the augmentations (0 disables one).

    Parameters
    ----------
    enabled : bool
        Master switch (validation and test data are never augmented).
    offset_d : float
        Half-width of the uniform dioptre offset added to both maps.
    noise_d : float
        Standard deviation of the smooth noise (dioptres) added to each map.
    p_shrink, shrink_min : float
        Probability of shrinking the valid zone, and the smallest kept radius as a fraction
        of the current valid radius.
    p_eyelid : float
        Probability of an upper-eyelid occlusion.
    p_rings : float
        Probability of ring artefacts (1-3 radial streaks).
    rotate_deg, scale, shift : float
        Cyclotorsion range (+-deg), scale range (1 +- scale), decentration (+- fraction of
        the image size).
    p_affine : float
        Probability of the affine transform.
    p_flip : float
        Probability of the mirror flip with laterality swap.
    """

    enabled: bool = True
    offset_d: float = 0.75
    noise_d: float = 0.25
    p_shrink: float = 0.3
    shrink_min: float = 0.7
    p_eyelid: float = 0.3
    p_rings: float = 0.2
    rotate_deg: float = 10.0
    scale: float = 0.05
    shift: float = 0.04
    p_affine: float = 0.7
    p_flip: float = 0.5

    def __post_init__(self) -> None:
        for name in ("p_shrink", "p_eyelid", "p_rings", "p_affine", "p_flip"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")
        for name in ("offset_d", "noise_d", "rotate_deg", "scale", "shift"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if not 0.0 < self.shrink_min <= 1.0:
            raise ValueError(f"shrink_min must be in (0, 1], got {self.shrink_min!r}")


def _radius_grid(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    # Vertex at the centre pixel; y up (row 0 superior) so angles follow TABO.
    x = xx - (w - 1) / 2.0
    y = (h - 1) / 2.0 - yy
    return x, y, np.hypot(x, y)


def shrink_valid_zone(power_d: np.ndarray, keep_fraction: float) -> np.ndarray:
    """NaN outside ``keep_fraction`` of the current valid radius (a smaller measured zone)."""
    x, y, r = _radius_grid(power_d.shape)
    valid = np.isfinite(power_d)
    if not valid.any():
        return power_d.copy()
    r_valid = float(r[valid].max())
    out = power_d.copy()
    out[r > keep_fraction * r_valid] = np.nan
    return out


def eyelid_occlusion(power_d: np.ndarray, *, depth: float, curvature: float) -> np.ndarray:
    """NaN above a downward-curved lid margin entering ``depth`` (fraction of the radius).

    The lid is a parabola ``y = y0 - curvature * x**2 / R`` in pixels from the vertex; rows
    near row 0 (superior) are occluded first, as upper lids and lashes shadow SmartKC rings.
    """
    x, y, _ = _radius_grid(power_d.shape)
    half = (min(power_d.shape) - 1) / 2.0
    y0 = half * (1.0 - depth)
    out = power_d.copy()
    out[y > y0 - curvature * x**2 / max(half, 1.0)] = np.nan
    return out


def ring_artefacts(
    power_d: np.ndarray, *, angles_deg: np.ndarray, width_deg: float, amplitude_d: np.ndarray
) -> np.ndarray:
    """Add radial streaks: a dioptre error confined to narrow angular sectors.

    A mis-localised ring edge along a few rays of the placido image shifts the reconstructed
    curvature along those rays; on a map it shows as a thin radial streak.
    """
    x, y, _ = _radius_grid(power_d.shape)
    theta = np.degrees(np.arctan2(y, x))
    out = power_d.copy()
    for angle, amp in zip(np.atleast_1d(angles_deg), np.atleast_1d(amplitude_d), strict=True):
        d = np.abs((theta - angle + 180.0) % 360.0 - 180.0)
        out += (amp * np.exp(-0.5 * (d / max(width_deg, 1e-3)) ** 2)).astype(out.dtype)
    return out


def flip_pair(
    axial: np.ndarray, tangential: np.ndarray, eye: str
) -> tuple[np.ndarray, np.ndarray, str]:
    """Mirror both maps left-right and swap the laterality (OD <-> OS)."""
    if eye not in ("OD", "OS"):
        raise ValueError(f"eye must be 'OD' or 'OS', got {eye!r}")
    return (
        np.ascontiguousarray(axial[:, ::-1]),
        np.ascontiguousarray(tangential[:, ::-1]),
        "OS" if eye == "OD" else "OD",
    )


class KCAugment:
    """Map-level then geometric augmentation of an (axial, tangential) pair.

    Parameters
    ----------
    config : AugmentConfig
    background_rgb : tuple of int
        Fill colour of pixels moved in from outside the image (the renderer's background).
    """

    def __init__(self, config: AugmentConfig | None = None, *, background_rgb=(255, 255, 255)):
        import albumentations as A

        self.config = config or AugmentConfig()
        c = self.config
        self.background_rgb = tuple(int(v) for v in background_rgb)
        self._affine = A.Compose(
            [
                A.Affine(
                    rotate=(-c.rotate_deg, c.rotate_deg),
                    scale=(1.0 - c.scale, 1.0 + c.scale),
                    translate_percent=(-c.shift, c.shift),
                    interpolation=cv2.INTER_NEAREST,  # keep palette colours exact
                    border_mode=cv2.BORDER_CONSTANT,
                    fill=self.background_rgb,
                    p=1.0,
                )
            ],
            additional_targets={"tangential": "image"},
        )

    def maps(
        self, axial_d: np.ndarray, tangential_d: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Map-level augmentation of raw dioptre maps (NaN outside the valid zone)."""
        c = self.config
        ax = axial_d.astype(np.float32, copy=True)
        tg = tangential_d.astype(np.float32, copy=True)
        if not c.enabled:
            return ax, tg
        offset = np.float32(rng.uniform(-c.offset_d, c.offset_d)) if c.offset_d else 0.0
        ax += offset
        tg += offset
        if c.noise_d:
            for m in (ax, tg):
                # Smooth (low-pass) noise: topographer errors are spatially correlated.
                n = rng.normal(0.0, 1.0, m.shape).astype(np.float32)
                k = max(3, (min(m.shape) // 16) | 1)
                n = cv2.GaussianBlur(n, (k, k), 0)
                sd = float(n.std()) or 1.0
                m += n * np.float32(c.noise_d / sd)
        if rng.random() < c.p_shrink:
            keep = float(rng.uniform(c.shrink_min, 1.0))
            ax, tg = shrink_valid_zone(ax, keep), shrink_valid_zone(tg, keep)
        if rng.random() < c.p_eyelid:
            depth, curv = float(rng.uniform(0.1, 0.4)), float(rng.uniform(0.2, 0.8))
            ax = eyelid_occlusion(ax, depth=depth, curvature=curv)
            tg = eyelid_occlusion(tg, depth=depth, curvature=curv)
        if rng.random() < c.p_rings:
            k = int(rng.integers(1, 4))
            angles = rng.uniform(0.0, 360.0, k)
            amps = rng.normal(0.0, 1.5, k)
            ax = ring_artefacts(ax, angles_deg=angles, width_deg=2.0, amplitude_d=amps)
            # Tangential power amplifies local slope errors.
            tg = ring_artefacts(tg, angles_deg=angles, width_deg=2.0, amplitude_d=2.0 * amps)
        return ax, tg

    def images(
        self, axial_rgb: np.ndarray, tangential_rgb: np.ndarray, eye: str, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, str]:
        """Geometric augmentation of the rendered pair; returns the (possibly swapped) eye."""
        c = self.config
        if axial_rgb.shape != tangential_rgb.shape:
            raise ValueError(
                f"axial and tangential images differ in shape: {axial_rgb.shape} vs "
                f"{tangential_rgb.shape}"
            )
        if not c.enabled:
            return axial_rgb, tangential_rgb, eye
        if rng.random() < c.p_affine:
            self._affine.set_random_seed(int(rng.integers(0, 2**31 - 1)))
            out = self._affine(image=axial_rgb, tangential=tangential_rgb)
            axial_rgb, tangential_rgb = out["image"], out["tangential"]
        if rng.random() < c.p_flip:
            axial_rgb, tangential_rgb, eye = flip_pair(axial_rgb, tangential_rgb, eye)
        return axial_rgb, tangential_rgb, eye
