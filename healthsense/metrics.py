"""Evaluation metrics for health-sensing models.

The module follows the MONAI pattern: every metric is available as a pure
function, and the most common ones also as an accumulating class with
``update`` / ``aggregate`` / ``reset`` so that per-batch or per-recording
results can be pooled without keeping the bookkeeping in user code.

Contents
--------
Binary classification (screening tests)
    :func:`confusion_counts`, :class:`ConfusionCounts`,
    :func:`binary_diagnostics` (sensitivity, specificity, PPV, NPV, accuracy,
    prevalence with Wilson or Clopper-Pearson intervals, likelihood ratios with
    the log-method interval, Youden's J), :func:`wilson_interval`,
    :func:`clopper_pearson_interval`.
ROC analysis
    :func:`roc_curve`, :func:`roc_auc`, :func:`roc_auc_ci` (DeLong or stratified
    bootstrap), :func:`delong_test` (paired comparison of two models),
    :func:`threshold_at_specificity`, :func:`youden_threshold`.
Agreement of continuous estimates (heart rate, refraction, blood pressure ...)
    :func:`agreement`, :func:`bland_altman`, :func:`aami_criterion`,
    :func:`bhs_grade`, :func:`mase`.
Accumulators
    :class:`ConfusionMatrixMetric`, :class:`AgreementMetric`,
    :class:`ROCAUCMetric`.

Conventions
-----------
* Labels are binary ``0``/``1`` (``bool`` is accepted); ``1`` is the positive
  class (disease present, signal informative, ...). Anything else raises
  :class:`ValueError` instead of being silently re-mapped.
* For continuous agreement the error is always ``y_pred - y_true`` (device
  minus reference), so a positive bias means the model over-estimates.
* Metrics that are mathematically undefined for the data at hand (a zero
  denominator, empty input, a single class for AUC) return ``float('nan')``
  and emit an :class:`UndefinedMetricWarning` instead of raising, so that a
  long evaluation loop is never killed by one degenerate fold.
* Only numpy and scipy are used.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

__all__ = [
    "AgreementMetric",
    "AgreementResult",
    "BinaryDiagnostics",
    "BlandAltmanResult",
    "ConfusionCounts",
    "ConfusionMatrixMetric",
    "ROCAUCMetric",
    "UndefinedMetricWarning",
    "aami_criterion",
    "agreement",
    "bhs_grade",
    "binary_diagnostics",
    "bland_altman",
    "clopper_pearson_interval",
    "confusion_counts",
    "delong_test",
    "mase",
    "roc_auc",
    "roc_auc_ci",
    "roc_curve",
    "threshold_at_specificity",
    "wilson_interval",
    "youden_threshold",
]

_CI_METHODS = ("wilson", "clopper-pearson")
_AUC_CI_METHODS = ("delong", "bootstrap")

# Absolute slack used for the inclusive "within tolerance" / "<= limit" tests.
# Differences such as 120.3 - 115.3 evaluate to 5.000000000000014 in binary
# floating point; without a little slack a reading that is exactly on the
# clinical boundary would be counted as outside it. 1e-9 is far below any
# physiological resolution (mmHg, bpm, dioptres), so it never changes a
# genuine decision.
_FP_SLACK = 1e-9


class UndefinedMetricWarning(RuntimeWarning):
    """Warning emitted when a metric is undefined for the given data.

    The metric is returned as ``float('nan')`` (or an interval of NaNs). This
    mirrors :class:`sklearn.exceptions.UndefinedMetricWarning` but derives from
    :class:`RuntimeWarning` so that ``-W error::RuntimeWarning`` catches it.
    """


def _warn_undefined(message: str, *, depth: int = 1) -> None:
    # ``depth`` is the number of module-internal frames between the user's
    # call and this function (1: called directly from a public function), so
    # that the warning is attributed to the user's line, not to this module.
    warnings.warn(message, UndefinedMetricWarning, stacklevel=depth + 2)


# ---------------------------------------------------------------------------
# Input validation
# ---------------------------------------------------------------------------


def _check_alpha(alpha: float) -> float:
    try:
        value = float(alpha)
    except (TypeError, ValueError):
        raise ValueError(
            f"alpha must be a number in the open interval (0, 1), got {alpha!r}"
        ) from None
    # ``not (0 < x < 1)`` is also True for NaN, which is what we want.
    if not 0.0 < value < 1.0:
        raise ValueError(f"alpha must be in the open interval (0, 1), got {alpha!r}")
    return value


def _as_1d(x: ArrayLike, name: str) -> np.ndarray:
    if x is None:
        raise ValueError(f"{name} is required")
    try:
        arr = np.asarray(x, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a 1-D array of numbers") from None
    # Column vectors of shape (n, 1) are common in deep-learning code
    # (a single-logit head); accept them as 1-D.
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got an array of shape {arr.shape}")
    return arr


def _check_labels(x: ArrayLike, name: str) -> np.ndarray:
    """Validate binary 0/1 labels and return them as a boolean array."""
    arr = _as_1d(x, name)
    if np.isnan(arr).any():
        raise ValueError(f"{name} contains NaN; labels must be 0 or 1")
    bad = (arr != 0) & (arr != 1)
    if bad.any():
        found = np.unique(arr[bad])[:5]
        raise ValueError(
            f"{name} must contain only the binary labels 0 and 1 (or booleans); "
            f"found {found.tolist()}. Threshold scores first, e.g. (scores >= t)."
        )
    return arr.astype(bool)


def _check_scores(x: ArrayLike, name: str) -> np.ndarray:
    arr = _as_1d(x, name)
    # +/-inf is a legitimate score (e.g. a logit that saturated); NaN is not
    # orderable and would silently corrupt ranks.
    if np.isnan(arr).any():
        raise ValueError(f"{name} contains NaN")
    return arr


def _check_finite(x: ArrayLike, name: str) -> np.ndarray:
    arr = _as_1d(x, name)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def _check_same_length(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    if a.shape[0] != b.shape[0]:
        raise ValueError(
            f"{name_a} and {name_b} must have the same length, got {a.shape[0]} and {b.shape[0]}"
        )


def _check_count(value: Any, name: str) -> int:
    try:
        as_float = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a non-negative integer count, got {value!r}") from None
    if not math.isfinite(as_float) or not as_float.is_integer():
        raise ValueError(f"{name} must be a non-negative integer count, got {value!r}")
    if as_float < 0:
        raise ValueError(
            f"{name} must be a non-negative integer count (negative counts are invalid), got {value!r}"
        )
    return int(as_float)


def _check_k_n(k: Any, n: Any) -> tuple[int, int]:
    k_int = _check_count(k, "k")
    n_int = _check_count(n, "n")
    if k_int > n_int:
        raise ValueError(f"k must not exceed n, got k={k_int}, n={n_int}")
    return k_int, n_int


def _le(value: float, limit: float) -> bool:
    """Inclusive ``value <= limit`` with slack for floating-point rounding."""
    return bool(value <= limit + _FP_SLACK)


def _z(alpha: float) -> float:
    return float(stats.norm.ppf(1.0 - alpha / 2.0))


# ---------------------------------------------------------------------------
# Confusion matrix and binomial intervals
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ConfusionCounts:
    """Cells of a binary confusion matrix.

    Parameters
    ----------
    tp, fp, fn, tn : int
        True positives, false positives, false negatives, true negatives.
        Must be non-negative integers (integral floats such as ``45.0`` are
        accepted and converted).

    Notes
    -----
    Instances can be added (``a + b``) to pool counts across batches or sites.
    """

    tp: int
    fp: int
    fn: int
    tn: int

    def __post_init__(self) -> None:
        for name in ("tp", "fp", "fn", "tn"):
            # The dataclass is frozen, so normalise via object.__setattr__.
            object.__setattr__(self, name, _check_count(getattr(self, name), name))

    @property
    def n(self) -> int:
        """Total number of observations."""
        return self.tp + self.fp + self.fn + self.tn

    @property
    def positives(self) -> int:
        """Number of reference-positive observations (``tp + fn``)."""
        return self.tp + self.fn

    @property
    def negatives(self) -> int:
        """Number of reference-negative observations (``fp + tn``)."""
        return self.fp + self.tn

    def __add__(self, other: object) -> ConfusionCounts:
        if not isinstance(other, ConfusionCounts):
            return NotImplemented
        return ConfusionCounts(
            tp=self.tp + other.tp,
            fp=self.fp + other.fp,
            fn=self.fn + other.fn,
            tn=self.tn + other.tn,
        )

    def to_dict(self) -> dict[str, int]:
        """Return ``{"tp", "fp", "fn", "tn", "n"}`` as plain ints."""
        return {"tp": self.tp, "fp": self.fp, "fn": self.fn, "tn": self.tn, "n": self.n}


def confusion_counts(y_true: ArrayLike, y_pred: ArrayLike) -> ConfusionCounts:
    """Count the cells of the binary confusion matrix.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Reference labels, 0 or 1 (1 = positive / condition present).
    y_pred : array-like of shape (n,)
        Predicted labels, 0 or 1. Scores must be thresholded first.

    Returns
    -------
    ConfusionCounts
        Empty input gives all-zero counts (no warning: the counts themselves
        are well defined; the rates derived from them are not).

    Raises
    ------
    ValueError
        If the inputs differ in length or contain anything other than 0/1.
    """
    t = _check_labels(y_true, "y_true")
    p = _check_labels(y_pred, "y_pred")
    _check_same_length(t, p, "y_true", "y_pred")
    return ConfusionCounts(
        tp=int(np.count_nonzero(t & p)),
        fp=int(np.count_nonzero(~t & p)),
        fn=int(np.count_nonzero(t & ~p)),
        tn=int(np.count_nonzero(~t & ~p)),
    )


def _wilson(k: int, n: int, alpha: float) -> tuple[float, float]:
    z = _z(alpha)
    p = k / n
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = (p + z2 / (2.0 * n)) / denom
    half = z * math.sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n)) / denom
    # At k = 0 (k = n) the closed form gives exactly 0 (1) in exact arithmetic;
    # pin them so rounding cannot produce -1e-17 or 1 + 1e-16.
    low = 0.0 if k == 0 else max(0.0, centre - half)
    high = 1.0 if k == n else min(1.0, centre + half)
    return low, high


def _clopper_pearson(k: int, n: int, alpha: float) -> tuple[float, float]:
    # Exact interval from the beta-binomial duality. Beta(0, .) is degenerate,
    # hence the explicit edge cases (which are also the textbook definition).
    low = 0.0 if k == 0 else float(stats.beta.ppf(alpha / 2.0, k, n - k + 1))
    high = 1.0 if k == n else float(stats.beta.ppf(1.0 - alpha / 2.0, k + 1, n - k))
    return low, high


def _proportion_ci(k: int, n: int, alpha: float, method: str) -> tuple[float, float]:
    if n == 0:
        return (math.nan, math.nan)
    if method == "wilson":
        return _wilson(k, n, alpha)
    return _clopper_pearson(k, n, alpha)


def wilson_interval(k: int, n: int, *, alpha: float = 0.05) -> tuple[float, float]:
    """Wilson score confidence interval for a binomial proportion ``k / n``.

    Parameters
    ----------
    k : int
        Number of successes, ``0 <= k <= n``.
    n : int
        Number of trials.
    alpha : float, default 0.05
        Two-sided error rate; ``alpha=0.05`` gives a 95 % interval.

    Returns
    -------
    (low, high) : tuple of float
        ``(nan, nan)`` with an :class:`UndefinedMetricWarning` when ``n == 0``.

    Notes
    -----
    With ``p = k/n`` and ``z = Phi^-1(1 - alpha/2)``::

        centre = (p + z^2/(2n)) / (1 + z^2/n)
        half   = z * sqrt(p(1-p)/n + z^2/(4n^2)) / (1 + z^2/n)

    Wilson (1927); recommended over the Wald interval by Newcombe (1998),
    Stat Med 17:857-872, because it keeps close to nominal coverage for small
    ``n`` and proportions near 0 or 1 (typical for sensitivity/specificity).
    ``k = 0`` gives ``low = 0`` and ``k = n`` gives ``high = 1`` exactly.
    """
    k_int, n_int = _check_k_n(k, n)
    a = _check_alpha(alpha)
    if n_int == 0:
        _warn_undefined("Wilson interval is undefined for n = 0; returning (nan, nan)")
        return (math.nan, math.nan)
    return _wilson(k_int, n_int, a)


def clopper_pearson_interval(k: int, n: int, *, alpha: float = 0.05) -> tuple[float, float]:
    """Clopper-Pearson ("exact") confidence interval for ``k / n``.

    Parameters
    ----------
    k : int
        Number of successes, ``0 <= k <= n``.
    n : int
        Number of trials.
    alpha : float, default 0.05
        Two-sided error rate.

    Returns
    -------
    (low, high) : tuple of float
        ``low = Beta^-1(alpha/2; k, n-k+1)`` (0 when ``k = 0``) and
        ``high = Beta^-1(1-alpha/2; k+1, n-k)`` (1 when ``k = n``).
        ``(nan, nan)`` with an :class:`UndefinedMetricWarning` when ``n == 0``.

    Notes
    -----
    Clopper & Pearson (1934). Guarantees at least nominal coverage and is
    therefore conservative (wider than Wilson); often requested by regulators.
    """
    k_int, n_int = _check_k_n(k, n)
    a = _check_alpha(alpha)
    if n_int == 0:
        _warn_undefined("Clopper-Pearson interval is undefined for n = 0; returning (nan, nan)")
        return (math.nan, math.nan)
    return _clopper_pearson(k_int, n_int, a)


def _likelihood_ratio(
    a: int, n1: int, b: int, n2: int, z: float
) -> tuple[float, tuple[float, float], str | None]:
    """Ratio of two proportions ``(a/n1) / (b/n2)`` with the log-method CI.

    Returns the ratio, its CI and, when something is undefined, a short
    reason (the caller aggregates reasons into one warning).
    """
    nan_ci = (math.nan, math.nan)
    if n1 == 0 or n2 == 0 or b == 0:
        return math.nan, nan_ci, "zero denominator"
    ratio = (a / n1) / (b / n2)
    if a == 0:
        # The point estimate is a well-defined 0, but log(0) makes the
        # log-method standard error undefined.
        return ratio, nan_ci, "interval undefined because the numerator count is 0"
    # Simel, Samsa & Matchar (1991), J Clin Epidemiol 44:763-770: the log of a
    # ratio of two independent binomial proportions is approximately normal
    # with variance 1/a - 1/n1 + 1/b - 1/n2 (delta method, Katz et al. 1978).
    se = math.sqrt(max(1.0 / a - 1.0 / n1 + 1.0 / b - 1.0 / n2, 0.0))
    log_ratio = math.log(ratio)
    return ratio, (math.exp(log_ratio - z * se), math.exp(log_ratio + z * se)), None


@dataclass(frozen=True)
class BinaryDiagnostics:
    """Diagnostic accuracy of a binary test, as returned by :func:`binary_diagnostics`.

    Every proportion ``x`` comes with ``x_ci = (low, high)``. ``youden`` has no
    interval. Use :meth:`to_dict` for a flat, DataFrame-friendly dict with keys
    ``x``, ``x_low``, ``x_high``.
    """

    counts: ConfusionCounts
    sensitivity: float
    sensitivity_ci: tuple[float, float]
    specificity: float
    specificity_ci: tuple[float, float]
    ppv: float
    ppv_ci: tuple[float, float]
    npv: float
    npv_ci: tuple[float, float]
    accuracy: float
    accuracy_ci: tuple[float, float]
    prevalence: float
    prevalence_ci: tuple[float, float]
    lr_pos: float
    lr_pos_ci: tuple[float, float]
    lr_neg: float
    lr_neg_ci: tuple[float, float]
    youden: float
    alpha: float
    ci_method: str

    _WITH_CI = (
        "sensitivity",
        "specificity",
        "ppv",
        "npv",
        "accuracy",
        "prevalence",
        "lr_pos",
        "lr_neg",
    )

    def to_dict(self) -> dict[str, Any]:
        """Flat dict: counts, then ``metric``, ``metric_low``, ``metric_high``, ..."""
        out: dict[str, Any] = dict(self.counts.to_dict())
        for name in self._WITH_CI:
            low, high = getattr(self, f"{name}_ci")
            out[name] = getattr(self, name)
            out[f"{name}_low"] = low
            out[f"{name}_high"] = high
        out["youden"] = self.youden
        out["alpha"] = self.alpha
        out["ci_method"] = self.ci_method
        return out


def binary_diagnostics(
    y_true: ArrayLike | None = None,
    y_pred: ArrayLike | None = None,
    *,
    counts: ConfusionCounts | None = None,
    alpha: float = 0.05,
    ci_method: str = "wilson",
) -> BinaryDiagnostics:
    """Sensitivity, specificity, predictive values and likelihood ratios with CIs.

    Give either ``y_true`` and ``y_pred`` or a precomputed ``counts``.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n,), optional
        Reference and predicted 0/1 labels.
    counts : ConfusionCounts, optional
        Precomputed confusion matrix (e.g. pooled over folds or taken from a
        publication). Mutually exclusive with ``y_true``/``y_pred``.
    alpha : float, default 0.05
        Two-sided error rate of all intervals.
    ci_method : {"wilson", "clopper-pearson"}, default "wilson"
        Interval for the proportions (see :func:`wilson_interval`,
        :func:`clopper_pearson_interval`).

    Returns
    -------
    BinaryDiagnostics
        ``sensitivity = tp/(tp+fn)``, ``specificity = tn/(tn+fp)``,
        ``ppv = tp/(tp+fp)``, ``npv = tn/(tn+fn)``, ``accuracy = (tp+tn)/n``,
        ``prevalence = (tp+fn)/n``, ``youden = sensitivity + specificity - 1``,
        ``lr_pos = sensitivity/(1-specificity)``,
        ``lr_neg = (1-sensitivity)/specificity``.

    Notes
    -----
    * PPV, NPV and accuracy depend on the prevalence of the *sample*; they only
      transfer to a screening population with the same prevalence.
    * The likelihood-ratio intervals use the log method of Simel, Samsa &
      Matchar (1991): ``exp(ln LR +/- z * SE)`` with
      ``SE(ln LR+) = sqrt(1/tp - 1/(tp+fn) + 1/fp - 1/(fp+tn))`` and
      ``SE(ln LR-) = sqrt(1/fn - 1/(tp+fn) + 1/tn - 1/(fp+tn))``. No continuity
      correction is applied: when ``fp = 0`` (``tn = 0``) LR+ (LR-) has a zero
      denominator and is NaN; when ``tp = 0`` (``fn = 0``) the ratio is 0 but
      its log interval is undefined (NaN).
    * Undefined quantities are NaN and reported together in one
      :class:`UndefinedMetricWarning`.

    Raises
    ------
    ValueError
        On invalid labels, mismatched lengths, ``counts`` combined with label
        arrays (or neither given), ``alpha`` outside (0, 1) or an unknown
        ``ci_method``.
    """
    a = _check_alpha(alpha)
    if ci_method not in _CI_METHODS:
        raise ValueError(f"ci_method must be one of {_CI_METHODS}, got {ci_method!r}")
    if counts is not None:
        if y_true is not None or y_pred is not None:
            raise ValueError("give either y_true/y_pred or counts, not both")
        if not isinstance(counts, ConfusionCounts):
            raise ValueError(
                f"counts must be a ConfusionCounts instance, got {type(counts).__name__}"
            )
        c = counts
    else:
        if y_true is None or y_pred is None:
            raise ValueError("give both y_true and y_pred, or counts")
        c = confusion_counts(y_true, y_pred)

    undefined: list[str] = []

    def proportion(name: str, k: int, n: int) -> tuple[float, tuple[float, float]]:
        if n == 0:
            undefined.append(f"{name} (zero denominator)")
            return math.nan, (math.nan, math.nan)
        return k / n, _proportion_ci(k, n, a, ci_method)

    sens, sens_ci = proportion("sensitivity", c.tp, c.tp + c.fn)
    spec, spec_ci = proportion("specificity", c.tn, c.tn + c.fp)
    ppv, ppv_ci = proportion("ppv", c.tp, c.tp + c.fp)
    npv, npv_ci = proportion("npv", c.tn, c.tn + c.fn)
    acc, acc_ci = proportion("accuracy", c.tp + c.tn, c.n)
    prev, prev_ci = proportion("prevalence", c.tp + c.fn, c.n)

    z = _z(a)
    lr_pos, lr_pos_ci, why = _likelihood_ratio(c.tp, c.tp + c.fn, c.fp, c.fp + c.tn, z)
    if why is not None:
        undefined.append(f"lr_pos ({why})")
    lr_neg, lr_neg_ci, why = _likelihood_ratio(c.fn, c.tp + c.fn, c.tn, c.fp + c.tn, z)
    if why is not None:
        undefined.append(f"lr_neg ({why})")

    if undefined:
        _warn_undefined(
            "undefined for these counts "
            f"(tp={c.tp}, fp={c.fp}, fn={c.fn}, tn={c.tn}); returning NaN: " + ", ".join(undefined)
        )

    return BinaryDiagnostics(
        counts=c,
        sensitivity=sens,
        sensitivity_ci=sens_ci,
        specificity=spec,
        specificity_ci=spec_ci,
        ppv=ppv,
        ppv_ci=ppv_ci,
        npv=npv,
        npv_ci=npv_ci,
        accuracy=acc,
        accuracy_ci=acc_ci,
        prevalence=prev,
        prevalence_ci=prev_ci,
        lr_pos=lr_pos,
        lr_pos_ci=lr_pos_ci,
        lr_neg=lr_neg,
        lr_neg_ci=lr_neg_ci,
        # NaN propagates naturally when either component is undefined.
        youden=sens + spec - 1.0,
        alpha=a,
        ci_method=ci_method,
    )


# ---------------------------------------------------------------------------
# ROC analysis
# ---------------------------------------------------------------------------


def _check_labels_scores(
    y_true: ArrayLike, scores: ArrayLike, scores_name: str = "scores"
) -> tuple[np.ndarray, np.ndarray]:
    y = _check_labels(y_true, "y_true")
    s = _check_scores(scores, scores_name)
    _check_same_length(y, s, "y_true", scores_name)
    return y, s


def _both_classes(y: np.ndarray, what: str) -> bool:
    """True if both classes are present; otherwise warn and return False."""
    n_pos = int(np.count_nonzero(y))
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        _warn_undefined(
            f"{what} is undefined: it needs both classes, got {n_pos} positive and "
            f"{n_neg} negative samples; returning NaN",
            depth=2,
        )
        return False
    return True


def roc_curve(y_true: ArrayLike, scores: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Receiver operating characteristic curve.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Reference 0/1 labels.
    scores : array-like of shape (n,)
        Higher means "more likely positive" (probabilities, logits, ...).

    Returns
    -------
    fpr, tpr : ndarray of shape (k + 1,)
        False- and true-positive rates when ``score >= thresholds[i]`` is called
        positive. The curve starts at (0, 0).
    thresholds : ndarray of shape (k + 1,)
        Strictly decreasing: ``+inf`` followed by the ``k`` distinct scores.

    Notes
    -----
    Tied scores are one operating point (a tie cannot be split by any
    threshold), so the curve moves diagonally across a tie; this is what makes
    the trapezoidal area equal to the Mann-Whitney AUC. The output matches
    ``sklearn.metrics.roc_curve(..., drop_intermediate=False)``.
    If one class is absent, the corresponding rate is NaN and an
    :class:`UndefinedMetricWarning` is emitted.
    """
    y, s = _check_labels_scores(y_true, scores)
    if y.size == 0:
        _warn_undefined("roc_curve is undefined for empty input; returning NaN rates")
        return np.array([math.nan]), np.array([math.nan]), np.array([np.inf])

    # Stable sort so the result does not depend on the platform's quicksort.
    order = np.argsort(-s, kind="mergesort")
    s_sorted = s[order]
    y_sorted = y[order]
    # Last index of each run of equal scores. Comparing neighbours (rather than
    # np.diff) keeps runs of +inf together (inf - inf would be NaN).
    distinct = np.flatnonzero(s_sorted[1:] != s_sorted[:-1])
    ends = np.r_[distinct, y_sorted.size - 1]
    tps = np.cumsum(y_sorted)[ends]
    fps = ends + 1 - tps

    tps = np.r_[0, tps].astype(float)
    fps = np.r_[0, fps].astype(float)
    thresholds = np.r_[np.inf, s_sorted[ends]]

    n_pos, n_neg = tps[-1], fps[-1]
    if n_neg == 0:
        _warn_undefined("no negative samples in y_true: false-positive rate is NaN")
        fpr = np.full_like(fps, math.nan)
    else:
        fpr = fps / n_neg
    if n_pos == 0:
        _warn_undefined("no positive samples in y_true: true-positive rate is NaN")
        tpr = np.full_like(tps, math.nan)
    else:
        tpr = tps / n_pos
    return fpr, tpr, thresholds


def _auc_from_ranks(y: np.ndarray, s: np.ndarray) -> float:
    # Mann-Whitney U via midranks: U = R_pos - m(m+1)/2 counts, for every
    # (positive, negative) pair, 1 if the positive scores higher and 1/2 on a
    # tie. AUC = U / (m n). O(n log n) because of the sort inside rankdata.
    m = int(np.count_nonzero(y))
    n = y.size - m
    ranks = stats.rankdata(s)
    return float((ranks[y].sum() - m * (m + 1) / 2.0) / (float(m) * float(n)))


def roc_auc(y_true: ArrayLike, scores: ArrayLike) -> float:
    """Area under the ROC curve (Mann-Whitney definition).

    ``AUC = P(S+ > S-) + 0.5 * P(S+ = S-)`` estimated over all
    positive/negative pairs, computed from midranks in O(n log n). Equal to
    ``sklearn.metrics.roc_auc_score`` and to the trapezoidal area under
    :func:`roc_curve`.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Reference 0/1 labels.
    scores : array-like of shape (n,)
        Higher means "more likely positive".

    Returns
    -------
    float
        NaN with an :class:`UndefinedMetricWarning` if a class is missing
        (including empty input).
    """
    y, s = _check_labels_scores(y_true, scores)
    if not _both_classes(y, "ROC AUC"):
        return math.nan
    return _auc_from_ranks(y, s)


def _delong(y: np.ndarray, score_matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AUCs and their DeLong covariance for ``k`` score vectors on the same cases.

    Fast midrank algorithm of Sun & Xu (2014), IEEE Signal Process Lett
    21:1389-1393, O(k N log N) instead of the O(k m n) pairwise kernel of
    DeLong, DeLong & Clarke-Pearson (1988), Biometrics 44:837-845.

    Parameters
    ----------
    y : bool ndarray of shape (N,), both classes present.
    score_matrix : ndarray of shape (k, N).

    Returns
    -------
    aucs : ndarray of shape (k,)
    cov : ndarray of shape (k, k), NaN when a class has fewer than 2 samples
        (the sample variances of the structural components need 2).
    """
    pos = score_matrix[:, y]
    neg = score_matrix[:, ~y]
    m = pos.shape[1]
    n = neg.shape[1]
    tx = stats.rankdata(pos, axis=1)  # midranks within positives
    ty = stats.rankdata(neg, axis=1)  # midranks within negatives
    tz = stats.rankdata(np.concatenate([pos, neg], axis=1), axis=1)  # pooled
    aucs = (tz[:, :m].sum(axis=1) - m * (m + 1) / 2.0) / (float(m) * float(n))
    # Structural components (placement values): V10_i is the share of
    # negatives a positive beats (ties 1/2), V01_j the share of positives that
    # beat a negative. Tz - Tx counts the negatives below a positive.
    v10 = (tz[:, :m] - tx) / n
    v01 = 1.0 - (tz[:, m:] - ty) / m
    k = score_matrix.shape[0]
    if m < 2 or n < 2:
        return aucs, np.full((k, k), math.nan)
    s10 = np.atleast_2d(np.cov(v10))
    s01 = np.atleast_2d(np.cov(v01))
    return aucs, s10 / m + s01 / n


def _bootstrap_aucs(
    pos: np.ndarray, neg: np.ndarray, n_bootstrap: int, rng: np.random.Generator
) -> np.ndarray:
    m, n = pos.size, neg.size
    out = np.empty(n_bootstrap)
    # Vectorise over replicates but cap the (replicates x samples) work array
    # at ~4 M elements (32 MB) so large validation sets do not exhaust memory.
    chunk = max(1, (1 << 22) // (m + n))
    for start in range(0, n_bootstrap, chunk):
        b = min(chunk, n_bootstrap - start)
        # Stratified: positives and negatives are resampled separately so every
        # replicate keeps the observed class sizes (and a defined AUC).
        sample = np.concatenate(
            [pos[rng.integers(0, m, size=(b, m))], neg[rng.integers(0, n, size=(b, n))]], axis=1
        )
        ranks = stats.rankdata(sample, axis=1)
        out[start : start + b] = (ranks[:, :m].sum(axis=1) - m * (m + 1) / 2.0) / (
            float(m) * float(n)
        )
    return out


def roc_auc_ci(
    y_true: ArrayLike,
    scores: ArrayLike,
    *,
    alpha: float = 0.05,
    method: str = "delong",
    n_bootstrap: int = 2000,
    random_state: int | np.random.Generator | None = None,
) -> tuple[float, float, float]:
    """ROC AUC with a confidence interval.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Reference 0/1 labels.
    scores : array-like of shape (n,)
        Higher means "more likely positive".
    alpha : float, default 0.05
        Two-sided error rate.
    method : {"delong", "bootstrap"}, default "delong"
        ``"delong"``: ``AUC +/- z * sqrt(Var)``, with the DeLong et al. (1988)
        variance computed by the fast midrank algorithm of Sun & Xu (2014),
        clipped to [0, 1]. ``"bootstrap"``: stratified bootstrap (positives and
        negatives resampled separately) with the percentile interval.
    n_bootstrap : int, default 2000
        Number of bootstrap replicates (``method="bootstrap"`` only).
    random_state : int, numpy Generator or None
        Seed for the bootstrap, for reproducibility.

    Returns
    -------
    (auc, low, high) : tuple of float
        All NaN (with a warning) when a class is missing. With DeLong, the
        interval is NaN when a class has a single sample.

    Notes
    -----
    The DeLong interval is a Wald interval on the AUC scale; it collapses to a
    point for perfectly separated data (variance 0), and the bootstrap does
    the same. Report such results with care for small samples.
    """
    a = _check_alpha(alpha)
    if method not in _AUC_CI_METHODS:
        raise ValueError(f"method must be one of {_AUC_CI_METHODS}, got {method!r}")
    if method == "bootstrap":
        n_boot = _check_count(n_bootstrap, "n_bootstrap")
        if n_boot < 1:
            raise ValueError(f"n_bootstrap must be a positive integer, got {n_bootstrap!r}")
    y, s = _check_labels_scores(y_true, scores)
    if not _both_classes(y, "ROC AUC"):
        return math.nan, math.nan, math.nan

    if method == "delong":
        aucs, cov = _delong(y, s[np.newaxis, :])
        auc, var = float(aucs[0]), float(cov[0, 0])
        if not math.isfinite(var):
            _warn_undefined(
                "DeLong variance needs at least 2 positive and 2 negative samples; "
                "returning a NaN interval"
            )
            return auc, math.nan, math.nan
        half = _z(a) * math.sqrt(max(var, 0.0))
        return auc, max(0.0, auc - half), min(1.0, auc + half)

    rng = np.random.default_rng(random_state)
    auc = _auc_from_ranks(y, s)
    boot = _bootstrap_aucs(s[y], s[~y], n_boot, rng)
    low, high = np.quantile(boot, [a / 2.0, 1.0 - a / 2.0])
    return auc, float(low), float(high)


def delong_test(
    y_true: ArrayLike, scores_a: ArrayLike, scores_b: ArrayLike
) -> tuple[float, float, float, float]:
    """DeLong test for the difference of two correlated ROC AUCs.

    Both models must be scored on the same cases (paired design), e.g. two
    training recipes evaluated on one validation set.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Reference 0/1 labels.
    scores_a, scores_b : array-like of shape (n,)
        Scores of model A and model B for the same cases.

    Returns
    -------
    (auc_a, auc_b, z, p_value) : tuple of float
        ``z = (auc_a - auc_b) / sqrt(Var_a + Var_b - 2 Cov_ab)`` with the
        DeLong et al. (1988) covariance (fast algorithm of Sun & Xu 2014) and a
        two-sided normal p-value. ``z`` and ``p_value`` are NaN (with a warning)
        when the variance of the difference is zero or undefined, e.g. when
        both score vectors rank the cases identically; all four are NaN when a
        class is missing.
    """
    y = _check_labels(y_true, "y_true")
    sa = _check_scores(scores_a, "scores_a")
    sb = _check_scores(scores_b, "scores_b")
    _check_same_length(y, sa, "y_true", "scores_a")
    _check_same_length(y, sb, "y_true", "scores_b")
    if not _both_classes(y, "DeLong test"):
        return math.nan, math.nan, math.nan, math.nan
    aucs, cov = _delong(y, np.vstack([sa, sb]))
    auc_a, auc_b = float(aucs[0]), float(aucs[1])
    var_diff = float(cov[0, 0] + cov[1, 1] - 2.0 * cov[0, 1])
    # ``not var_diff > 0`` also catches NaN (fewer than 2 samples in a class).
    if not var_diff > 0.0:
        _warn_undefined(
            "variance of the AUC difference is zero or undefined (identical rankings, "
            "or fewer than 2 samples in a class); returning NaN z and p-value"
        )
        return auc_a, auc_b, math.nan, math.nan
    z = (auc_a - auc_b) / math.sqrt(var_diff)
    p_value = float(2.0 * stats.norm.sf(abs(z)))
    return auc_a, auc_b, float(z), p_value


def threshold_at_specificity(y_true: ArrayLike, scores: ArrayLike, *, specificity: float) -> float:
    """Lowest threshold whose specificity is at least ``specificity``.

    Intended for choosing an operating point on validation data. Among all
    thresholds meeting the specificity target, the lowest one (hence the
    highest sensitivity) is returned.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Reference 0/1 labels.
    scores : array-like of shape (n,)
        Higher means "more likely positive".
    specificity : float
        Target specificity in [0, 1].

    Returns
    -------
    float
        A threshold ``t`` such that ``scores >= t`` is the positive call. It is
        one of the observed scores, or ``+inf`` ("call nothing positive") when
        no observed score reaches the target (e.g. ``specificity=1`` and the
        highest score belongs to a negative). NaN with a warning if a class is
        missing.
    """
    try:
        target = float(specificity)
    except (TypeError, ValueError):
        raise ValueError(f"specificity must be a number in [0, 1], got {specificity!r}") from None
    if not 0.0 <= target <= 1.0:
        raise ValueError(f"specificity must be in [0, 1], got {specificity!r}")
    y, s = _check_labels_scores(y_true, scores)
    if not _both_classes(y, "threshold_at_specificity"):
        return math.nan
    fpr, _, thresholds = roc_curve(y, s)
    # fpr is non-decreasing along decreasing thresholds, so the feasible set is
    # a prefix; its last element maximises sensitivity. The 1e-12 slack stops
    # e.g. 1 - 0.3 != 0.7 from rejecting an exactly-met target.
    feasible = np.flatnonzero(1.0 - fpr >= target - 1e-12)
    return float(thresholds[feasible[-1]])


def youden_threshold(y_true: ArrayLike, scores: ArrayLike) -> float:
    """Threshold maximising Youden's J = sensitivity + specificity - 1.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Reference 0/1 labels.
    scores : array-like of shape (n,)
        Higher means "more likely positive".

    Returns
    -------
    float
        A threshold ``t`` (one of the observed scores, or ``+inf``) such that
        ``scores >= t`` is the positive call. Ties in J are broken towards the
        highest threshold (the more specific operating point). NaN with a
        warning if a class is missing.
    """
    y, s = _check_labels_scores(y_true, scores)
    if not _both_classes(y, "youden_threshold"):
        return math.nan
    fpr, tpr, thresholds = roc_curve(y, s)
    # np.argmax returns the first maximum = the highest threshold.
    return float(thresholds[int(np.argmax(tpr - fpr))])


# ---------------------------------------------------------------------------
# Agreement of continuous estimates
# ---------------------------------------------------------------------------


def _check_pair(y_true: ArrayLike, y_pred: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    t = _check_finite(y_true, "y_true")
    p = _check_finite(y_pred, "y_pred")
    _check_same_length(t, p, "y_true", "y_pred")
    return t, p


def _within_share(abs_err: np.ndarray, tol: float) -> float:
    if abs_err.size == 0:
        return math.nan
    return float(np.count_nonzero(abs_err <= tol + _FP_SLACK)) / abs_err.size


def _tolerance_key(tol: float) -> str:
    return f"within_{float(tol)}"


@dataclass(frozen=True)
class AgreementResult:
    """Agreement between a method and a reference, from :func:`agreement`.

    Attributes
    ----------
    n : int
        Number of pairs.
    mae, rmse : float
        Mean absolute error and root-mean-square error.
    mean_error : float
        Bias, ``mean(y_pred - y_true)``.
    mean_error_ci : (float, float)
        t-based confidence interval of the bias.
    sd_error : float
        Sample standard deviation of the errors (``ddof=1``).
    loa_low, loa_high : float
        Bland-Altman limits of agreement ``bias -/+ z * sd_error``.
    within : dict[float, float]
        Share of pairs with ``|error| <= tolerance`` for each tolerance.
    alpha : float
    """

    n: int
    mae: float
    mean_error: float
    mean_error_ci: tuple[float, float]
    sd_error: float
    rmse: float
    loa_low: float
    loa_high: float
    within: dict[float, float]
    alpha: float

    def to_dict(self) -> dict[str, float]:
        """Flat dict; shares appear as ``within_<tol>`` (e.g. ``within_0.5``)."""
        out: dict[str, float] = {
            "n": self.n,
            "mae": self.mae,
            "mean_error": self.mean_error,
            "mean_error_low": self.mean_error_ci[0],
            "mean_error_high": self.mean_error_ci[1],
            "sd_error": self.sd_error,
            "rmse": self.rmse,
            "loa_low": self.loa_low,
            "loa_high": self.loa_high,
        }
        for tol, share in self.within.items():
            out[_tolerance_key(tol)] = share
        out["alpha"] = self.alpha
        return out


def _check_tolerances(tolerances: Sequence[float]) -> tuple[float, ...]:
    try:
        tols = tuple(float(t) for t in np.atleast_1d(np.asarray(tolerances, dtype=float)))
    except (TypeError, ValueError):
        raise ValueError(f"tolerances must be a sequence of numbers, got {tolerances!r}") from None
    for t in tols:
        if not math.isfinite(t) or t < 0:
            raise ValueError(f"tolerances must be finite and non-negative, got {tolerances!r}")
    return tols


def _error_summary(err: np.ndarray) -> tuple[float, float]:
    """Bias and sample SD of the errors; warns when undefined."""
    n = err.size
    if n == 0:
        _warn_undefined("agreement metrics are undefined for empty input; returning NaN", depth=2)
        return math.nan, math.nan
    bias = float(err.mean())
    if n < 2:
        _warn_undefined(
            "sd_error (and limits of agreement / bias CI) need at least 2 pairs; returning NaN",
            depth=2,
        )
        return bias, math.nan
    return bias, float(err.std(ddof=1))


def agreement(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    tolerances: Sequence[float] = (0.5, 1.0),
    alpha: float = 0.05,
) -> AgreementResult:
    """Error and agreement statistics of continuous estimates against a reference.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Reference values (e.g. ECG heart rate, subjective refraction).
    y_pred : array-like of shape (n,)
        Estimates from the method under test.
    tolerances : sequence of float, default (0.5, 1.0)
        Clinically acceptable absolute errors; for each, the share of pairs
        with ``|y_pred - y_true| <= tol`` (inclusive) is reported.
    alpha : float, default 0.05
        Two-sided error rate of the bias CI and of the limits of agreement.

    Returns
    -------
    AgreementResult
        See the class for the fields; ``to_dict()`` gives a flat dict.

    Notes
    -----
    * Errors are ``y_pred - y_true``; a positive bias means over-estimation.
    * Limits of agreement (Bland & Altman 1986) are
      ``bias +/- z_{1-alpha/2} * SD``; for ``alpha=0.05`` the quantile is
      1.959964 (the familiar "1.96"). They describe where ~95 % of individual
      differences lie and assume roughly normal errors without a trend in
      their size.
    * The bias CI is ``bias +/- t_{n-1, 1-alpha/2} * SD / sqrt(n)``.
    * Empty input gives NaN everywhere; ``n = 1`` gives NaN SD, limits and CI.
      Both with an :class:`UndefinedMetricWarning`.

    Raises
    ------
    ValueError
        On mismatched lengths, NaN/inf values, negative tolerances or invalid
        ``alpha``.
    """
    a = _check_alpha(alpha)
    tols = _check_tolerances(tolerances)
    t, p = _check_pair(y_true, y_pred)
    err = p - t
    n = err.size
    bias, sd = _error_summary(err)
    if n == 0:
        mae = rmse = math.nan
    else:
        mae = float(np.abs(err).mean())
        rmse = float(math.sqrt(np.mean(err**2)))
    if n >= 2:
        z = _z(a)
        loa_low, loa_high = bias - z * sd, bias + z * sd
        half = float(stats.t.ppf(1.0 - a / 2.0, n - 1)) * sd / math.sqrt(n)
        bias_ci = (bias - half, bias + half)
    else:
        loa_low = loa_high = math.nan
        bias_ci = (math.nan, math.nan)
    abs_err = np.abs(err)
    within = {tol: _within_share(abs_err, tol) for tol in tols}
    return AgreementResult(
        n=n,
        mae=mae,
        mean_error=bias,
        mean_error_ci=bias_ci,
        sd_error=sd,
        rmse=rmse,
        loa_low=loa_low,
        loa_high=loa_high,
        within=within,
        alpha=a,
    )


@dataclass(frozen=True)
class BlandAltmanResult:
    """Data for a Bland-Altman plot, from :func:`bland_altman`.

    Attributes
    ----------
    mean : ndarray of shape (n,)
        ``(y_true + y_pred) / 2``, the x axis.
    diff : ndarray of shape (n,)
        ``y_pred - y_true``, the y axis.
    bias, loa_low, loa_high : float
        Horizontal lines of the plot.
    """

    mean: np.ndarray
    diff: np.ndarray
    bias: float
    loa_low: float
    loa_high: float


def bland_altman(y_true: ArrayLike, y_pred: ArrayLike, *, alpha: float = 0.05) -> BlandAltmanResult:
    """Arrays and reference lines for a Bland-Altman plot.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Reference values.
    y_pred : array-like of shape (n,)
        Values of the method under test.
    alpha : float, default 0.05
        The limits are ``bias +/- z_{1-alpha/2} * SD`` (as in :func:`agreement`).

    Returns
    -------
    BlandAltmanResult
        NaN lines with a warning for fewer than 2 pairs.
    """
    a = _check_alpha(alpha)
    t, p = _check_pair(y_true, y_pred)
    diff = p - t
    bias, sd = _error_summary(diff)
    z = _z(a)
    return BlandAltmanResult(
        mean=(t + p) / 2.0,
        diff=diff,
        bias=bias,
        loa_low=bias - z * sd,
        loa_high=bias + z * sd,
    )


# AAMI/ESH/ISO 81060-2:2018 validation criterion 1.
_AAMI_MAX_ABS_MEAN = 5.0  # mmHg
_AAMI_MAX_SD = 8.0  # mmHg
_AAMI_MIN_SUBJECTS = 85

# British Hypertension Society protocol (O'Brien et al. 1993): cumulative
# percentage of |device - reference| within 5, 10 and 15 mmHg.
_BHS_LIMITS = (5, 10, 15)
_BHS_GRADES = (("A", (60, 85, 95)), ("B", (50, 75, 90)), ("C", (40, 65, 85)))


def aami_criterion(
    y_true: ArrayLike, y_pred: ArrayLike, *, subject_ids: ArrayLike | None = None
) -> dict[str, Any]:
    """AAMI/ESH/ISO 81060-2 criterion 1 for blood-pressure devices.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Reference blood pressure in mmHg (e.g. auscultation).
    y_pred : array-like of shape (n,)
        Device/model estimate in mmHg. Evaluate systolic and diastolic
        pressure separately; the device must pass both.
    subject_ids : array-like of shape (n,), optional
        Subject of each pair, used only to count subjects for ``n_sufficient``.
        Without it every pair is assumed to be a distinct subject.

    Returns
    -------
    dict
        ``n`` (pairs), ``n_subjects``, ``mean_error`` (mean of
        ``y_pred - y_true``), ``sd_error`` (``ddof=1``), ``passed``
        (``|mean_error| <= 5`` and ``sd_error <= 8`` mmHg, inclusive) and
        ``n_sufficient`` (``n_subjects >= 85``).

    Notes
    -----
    The standard also requires at least 85 subjects (usually 255 paired
    readings); that is reported separately as ``n_sufficient`` and does not
    affect ``passed``, so the accuracy criterion can be tracked on smaller
    development sets. Criterion 2 (per-subject SD limit that depends on the
    mean error) is not implemented. With fewer than 2 pairs the SD is
    undefined (NaN, warning) and ``passed`` is False.
    """
    t, p = _check_pair(y_true, y_pred)
    if subject_ids is None:
        n_subjects = t.size
    else:
        ids = np.asarray(subject_ids)
        if ids.ndim != 1 or ids.shape[0] != t.size:
            raise ValueError(
                f"subject_ids must be 1-D with the same length as y_true ({t.size}), "
                f"got shape {ids.shape}"
            )
        n_subjects = int(np.unique(ids).size)
    bias, sd = _error_summary(p - t)
    # Comparisons with NaN are False, so an undefined SD never passes.
    passed = bool(
        math.isfinite(sd) and _le(abs(bias), _AAMI_MAX_ABS_MEAN) and _le(sd, _AAMI_MAX_SD)
    )
    return {
        "n": int(t.size),
        "n_subjects": n_subjects,
        "mean_error": bias,
        "sd_error": sd,
        "passed": passed,
        "n_sufficient": n_subjects >= _AAMI_MIN_SUBJECTS,
    }


def bhs_grade(y_true: ArrayLike, y_pred: ArrayLike) -> dict[str, Any]:
    """British Hypertension Society grade of a blood-pressure device.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Reference blood pressure in mmHg.
    y_pred : array-like of shape (n,)
        Device/model estimate in mmHg. Grade systolic and diastolic separately.

    Returns
    -------
    dict
        ``n``; ``within_5``, ``within_10``, ``within_15``: cumulative shares
        (fractions in [0, 1]) of ``|y_pred - y_true| <= 5/10/15`` mmHg
        (inclusive); ``grade``: ``"A"``, ``"B"``, ``"C"`` or ``"D"``.

    Notes
    -----
    O'Brien et al. (1993), J Hypertens 11(Suppl 2):S43-S62. Grade thresholds
    (percent within 5/10/15 mmHg): A 60/85/95, B 50/75/90, C 40/65/85; all
    three must be met (inclusive), otherwise the next grade is tried, and a
    device meeting none is graded D. Empty input gives NaN shares and
    ``grade=None`` with an :class:`UndefinedMetricWarning`.
    """
    t, p = _check_pair(y_true, y_pred)
    n = t.size
    if n == 0:
        _warn_undefined("BHS grade is undefined for empty input; returning NaN shares")
        out: dict[str, Any] = {"n": 0}
        out.update({f"within_{lim}": math.nan for lim in _BHS_LIMITS})
        out["grade"] = None
        return out
    abs_err = np.abs(p - t)
    hits = [int(np.count_nonzero(abs_err <= lim + _FP_SLACK)) for lim in _BHS_LIMITS]
    grade = "D"
    for name, required in _BHS_GRADES:
        # Integer comparison (100 * hits >= pct * n) avoids 0.6 * 20 rounding issues.
        if all(100 * h >= pct * n for h, pct in zip(hits, required)):
            grade = name
            break
    out = {"n": n}
    out.update({f"within_{lim}": h / n for lim, h in zip(_BHS_LIMITS, hits)})
    out["grade"] = grade
    return out


def mase(y_true: ArrayLike, y_pred: ArrayLike, *, y_train: ArrayLike) -> float:
    """Mean absolute error scaled by a predict-the-training-mean baseline.

    ``MASE = MAE(y_true, y_pred) / MAE(y_true, mean(y_train))``. Values below 1
    mean the model beats the trivial predictor that always outputs the
    training-set mean; this exposes models that merely regress to the mean
    (a common failure in cuffless blood-pressure and refraction estimation).

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Reference values of the evaluation set.
    y_pred : array-like of shape (n,)
        Model estimates for the evaluation set.
    y_train : array-like
        Targets of the training set; only their mean is used.

    Returns
    -------
    float
        NaN with an :class:`UndefinedMetricWarning` when the input is empty or
        the baseline MAE is 0.

    Notes
    -----
    This is *not* Hyndman & Koehler's (2006) time-series MASE, which scales
    by the in-sample one-step naive forecast; for i.i.d. regression targets
    the training mean is the natural naive forecast.
    """
    t, p = _check_pair(y_true, y_pred)
    train = _check_finite(y_train, "y_train")
    if t.size == 0 or train.size == 0:
        _warn_undefined("MASE is undefined for empty y_true or y_train; returning NaN")
        return math.nan
    baseline = float(np.abs(t - train.mean()).mean())
    if baseline == 0.0:
        _warn_undefined("MASE is undefined: the baseline MAE is 0; returning NaN")
        return math.nan
    return float(np.abs(p - t).mean()) / baseline


# ---------------------------------------------------------------------------
# Accumulating metrics (MONAI-style)
# ---------------------------------------------------------------------------


class ConfusionMatrixMetric:
    """Accumulate a binary confusion matrix over batches.

    Parameters
    ----------
    alpha : float, default 0.05
        Two-sided error rate of the intervals.
    ci_method : {"wilson", "clopper-pearson"}, default "wilson"

    Examples
    --------
    >>> metric = ConfusionMatrixMetric()
    >>> metric.update([1, 0, 1], [1, 0, 0])
    >>> metric.update([0, 1], [1, 1])
    >>> metric.aggregate()["sensitivity"]
    0.6666666666666666
    """

    def __init__(self, *, alpha: float = 0.05, ci_method: str = "wilson") -> None:
        self.alpha = _check_alpha(alpha)
        if ci_method not in _CI_METHODS:
            raise ValueError(f"ci_method must be one of {_CI_METHODS}, got {ci_method!r}")
        self.ci_method = ci_method
        self.reset()

    def reset(self) -> None:
        """Forget everything accumulated so far."""
        self._counts = ConfusionCounts(0, 0, 0, 0)

    def update(self, y_true: ArrayLike, y_pred: ArrayLike) -> None:
        """Add one batch of 0/1 labels and predictions (validated before adding)."""
        self._counts = self._counts + confusion_counts(y_true, y_pred)

    @property
    def counts(self) -> ConfusionCounts:
        """Counts accumulated so far."""
        return self._counts

    def aggregate(self) -> dict[str, Any]:
        """All :func:`binary_diagnostics` results as a flat dict."""
        return binary_diagnostics(
            counts=self._counts, alpha=self.alpha, ci_method=self.ci_method
        ).to_dict()


class AgreementMetric:
    """Accumulate (reference, estimate) pairs and report :func:`agreement`.

    Pairs are buffered (not summarised on the fly) so the result is exactly
    the one-shot result, including the "within tolerance" shares.

    Parameters
    ----------
    tolerances : sequence of float, default (0.5, 1.0)
    alpha : float, default 0.05
    """

    def __init__(self, *, tolerances: Sequence[float] = (0.5, 1.0), alpha: float = 0.05) -> None:
        self.tolerances = _check_tolerances(tolerances)
        self.alpha = _check_alpha(alpha)
        self.reset()

    def reset(self) -> None:
        """Forget everything accumulated so far."""
        self._true: list[np.ndarray] = []
        self._pred: list[np.ndarray] = []

    def update(self, y_true: ArrayLike, y_pred: ArrayLike) -> None:
        """Add one batch of pairs (validated before adding)."""
        t, p = _check_pair(y_true, y_pred)
        self._true.append(t)
        self._pred.append(p)

    def aggregate(self) -> dict[str, float]:
        """:func:`agreement` on all pairs so far, as a flat dict."""
        t = np.concatenate(self._true) if self._true else np.empty(0)
        p = np.concatenate(self._pred) if self._pred else np.empty(0)
        return agreement(t, p, tolerances=self.tolerances, alpha=self.alpha).to_dict()


class ROCAUCMetric:
    """Accumulate labels and scores and report the ROC AUC with a CI.

    Parameters
    ----------
    alpha, method, n_bootstrap, random_state
        Passed to :func:`roc_auc_ci`. With an integer ``random_state`` every
        ``aggregate`` call on the same data gives the same bootstrap interval.
    """

    def __init__(
        self,
        *,
        alpha: float = 0.05,
        method: str = "delong",
        n_bootstrap: int = 2000,
        random_state: int | np.random.Generator | None = None,
    ) -> None:
        self.alpha = _check_alpha(alpha)
        if method not in _AUC_CI_METHODS:
            raise ValueError(f"method must be one of {_AUC_CI_METHODS}, got {method!r}")
        self.method = method
        self.n_bootstrap = n_bootstrap
        self.random_state = random_state
        self.reset()

    def reset(self) -> None:
        """Forget everything accumulated so far."""
        self._labels: list[np.ndarray] = []
        self._scores: list[np.ndarray] = []

    def update(self, y_true: ArrayLike, scores: ArrayLike) -> None:
        """Add one batch of labels and scores (validated before adding)."""
        y, s = _check_labels_scores(y_true, scores)
        self._labels.append(y)
        self._scores.append(s)

    def aggregate(self) -> dict[str, float]:
        """``{"auc", "low", "high"}`` from :func:`roc_auc_ci` on all data so far."""
        y = np.concatenate(self._labels) if self._labels else np.empty(0, dtype=bool)
        s = np.concatenate(self._scores) if self._scores else np.empty(0)
        auc, low, high = roc_auc_ci(
            y,
            s,
            alpha=self.alpha,
            method=self.method,
            n_bootstrap=self.n_bootstrap,
            random_state=self.random_state,
        )
        return {"auc": auc, "low": low, "high": high}
