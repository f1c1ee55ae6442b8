"""Straightforward per-pair multi-valued mapping: the contract of docs §2, one pair at a time.

Independent of ``ppg.mvm`` on purpose (the fast code must match it exactly). Imported by the
tests and by ``benchmarks/bench_ppg_mvm.py`` by file path.
"""

from __future__ import annotations

import numpy as np


def reference_mvm(
    raw,
    labels,
    groups=None,
    *,
    scope="all",
    corr_threshold=0.9,
    dist_threshold=1.0,
    label_threshold=8.0,
):
    """Return (multi-valued mask, sorted list of colliding pairs (i, j))."""
    raw = np.asarray(raw, dtype=float)
    labels = np.asarray(labels, dtype=float)
    n_win, n = raw.shape
    groups = np.zeros(n_win) if groups is None else np.asarray(groups)
    z = (raw - raw.mean(axis=1, keepdims=True)) / raw.std(axis=1, keepdims=True)
    mv = np.zeros(n_win, dtype=bool)
    pairs = []
    for i in range(n_win):
        for j in range(i + 1, n_win):
            same = groups[i] == groups[j]
            if (scope == "intra" and not same) or (scope == "inter" and same):
                continue
            if np.dot(z[i], z[j]) / n < corr_threshold:
                continue
            if abs(labels[i] - labels[j]) <= label_threshold:
                continue
            lag = int(np.argmax(np.correlate(z[i], z[j], mode="same"))) - n // 2
            a, b = raw[i], raw[j]
            if lag > 0:
                a, b = a[lag:], b[:-lag]
            elif lag < 0:
                a, b = a[:lag], b[-lag:]
            dist = np.linalg.norm(a - b) / max(np.max(np.abs(a)), np.max(np.abs(b)))
            if dist < dist_threshold:
                mv[i] = mv[j] = True
                pairs.append((i, j))
    return mv, pairs
