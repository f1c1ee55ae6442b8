"""k-NN information estimates: KSG mutual information, KL entropy, the information fraction.

Conventions (docs/ppg-informativeness.md §3), fixed here because each one moves the estimate:

* ``ksg_mutual_information``: Kraskov, Stögbauer & Grassberger (2004), algorithm 1. Every
  column of X and y is standardised (mean 0, population SD 1) first; the k-th neighbour
  distance ``eps_i`` is taken in the joint space with the max-norm; the marginal counts are
  strict (``< eps_i``, the point itself excluded). ``I = psi(k) + psi(N) - <psi(n_x + 1) +
  psi(n_y + 1)>`` in nats. Multivariate X is searched with a KD-tree, not per feature.
* ``kl_entropy``: Kozachenko-Leonenko, ``H = psi(N) - psi(k) + d * <ln(2 r_i)>`` with ``r_i``
  the max-norm distance to the k-th neighbour (the unit max-norm ball of side 2 has volume
  1), in the label's **natural unit** (mmHg, bpm). Differential entropy depends on that unit,
  so the information fraction does too; every report says which unit was used.
* Quantised values (cuff BP in whole mmHg, RWAT in 2.5 ms steps) tie, and k-NN estimates of
  tied values collapse. :func:`dequantize` adds uniform noise over the recording resolution
  (given, or the smallest non-zero difference) to any variable with ties; the resolution
  used is reported.
* ``information_fraction = I(X; Y) / H(Y)`` with both in bits, and a bootstrap CI that
  resamples **subjects** (groups). A bootstrap replicate holds exact copies of a subject's
  windows; a k-NN estimator would read each copy as an infinitely close neighbour, so a
  point's own copies are excluded from its neighbour search (all other points, copies of
  other subjects included, count with their multiplicity). Duplicated subjects still raise
  the replicates' estimates, so the CI is the bootstrap spread centred on the estimate (see
  ``information_fraction``) and the shift is reported as ``bootstrap_bias``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from scipy.spatial import cKDTree
from scipy.special import digamma

from healthsense.runtime import get_logger, progress

__all__ = [
    "InformationResult",
    "dequantize",
    "information_fraction",
    "kl_entropy",
    "ksg_mutual_information",
]

_log = get_logger("ppg.information")
_LN2 = math.log(2.0)
Units = Literal["bits", "nats"]


def _as_2d(X: Any, name: str = "X") -> np.ndarray:
    arr = np.asarray(X, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[1] == 0:
        raise ValueError(f"{name} must be 1-D or 2-D (n samples x d), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains {int(np.sum(~np.isfinite(arr)))} NaN/inf value(s)")
    return arr


def _check_k(k: Any, n: int) -> int:
    if isinstance(k, bool) or int(k) != k or int(k) < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    k = int(k)
    if n < k + 1:
        raise ValueError(f"need at least k + 1 = {k + 1} samples for k = {k}, got {n}")
    return k


def _standardize(a: np.ndarray, name: str) -> np.ndarray:
    sd = a.std(axis=0)
    bad = np.flatnonzero(~(sd > 0))
    if bad.size:
        raise ValueError(
            f"{name} has constant column(s) {bad.tolist()}: no information to estimate"
        )
    return (a - a.mean(axis=0)) / sd


def _check_units(units: str) -> float:
    if units not in ("bits", "nats"):
        raise ValueError(f"units must be 'bits' or 'nats', got {units!r}")
    return _LN2 if units == "bits" else 1.0


def ksg_mutual_information(X: Any, y: Any, *, k: int = 3, units: Units = "nats") -> float:
    """Mutual information I(X; y) by the KSG estimator (algorithm 1, max-norm).

    Parameters
    ----------
    X : array-like, shape (n,) or (n, d)
        Input variables (each column standardised before the search).
    y : array-like, shape (n,) or (n, d_y)
        Target (standardised too).
    k : int
        Neighbour order (default 3).
    units : {"nats", "bits"}

    Returns
    -------
    float
        The estimate; it can be slightly negative for independent variables.
    """
    scale = _check_units(units)
    x = _as_2d(X, "X")
    yy = _as_2d(y, "y")
    if x.shape[0] != yy.shape[0]:
        raise ValueError(f"X has {x.shape[0]} rows but y has {yy.shape[0]}")
    n = x.shape[0]
    k = _check_k(k, n)
    x = _standardize(x, "X")
    yy = _standardize(yy, "y")
    joint = np.hstack([x, yy])
    dist, _ = cKDTree(joint).query(joint, k=k + 1, p=np.inf)
    eps = dist[:, -1]
    if np.any(eps == 0):
        raise ValueError(
            f"{int(np.sum(eps == 0))} point(s) have {k} exact duplicates in (X, y); "
            "dequantise tied values first (see dequantize)"
        )
    # Strict counts: points at distance < eps, i.e. <= the next float below eps.
    radius = np.nextafter(eps, 0)
    nx = cKDTree(x).query_ball_point(x, radius, p=np.inf, return_length=True)
    ny = cKDTree(yy).query_ball_point(yy, radius, p=np.inf, return_length=True)
    # return_length includes the point itself, so it is already n_x + 1.
    mi = digamma(k) + digamma(n) - np.mean(digamma(nx) + digamma(ny))
    return float(mi) / scale


def kl_entropy(y: Any, *, k: int = 3, units: Units = "nats") -> float:
    """Kozachenko-Leonenko differential entropy of y in its natural unit.

    Parameters
    ----------
    y : array-like, shape (n,) or (n, d)
        Samples, in the unit the entropy should refer to (not standardised).
    k : int
        Neighbour order (default 3).
    units : {"nats", "bits"}

    Raises
    ------
    ValueError
        When tied values make a k-th neighbour distance zero (dequantise first).
    """
    scale = _check_units(units)
    yy = _as_2d(y, "y")
    n, d = yy.shape
    k = _check_k(k, n)
    dist, _ = cKDTree(yy).query(yy, k=k + 1, p=np.inf)
    r = dist[:, -1]
    if np.any(r == 0):
        raise ValueError(
            f"{int(np.sum(r == 0))} sample(s) have {k} or more exact ties; the k-NN entropy "
            "of tied values diverges: dequantise first (see dequantize)"
        )
    h = digamma(n) - digamma(k) + d * np.mean(np.log(2.0 * r))
    return float(h) / scale


def _resolution(col: np.ndarray) -> float:
    """Smallest non-zero gap between distinct values, ignoring float round-off (<1e-9 relative)."""
    u = np.unique(col)
    if u.size < 2:
        return 0.0
    gaps = np.diff(u)
    gaps = gaps[gaps > 1e-9 * max(float(np.max(np.abs(u))), 1e-300)]
    return float(np.min(gaps)) if gaps.size else 0.0


def dequantize(
    x: Any, *, resolution: float | None = None, random_state: Any = None
) -> tuple[np.ndarray, float]:
    """Add uniform noise over the recording resolution to a tied (quantised) variable.

    Parameters
    ----------
    x : array-like, shape (n,)
    resolution : float, optional
        The recording step (e.g. 1 mmHg). Inferred as the smallest non-zero difference
        between distinct values when not given.
    random_state : int, Generator or None

    Returns
    -------
    (ndarray, float)
        The dequantised copy and the resolution used; 0.0 (and ``x`` unchanged) when ``x``
        has no ties and no resolution was given.
    """
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"dequantize expects a 1-D array, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("cannot dequantise NaN/inf values")
    if resolution is None:
        if np.unique(arr).size == arr.size and _resolution(arr) > 0:
            return arr.copy(), 0.0
        resolution = _resolution(arr)
        if resolution == 0.0:
            raise ValueError("all values are equal: a constant variable has no entropy")
    elif not resolution > 0:
        raise ValueError(f"resolution must be > 0, got {resolution}")
    rng = np.random.default_rng(random_state)
    return arr + rng.uniform(-0.5, 0.5, arr.size) * resolution, float(resolution)


# ------------------------------------------------------------------ bootstrap (copy-aware)


def _chebyshev_block(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = np.abs(a[:, None, 0] - b[None, :, 0])
    for c in range(1, a.shape[1]):
        np.maximum(out, np.abs(a[:, None, c] - b[None, :, c]), out=out)
    return out


def _ksg_with_origins(x: np.ndarray, y: np.ndarray, origin: np.ndarray, k: int) -> float:
    """KSG (algorithm 1) where points sharing an ``origin`` never count as neighbours.

    Brute force in row blocks (O(n^2) time, O(block * n) memory): used on bootstrap
    replicates, whose duplicated subjects a KD-tree query cannot exclude.
    """
    n = x.shape[0]
    x = _standardize(x, "X")
    y = _standardize(y, "y")
    total = 0.0
    step = max(1, 4_000_000 // max(n, 1))
    for r0 in range(0, n, step):
        r1 = min(n, r0 + step)
        dx = _chebyshev_block(x[r0:r1], x)
        dy = _chebyshev_block(y[r0:r1], y)
        dz = np.maximum(dx, dy)
        same = origin[r0:r1, None] == origin[None, :]
        dz[same] = np.inf
        eps = np.partition(dz, k - 1, axis=1)[:, k - 1]
        nx = np.sum((dx < eps[:, None]) & ~same, axis=1)
        ny = np.sum((dy < eps[:, None]) & ~same, axis=1)
        total += float(np.sum(digamma(nx + 1) + digamma(ny + 1)))
    return float(digamma(k) + digamma(n) - total / n)


def _kl_with_origins(y: np.ndarray, origin: np.ndarray, k: int) -> float:
    n, d = y.shape
    total = 0.0
    step = max(1, 4_000_000 // max(n, 1))
    for r0 in range(0, n, step):
        r1 = min(n, r0 + step)
        dy = _chebyshev_block(y[r0:r1], y)
        dy[origin[r0:r1, None] == origin[None, :]] = np.inf
        r = np.partition(dy, k - 1, axis=1)[:, k - 1]
        total += float(np.sum(np.log(2.0 * r)))
    return float(digamma(n) - digamma(k) + d * total / n)


# ------------------------------------------------------------------ information fraction


@dataclass(frozen=True)
class InformationResult:
    """Outcome of :func:`information_fraction` (MI and entropy in ``units``)."""

    mi: float
    entropy: float
    fraction: float
    units: str
    n: int
    d: int
    k: int
    label_resolution: float
    feature_resolutions: list[float]
    n_groups: int
    n_bootstrap: int
    confidence: float
    mi_ci: tuple[float, float] = (math.nan, math.nan)
    entropy_ci: tuple[float, float] = (math.nan, math.nan)
    fraction_ci: tuple[float, float] = (math.nan, math.nan)
    label_unit: str = "natural unit of the label"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def mi_nats(self) -> float:
        return self.mi * (_LN2 if self.units == "bits" else 1.0)

    @property
    def mi_bits(self) -> float:
        return self.mi_nats / _LN2

    @property
    def entropy_bits(self) -> float:
        return self.entropy * (1.0 if self.units == "bits" else 1.0 / _LN2)

    def summary(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {
            "mi_nats": self.mi_nats,
            "mi_bits": self.mi_bits,
            "entropy_bits": self.entropy_bits,
            "information_fraction": self.fraction,
            "information_fraction_ci": list(self.fraction_ci),
            "mi_bits_ci": [v * (1.0 if self.units == "bits" else 1 / _LN2) for v in self.mi_ci],
            "entropy_bits_ci": [
                v * (1.0 if self.units == "bits" else 1 / _LN2) for v in self.entropy_ci
            ],
            "confidence": self.confidence,
            "n": self.n,
            "d": self.d,
            "k": self.k,
            "n_groups": self.n_groups,
            "n_bootstrap": self.n_bootstrap,
            "label_resolution": self.label_resolution,
            "feature_resolutions": list(self.feature_resolutions),
            "label_unit": self.label_unit,
            **self.extra,
        }


def information_fraction(
    X: Any,
    y: Any,
    *,
    k: int = 3,
    units: Units = "bits",
    groups: Any = None,
    n_bootstrap: int = 0,
    confidence: float = 0.95,
    label_resolution: float | None = None,
    feature_resolutions: Any = None,
    label_unit: str = "natural unit of the label",
    random_state: Any = None,
    show_progress: bool = True,
) -> InformationResult:
    """Information fraction ``I(X; y) / H(y)`` (both in bits) with a subject-level bootstrap CI.

    Parameters
    ----------
    X : array-like, shape (n,) or (n, d)
        Features (hand-crafted, an embedding, or downsampled windows).
    y : array-like, shape (n,)
        Label in its natural unit (mmHg, bpm, ms); H(y) depends on that unit.
    k : int
        Neighbour order of both estimators.
    units : {"bits", "nats"}
        Units of the reported MI and entropy (the fraction is unitless).
    groups : array-like, shape (n,), optional
        Subject of each row; the bootstrap resamples subjects. Without it every row is its
        own subject.
    n_bootstrap : int
        Bootstrap replicates for the CIs (0: no CI).
    confidence : float
        Two-sided level of the percentile CIs.
    label_resolution : float, optional
        Recording step of y (dequantisation); inferred when y has ties.
    feature_resolutions : sequence of float, optional
        Recording step of each X column; inferred for columns with ties.
    label_unit : str
        Name of y's unit, copied into the result.
    random_state : int, Generator or None
        Seeds the dequantisation noise and the bootstrap.
    show_progress : bool
        Progress bar over bootstrap replicates.
    """
    scale = _check_units(units)
    x = _as_2d(X, "X")
    yy = np.asarray(y, dtype=np.float64)
    if yy.ndim != 1:
        raise ValueError(f"y must be 1-D, got shape {yy.shape}")
    if yy.shape[0] != x.shape[0]:
        raise ValueError(f"X has {x.shape[0]} rows but y has {yy.shape[0]}")
    if not np.all(np.isfinite(yy)):
        raise ValueError(f"y contains {int(np.sum(~np.isfinite(yy)))} NaN/inf label(s)")
    n, d = x.shape
    k = _check_k(k, n)
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    if int(n_bootstrap) < 0:
        raise ValueError(f"n_bootstrap must be >= 0, got {n_bootstrap}")
    rng = np.random.default_rng(random_state)
    if groups is None:
        gcodes = np.arange(n)
    else:
        garr = np.asarray(groups)
        if garr.shape != (n,):
            raise ValueError(f"groups must have shape ({n},), got {garr.shape}")
        gcodes = np.unique(garr.astype(str), return_inverse=True)[1]
    n_groups = int(gcodes.max()) + 1

    if feature_resolutions is None:
        feature_resolutions = [None] * d
    feature_resolutions = list(feature_resolutions)
    if len(feature_resolutions) != d:
        raise ValueError(f"feature_resolutions needs {d} values, got {len(feature_resolutions)}")
    cols, used_res = [], []
    for c in range(d):
        col, res = dequantize(x[:, c], resolution=feature_resolutions[c], random_state=rng)
        cols.append(col)
        used_res.append(res)
    xq = np.column_stack(cols)
    yq, y_res = dequantize(yy, resolution=label_resolution, random_state=rng)

    mi_nats = ksg_mutual_information(xq, yq, k=k)
    h_nats = kl_entropy(yq, k=k)
    frac = _fraction(mi_nats, h_nats)

    mi_ci = h_ci = f_ci = (math.nan, math.nan)
    extra: dict[str, Any] = {}
    n_boot = int(n_bootstrap)
    if n_boot:
        members = [np.flatnonzero(gcodes == c) for c in range(n_groups)]
        stats = np.full((n_boot, 3), np.nan)
        it = range(n_boot)
        if show_progress:
            it = progress(it, total=n_boot, desc="bootstrap", unit="rep")
        for b in it:
            picks = rng.integers(0, n_groups, n_groups)
            idx = np.concatenate([members[p] for p in picks])
            if idx.size < k + 2:
                continue
            # Copies of one row (its subject drawn twice) share the row index as origin.
            try:
                mb = _ksg_with_origins(xq[idx], yq[idx][:, None], idx, k)
                hb = _kl_with_origins(yq[idx][:, None], idx, k)
            except ValueError:
                continue  # a replicate with a constant column: skip it
            stats[b] = (mb, hb, _fraction(mb, hb))
        alpha = (1 - confidence) / 2
        good = stats[np.all(np.isfinite(stats[:, :2]), axis=1)]
        if good.shape[0] < n_boot:
            _log.warning(
                "%d of %d bootstrap replicates were unusable", n_boot - good.shape[0], n_boot
            )
        if good.shape[0]:
            # Resampling subjects duplicates whole clusters of windows, which k-NN estimators
            # read as extra structure: the replicates sit above the estimate (measured on
            # mw-ppg-bp: +10 to +20 points of fraction). The interval therefore takes the
            # bootstrap *spread* around the estimate: quantiles of theta* - (median theta* -
            # theta_hat); the shift itself is reported as ``bootstrap_bias``.
            point = np.array([mi_nats, h_nats, frac])
            shift = np.nanmedian(good, axis=0) - point
            q = np.nanquantile(good - shift, [alpha, 1 - alpha], axis=0)
            mi_ci = (float(q[0, 0]) / scale, float(q[1, 0]) / scale)
            h_ci = (float(q[0, 1]) / scale, float(q[1, 1]) / scale)
            f_ci = (float(q[0, 2]), float(q[1, 2]))
            extra["bootstrap_bias"] = {
                "mi_bits": float(shift[0]) / _LN2,
                "entropy_bits": float(shift[1]) / _LN2,
                "information_fraction": float(shift[2]),
            }
    return InformationResult(
        mi=mi_nats / scale,
        entropy=h_nats / scale,
        fraction=frac,
        units=units,
        n=n,
        d=d,
        k=k,
        label_resolution=y_res,
        feature_resolutions=used_res,
        n_groups=n_groups,
        n_bootstrap=n_boot,
        confidence=float(confidence),
        mi_ci=mi_ci,
        entropy_ci=h_ci,
        fraction_ci=f_ci,
        label_unit=label_unit,
        extra=extra,
    )


def _fraction(mi_nats: float, h_nats: float) -> float:
    if not h_nats > 0:
        warnings.warn(
            f"label entropy is {h_nats / _LN2:.3g} bits (<= 0) in this unit; the information "
            "fraction is undefined (use a finer unit)",
            RuntimeWarning,
            stacklevel=3,
        )
        return math.nan
    return mi_nats / h_nats
