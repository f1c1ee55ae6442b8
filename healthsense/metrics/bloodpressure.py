"""Blood-pressure device criteria: AAMI/ISO 81060-2, BHS grade, MASE against the mean."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from healthsense.metrics._checks import (
    _FP_SLACK,
    _check_finite,
    _le,
    _warn_undefined,
)
from healthsense.metrics.agreement import (
    _check_pair,
    _error_summary,
)

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
