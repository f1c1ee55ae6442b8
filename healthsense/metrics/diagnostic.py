"""Binary screening tests: confusion counts, proportions with CIs, likelihood ratios."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

from healthsense.metrics._checks import (
    _CI_METHODS,
    _check_alpha,
    _check_count,
    _check_k_n,
    _check_labels,
    _check_same_length,
    _warn_undefined,
    _z,
)

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
