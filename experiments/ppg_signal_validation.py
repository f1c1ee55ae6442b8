"""Validate the PPG signal layer on mw-ppg-bp: SQI vs labelled artifacts, HR vs spectral HR.

1. For each channel, 2-s default windows of all 78 subjects; a window is an artifact window
   when any of its samples is annotated (``Anomaly_ch*``). ROC AUC (with DeLong 95 % CI) of
   1 − SQI for the template-match, spectral and skewness indices.
2. HR from PPG peak intervals vs the spectral-peak HR of the same 10-s window (50 % overlap),
   on clean windows (template-match quality ≥ 0.9, no annotated artifact): share within 3 bpm.

Usage: python experiments/ppg_signal_validation.py [--data ../shared/data/mw-ppg-bp]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HEALTHSENSE_NO_PROGRESS", "1")


def main() -> None:
    from healthsense.metrics import roc_auc_ci
    from ppg.datasets import iter_dataset
    from ppg.signal import heart_rate_spectral, window_sqi
    from ppg.windows import make_windows

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "mw-ppg-bp")
    args = ap.parse_args()
    print("SQI vs labelled artifacts (2-s windows, all 78 subjects): AUC [95% CI]")
    for ch in ("green", "red", "ir"):
        ws = make_windows(
            iter_dataset("mw-ppg-bp", args.data, channels=[ch]), channel=ch, labels=("hr",)
        )
        y = (ws.labels["artifact"] > 0).astype(int)
        scores = {
            "templatematch": -ws.quality,
            "spectral": -np.array([window_sqi(w, ws.fs, method="spectral") for w in ws.raw]),
            "skewness": -np.array([window_sqi(w, ws.fs, method="skewness") for w in ws.raw]),
        }
        parts = []
        for name, sc in scores.items():
            auc, lo, hi = roc_auc_ci(y, sc)
            parts.append(f"{name} {auc:.3f} [{lo:.3f}, {hi:.3f}]")
        print(f"  {ch:5s} ({y.sum()} artifact / {y.size} windows): " + "; ".join(parts))
    ws = make_windows(
        iter_dataset("mw-ppg-bp", args.data, channels=["green"]),
        channel="green",
        labels=("hr",),
        window_s=10.0,
        overlap=0.5,
    )
    clean = (ws.quality >= 0.9) & (ws.labels["artifact"] == 0)
    spec = np.array([heart_rate_spectral(w, ws.fs) for w in ws.raw[clean]])
    err = np.abs(spec - ws.labels["hr"][clean])
    print(
        f"HR (PPG peaks) vs spectral HR, green, clean 10-s windows: {np.mean(err <= 3):.1%} within "
        f"3 bpm ({clean.sum()} of {len(ws)} windows clean; median |diff| {np.median(err):.2f} bpm)"
    )


if __name__ == "__main__":
    main()
