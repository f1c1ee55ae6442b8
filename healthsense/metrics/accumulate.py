"""MONAI-style accumulating metrics: update per batch, aggregate once, reset."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from healthsense.metrics._checks import (
    _AUC_CI_METHODS,
    _CI_METHODS,
    _check_alpha,
)
from healthsense.metrics.agreement import (
    _check_pair,
    _check_tolerances,
    agreement,
)
from healthsense.metrics.diagnostic import (
    ConfusionCounts,
    binary_diagnostics,
    confusion_counts,
)
from healthsense.metrics.roc import (
    _check_labels_scores,
    roc_auc_ci,
)

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
