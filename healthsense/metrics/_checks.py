"""Input validation and warnings shared by the metric modules."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

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
