"""ROC analysis: curve, AUC, DeLong and bootstrap CIs, paired test, threshold choice."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

from healthsense.metrics._checks import (
    _AUC_CI_METHODS,
    _check_alpha,
    _check_count,
    _check_labels,
    _check_same_length,
    _check_scores,
    _warn_undefined,
    _z,
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


def youden_threshold(y_true: ArrayLike, scores: ArrayLike, *, placement: str = "observed") -> float:
    """Threshold maximising Youden's J = sensitivity + specificity - 1.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Reference 0/1 labels.
    scores : array-like of shape (n,)
        Higher means "more likely positive".
    placement : {"observed", "midpoint"}
        Every threshold in the gap between the J-maximising score and the next
        lower observed score gives the same calls on these data. ``"observed"``
        returns the score itself (the top of the gap, the most specific end);
        ``"midpoint"`` returns the middle of the gap, the maximum-margin choice
        that does not favour either class when the threshold is carried to new
        data (use it on a scale where distances mean something, e.g. logits).

    Returns
    -------
    float
        A threshold ``t`` such that ``scores >= t`` is the positive call: one of
        the observed scores (or ``+inf``) for ``"observed"``, a gap midpoint for
        ``"midpoint"`` (the lowest score itself when no score lies below it).
        Ties in J are broken towards the highest threshold (the more specific
        operating point). NaN with a warning if a class is missing.
    """
    if placement not in ("observed", "midpoint"):
        raise ValueError(f"placement must be 'observed' or 'midpoint', got {placement!r}")
    y, s = _check_labels_scores(y_true, scores)
    if not _both_classes(y, "youden_threshold"):
        return math.nan
    fpr, tpr, thresholds = roc_curve(y, s)
    # np.argmax returns the first maximum = the highest threshold.
    best = int(np.argmax(tpr - fpr))
    top = float(thresholds[best])
    if placement == "observed" or best + 1 >= thresholds.size:
        return top
    below = float(thresholds[best + 1])  # thresholds are the distinct scores, decreasing
    if not math.isfinite(top):  # "call nothing": just above the highest score
        return top
    return 0.5 * (top + below)
