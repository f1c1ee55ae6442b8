"""Leakage audit: the same models under subject-disjoint, record-disjoint and random splits.

Docs §4. Many PPG→BP results put one patient (or overlapping windows of one recording) on
both sides of the split. This module trains simple models under three K-fold splits and
reports the error of their out-of-fold predictions:

* ``subject``: subject-disjoint folds (no subject in both training and test data);
* ``record``: record-disjoint folds, so a test record's subject may have other records in
  training (only meaningful when subjects have several records; reported as unavailable
  when every subject has one record);
* ``window``: random windows (neighbouring, possibly overlapping windows of one recording end
  up on both sides).

Models: ``mean`` (predict the training mean), ``ridge`` and ``gbm`` (histogram gradient
boosting) on the per-window feature table, ``cnn`` (a small 1-D CNN on the z-scored windows).
Per split × model: MAE, mean error ± SD (error = prediction − reference), MASE (model MAE /
MAE of the ``mean`` model on the same folds), the AAMI/ISO 81060-2 criterion 1 (|ME| ≤ 5 and
SD ≤ 8 mmHg) and the BHS grade (both defined for blood pressure in mmHg only). The gap between
the ``subject`` row and the others is the leakage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from healthsense.runtime import get_logger, progress

__all__ = ["LeakageResult", "leakage_audit", "split_folds"]

_log = get_logger("ppg.leakage")
SPLITS = ("subject", "record", "window")
MODELS = ("mean", "ridge", "gbm", "cnn")


@dataclass(frozen=True)
class LeakageResult:
    """Table of the audit (one dict per split × model) and the out-of-fold predictions."""

    rows: list[dict[str, Any]]
    predictions: dict[str, np.ndarray] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def table(self, split: str | None = None) -> list[dict[str, Any]]:
        return [r for r in self.rows if split is None or r["split"] == split]


def split_folds(
    split: str, *, subjects: np.ndarray, records: np.ndarray, n_folds: int, random_state: Any
) -> list[np.ndarray] | None:
    """Fold index of each sample as a list of test-index arrays, or None when unavailable."""
    from sklearn.model_selection import GroupKFold, KFold

    n = subjects.size
    rng = np.random.default_rng(random_state)
    if split == "window":
        kf = KFold(n_splits=n_folds, shuffle=True, random_state=int(rng.integers(2**31)))
        return [test for _, test in kf.split(np.zeros(n))]
    groups = subjects if split == "subject" else records
    if split == "record":
        per_subject = {s: np.unique(records[subjects == s]).size for s in np.unique(subjects)}
        if max(per_subject.values()) < 2:
            return None
    uniq = np.unique(groups)
    if uniq.size < n_folds:
        raise ValueError(f"{split} split needs at least {n_folds} distinct groups, got {uniq.size}")
    # Shuffle group order so folds do not follow file order (GroupKFold balances sizes).
    perm = {g: i for i, g in enumerate(rng.permutation(uniq))}
    codes = np.array([perm[g] for g in groups])
    gkf = GroupKFold(n_splits=n_folds)
    return [test for _, test in gkf.split(np.zeros(n), groups=codes)]


def _fit_predict_tabular(kind: str, Xtr, ytr, Xte, seed: int) -> np.ndarray:
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind == "ridge":
        model = make_pipeline(
            SimpleImputer(strategy="median", keep_empty_features=True),
            StandardScaler(),
            RidgeCV(alphas=np.logspace(-3, 3, 13)),
        )
    else:
        model = HistGradientBoostingRegressor(max_iter=200, learning_rate=0.05, random_state=seed)
    # OpenMP threads on small tables cost far more than they save (measured 25 s vs 0.4 s
    # for one 240-row fit on a busy 2-core machine), so small fits run single-threaded.
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1 if Xtr.shape[0] < 20_000 else None, user_api="openmp"):
        model.fit(Xtr, ytr)
        return model.predict(Xte)


def _fit_predict_cnn(Ztr, ytr, Zte, *, epochs: int, seed: int) -> np.ndarray:
    import torch
    from torch import nn

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    mu, sd = float(ytr.mean()), float(ytr.std()) or 1.0
    net = nn.Sequential(
        nn.Conv1d(1, 16, 7, stride=2, padding=3),
        nn.ReLU(),
        nn.Conv1d(16, 32, 7, stride=2, padding=3),
        nn.ReLU(),
        nn.Conv1d(32, 32, 7, stride=2, padding=3),
        nn.ReLU(),
        nn.AdaptiveAvgPool1d(1),
        nn.Flatten(),
        nn.Linear(32, 1),
    )
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    xt = torch.from_numpy(Ztr.astype(np.float32))[:, None, :]
    yt = torch.from_numpy(((ytr - mu) / sd).astype(np.float32))
    for _ in range(epochs):
        order = torch.randperm(xt.shape[0], generator=gen)
        for s in range(0, xt.shape[0], 64):
            idx = order[s : s + 64]
            opt.zero_grad()
            loss = torch.mean((net(xt[idx]).squeeze(1) - yt[idx]) ** 2)
            loss.backward()
            opt.step()
    with torch.no_grad():
        out = net(torch.from_numpy(Zte.astype(np.float32))[:, None, :]).squeeze(1).numpy()
    return out.astype(np.float64) * sd + mu


def _metrics(y, pred, baseline_mae, subjects, is_bp: bool) -> dict[str, Any]:
    from healthsense.metrics import aami_criterion, bhs_grade

    err = pred - y
    mae = float(np.mean(np.abs(err)))
    row = {
        "mae": mae,
        "me": float(np.mean(err)),
        "sd": float(np.std(err, ddof=1)) if err.size > 1 else float("nan"),
        "mase": mae / baseline_mae if baseline_mae > 0 else float("nan"),
        "r": float(np.corrcoef(y, pred)[0, 1]) if np.std(pred) > 0 else float("nan"),
    }
    if is_bp:
        row["aami_pass"] = bool(aami_criterion(y, pred, subject_ids=subjects)["passed"])
        row["bhs_grade"] = bhs_grade(y, pred)["grade"]
    else:
        row["aami_pass"] = None
        row["bhs_grade"] = None
    return row


def leakage_audit(
    y: Any,
    *,
    subjects: Any,
    records: Any = None,
    features: Any = None,
    windows: Any = None,
    models: tuple[str, ...] = MODELS,
    splits: tuple[str, ...] = SPLITS,
    n_folds: int = 5,
    cnn_epochs: int = 15,
    is_bp: bool = True,
    random_state: Any = 0,
    show_progress: bool = True,
) -> LeakageResult:
    """Train the models under each split (K-fold, out-of-fold predictions) and tabulate errors.

    Parameters
    ----------
    y : array-like, shape (N,)
        Target per window (mmHg for BP, bpm for HR).
    subjects : array-like, shape (N,)
        Subject id of each window.
    records : array-like, shape (N,), optional
        Record id of each window (defaults to the subject).
    features : array-like, shape (N, F), optional
        Per-window features for ``ridge`` and ``gbm`` (NaN allowed: imputed / native).
    windows : array-like, shape (N, n), optional
        Windows for ``cnn`` (z-scored here).
    models, splits : tuples of names
        Subsets of ``("mean", "ridge", "gbm", "cnn")`` and ``("subject", "record", "window")``.
    n_folds : int
        K of the K-fold splits.
    cnn_epochs : int
        Training epochs of the CNN per fold.
    is_bp : bool
        Whether the AAMI and BHS criteria (mmHg) apply to the target.
    random_state : int
        Seeds the fold assignment and the models.
    """
    yy = np.asarray(y, dtype=np.float64)
    if yy.ndim != 1 or yy.size < 2:
        raise ValueError(f"y must be 1-D with at least 2 values, got shape {yy.shape}")
    if not np.all(np.isfinite(yy)):
        raise ValueError(f"y contains {int(np.sum(~np.isfinite(yy)))} NaN/inf value(s)")
    n = yy.size
    subj = np.asarray(subjects).astype(str)
    if subj.shape != (n,):
        raise ValueError(f"subjects must have shape ({n},), got {subj.shape}")
    rec = subj if records is None else np.asarray(records).astype(str)
    if rec.shape != (n,):
        raise ValueError(f"records must have shape ({n},), got {rec.shape}")
    unknown = sorted(set(models) - set(MODELS)) + sorted(set(splits) - set(SPLITS))
    if unknown:
        raise ValueError(f"unknown model/split {unknown}; models {MODELS}, splits {SPLITS}")
    if int(n_folds) < 2:
        raise ValueError(f"n_folds must be >= 2, got {n_folds}")
    X = None
    if features is not None:
        X = np.asarray(features, dtype=np.float64)
        if X.ndim != 2 or X.shape[0] != n:
            raise ValueError(f"features must have shape ({n}, F), got {X.shape}")
        if np.any(np.isinf(X)):
            raise ValueError("features contain inf values")
    Z = None
    if windows is not None:
        W = np.asarray(windows, dtype=np.float64)
        if W.ndim != 2 or W.shape[0] != n:
            raise ValueError(f"windows must have shape ({n}, n_samples), got {W.shape}")
        if not np.all(np.isfinite(W)):
            raise ValueError("windows contain NaN/inf values")
        sd = W.std(axis=1, keepdims=True)
        Z = np.divide(W - W.mean(axis=1, keepdims=True), sd, out=np.zeros_like(W), where=sd > 0)
    notes: list[str] = []
    wanted = []
    for m in models:
        if m in ("ridge", "gbm") and X is None:
            notes.append(f"model {m} skipped: no feature table given")
        elif m == "cnn" and Z is None:
            notes.append("model cnn skipped: no windows given")
        else:
            wanted.append(m)
    if "mean" not in wanted:
        wanted.insert(0, "mean")  # the MASE denominator
    seed = int(np.random.default_rng(random_state).integers(2**31))
    rows: list[dict[str, Any]] = []
    preds: dict[str, np.ndarray] = {}
    jobs = [(s, m) for s in splits for m in wanted]
    bar = (
        progress(jobs, total=len(jobs), desc="leakage audit", unit="fit") if show_progress else jobs
    )
    folds_by_split: dict[str, list[np.ndarray] | None] = {}
    for split, model in bar:
        if split not in folds_by_split:
            folds_by_split[split] = split_folds(
                split, subjects=subj, records=rec, n_folds=int(n_folds), random_state=seed
            )
            if folds_by_split[split] is None:
                notes.append(f"split {split} unavailable: every subject has a single record")
        folds = folds_by_split[split]
        if folds is None:
            continue
        pred = np.empty(n)
        overlap = 0
        for test in folds:
            train = np.setdiff1d(np.arange(n), test)
            overlap += int(np.isin(subj[test], subj[train]).sum())
            if model == "mean":
                pred[test] = yy[train].mean()
            elif model in ("ridge", "gbm"):
                pred[test] = _fit_predict_tabular(model, X[train], yy[train], X[test], seed)
            else:
                pred[test] = _fit_predict_cnn(
                    Z[train], yy[train], Z[test], epochs=int(cnn_epochs), seed=seed
                )
        preds[f"{split}/{model}"] = pred
        base = preds[f"{split}/mean"]
        row = {
            "split": split,
            "model": model,
            "n": n,
            "n_subjects": int(np.unique(subj).size),
            "test_subject_overlap": overlap / n,
        }
        row.update(_metrics(yy, pred, float(np.mean(np.abs(base - yy))), subj, is_bp))
        rows.append(row)
    return LeakageResult(rows=rows, predictions=preds, notes=notes)
