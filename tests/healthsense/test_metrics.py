"""Tests for healthsense.metrics.

Expected values are computed by hand in the comments (or taken from published
tables) rather than by re-running the implementation. sklearn and brute-force
pairwise definitions serve as independent references for the ROC code.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from healthsense import metrics
from healthsense.metrics import (
    AgreementMetric,
    ConfusionCounts,
    ConfusionMatrixMetric,
    ROCAUCMetric,
    UndefinedMetricWarning,
    aami_criterion,
    agreement,
    bhs_grade,
    binary_diagnostics,
    bland_altman,
    clopper_pearson_interval,
    confusion_counts,
    delong_test,
    mase,
    roc_auc,
    roc_auc_ci,
    roc_curve,
    threshold_at_specificity,
    wilson_interval,
    youden_threshold,
)

# Any RuntimeWarning that a test does not explicitly expect (with pytest.warns)
# is a bug: an unexpected UndefinedMetricWarning, or numpy dividing by zero.
pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

Z975 = 1.959963984540054  # Phi^-1(0.975), standard normal table


def _tied_data(seed: int, n: int = 150) -> tuple[np.ndarray, np.ndarray]:
    """Labels and coarsely rounded (hence heavily tied) informative scores."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    scores = np.round(rng.normal(size=n) + 0.8 * y, 1)
    return y, scores


def _brute_auc(y, s) -> float:
    """AUC = mean over all (positive, negative) pairs of 1[s+ > s-] + 0.5 1[s+ = s-]."""
    y = np.asarray(y, dtype=bool)
    s = np.asarray(s, dtype=float)
    pos, neg = s[y], s[~y]
    total = 0.0
    for p in pos:
        for q in neg:
            total += 1.0 if p > q else 0.5 if p == q else 0.0
    return total / (pos.size * neg.size)


def _brute_delong(y, score_list):
    """DeLong (1988) structural components from the O(m n) pairwise kernel."""
    y = np.asarray(y, dtype=bool)
    v10, v01, aucs = [], [], []
    for s in score_list:
        s = np.asarray(s, dtype=float)
        pos, neg = s[y], s[~y]
        psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
        aucs.append(psi.mean())
        v10.append(psi.mean(axis=1))  # one value per positive
        v01.append(psi.mean(axis=0))  # one value per negative
    m, n = int(y.sum()), int((~y).sum())
    cov = np.atleast_2d(np.cov(np.array(v10))) / m + np.atleast_2d(np.cov(np.array(v01))) / n
    return np.array(aucs), cov


# ---------------------------------------------------------------------------
# Confusion counts
# ---------------------------------------------------------------------------


def test_confusion_counts_hand_example():
    # pairs (true, pred): (1,1) (1,1) (1,0) (0,1) (0,0) (0,0) (0,0)
    # -> tp=2, fn=1, fp=1, tn=3, n=7
    c = confusion_counts([1, 1, 1, 0, 0, 0, 0], [1, 1, 0, 1, 0, 0, 0])
    assert c == ConfusionCounts(tp=2, fp=1, fn=1, tn=3)
    assert (c.n, c.positives, c.negatives) == (7, 3, 4)


def test_confusion_counts_accepts_bool_and_column_vectors():
    c = confusion_counts(np.array([[True], [False]]), np.array([True, True]))
    assert c == ConfusionCounts(tp=1, fp=1, fn=0, tn=0)


def test_confusion_counts_add_and_to_dict():
    total = ConfusionCounts(1, 2, 3, 4) + ConfusionCounts(10, 20, 30, 40)
    assert total.to_dict() == {"tp": 11, "fp": 22, "fn": 33, "tn": 44, "n": 110}


def test_confusion_counts_empty_is_all_zero():
    assert confusion_counts([], []) == ConfusionCounts(0, 0, 0, 0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"tp": -1, "fp": 0, "fn": 0, "tn": 0}, "negative"),
        ({"tp": 1, "fp": 2.5, "fn": 0, "tn": 0}, "fp must be a non-negative integer"),
        ({"tp": 1, "fp": 0, "fn": float("nan"), "tn": 0}, "fn must be"),
        ({"tp": 1, "fp": 0, "fn": 0, "tn": "x"}, "tn must be"),
    ],
)
def test_confusion_counts_invalid_construction(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ConfusionCounts(**kwargs)


def test_confusion_counts_integral_floats_are_normalised():
    c = ConfusionCounts(45.0, np.int64(10), 5, 40)
    assert c.tp == 45 and isinstance(c.tp, int) and isinstance(c.fp, int)


@pytest.mark.parametrize(
    ("y_true", "y_pred", "match"),
    [
        ([0, 1, 2], [0, 1, 1], "binary labels"),
        ([0, 1, 1], [0.2, 0.7, 0.9], "Threshold scores first"),
        ([0, 1, np.nan], [0, 1, 1], "NaN"),
        ([0, 1, 1], [0, 1], "same length"),
        ([-1, 1], [0, 1], "binary labels"),
        ([[0, 1], [1, 0]], [0, 1, 1, 0], "1-D"),
        (["a", "b"], [0, 1], "numbers"),
    ],
)
def test_confusion_counts_invalid_inputs(y_true, y_pred, match):
    with pytest.raises(ValueError, match=match):
        confusion_counts(y_true, y_pred)


# ---------------------------------------------------------------------------
# Binomial intervals
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [
        # Newcombe (1998), Stat Med 17:857-872, Table II, method 3 (score).
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0000, 0.1611),
        (1, 29, 0.0061, 0.1718),
        # 45/50 by the closed form, z = 1.959964, z^2 = 3.841459:
        #   denom  = 1 + 3.841459/50                     = 1.0768292
        #   centre = (0.9 + 3.841459/100) / 1.0768292     = 0.9384146/1.0768292 = 0.871461
        #   half   = 1.959964*sqrt(0.09/50 + 3.841459/10000)/1.0768292
        #          = 1.959964*sqrt(0.0021841459)/1.0768292 = 0.085063
        #   -> (0.786398, 0.956524)
        (45, 50, 0.786398, 0.956524),
    ],
)
def test_wilson_interval_textbook(k, n, low, high):
    lo, hi = wilson_interval(k, n)
    decimals = len(str(low).split(".")[1])
    assert lo == pytest.approx(low, abs=0.6 * 10**-decimals)
    assert hi == pytest.approx(high, abs=0.6 * 10**-decimals)


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [
        # 0/10: high = 1 - (alpha/2)^(1/n) = 1 - 0.025^(0.1) = 0.308497
        (0, 10, 0.0, 0.308497),
        # 10/10 by symmetry: low = 0.025^(0.1) = 0.691503
        (10, 10, 0.691503, 1.0),
        # Newcombe (1998) Table II, method 5 (exact).
        (81, 263, 0.2527, 0.3676),
        (15, 148, 0.0578, 0.1617),
        (0, 20, 0.0000, 0.1684),
        (1, 29, 0.0009, 0.1776),
    ],
)
def test_clopper_pearson_textbook(k, n, low, high):
    lo, hi = clopper_pearson_interval(k, n)
    decimals = max(len(str(low).split(".")[1]), len(str(high).split(".")[1]))
    assert lo == pytest.approx(low, abs=0.6 * 10**-decimals)
    assert hi == pytest.approx(high, abs=0.6 * 10**-decimals)


@pytest.mark.parametrize("func", [wilson_interval, clopper_pearson_interval])
def test_interval_edges_are_exact(func):
    assert func(0, 7)[0] == 0.0
    assert func(7, 7)[1] == 1.0
    lo, hi = func(3, 7)
    assert 0.0 < lo < 3 / 7 < hi < 1.0


@pytest.mark.parametrize("func", [wilson_interval, clopper_pearson_interval])
def test_interval_wider_at_smaller_alpha(func):
    lo95, hi95 = func(30, 60, alpha=0.05)
    lo99, hi99 = func(30, 60, alpha=0.01)
    assert lo99 < lo95 and hi99 > hi95


def test_clopper_pearson_is_wider_than_wilson():
    # CP guarantees coverage and is conservative.
    w = wilson_interval(45, 50)
    cp = clopper_pearson_interval(45, 50)
    assert cp[0] < w[0] and cp[1] > w[1]


@pytest.mark.parametrize("func", [wilson_interval, clopper_pearson_interval])
def test_interval_n_zero_is_nan_with_warning(func):
    with pytest.warns(UndefinedMetricWarning, match="n = 0"):
        lo, hi = func(0, 0)
    assert math.isnan(lo) and math.isnan(hi)


@pytest.mark.parametrize("func", [wilson_interval, clopper_pearson_interval])
@pytest.mark.parametrize(
    ("k", "n", "alpha", "match"),
    [
        (6, 5, 0.05, "must not exceed"),
        (-1, 5, 0.05, "negative"),
        (1.5, 5, 0.05, "integer"),
        (1, 5, 0.0, r"alpha must be in the open interval \(0, 1\)"),
        (1, 5, 1.0, "alpha"),
        (1, 5, float("nan"), "alpha"),
        (1, 5, "x", "alpha"),
    ],
)
def test_interval_invalid(func, k, n, alpha, match):
    with pytest.raises(ValueError, match=match):
        func(k, n, alpha=alpha)


# ---------------------------------------------------------------------------
# binary_diagnostics
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        # tp=45, fp=10, fn=5, tn=40 (n=100):
        #   sens = 45/50 = 0.9, spec = 40/50 = 0.8, ppv = 45/55, npv = 40/45,
        #   acc = 85/100, prev = 50/100, youden = 0.9 + 0.8 - 1 = 0.7,
        #   LR+ = 0.9/0.2 = 4.5, LR- = 0.1/0.8 = 0.125
        (
            (45, 10, 5, 40),
            {
                "sensitivity": 0.9,
                "specificity": 0.8,
                "ppv": 45 / 55,
                "npv": 40 / 45,
                "accuracy": 0.85,
                "prevalence": 0.5,
                "youden": 0.7,
                "lr_pos": 4.5,
                "lr_neg": 0.125,
            },
        ),
        # tp=8, fp=2, fn=2, tn=88 (n=100), a low-prevalence screen:
        #   sens = 8/10 = 0.8, spec = 88/90, ppv = 8/10 = 0.8, npv = 88/90,
        #   acc = 96/100, prev = 10/100, youden = 0.8 + 88/90 - 1 = 0.777778,
        #   LR+ = 0.8/(2/90) = 36, LR- = 0.2/(88/90) = 18/88 = 0.204545
        (
            (8, 2, 2, 88),
            {
                "sensitivity": 0.8,
                "specificity": 88 / 90,
                "ppv": 0.8,
                "npv": 88 / 90,
                "accuracy": 0.96,
                "prevalence": 0.1,
                "youden": 0.777778,
                "lr_pos": 36.0,
                "lr_neg": 0.204545,
            },
        ),
        # tp=1, fp=3, fn=3, tn=1: a worse-than-chance test.
        #   sens = spec = ppv = npv = 0.25, youden = -0.5,
        #   LR+ = 0.25/0.75 = 1/3, LR- = 0.75/0.25 = 3
        (
            (1, 3, 3, 1),
            {
                "sensitivity": 0.25,
                "specificity": 0.25,
                "ppv": 0.25,
                "npv": 0.25,
                "accuracy": 0.25,
                "prevalence": 0.5,
                "youden": -0.5,
                "lr_pos": 1 / 3,
                "lr_neg": 3.0,
            },
        ),
    ],
)
def test_binary_diagnostics_point_estimates(counts, expected):
    res = binary_diagnostics(counts=ConfusionCounts(*counts))
    for name, value in expected.items():
        assert getattr(res, name) == pytest.approx(value, abs=1e-6), name


def test_binary_diagnostics_likelihood_ratio_log_ci():
    # Simel et al. (1991) log method for tp=45, fp=10, fn=5, tn=40:
    #   SE(ln LR+) = sqrt(1/45 - 1/50 + 1/10 - 1/50) = sqrt(0.0822222) = 0.2867442
    #   ln 4.5 = 1.5040774;  1.959964 * 0.2867442 = 0.5620084
    #   -> exp(0.9420690) = 2.565284, exp(2.0660858) = 7.893863
    #   SE(ln LR-) = sqrt(1/5 - 1/50 + 1/40 - 1/50) = sqrt(0.185) = 0.4301163
    #   ln 0.125 = -2.0794415;  1.959964 * 0.4301163 = 0.8430125
    #   -> exp(-2.9224540) = 0.0538015, exp(-1.2364290) = 0.2904194
    res = binary_diagnostics(counts=ConfusionCounts(45, 10, 5, 40))
    assert res.lr_pos_ci == pytest.approx((2.565284, 7.893863), abs=2e-6)
    assert res.lr_neg_ci == pytest.approx((0.0538015, 0.2904194), abs=2e-7)


@pytest.mark.parametrize(
    ("ci_method", "interval"),
    [("wilson", wilson_interval), ("clopper-pearson", clopper_pearson_interval)],
)
def test_binary_diagnostics_proportion_cis_use_requested_method(ci_method, interval):
    res = binary_diagnostics(counts=ConfusionCounts(45, 10, 5, 40), ci_method=ci_method)
    assert res.sensitivity_ci == pytest.approx(interval(45, 50))  # tp / (tp + fn)
    assert res.specificity_ci == pytest.approx(interval(40, 50))  # tn / (tn + fp)
    assert res.ppv_ci == pytest.approx(interval(45, 55))  # tp / (tp + fp)
    assert res.npv_ci == pytest.approx(interval(40, 45))  # tn / (tn + fn)
    assert res.accuracy_ci == pytest.approx(interval(85, 100))
    assert res.prevalence_ci == pytest.approx(interval(50, 100))
    assert res.ci_method == ci_method


def test_binary_diagnostics_wilson_hand_value_and_alpha():
    # Sensitivity 45/50 with the closed form (see test_wilson_interval_textbook).
    res = binary_diagnostics(counts=ConfusionCounts(45, 10, 5, 40))
    assert res.sensitivity_ci == pytest.approx((0.786398, 0.956524), abs=1e-6)
    narrower = binary_diagnostics(counts=ConfusionCounts(45, 10, 5, 40), alpha=0.2)
    assert narrower.sensitivity_ci[0] > res.sensitivity_ci[0]


def test_binary_diagnostics_from_labels_equals_from_counts():
    y_true = [1] * 45 + [0] * 10 + [1] * 5 + [0] * 40
    y_pred = [1] * 45 + [1] * 10 + [0] * 5 + [0] * 40
    from_labels = binary_diagnostics(y_true, y_pred).to_dict()
    from_counts = binary_diagnostics(counts=ConfusionCounts(45, 10, 5, 40)).to_dict()
    assert from_labels == from_counts


def test_binary_diagnostics_to_dict_is_flat():
    d = binary_diagnostics(counts=ConfusionCounts(45, 10, 5, 40)).to_dict()
    assert (d["tp"], d["fp"], d["fn"], d["tn"], d["n"]) == (45, 10, 5, 40, 100)
    for name in ("sensitivity", "specificity", "ppv", "npv", "accuracy", "prevalence"):
        assert d[f"{name}_low"] <= d[name] <= d[f"{name}_high"], name
    assert d["lr_pos_low"] < d["lr_pos"] == 4.5 < d["lr_pos_high"]
    assert d["youden"] == pytest.approx(0.7)
    assert all(isinstance(v, int | float | str) for v in d.values())


def test_binary_diagnostics_no_false_positives_lr_pos_nan():
    # fp=0 -> specificity 1, LR+ = sens / 0: zero denominator -> NaN + warning.
    with pytest.warns(UndefinedMetricWarning, match=r"lr_pos \(zero denominator\)"):
        res = binary_diagnostics(counts=ConfusionCounts(tp=9, fp=0, fn=1, tn=10))
    assert res.specificity == 1.0
    assert math.isnan(res.lr_pos) and all(math.isnan(v) for v in res.lr_pos_ci)
    # LR- = 0.1 / 1 is still defined: SE = sqrt(1/1 - 1/10 + 1/10 - 1/10) = sqrt(0.9)
    assert res.lr_neg == pytest.approx(0.1)
    assert res.lr_neg_ci == pytest.approx(
        (0.1 * math.exp(-Z975 * math.sqrt(0.9)), 0.1 * math.exp(Z975 * math.sqrt(0.9)))
    )


def test_binary_diagnostics_zero_tp_gives_zero_lr_with_nan_ci():
    with pytest.warns(UndefinedMetricWarning, match="lr_pos .*numerator count is 0"):
        res = binary_diagnostics(counts=ConfusionCounts(tp=0, fp=5, fn=5, tn=5))
    assert res.lr_pos == 0.0
    assert all(math.isnan(v) for v in res.lr_pos_ci)


def test_binary_diagnostics_single_class_sensitivity_nan():
    # No reference positives: sensitivity and both LRs are undefined, specificity is not.
    with pytest.warns(UndefinedMetricWarning, match="sensitivity") as record:
        res = binary_diagnostics([0, 0, 0, 0], [0, 1, 0, 0])
    assert len(record) == 1  # all undefined metrics reported in one warning
    assert math.isnan(res.sensitivity) and math.isnan(res.youden)
    assert math.isnan(res.lr_pos) and math.isnan(res.lr_neg)
    assert res.specificity == 0.75
    assert res.prevalence == 0.0 and res.prevalence_ci[0] == 0.0
    # no positive predictions except one false positive -> ppv = 0/1 = 0, defined
    assert res.ppv == 0.0


def test_binary_diagnostics_empty_is_all_nan():
    with pytest.warns(UndefinedMetricWarning, match="accuracy"):
        d = binary_diagnostics([], []).to_dict()
    assert d["n"] == 0
    for key, value in d.items():
        if key not in ("tp", "fp", "fn", "tn", "n", "alpha", "ci_method"):
            assert math.isnan(value), key


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        (([1, 0], [1, 0]), {"counts": ConfusionCounts(1, 0, 0, 1)}, "not both"),
        ((), {}, "give both"),
        (([1, 0],), {}, "give both"),
        ((), {"counts": (1, 2, 3, 4)}, "ConfusionCounts"),
        (([1, 0], [1, 0]), {"ci_method": "wald"}, "ci_method"),
        (([1, 0], [1, 0]), {"alpha": 1.5}, "alpha"),
        (([1, 0, 1], [1, 0]), {}, "same length"),
        (([1, 0], [1, 3]), {}, "binary labels"),
    ],
)
def test_binary_diagnostics_invalid(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        binary_diagnostics(*args, **kwargs)


# ---------------------------------------------------------------------------
# ROC curve and AUC
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("y", "s", "fpr", "tpr", "thresholds"),
    [
        # sklearn's documentation example. Sorted by score:
        #   0.8(+) 0.4(-) 0.35(+) 0.1(-); P = N = 2
        (
            [0, 0, 1, 1],
            [0.1, 0.4, 0.35, 0.8],
            [0, 0, 0.5, 0.5, 1],
            [0, 0.5, 0.5, 1, 1],
            [np.inf, 0.8, 0.4, 0.35, 0.1],
        ),
        # A tie across classes: 0.9(+) {0.5(+), 0.5(-)} 0.2(-).
        # The tie is one operating point -> the curve moves diagonally.
        (
            [0, 1, 0, 1],
            [0.5, 0.5, 0.2, 0.9],
            [0, 0, 0.5, 1],
            [0, 0.5, 1, 1],
            [np.inf, 0.9, 0.5, 0.2],
        ),
        # All scores tied: (0,0) then straight to (1,1).
        ([0, 1, 1], [3, 3, 3], [0, 1], [0, 1], [np.inf, 3]),
    ],
)
def test_roc_curve_hand_examples(y, s, fpr, tpr, thresholds):
    f, t, th = roc_curve(y, s)
    np.testing.assert_allclose(f, fpr)
    np.testing.assert_allclose(t, tpr)
    np.testing.assert_array_equal(th, thresholds)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_roc_curve_matches_sklearn_on_tied_data(seed):
    sk_metrics = pytest.importorskip("sklearn.metrics")
    y, s = _tied_data(seed)
    f, t, th = roc_curve(y, s)
    f2, t2, th2 = sk_metrics.roc_curve(y, s, drop_intermediate=False)
    np.testing.assert_allclose(f, f2)
    np.testing.assert_allclose(t, t2)
    np.testing.assert_array_equal(th, th2)


def test_roc_curve_structure_on_tied_data():
    y, s = _tied_data(3)
    f, t, th = roc_curve(y, s)
    assert (f[0], t[0], th[0]) == (0.0, 0.0, np.inf)
    assert (f[-1], t[-1]) == (1.0, 1.0)
    assert np.all(np.diff(th) < 0)  # strictly decreasing thresholds
    assert np.all(np.diff(f) >= 0) and np.all(np.diff(t) >= 0)
    assert th.size == np.unique(s).size + 1
    # Each point is reproduced by calling `score >= threshold` positive.
    y_bool = y.astype(bool)
    for i in (1, th.size // 2, th.size - 1):
        pred = s >= th[i]
        assert np.mean(pred[y_bool]) == pytest.approx(t[i])
        assert np.mean(pred[~y_bool]) == pytest.approx(f[i])
    # Trapezoidal area under the curve equals the Mann-Whitney AUC.
    assert np.sum(np.diff(f) * (t[1:] + t[:-1]) / 2) == pytest.approx(roc_auc(y, s), abs=1e-12)


def test_roc_curve_keeps_infinite_ties_together():
    f, t, th = roc_curve([1, 0, 1], [np.inf, np.inf, 0.0])
    np.testing.assert_array_equal(th, [np.inf, np.inf, 0.0])
    np.testing.assert_allclose(f, [0, 1, 1])
    np.testing.assert_allclose(t, [0, 0.5, 1])


def test_roc_curve_single_class_warns_and_nan_fpr():
    with pytest.warns(UndefinedMetricWarning, match="no negative samples"):
        f, t, _ = roc_curve([1, 1, 1], [0.2, 0.4, 0.4])
    assert np.all(np.isnan(f))
    np.testing.assert_allclose(t, [0, 2 / 3, 1])


def test_roc_curve_empty_warns():
    with pytest.warns(UndefinedMetricWarning, match="empty"):
        f, t, th = roc_curve([], [])
    assert np.isnan(f).all() and np.isnan(t).all() and th.tolist() == [np.inf]


@pytest.mark.parametrize(
    ("y", "s", "auc"),
    [
        # pairs (+,-): (0.35,0.1)=1 (0.35,0.4)=0 (0.8,0.1)=1 (0.8,0.4)=1 -> 3/4
        ([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], 0.75),
        # (0.5,0.5)=1/2 (0.5,0.2)=1 (0.9,0.5)=1 (0.9,0.2)=1 -> 3.5/4
        ([0, 1, 0, 1], [0.5, 0.5, 0.2, 0.9], 0.875),
        # all tied -> every pair counts 1/2
        ([0, 1, 0, 1], [7, 7, 7, 7], 0.5),
        # perfectly reversed
        ([1, 1, 0, 0], [0.1, 0.2, 0.3, 0.4], 0.0),
        # one positive beats 2 of 3 negatives
        ([0, 0, 0, 1], [1, 2, 5, 3], 2 / 3),
    ],
)
def test_roc_auc_hand_examples(y, s, auc):
    assert roc_auc(y, s) == pytest.approx(auc, abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_roc_auc_matches_brute_force_pairs(seed):
    y, s = _tied_data(seed, n=120)
    assert roc_auc(y, s) == pytest.approx(_brute_auc(y, s), abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_roc_auc_matches_sklearn(seed):
    sk_metrics = pytest.importorskip("sklearn.metrics")
    y, s = _tied_data(seed, n=500)
    assert roc_auc(y, s) == pytest.approx(sk_metrics.roc_auc_score(y, s), abs=1e-12)


def test_roc_auc_is_rank_based():
    # A strictly increasing transform leaves the AUC unchanged.
    y, s = _tied_data(4)
    assert roc_auc(y, np.exp(s)) == pytest.approx(roc_auc(y, s), abs=1e-12)


@pytest.mark.parametrize(("y", "s"), [([1, 1, 1], [0.1, 0.2, 0.3]), ([0, 0], [0.1, 0.2]), ([], [])])
def test_roc_auc_single_class_or_empty_nan(y, s):
    with pytest.warns(UndefinedMetricWarning, match="both classes"):
        assert math.isnan(roc_auc(y, s))


@pytest.mark.parametrize(
    ("y", "s", "match"),
    [
        ([0, 1, 1], [0.1, np.nan, 0.3], "NaN"),
        ([0, 1, 1], [0.1, 0.3], "same length"),
        ([0, 1, 2], [0.1, 0.2, 0.3], "binary labels"),
        ([0, np.nan, 1], [0.1, 0.2, 0.3], "NaN"),
    ],
)
def test_roc_auc_invalid(y, s, match):
    with pytest.raises(ValueError, match=match):
        roc_auc(y, s)


# ---------------------------------------------------------------------------
# DeLong and bootstrap intervals, DeLong test
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_delong_variance_matches_structural_components(seed):
    y, s = _tied_data(seed, n=200)
    aucs, cov = _brute_delong(y, [s])
    auc, low, high = roc_auc_ci(y, s, alpha=0.05)
    assert auc == pytest.approx(aucs[0], abs=1e-12)
    assert 0.0 < low < high < 1.0  # not clipped, so the half-width is z * SE
    var = ((high - low) / (2 * Z975)) ** 2
    assert var == pytest.approx(cov[0, 0], rel=1e-9)
    assert (low + high) / 2 == pytest.approx(auc, abs=1e-12)


def test_delong_small_hand_example():
    # y = [0,0,1,1], s = [0.1,0.4,0.35,0.8]. Pairwise kernel psi(pos, neg):
    #   pos 0.35: vs 0.1 -> 1, vs 0.4 -> 0   => V10 = 0.5
    #   pos 0.8 : vs 0.1 -> 1, vs 0.4 -> 1   => V10 = 1.0
    #   neg 0.1 : beaten by both            => V01 = 1.0
    #   neg 0.4 : beaten by 0.8 only        => V01 = 0.5
    # var(V10) = var(V01) = (0.25^2 * 2) / 1 = 0.125; Var(AUC) = 0.125/2 + 0.125/2 = 0.125
    # CI = 0.75 +/- 1.959964 * sqrt(0.125) = 0.75 +/- 0.692952 -> (0.057048, 1 clipped)
    auc, low, high = roc_auc_ci([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    assert auc == 0.75
    assert low == pytest.approx(0.75 - Z975 * math.sqrt(0.125), abs=1e-12)
    assert high == 1.0


def test_delong_ci_coverage_sanity():
    # Binormal model: negatives N(0,1), positives N(1,1) -> AUC = Phi(1/sqrt(2)) = 0.760250.
    true_auc = 0.7602499389065233
    rng = np.random.default_rng(12345)
    reps, m, n = 400, 50, 50
    y = np.r_[np.ones(m), np.zeros(n)]
    covered = 0
    for _ in range(reps):
        s = np.r_[rng.normal(1.0, 1.0, m), rng.normal(0.0, 1.0, n)]
        _, low, high = roc_auc_ci(y, s)
        covered += low <= true_auc <= high
    # Nominal 0.95; Monte-Carlo SE with 400 reps is ~0.011.
    assert 0.91 <= covered / reps <= 0.985


def test_delong_perfect_separation_collapses():
    assert roc_auc_ci([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4]) == (1.0, 1.0, 1.0)


def test_delong_needs_two_per_class():
    with pytest.warns(UndefinedMetricWarning, match="at least 2 positive and 2 negative"):
        auc, low, high = roc_auc_ci([0, 0, 1], [0.1, 0.5, 0.3])
    assert auc == 0.5 and math.isnan(low) and math.isnan(high)


def test_bootstrap_ci_is_reproducible_and_close_to_delong():
    y, s = _tied_data(5, n=400)
    a1 = roc_auc_ci(y, s, method="bootstrap", n_bootstrap=1000, random_state=7)
    a2 = roc_auc_ci(y, s, method="bootstrap", n_bootstrap=1000, random_state=7)
    a3 = roc_auc_ci(
        y, s, method="bootstrap", n_bootstrap=1000, random_state=np.random.default_rng(7)
    )
    assert a1 == a2 == a3
    d = roc_auc_ci(y, s, method="delong")
    assert a1[0] == d[0] == pytest.approx(roc_auc(y, s))
    assert a1[1] < a1[0] < a1[2]
    assert a1[1] == pytest.approx(d[1], abs=0.02) and a1[2] == pytest.approx(d[2], abs=0.02)
    other_seed = roc_auc_ci(y, s, method="bootstrap", n_bootstrap=1000, random_state=8)
    assert other_seed != a1


def test_bootstrap_resampling_is_stratified():
    # With one positive a non-stratified bootstrap would often draw no positive
    # and crash or return NaN; stratified resampling keeps it in every replicate.
    # The positive (0.6) beats the negatives {0.1, 0.5} and loses to 0.9, so each
    # replicate's AUC is the share of resampled negatives below 0.6, in [0, 1].
    auc, low, high = roc_auc_ci(
        [1, 0, 0, 0], [0.6, 0.1, 0.5, 0.9], method="bootstrap", n_bootstrap=300, random_state=0
    )
    assert auc == pytest.approx(2 / 3)
    assert 0.0 <= low < auc < high <= 1.0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method": "hanley"}, "method must be one of"),
        ({"method": "bootstrap", "n_bootstrap": 0}, "n_bootstrap"),
        ({"method": "bootstrap", "n_bootstrap": 2.5}, "n_bootstrap"),
        ({"alpha": 0}, "alpha"),
    ],
)
def test_roc_auc_ci_invalid(kwargs, match):
    with pytest.raises(ValueError, match=match):
        roc_auc_ci([0, 1, 0, 1], [0.1, 0.2, 0.3, 0.4], **kwargs)


@pytest.mark.parametrize("method", ["delong", "bootstrap"])
def test_roc_auc_ci_single_class_nan(method):
    with pytest.warns(UndefinedMetricWarning, match="both classes"):
        res = roc_auc_ci([1, 1], [0.1, 0.2], method=method)
    assert all(math.isnan(v) for v in res)


@pytest.mark.parametrize("seed", [0, 1])
def test_delong_test_matches_brute_force(seed):
    y, s_a = _tied_data(seed, n=200)
    rng = np.random.default_rng(seed + 100)
    s_b = np.round(s_a + rng.normal(scale=1.0, size=s_a.size), 1)  # correlated, noisier
    aucs, cov = _brute_delong(y, [s_a, s_b])
    z_expected = (aucs[0] - aucs[1]) / math.sqrt(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    auc_a, auc_b, z, p = delong_test(y, s_a, s_b)
    assert (auc_a, auc_b) == pytest.approx(tuple(aucs), abs=1e-12)
    assert z == pytest.approx(z_expected, rel=1e-9)
    # two-sided normal p-value; e.g. |z| = 1.959964 <-> p = 0.05
    assert p == pytest.approx(math.erfc(abs(z_expected) / math.sqrt(2)), rel=1e-9)
    # swapping the models flips z and keeps p
    b_a, a_b, z_swapped, p_swapped = delong_test(y, s_b, s_a)
    assert z_swapped == pytest.approx(-z) and p_swapped == pytest.approx(p)


def test_delong_test_detects_a_clearly_better_model():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    good = y * 2.0 + rng.normal(size=400)
    weak = y * 0.3 + rng.normal(size=400)
    auc_a, auc_b, z, p = delong_test(y, good, weak)
    assert auc_a > auc_b and z > 3 and p < 1e-3


def test_delong_test_identical_rankings_warn():
    y, s = _tied_data(0, n=60)
    with pytest.warns(UndefinedMetricWarning, match="variance of the AUC difference"):
        auc_a, auc_b, z, p = delong_test(y, s, 2 * s + 1)  # same ranking
    assert auc_a == auc_b and math.isnan(z) and math.isnan(p)


def test_delong_test_invalid_and_single_class():
    with pytest.raises(ValueError, match="scores_b"):
        delong_test([0, 1, 1], [0.1, 0.2, 0.3], [0.1, 0.2])
    with pytest.warns(UndefinedMetricWarning, match="both classes"):
        res = delong_test([1, 1, 1], [0.1, 0.2, 0.3], [0.3, 0.2, 0.1])
    assert all(math.isnan(v) for v in res)


# ---------------------------------------------------------------------------
# Threshold selection
# ---------------------------------------------------------------------------

# Scores sorted descending: 0.9(+) 0.6(-) 0.5(+) 0.3(-) 0.2(-) 0.1(-); P = 2, N = 4.
#   threshold : inf  0.9   0.6   0.5   0.3   0.2   0.1
#   tpr       : 0    0.5   0.5   1     1     1     1
#   fpr       : 0    0     0.25  0.25  0.5   0.75  1
#   spec      : 1    1     0.75  0.75  0.5   0.25  0
#   J         : 0    0.5   0.25  0.75  0.5   0.25  0
THR_Y = [0, 0, 0, 0, 1, 1]
THR_S = [0.1, 0.2, 0.3, 0.6, 0.5, 0.9]


@pytest.mark.parametrize(
    ("specificity", "threshold"),
    [
        (1.0, 0.9),  # highest-sensitivity point with spec 1
        (0.8, 0.9),  # 0.75 < 0.8, so stay at 0.9
        (0.75, 0.5),  # spec 0.75 exactly met; 0.5 beats 0.6 on sensitivity
        (0.7, 0.5),
        (0.5, 0.3),
        (0.0, 0.1),  # everything positive
    ],
)
def test_threshold_at_specificity_hand(specificity, threshold):
    assert threshold_at_specificity(THR_Y, THR_S, specificity=specificity) == threshold


def test_threshold_at_specificity_unreachable_returns_inf():
    # The top score is a negative, so specificity 1 needs "nothing positive".
    t = threshold_at_specificity([0, 1, 0], [0.9, 0.5, 0.1], specificity=1.0)
    assert t == np.inf


@pytest.mark.parametrize("target", [0.3, 0.7, 0.9, 0.95])
def test_threshold_at_specificity_is_optimal_on_random_data(target):
    y, s = _tied_data(6, n=300)
    neg = ~y.astype(bool)
    t = threshold_at_specificity(y, s, specificity=target)
    assert np.mean(s[neg] < t) >= target  # achieved specificity
    lower = s[s < t]
    if lower.size:  # the next lower distinct score would violate the target
        assert np.mean(s[neg] < lower.max()) < target


def test_youden_threshold_hand():
    # max J = 0.75 at threshold 0.5 (table above)
    assert youden_threshold(THR_Y, THR_S) == 0.5


def test_youden_threshold_ties_pick_highest_threshold():
    # y=[0,0,1,1], s=[0.1,0.4,0.35,0.8]: J = 0, 0.5, 0, 0.5, 0 at
    # thresholds inf, 0.8, 0.4, 0.35, 0.1 -> the tie is broken towards 0.8.
    assert youden_threshold([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.8


def test_youden_threshold_midpoint_hand():
    # Same tie as above: J is maximal at 0.8, the next lower score is 0.4 -> 0.6.
    assert youden_threshold(
        [0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], placement="midpoint"
    ) == pytest.approx(0.6)
    # Separable: J = 1 for any t in (0.3, 0.7]; the midpoint is 0.5.
    t = youden_threshold([0, 0, 1, 1], [0.1, 0.3, 0.7, 0.9], placement="midpoint")
    assert t == pytest.approx(0.5)


def test_youden_threshold_midpoint_keeps_the_calls():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 60)
    s = rng.normal(size=60) + y
    t_obs = youden_threshold(y, s)
    t_mid = youden_threshold(y, s, placement="midpoint")
    assert t_mid < t_obs  # strictly inside the gap below the observed score
    np.testing.assert_array_equal(s >= t_obs, s >= t_mid)


def test_youden_threshold_placement_invalid():
    with pytest.raises(ValueError, match="placement"):
        youden_threshold([0, 1], [0.1, 0.9], placement="middle")


@pytest.mark.parametrize("specificity", [-0.1, 1.1, float("nan"), "high"])
def test_threshold_at_specificity_invalid(specificity):
    with pytest.raises(ValueError, match="specificity"):
        threshold_at_specificity(THR_Y, THR_S, specificity=specificity)


def test_thresholds_single_class_nan():
    with pytest.warns(UndefinedMetricWarning, match="both classes"):
        assert math.isnan(threshold_at_specificity([0, 0], [0.1, 0.2], specificity=0.9))
    with pytest.warns(UndefinedMetricWarning, match="both classes"):
        assert math.isnan(youden_threshold([1, 1], [0.1, 0.2]))


# ---------------------------------------------------------------------------
# Agreement
# ---------------------------------------------------------------------------

# y_true = [10, 12, 14, 16], y_pred = [11, 11, 15, 18]
#   errors        = [1, -1, 1, 2]
#   bias          = 3/4 = 0.75
#   deviations    = [0.25, -1.75, 0.25, 1.25] -> squares sum to 4.75
#   SD (ddof=1)   = sqrt(4.75/3) = sqrt(1.583333) = 1.2583057
#   MAE           = (1+1+1+2)/4 = 1.25
#   RMSE          = sqrt((1+1+1+4)/4) = sqrt(1.75) = 1.3228757
#   LoA           = 0.75 -/+ 1.959964 * 1.2583057 = 0.75 -/+ 2.4662339 -> (-1.7162339, 3.2162339)
#   bias CI       = 0.75 -/+ t(3, 0.975) * SD/sqrt(4) = 0.75 -/+ 3.1824463 * 0.6291529
#                 = 0.75 -/+ 2.0022452 -> (-1.2522452, 2.7522452)
#   within 0.5    = 0/4; within 1.0 = 3/4 (|1| <= 1 is inclusive); within 2 = 4/4
AGREE_TRUE = [10, 12, 14, 16]
AGREE_PRED = [11, 11, 15, 18]


def test_agreement_hand_example():
    res = agreement(AGREE_TRUE, AGREE_PRED, tolerances=(0.5, 1.0, 2))
    assert res.n == 4
    assert res.mean_error == pytest.approx(0.75)
    assert res.sd_error == pytest.approx(1.2583057, abs=1e-7)
    assert res.mae == pytest.approx(1.25)
    assert res.rmse == pytest.approx(1.3228757, abs=1e-7)
    assert (res.loa_low, res.loa_high) == pytest.approx((-1.7162339, 3.2162339), abs=1e-7)
    assert res.mean_error_ci == pytest.approx((-1.2522452, 2.7522452), abs=1e-7)
    assert res.within == {0.5: 0.0, 1.0: 0.75, 2.0: 1.0}
    d = res.to_dict()
    assert (d["within_0.5"], d["within_1.0"], d["within_2.0"]) == (0.0, 0.75, 1.0)
    assert d["mean_error_low"] == res.mean_error_ci[0] and d["loa_high"] == res.loa_high


def test_agreement_alpha_uses_normal_quantile():
    # alpha = 0.10 -> z = 1.644854; LoA = 0.75 -/+ 1.644854 * 1.2583057 = 0.75 -/+ 2.0697296
    res = agreement(AGREE_TRUE, AGREE_PRED, alpha=0.10)
    assert (res.loa_low, res.loa_high) == pytest.approx((-1.3197296, 2.8197296), abs=1e-6)


def test_agreement_tolerance_boundary_survives_float_rounding():
    # 120.3 - 115.3 == 5.000000000000014 in binary floating point; still "within 5".
    res = agreement([115.3, 100.0], [120.3, 106.0], tolerances=(5,))
    assert res.within == {5.0: 0.5}


def test_agreement_empty_warns_nan():
    with pytest.warns(UndefinedMetricWarning, match="empty"):
        d = agreement([], []).to_dict()
    assert d["n"] == 0
    assert all(math.isnan(v) for k, v in d.items() if k not in ("n", "alpha"))


def test_agreement_single_pair_warns_for_sd():
    with pytest.warns(UndefinedMetricWarning, match="at least 2 pairs"):
        res = agreement([10.0], [12.0])
    assert res.mean_error == 2.0 and res.mae == 2.0 and res.rmse == 2.0
    assert math.isnan(res.sd_error) and math.isnan(res.loa_low)
    assert all(math.isnan(v) for v in res.mean_error_ci)


@pytest.mark.parametrize(
    ("y_true", "y_pred", "kwargs", "match"),
    [
        ([1, 2, 3], [1, 2], {}, "same length"),
        ([1, np.nan], [1, 2], {}, "NaN or infinite"),
        ([1, 2], [1, np.inf], {}, "NaN or infinite"),
        ([1, 2], [1, 2], {"tolerances": (-1,)}, "non-negative"),
        ([1, 2], [1, 2], {"tolerances": ("a",)}, "tolerances"),
        ([1, 2], [1, 2], {"alpha": -0.05}, "alpha"),
    ],
)
def test_agreement_invalid(y_true, y_pred, kwargs, match):
    with pytest.raises(ValueError, match=match):
        agreement(y_true, y_pred, **kwargs)


def test_bland_altman_hand_example():
    ba = bland_altman(AGREE_TRUE, AGREE_PRED)
    # means of the pairs: (10+11)/2, (12+11)/2, (14+15)/2, (16+18)/2
    np.testing.assert_allclose(ba.mean, [10.5, 11.5, 14.5, 17.0])
    np.testing.assert_allclose(ba.diff, [1, -1, 1, 2])
    assert ba.bias == pytest.approx(0.75)
    assert (ba.loa_low, ba.loa_high) == pytest.approx((-1.7162339, 3.2162339), abs=1e-7)


def test_bland_altman_single_pair_warns():
    with pytest.warns(UndefinedMetricWarning):
        ba = bland_altman([1.0], [2.0])
    assert ba.bias == 1.0 and math.isnan(ba.loa_low)


# ---------------------------------------------------------------------------
# Blood-pressure criteria
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("errors", "mean_error", "sd_error", "passed"),
    [
        # [2, -2, 6, 2]: ME = 8/4 = 2; deviations [0,-4,4,0] -> SD = sqrt(32/3) = 3.265986
        ([2, -2, 6, 2], 2.0, 3.265986, True),
        # ME = 5 exactly, SD = 0 -> passes (limits are inclusive)
        ([5, 5, 5, 5], 5.0, 0.0, True),
        # ME = -5 exactly passes too
        ([-5, -5, -5, -5], -5.0, 0.0, True),
        # [-6, -6, -4, -8]: ME = -24/4 = -6 -> |ME| > 5 fails
        ([-6, -6, -4, -8], -6.0, 1.632993, False),
        # [-10, 10, -10, 10]: ME 0, SD = sqrt(400/3) = 11.547005 > 8 fails
        ([-10, 10, -10, 10], 0.0, 11.547005, False),
    ],
)
def test_aami_criterion(errors, mean_error, sd_error, passed):
    y_true = np.full(len(errors), 120.0)
    res = aami_criterion(y_true, y_true + np.array(errors, dtype=float))
    assert res["mean_error"] == pytest.approx(mean_error)
    assert res["sd_error"] == pytest.approx(sd_error, abs=1e-6)
    assert res["passed"] is passed
    assert res["n"] == len(errors) and res["n_sufficient"] is False


def test_aami_boundary_with_float_rounding():
    # 120.3 - 115.3 = 5.000000000000014 for every pair: ME is "5", must pass.
    res = aami_criterion([115.3, 115.3], [120.3, 120.3])
    assert res["passed"] is True


@pytest.mark.parametrize(("n", "sufficient"), [(84, False), (85, True)])
def test_aami_n_sufficient_reported_separately(n, sufficient):
    y_true = np.full(n, 80.0)
    res = aami_criterion(y_true, y_true + 1.0)
    assert res["passed"] is True  # accuracy passes regardless of n
    assert res["n_sufficient"] is sufficient


def test_aami_counts_subjects_not_pairs():
    # 255 readings from 85 subjects (3 each) is exactly the standard's minimum;
    # 255 readings from 84 subjects is not.
    y_true = np.full(255, 120.0)
    ids = np.repeat(np.arange(85), 3)
    res = aami_criterion(y_true, y_true, subject_ids=ids)
    assert (res["n"], res["n_subjects"], res["n_sufficient"]) == (255, 85, True)
    ids84 = np.minimum(ids, 83)
    assert aami_criterion(y_true, y_true, subject_ids=ids84)["n_sufficient"] is False
    with pytest.raises(ValueError, match="subject_ids"):
        aami_criterion(y_true, y_true, subject_ids=ids[:-1])


def test_aami_single_pair_fails_with_warning():
    with pytest.warns(UndefinedMetricWarning):
        res = aami_criterion([120.0], [121.0])
    assert res["passed"] is False and math.isnan(res["sd_error"])


def _errors(*groups: tuple[int, float]) -> np.ndarray:
    """Build an error vector from (count, |error|) groups with alternating signs."""
    values = [e for count, e in groups for _ in range(count)]
    signs = np.where(np.arange(len(values)) % 2 == 0, 1.0, -1.0)
    return np.array(values) * signs


@pytest.mark.parametrize(
    ("errors", "shares", "grade"),
    [
        # n = 20, each pair is 5 %. Errors exactly on 5/10/15 check inclusiveness.
        # 12 at 5, 5 at 10, 2 at 15, 1 at 20 -> cumulative 12, 17, 19 = 60/85/95 % -> A
        (_errors((12, 5), (5, 10), (2, 15), (1, 20)), (0.60, 0.85, 0.95), "A"),
        # 12 at 3, 4 at 8, 3 at 13, 1 at 20 -> 60/80/95 %: A fails at 10 mmHg -> B
        (_errors((12, 3), (4, 8), (3, 13), (1, 20)), (0.60, 0.80, 0.95), "B"),
        # 10 at 3, 5 at 8, 3 at 13, 2 at 20 -> 50/75/90 % -> B
        (_errors((10, 3), (5, 8), (3, 13), (2, 20)), (0.50, 0.75, 0.90), "B"),
        # 8 at 3, 5 at 8, 4 at 13, 3 at 20 -> 40/65/85 % -> C
        (_errors((8, 3), (5, 8), (4, 13), (3, 20)), (0.40, 0.65, 0.85), "C"),
        # 7 at 3, 13 at 6 -> 35/100/100 %: fails C at 5 mmHg -> D
        (_errors((7, 3), (13, 6)), (0.35, 1.0, 1.0), "D"),
        # 14 at 0, 6 at 20 -> 70/70/70 %: meets every 5-mmHg limit but not the
        # 15-mmHg one of C (85 %) -> D (all three must be met)
        (_errors((14, 0), (6, 20)), (0.70, 0.70, 0.70), "D"),
    ],
)
def test_bhs_grade(errors, shares, grade):
    y_true = np.full(errors.size, 130.0)
    res = bhs_grade(y_true, y_true + errors)
    assert (res["within_5"], res["within_10"], res["within_15"]) == pytest.approx(shares)
    assert res["grade"] == grade and res["n"] == 20


def test_bhs_grade_empty_warns():
    with pytest.warns(UndefinedMetricWarning, match="empty"):
        res = bhs_grade([], [])
    assert res["grade"] is None and math.isnan(res["within_5"])


# ---------------------------------------------------------------------------
# MASE
# ---------------------------------------------------------------------------


def test_mase_hand_example():
    # mean(y_train) = 2; model MAE = (|2-1| + |3-3| + |4-5|)/3 = 2/3;
    # baseline MAE = (|1-2| + |3-2| + |5-2|)/3 = 5/3 -> MASE = (2/3)/(5/3) = 0.4
    assert mase([1, 3, 5], [2, 3, 4], y_train=[1, 2, 3]) == pytest.approx(0.4)


def test_mase_zero_baseline_warns():
    with pytest.warns(UndefinedMetricWarning, match="baseline MAE is 0"):
        assert math.isnan(mase([2, 2], [1, 3], y_train=[2]))


@pytest.mark.parametrize(("y_true", "y_train"), [([], [1.0]), ([1.0], [])])
def test_mase_empty_warns(y_true, y_train):
    with pytest.warns(UndefinedMetricWarning, match="empty"):
        assert math.isnan(mase(y_true, y_true, y_train=y_train))


def test_mase_invalid():
    with pytest.raises(ValueError, match="y_train"):
        mase([1, 2], [1, 2], y_train=[1, np.nan])
    with pytest.raises(ValueError, match="same length"):
        mase([1, 2], [1], y_train=[1])


# ---------------------------------------------------------------------------
# Accumulating metrics
# ---------------------------------------------------------------------------


def _three_batches(*arrays):
    cuts = [0, 7, 30, len(arrays[0])]
    for lo, hi in zip(cuts[:-1], cuts[1:]):
        yield tuple(a[lo:hi] for a in arrays)


def test_confusion_matrix_metric_batches_equal_one_shot():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 100)
    pred = rng.integers(0, 2, 100)
    metric = ConfusionMatrixMetric(ci_method="clopper-pearson")
    for batch in _three_batches(y, pred):
        metric.update(*batch)
    assert metric.counts == confusion_counts(y, pred)
    one_shot = binary_diagnostics(y, pred, ci_method="clopper-pearson").to_dict()
    assert metric.aggregate() == one_shot
    metric.reset()
    assert metric.counts == ConfusionCounts(0, 0, 0, 0)


def test_confusion_matrix_metric_docstring_example():
    metric = ConfusionMatrixMetric()
    metric.update([1, 0, 1], [1, 0, 0])
    metric.update([0, 1], [1, 1])
    # tp=2 (two hits), fn=1 -> sensitivity 2/3
    assert metric.aggregate()["sensitivity"] == pytest.approx(2 / 3)


def test_confusion_matrix_metric_invalid_update_leaves_state():
    metric = ConfusionMatrixMetric()
    metric.update([1, 0], [1, 0])
    with pytest.raises(ValueError, match="binary labels"):
        metric.update([1, 0], [1, 5])
    assert metric.counts == ConfusionCounts(1, 0, 0, 1)
    with pytest.raises(ValueError, match="ci_method"):
        ConfusionMatrixMetric(ci_method="exact")


def test_confusion_matrix_metric_empty_aggregate_warns():
    with pytest.warns(UndefinedMetricWarning):
        d = ConfusionMatrixMetric().aggregate()
    assert d["n"] == 0 and math.isnan(d["sensitivity"])


def test_agreement_metric_batches_equal_one_shot():
    rng = np.random.default_rng(1)
    t = rng.normal(70, 10, 60)
    p = t + rng.normal(1, 2, 60)
    metric = AgreementMetric(tolerances=(1, 5), alpha=0.1)
    for batch in _three_batches(t, p):
        metric.update(*batch)
    assert metric.aggregate() == agreement(t, p, tolerances=(1, 5), alpha=0.1).to_dict()
    metric.reset()
    with pytest.warns(UndefinedMetricWarning, match="empty"):
        assert metric.aggregate()["n"] == 0


def test_agreement_metric_invalid_update_leaves_state():
    metric = AgreementMetric()
    metric.update(AGREE_TRUE, AGREE_PRED)
    with pytest.raises(ValueError, match="same length"):
        metric.update([1, 2], [1])
    assert metric.aggregate() == agreement(AGREE_TRUE, AGREE_PRED).to_dict()


@pytest.mark.parametrize(
    "kwargs", [{"method": "delong"}, {"method": "bootstrap", "n_bootstrap": 300, "random_state": 3}]
)
def test_roc_auc_metric_batches_equal_one_shot(kwargs):
    y, s = _tied_data(7, n=120)
    metric = ROCAUCMetric(**kwargs)
    for batch in _three_batches(y, s):
        metric.update(*batch)
    auc, low, high = roc_auc_ci(y, s, **kwargs)
    assert metric.aggregate() == {"auc": auc, "low": low, "high": high}
    metric.reset()
    with pytest.warns(UndefinedMetricWarning, match="both classes"):
        assert math.isnan(metric.aggregate()["auc"])


def test_roc_auc_metric_invalid():
    with pytest.raises(ValueError, match="method"):
        ROCAUCMetric(method="hanley")
    metric = ROCAUCMetric()
    with pytest.raises(ValueError, match="NaN"):
        metric.update([0, 1], [0.1, np.nan])


def test_public_api_is_exported():
    for name in metrics.__all__:
        assert hasattr(metrics, name), name
    assert issubclass(UndefinedMetricWarning, RuntimeWarning)
