"""Screening configuration: the referral thresholds and test options, as frozen dataclasses.

Loaded with :func:`healthsense.config.load_config` from a TOML file (top-level keys, or a
``[screen]`` table) and ``key=value`` overrides such as ``refraction.refer_power_d=1.0``.

Referral rule (stated on every page; see :func:`healthsense.screening.decide.decide`):

- **refraction positive** when |spherical equivalent| ≥ ``refraction.refer_power_d`` or (with
  ``refraction.use_meridians``) the power of any measured meridian reaches it in magnitude;
  the default 0.75 D is the retinoscopy docs' definition of a refractive error;
- **keratoconus positive** when the CNN's probability ≥ the model card's threshold (or
  ``keratoconus.threshold`` when set), or, without a model, when the index rules class the eye
  ``keratoconus`` (also ``suspect`` with ``keratoconus.refer_suspect``);
- **REFER** if any gradable test is positive (even when the other test is ungradable);
  **UNGRADABLE** if no test is gradable, or (with ``require_all_tests``, the default) a
  requested test is ungradable and no gradable test is positive; **NO_REFER** otherwise.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = [
    "KeratoconusOptions",
    "RefractionOptions",
    "ScreeningConfig",
    "config_sha256",
    "load_screening_config",
]


@dataclass(frozen=True)
class RefractionOptions:
    """Retinoscopy: referral threshold and the video pipeline's optics settings."""

    refer_power_d: float = 0.75
    use_meridians: bool = True
    source_distance_m: float = 0.40
    vertex_distance_m: float = 0.012
    camera_profile: str = ""
    #: An estimate whose confidence is below this is treated as ungradable (0: keep all).
    min_confidence: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 < self.refer_power_d <= 20.0:
            raise ValueError(f"refer_power_d must be in (0, 20] D, got {self.refer_power_d}")
        if not 0.05 <= self.source_distance_m <= 2.0:
            raise ValueError(
                f"source_distance_m must be in [0.05, 2] m, got {self.source_distance_m}"
            )
        if not 0.0 <= self.vertex_distance_m <= 0.05:
            raise ValueError(
                f"vertex_distance_m must be in [0, 0.05] m, got {self.vertex_distance_m}"
            )
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ValueError(f"min_confidence must be in [0, 1], got {self.min_confidence}")


@dataclass(frozen=True)
class KeratoconusOptions:
    """Keratoconus: decision threshold override, rule fallback, PNG geometry, device."""

    #: Overrides the model card's threshold when set (the card's is chosen on validation data).
    threshold: float | None = None
    refer_suspect: bool = False
    #: Field of view (mm) spanned by an axial/tangential PNG pair (for the index rules).
    png_field_mm: float = 10.32
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.threshold is not None and not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {self.threshold}")
        if not 3.0 <= self.png_field_mm <= 20.0:
            raise ValueError(f"png_field_mm must be in [3, 20] mm, got {self.png_field_mm}")


@dataclass(frozen=True)
class ScreeningConfig:
    """``healthsense screen`` configuration."""

    refraction: RefractionOptions = field(default_factory=RefractionOptions)
    keratoconus: KeratoconusOptions = field(default_factory=KeratoconusOptions)
    #: A requested test that is ungradable makes a non-referred eye UNGRADABLE (not NO_REFER).
    require_all_tests: bool = True
    #: Write figures (heatmaps, reflex tracks) for the patient pages.
    figures: bool = True


def load_screening_config(
    path: str | os.PathLike | None = None, overrides: Iterable[str] = ()
) -> ScreeningConfig:
    """Defaults, then a TOML file (top-level keys or a ``[screen]`` table), then overrides."""
    from healthsense.config import load_config, read_toml

    section = None
    if path is not None:
        section = "screen" if "screen" in read_toml(path) else None
    return load_config(ScreeningConfig, path, list(overrides), section=section)


def config_sha256(config: ScreeningConfig) -> str:
    """SHA-256 of the canonical JSON of a configuration (what resume compares)."""
    from healthsense.config import config_to_dict

    text = json.dumps(config_to_dict(config), sort_keys=True, separators=(",", ":"))
    from healthsense.runtime import sha256_bytes

    return sha256_bytes(text.encode())
