"""Leakage audit: subject fingerprints make random-window splits look far better than they are."""

from __future__ import annotations

import numpy as np
import pytest

from ppg.leakage import leakage_audit, split_folds


def _cohort(seed=0, n_subj=20, per=12, records_per_subject=2):
    """Each subject has a BP and a feature fingerprint unrelated to BP; windows repeat it."""
    rng = np.random.default_rng(seed)
    subj = np.repeat(np.arange(n_subj), per)
    rec = np.array([f"{s}/{i % records_per_subject}" for i, s in enumerate(subj)])
    bp = rng.normal(125, 15, n_subj)[subj]
    finger = rng.normal(size=(n_subj, 4))[subj] + rng.normal(0, 0.05, (subj.size, 4))
    return bp, subj, rec, finger


def test_folds_are_disjoint_as_promised():
    _, subj, rec, _ = _cohort()
    subj = subj.astype(str)
    for split in ("subject", "record", "window"):
        folds = split_folds(split, subjects=subj, records=rec, n_folds=4, random_state=0)
        allidx = np.sort(np.concatenate(folds))
        np.testing.assert_array_equal(allidx, np.arange(subj.size))
        for test in folds:
            train = np.setdiff1d(np.arange(subj.size), test)
            if split == "subject":
                assert not np.isin(subj[test], subj[train]).any()
            if split == "record":
                assert not np.isin(rec[test], rec[train]).any()
    single = split_folds("record", subjects=subj, records=subj, n_folds=4, random_state=0)
    assert single is None


def test_random_window_split_leaks_subject_identity():
    y, subj, rec, finger = _cohort()
    res = leakage_audit(
        y,
        subjects=subj,
        records=rec,
        features=finger,
        models=("mean", "gbm"),
        n_folds=4,
        random_state=0,
        show_progress=False,
    )
    row = {(r["split"], r["model"]): r for r in res.rows}
    assert row[("subject", "mean")]["mase"] == pytest.approx(1.0)
    # Without leakage the fingerprint carries no BP information: no better than the mean.
    assert row[("subject", "gbm")]["mase"] > 0.8
    # With subjects (or records of them) on both sides it looks excellent.
    assert row[("window", "gbm")]["mase"] < 0.3
    # Record folds keep some subjects on both sides: leakage in proportion to the overlap.
    assert row[("record", "gbm")]["test_subject_overlap"] > 0.3
    assert row[("record", "gbm")]["mase"] < row[("subject", "gbm")]["mase"] - 0.2
    assert row[("window", "gbm")]["test_subject_overlap"] == 1.0
    assert row[("subject", "gbm")]["test_subject_overlap"] == 0.0
    assert {"mae", "me", "sd", "aami_pass", "bhs_grade"} <= set(row[("window", "gbm")])
    assert row[("window", "gbm")]["bhs_grade"] in {"A", "B", "C", "D"}


def test_cnn_and_ridge_run_and_report():
    rng = np.random.default_rng(1)
    y, subj, rec, finger = _cohort(n_subj=10, per=6)
    windows = np.sin(np.linspace(0, 6, 40))[None, :] * (1 + 0.01 * (y - 125))[:, None]
    windows = windows + rng.normal(0, 0.01, windows.shape)
    res = leakage_audit(
        y,
        subjects=subj,
        records=rec,
        features=finger,
        windows=windows,
        models=("ridge", "cnn"),
        splits=("subject",),
        n_folds=3,
        cnn_epochs=2,
        random_state=0,
        show_progress=False,
    )
    models = [r["model"] for r in res.rows]
    assert models == ["mean", "ridge", "cnn"]
    assert all(np.isfinite(r["mae"]) for r in res.rows)


def test_missing_sources_are_noted_and_bad_input_rejected():
    y, subj, rec, _ = _cohort(n_subj=6, per=4)
    res = leakage_audit(
        y,
        subjects=subj,
        records=subj,
        models=("mean", "ridge", "cnn"),
        n_folds=3,
        show_progress=False,
    )
    assert any("ridge skipped" in n for n in res.notes)
    assert any("split record unavailable" in n for n in res.notes)
    with pytest.raises(ValueError, match="NaN"):
        leakage_audit(np.r_[y[:-1], np.nan], subjects=subj, show_progress=False)
    with pytest.raises(ValueError, match="subjects must have shape"):
        leakage_audit(y, subjects=subj[:-1], show_progress=False)
    with pytest.raises(ValueError, match="unknown model"):
        leakage_audit(y, subjects=subj, models=("svm",), show_progress=False)
