"""Adapter: keratoconus screening from topography as the screening run's second test.

Inputs: a raw-map case (``topography_npz``) or an axial + tangential PNG heatmap pair (decoded
back to dioptres with the palette, to the 1.5 D bin). Two methods, and the outputs say which:

- ``cnn``: the dual-head model of ``--kc-model`` (probability ≥ the model card's threshold,
  chosen on validation data, or ``keratoconus.threshold``);
- ``index-rules`` (no model given): the literature rules on KISA %, central K and I-S
  (:func:`ophthalmo.keratoconus.indices.rule_classify`); ``keratoconus`` is positive,
  ``suspect`` too with ``keratoconus.refer_suspect``.

The indices are reported with either method. A model is loaded once per worker process.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from healthsense.screening._common import TestNotAvailable, test_result
from healthsense.screening.config import KeratoconusOptions
from healthsense.screening.manifest import EyeCase

__all__ = ["KcModel", "load_kc_model", "run_keratoconus", "topography_available"]

_INDEX_KEYS = ("kisa_pct", "central_k_d", "i_s_d", "srax_deg", "ast_d", "simk_k1_d", "simk_k2_d")
#: Per-process cache of loaded checkpoints, keyed by (path, sha256).
_MODELS: dict[tuple[str, str], Any] = {}


def _have(*modules: str) -> bool:
    try:
        return all(importlib.util.find_spec(m) is not None for m in modules)
    except ModuleNotFoundError:
        return False


def topography_available() -> bool:
    """Whether the keratoconus topography functions (io, heatmap, indices) are importable."""
    return _have(
        "ophthalmo.keratoconus.io", "ophthalmo.keratoconus.heatmap", "ophthalmo.keratoconus.indices"
    )


@dataclass(frozen=True)
class KcModel:
    """A keratoconus checkpoint as the screening run records it (the weights load lazily)."""

    path: str
    sha256: str
    version: str
    threshold: float

    def load(self):
        """(model, card), cached per process."""
        key = (self.path, self.sha256)
        if key not in _MODELS:
            from ophthalmo.keratoconus.train import load_checkpoint

            _MODELS[key] = load_checkpoint(self.path, map_location="cpu")
        return _MODELS[key]


def load_kc_model(path: str | Path) -> KcModel:
    """Validate a checkpoint and describe it (version from its model card, weights sha256).

    Raises
    ------
    FileNotFoundError, ValueError
        When the file is missing or not a healthsense keratoconus checkpoint.
    TestNotAvailable
        When the keratoconus model code is not installed.
    """
    from healthsense.runtime import sha256_file

    if not _have("ophthalmo.keratoconus.train", "ophthalmo.keratoconus.predict"):
        raise TestNotAvailable("the keratoconus model code (ophthalmo.keratoconus.train) is absent")
    path = Path(path).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: keratoconus checkpoint not found")
    digest = sha256_file(path)
    ref = KcModel(str(path), digest, "", 0.5)
    _, card = ref.load()
    threshold = card.get("threshold")
    if threshold is None or not 0.0 < float(threshold) < 1.0:
        raise ValueError(f"{path}: the model card has no valid decision threshold")
    version = " · ".join(
        str(v)
        for v in (
            card.get("name", "keratoconus model"),
            f"stage {card['stage']}" if "stage" in card else None,
            card.get("created"),
        )
        if v
    )
    return KcModel(str(path), digest, version, float(threshold))


def _load_maps(case: EyeCase, options: KeratoconusOptions) -> tuple[np.ndarray, np.ndarray, float]:
    if case.given("topography_npz"):
        from ophthalmo.keratoconus.io import load_case

        path = case.path("topography_npz")
        if not path.exists():
            raise FileNotFoundError(f"{path.name}: file not found")
        axial, tangential, mm_per_px, eye = load_case(path)
        if eye != case.eye:
            raise ValueError(
                f"{path.name}: laterality mismatch (the file says {eye}, the manifest {case.eye})"
            )
        return axial, tangential, mm_per_px
    from ophthalmo.keratoconus.heatmap import map_from_rgb, read_png

    maps = []
    for column in ("axial_png", "tangential_png"):
        path = case.path(column)
        if not path.exists():
            raise FileNotFoundError(f"{path.name}: file not found")
        image = read_png(path)
        if image.shape[0] != image.shape[1]:
            raise ValueError(f"{path.name}: heatmaps must be square, got {image.shape[:2]}")
        power = map_from_rgb(image)
        if np.isfinite(power).mean() < 0.2:
            raise ValueError(f"{path.name}: not a heatmap in the toolkit's 26-colour scale")
        maps.append(power)
    if maps[0].shape != maps[1].shape:
        raise ValueError("axial and tangential PNGs differ in size")
    return maps[0], maps[1], options.png_field_mm / maps[0].shape[0]


def _figure(axial: np.ndarray, tangential: np.ndarray, path: Path) -> None:
    from ophthalmo.keratoconus.heatmap import legend_image, render_map, save_png

    size = 256
    a = render_map(axial, style="canonical", size=size)
    t = render_map(tangential, style="canonical", size=size)
    legend = legend_image(height=size, width=72)
    gap = np.full((size, 6, 3), 255, np.uint8)
    save_png(path, np.concatenate([a, gap, t, gap, legend], axis=1))


def _cnn(case: EyeCase, model_ref: KcModel, options: KeratoconusOptions) -> dict[str, Any]:
    from ophthalmo.keratoconus.predict import collect_cases, predict_cases

    if case.given("topography_npz"):
        frame = collect_cases([case.path("topography_npz")])
    else:
        frame = collect_cases([case.path("axial_png"), case.path("tangential_png")], eye=case.eye)
    model, card = model_ref.load()
    (res,) = predict_cases(model, card, frame, threshold=options.threshold, device=options.device)
    if "error" in res:
        raise ValueError(str(res["error"]))
    return res


def run_keratoconus(
    case: EyeCase,
    options: KeratoconusOptions,
    *,
    model: KcModel | None = None,
    figure_dir: Path | None = None,
) -> dict[str, Any]:
    """The keratoconus test of one eye; bad input gives ``ungradable`` with a reason.

    Raises
    ------
    TestNotAvailable
        When the keratoconus library is not installed.
    """
    if not case.wants_keratoconus:
        return test_result("keratoconus", "not_requested", "no topography input in the manifest")
    if not topography_available():
        raise TestNotAvailable("the keratoconus topography library is not available")
    try:
        axial, tangential, mm_per_px = _load_maps(case, options)
    except (OSError, ValueError) as exc:
        return test_result("keratoconus", "ungradable", _short(exc, case))
    figures: dict[str, str] = {}
    if figure_dir is not None:
        path = figure_dir / "topography.png"
        _figure(axial, tangential, path)
        figures["axial and tangential curvature (D)"] = str(path)
    from ophthalmo.keratoconus.indices import compute_indices

    try:
        idx = compute_indices(axial, mm_per_px=mm_per_px, eye=case.eye)
        index_values = {k: idx[k] for k in _INDEX_KEYS}
        rule_class, index_error = idx["rule_class"], ""
    except ValueError as exc:
        index_values, rule_class, index_error = {}, "", str(exc)
    if model is not None:
        try:
            res = _cnn(case, model, options)
        except (OSError, ValueError) as exc:
            return test_result("keratoconus", "ungradable", _short(exc, case), figures=figures)
        prob, thr = float(res["probability"]), float(res["threshold"])
        positive = prob >= thr
        out = test_result(
            "keratoconus",
            "ok",
            "",
            method="cnn",
            probability=prob,
            threshold=thr,
            rule_class=rule_class,
            **index_values,
            figures=figures,
        )
        finding = (
            f"Keratoconus model probability {prob:.2f} "
            + ("≥" if positive else "<")
            + f" its threshold {thr:.2f}: "
            + ("keratoconus suspected." if positive else "no keratoconus pattern.")
        )
    else:
        if not rule_class:
            return test_result(
                "keratoconus", "ungradable", f"indices undefined: {index_error}", figures=figures
            )
        positive = rule_class == "keratoconus" or (
            options.refer_suspect and rule_class == "suspect"
        )
        out = test_result(
            "keratoconus",
            "ok",
            "",
            method="index-rules",
            rule_class=rule_class,
            **index_values,
            figures=figures,
        )
        finding = (
            f"Index rules (no model given): KISA {index_values['kisa_pct']:.0f} %, central K "
            f"{index_values['central_k_d']:.1f} D, I-S {index_values['i_s_d']:+.2f} D → "
            f"{rule_class}."
        )
    out.update(positive=bool(positive), finding=finding)
    return out


def _short(exc: BaseException, case: EyeCase) -> str:
    """The error text with absolute paths shortened to file names (stable across machines)."""
    text = str(exc)
    for column in ("topography_npz", "axial_png", "tangential_png"):
        p = case.path(column)
        if p is not None:
            text = text.replace(str(p), p.name)
    return text
