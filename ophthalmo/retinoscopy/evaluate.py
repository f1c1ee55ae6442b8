"""Cohort evaluation of the video pipeline against known refractions (``docs/retinoscopy.md`` §4).

A *manifest* is a CSV with one row per video: at least ``video`` (path relative to the
manifest) and ``power_d`` (reference K of the swept meridian); optional ``camera_profile``
(JSON, relative path), ``meridian_deg`` (0: horizontal sweep, 90: vertical),
``working_distance_m`` and ``category``. The simulator's ``manifest.csv`` has these columns.

Metrics on the gradable videos: MAE ± SD of the absolute error, bias and 95 % limits of
agreement, share within ±0.5/±1.0 D, sensitivity and specificity (Wilson 95 % CIs) for
"refractive error present" at ``|K| ≥ threshold``, a per-range table (myopic / near neutral /
hyperopic), neutral detection, and the ungradable rate with its reasons.
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ophthalmo.retinoscopy.estimate import EstimateConfig

__all__ = [
    "PREDICTION_COLUMNS",
    "EvaluationConfig",
    "cohort_metrics",
    "read_manifest",
    "run_manifest",
    "write_evaluation",
]

PREDICTION_COLUMNS = (
    "video",
    "power_d",
    "status",
    "reason",
    "true_power_d",
    "error_d",
    "eye",
    "motion",
    "ratio",
    "working_distance_m",
    "true_working_distance_m",
    "passes_used",
    "confidence",
    "spread_d",
    "meridian_deg",
    "category",
    "seconds",
)


@dataclass(frozen=True)
class EvaluationConfig:
    """Thresholds of the cohort metrics (dioptres).

    ``threshold_d``: refractive error present when ``|K| ≥ threshold_d``;
    ``range_edges_d``: the per-range table splits the reference power at these values;
    ``neutral_band_d``: reference eyes within this of ``−1/d`` count as neutral.
    """

    threshold_d: float = 0.75
    range_edges_d: tuple[float, float] = (-3.0, 1.0)
    neutral_band_d: float = 0.25

    def __post_init__(self) -> None:
        if not (math.isfinite(self.threshold_d) and self.threshold_d > 0):
            raise ValueError(f"threshold must be positive, got {self.threshold_d}")
        lo, hi = self.range_edges_d
        if not lo < hi:
            raise ValueError(f"range edges must increase, got {self.range_edges_d}")


def read_manifest(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a manifest with absolute paths and numeric columns parsed (clear errors)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: manifest not found")
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        missing = [c for c in ("video", "power_d") if c not in columns]
        if missing:
            raise ValueError(f"{path}: manifest lacks column(s) {missing} (has {columns})")
        rows = list(reader)
    if not rows:
        raise ValueError(f"{path}: manifest has no rows")
    out = []
    for i, row in enumerate(rows, start=2):
        rec: dict[str, Any] = dict(row)
        try:
            rec["power_d"] = float(row["power_d"])
        except ValueError:
            raise ValueError(
                f"{path}, line {i}: power_d {row['power_d']!r} is not a number"
            ) from None
        if not math.isfinite(rec["power_d"]):
            raise ValueError(f"{path}, line {i}: power_d must be finite")
        if not row["video"]:
            raise ValueError(f"{path}, line {i}: empty video path")
        rec["video_path"] = str((path.parent / row["video"]).resolve())
        prof = row.get("camera_profile") or ""
        rec["camera_path"] = str((path.parent / prof).resolve()) if prof else None
        try:
            rec["meridian_deg"] = int(float(row.get("meridian_deg") or 0))
            wd = row.get("working_distance_m") or ""
            rec["working_distance_m"] = float(wd) if wd else float("nan")
        except ValueError as exc:
            raise ValueError(f"{path}, line {i}: {exc}") from None
        if rec["meridian_deg"] not in (0, 90, 180):
            raise ValueError(f"{path}, line {i}: meridian_deg must be 0, 90 or 180")
        out.append(rec)
    return out


def _estimate_row(row: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """Worker: estimate one manifest row (top level so a process pool can pickle it)."""
    import time

    import cv2

    from ophthalmo.retinoscopy.estimate import estimate_power

    cv2.setNumThreads(1)
    cfg = EstimateConfig(**config)
    cfg = replace(cfg, axis=1 if row["meridian_deg"] == 90 else 0)
    t0 = time.perf_counter()
    cam = row.get("camera_path")
    if cam is not None and not Path(cam).is_file():
        cam = None
    res = estimate_power(row["video_path"], camera=cam, config=cfg)
    err = res.power_d - row["power_d"] if res.status == "ok" else float("nan")
    return {
        "video": row["video"],
        "power_d": res.power_d,
        "status": res.status,
        "reason": res.reason,
        "true_power_d": row["power_d"],
        "error_d": err,
        "eye": res.eye,
        "motion": res.motion,
        "ratio": res.ratio,
        "working_distance_m": res.working_distance_m,
        "true_working_distance_m": row.get("working_distance_m", float("nan")),
        "passes_used": res.passes_used,
        "confidence": res.confidence,
        "spread_d": res.spread_d,
        "meridian_deg": row["meridian_deg"],
        "category": row.get("category") or "",
        "seconds": time.perf_counter() - t0,
    }


def run_manifest(
    rows: list[dict[str, Any]],
    *,
    config: EstimateConfig | None = None,
    workers: int = 1,
    desc: str = "estimate",
) -> list[dict[str, Any]]:
    """Estimate every row (a process pool with ``workers > 1``, with a progress bar)."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    from healthsense.runtime import progress

    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    cfg = asdict(config if config is not None else EstimateConfig())
    if workers == 1 or len(rows) == 1:
        return [_estimate_row(r, cfg) for r in progress(rows, total=len(rows), desc=desc)]
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(_estimate_row, r, cfg) for r in rows]
        return [f.result() for f in progress(futures, total=len(futures), desc=desc)]


def _range_name(k: float, edges: tuple[float, float]) -> str:
    lo, hi = edges
    if k < lo:
        return f"myopic (< {lo:+g} D)"
    if k <= hi:
        return f"near neutral ({lo:+g} … {hi:+g} D)"
    return f"hyperopic (> {hi:+g} D)"


def _errors_summary(err: np.ndarray) -> dict[str, float]:
    a = np.abs(err)
    n = err.size
    return {
        "n": int(n),
        "mae_d": float(a.mean()) if n else float("nan"),
        "sd_abs_error_d": float(a.std(ddof=1)) if n > 1 else float("nan"),
        "bias_d": float(err.mean()) if n else float("nan"),
        "within_0_5": float((a <= 0.5).mean()) if n else float("nan"),
        "within_1_0": float((a <= 1.0).mean()) if n else float("nan"),
    }


def cohort_metrics(
    predictions: list[dict[str, Any]], *, config: EvaluationConfig = EvaluationConfig()
) -> dict[str, Any]:
    """Cohort metrics (see the module docstring) from :func:`run_manifest` rows."""
    import warnings

    from healthsense.metrics import agreement, binary_diagnostics

    n = len(predictions)
    if n == 0:
        raise ValueError("no predictions to evaluate")
    ok = [p for p in predictions if p["status"] == "ok"]
    reasons = Counter(p["reason"] for p in predictions if p["status"] != "ok")
    out: dict[str, Any] = {
        "n_videos": n,
        "n_gradable": len(ok),
        "ungradable_rate": 1.0 - len(ok) / n,
        "ungradable_reasons": dict(reasons),
        "threshold_d": config.threshold_d,
    }
    if not ok:
        return out
    truth = np.array([p["true_power_d"] for p in ok], float)
    pred = np.array([p["power_d"] for p in ok], float)
    err = pred - truth
    out.update(_errors_summary(err))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        agr = agreement(truth, pred, tolerances=(0.5, 1.0)) if len(ok) >= 2 else None
        diag = binary_diagnostics(
            (np.abs(truth) >= config.threshold_d).astype(int),
            (np.abs(pred) >= config.threshold_d).astype(int),
        )
    if agr is not None:
        out.update(
            {
                "rmse_d": agr.rmse,
                "loa_low_d": agr.loa_low,
                "loa_high_d": agr.loa_high,
                "bias_ci_d": list(agr.mean_error_ci),
            }
        )
    c = diag.counts
    out.update(
        {
            "sensitivity": diag.sensitivity,
            "sensitivity_ci": list(diag.sensitivity_ci),
            "specificity": diag.specificity,
            "specificity_ci": list(diag.specificity_ci),
            "confusion": {"tp": c.tp, "fn": c.fn, "tn": c.tn, "fp": c.fp},
        }
    )
    ranges: dict[str, list[float]] = {}
    for t, e in zip(truth, err, strict=True):
        ranges.setdefault(_range_name(t, config.range_edges_d), []).append(e)
    order = [
        _range_name(v, config.range_edges_d) for v in (-1e9, 0.5 * sum(config.range_edges_d), 1e9)
    ]
    out["per_range"] = [
        {"range": name, **_errors_summary(np.array(ranges.get(name, []), float))} for name in order
    ]
    # Neutral eyes: reference within the band of −1/d (true distance if known).
    neutral_rows = []
    for p in ok:
        d = p.get("true_working_distance_m")
        d = d if d and np.isfinite(d) else p["working_distance_m"]
        if abs(p["true_power_d"] + 1.0 / d) <= config.neutral_band_d:
            neutral_rows.append(p)
    out["neutral_eyes"] = len(neutral_rows)
    out["neutral_reported_neutral"] = sum(p["motion"] == "neutral" for p in neutral_rows)
    return out


def _bland_altman_figure(truth: np.ndarray, pred: np.ndarray):
    from healthsense.metrics import bland_altman
    from healthsense.report import new_figure

    ba = bland_altman(truth, pred)
    fig, ax = new_figure(figsize=(6.0, 4.0))
    ax.scatter(ba.mean, ba.diff, s=14, alpha=0.8)
    for y, style in ((ba.bias, "-"), (ba.loa_low, "--"), (ba.loa_high, "--")):
        ax.axhline(y, color="k", ls=style, lw=1)
    ax.set_xlabel("mean of estimate and reference (D)")
    ax.set_ylabel("estimate − reference (D)")
    ax.set_title(f"Bland–Altman: bias {ba.bias:+.2f} D, LoA {ba.loa_low:+.2f} … {ba.loa_high:+.2f}")
    return fig


def write_evaluation(
    out_dir: str | Path,
    predictions: list[dict[str, Any]],
    metrics: dict[str, Any],
    *,
    title: str = "Retinoscopy video pipeline: cohort evaluation",
) -> dict[str, Path]:
    """Write ``predictions.csv``, ``metrics.json`` and ``report.html`` into ``out_dir``."""
    from healthsense.report import Report, write_csv, write_json

    out = Path(out_dir)
    paths = {
        "predictions": write_csv(out / "predictions.csv", predictions, columns=PREDICTION_COLUMNS),
        "metrics": write_json(out / "metrics.json", metrics),
    }
    rep = Report(title)
    rep.add_heading("Summary")
    rows = [
        {"metric": "videos", "value": metrics["n_videos"]},
        {"metric": "gradable", "value": metrics["n_gradable"]},
        {"metric": "ungradable rate", "value": metrics["ungradable_rate"]},
    ]
    if metrics.get("n_gradable"):
        rows += [
            {"metric": "MAE ± SD (D)", "value": f"{metrics['mae_d']:.2f} ± {metrics['sd_abs_error_d']:.2f}"},
            {"metric": "bias (D)", "value": metrics["bias_d"]},
            {"metric": "95 % limits of agreement (D)",
             "value": f"{metrics.get('loa_low_d', float('nan')):+.2f} … {metrics.get('loa_high_d', float('nan')):+.2f}"},
            {"metric": "within ±0.5 D", "value": metrics["within_0_5"]},
            {"metric": "within ±1.0 D", "value": metrics["within_1_0"]},
            {"metric": f"sensitivity (|K| ≥ {metrics['threshold_d']} D)",
             "value": f"{metrics['sensitivity']:.3f} ({metrics['sensitivity_ci'][0]:.3f}–{metrics['sensitivity_ci'][1]:.3f})"},
            {"metric": f"specificity (|K| < {metrics['threshold_d']} D)",
             "value": f"{metrics['specificity']:.3f} ({metrics['specificity_ci'][0]:.3f}–{metrics['specificity_ci'][1]:.3f})"},
            {"metric": "neutral eyes reported neutral",
             "value": f"{metrics['neutral_reported_neutral']} / {metrics['neutral_eyes']}"},
        ]  # fmt: skip
    rep.add_table(rows, float_format=".3f")
    if metrics.get("n_gradable"):
        rep.add_heading("Per range of the reference power")
        rep.add_table(metrics["per_range"], float_format=".3f")
        ok = [p for p in predictions if p["status"] == "ok"]
        if len(ok) >= 2:
            truth = np.array([p["true_power_d"] for p in ok], float)
            pred = np.array([p["power_d"] for p in ok], float)
            rep.add_figure(_bland_altman_figure(truth, pred), caption="Bland–Altman plot")
    rep.add_heading("Ungradable videos")
    reasons = metrics.get("ungradable_reasons") or {}
    rep.add_table(
        [{"reason": k, "videos": v} for k, v in reasons.items()]
        or [{"reason": "none", "videos": 0}]
    )
    rep.add_heading("Predictions")
    rep.add_table(predictions, columns=PREDICTION_COLUMNS[:8], float_format=".2f")
    paths["report"] = rep.save(out / "report.html")
    return paths
