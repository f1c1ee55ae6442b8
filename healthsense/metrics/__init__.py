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

from healthsense.metrics._checks import UndefinedMetricWarning
from healthsense.metrics.accumulate import AgreementMetric, ConfusionMatrixMetric, ROCAUCMetric
from healthsense.metrics.agreement import (
    AgreementResult,
    BlandAltmanResult,
    agreement,
    bland_altman,
)
from healthsense.metrics.bloodpressure import aami_criterion, bhs_grade, mase
from healthsense.metrics.diagnostic import (
    BinaryDiagnostics,
    ConfusionCounts,
    binary_diagnostics,
    clopper_pearson_interval,
    confusion_counts,
    wilson_interval,
)
from healthsense.metrics.roc import (
    delong_test,
    roc_auc,
    roc_auc_ci,
    roc_curve,
    threshold_at_specificity,
    youden_threshold,
)

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
