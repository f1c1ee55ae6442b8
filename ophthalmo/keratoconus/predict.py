"""Inference with a trained checkpoint: collect cases, score them, explain them.

Cases may be raw-map ``.npz`` files, (axial, tangential) PNG pairs, or dataset folders with a
``labels.csv``. The decision uses the threshold stored in the checkpoint's model card (chosen
on validation data at training time) unless the caller gives another one.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ophthalmo.keratoconus.data import KCDataset, read_labels

__all__ = ["collect_cases", "predict_cases"]

_COLUMNS = ("case_id", "patient_id", "eye", "label", "domain", "axial", "tangential", "raw")


def collect_cases(inputs: Sequence[str | os.PathLike], *, eye: str | None = None) -> pd.DataFrame:
    """A ``labels.csv``-style frame for ``.npz`` files, PNG pairs and dataset folders.

    PNGs are taken two at a time in the order given (axial, then tangential); their laterality
    is ``eye`` (required for PNG pairs, as an image does not carry it). A raw case's eye is
    read from the file when it is scored.

    Raises
    ------
    FileNotFoundError
        For a path that does not exist.
    ValueError
        For an unsupported file type, an odd number of PNGs, or PNGs without ``eye``.
    """
    rows: list[dict[str, Any]] = []
    pngs: list[Path] = []
    for item in inputs:
        path = Path(item)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such file or folder")
        if path.is_dir() or path.name == "labels.csv":
            frame = read_labels(path)
            rows.extend(frame[list(_COLUMNS)].to_dict("records"))
        elif path.suffix.lower() == ".npz":
            rows.append(
                dict(
                    case_id=str(path),
                    patient_id=str(path),
                    eye="",
                    label="",
                    domain="",
                    axial="",
                    tangential="",
                    raw=str(path),
                )
            )
        elif path.suffix.lower() == ".png":
            pngs.append(path)
        else:
            raise ValueError(
                f"{path}: not a case (expected a .npz raw map, PNG heatmaps or a dataset folder)"
            )
    if len(pngs) % 2:
        raise ValueError(
            f"PNG heatmaps come in (axial, tangential) pairs; got {len(pngs)} PNG files"
        )
    if pngs and eye not in ("OD", "OS"):
        raise ValueError("PNG pairs need the laterality: give eye='OD' or 'OS' (--eye)")
    for ax, tg in zip(pngs[::2], pngs[1::2], strict=True):
        rows.append(
            dict(
                case_id=str(ax),
                patient_id=str(ax),
                eye=eye,
                label="",
                domain="",
                axial=str(ax),
                tangential=str(tg),
                raw="",
            )
        )
    if not rows:
        raise ValueError("no cases given")
    return pd.DataFrame(rows, columns=list(_COLUMNS))


def predict_cases(
    model,
    card: dict[str, Any],
    frame: pd.DataFrame,
    *,
    threshold: float | None = None,
    device: str = "cpu",
    batch_size: int = 64,
    cam_dir: str | os.PathLike | None = None,
) -> list[dict[str, Any]]:
    """Score every case of ``frame``; a case that cannot be read gets an ``error`` entry.

    Returns one dict per case: ``case, eye, probability`` (of keratoconus), ``decision``
    (``"keratoconus"`` or ``"not keratoconus"``; 3-class models add ``probabilities``),
    ``threshold`` and ``label`` where known; or ``case, error``.
    """
    import torch

    from ophthalmo.keratoconus.train import positive_score, predict_proba

    thr = float(card["threshold"] if threshold is None else threshold)
    frame = frame.reset_index(drop=True)
    errors: dict[int, str] = {}
    ds = KCDataset(
        frame,
        image_size=card["image_size"],
        use_indices=card.get("use_indices", False),
        labelled=False,
    )
    ok: list[int] = []
    for i in range(len(ds)):
        if i in errors:
            continue
        try:
            frame.loc[i, "eye"] = ds._load(i)["eye"]
            ds.rgb_pair(i)  # rendering can fail too (e.g. an all-NaN map)
            ok.append(i)
        except (OSError, ValueError) as exc:
            errors[i] = str(exc)
    probs = np.zeros((0, model.spec.n_classes))
    if ok:
        probs = predict_proba(
            model, torch.utils.data.Subset(ds, ok), device=device, batch_size=batch_size
        )
    scores = positive_score(probs) if len(probs) else np.zeros(0)
    results: dict[int, dict[str, Any]] = {
        i: {"case": frame.loc[i, "case_id"], "error": msg} for i, msg in errors.items()
    }
    for j, i in enumerate(ok):
        row = frame.loc[i]
        res: dict[str, Any] = {
            "case": row["case_id"],
            "eye": row["eye"],
            "probability": float(scores[j]),
            "decision": "keratoconus" if scores[j] >= thr else "not keratoconus",
            "threshold": thr,
        }
        if probs.shape[1] == 3:
            res["probabilities"] = dict(
                zip(("normal", "suspect", "keratoconus"), map(float, probs[j]), strict=True)
            )
        if row["label"]:
            res["label"] = row["label"]
        results[i] = res
    if cam_dir is not None and ok:
        _write_cams(model, ds, ok, frame, Path(cam_dir), results)
    return [results[i] for i in range(len(frame))]


def _write_cams(model, ds, ok, frame, cam_dir: Path, results) -> None:
    import re

    from ophthalmo.keratoconus.gradcam import grad_cam, overlay
    from ophthalmo.keratoconus.heatmap import save_png

    for i in ok:
        ax, tg, meta, _ = ds[i]
        cam_a, cam_t = grad_cam(
            model, ax[None], tg[None], meta[None] if model.spec.n_meta else None
        )
        rgb_a, rgb_t, _ = ds.rgb_pair(i)
        gap = np.full((rgb_a.shape[0], 4, 3), 255, np.uint8)
        panel = np.concatenate(
            [rgb_a, overlay(rgb_a, cam_a[0]), gap, rgb_t, overlay(rgb_t, cam_t[0])], 1
        )
        stem = (
            re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(str(frame.loc[i, "case_id"])).stem) or f"case{i}"
        )
        path = cam_dir / f"{stem}_gradcam.png"
        save_png(path, panel)
        results[i]["cam"] = str(path)
