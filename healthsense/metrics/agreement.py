"""Agreement of continuous estimates: MAE, bias with CI, limits of agreement, Bland-Altman."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

from healthsense.metrics._checks import (
    _FP_SLACK,
    _check_alpha,
    _check_finite,
    _check_same_length,
    _warn_undefined,
    _z,
)

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
