"""Multi-valued mapping (MVM) factor: how many windows have a look-alike with another label.

The contract (docs/ppg-informativeness.md §2, after Mehta et al., Sci. Rep. 2024): windows a
and b collide when

1. ``dot(z_a, z_b) / n >= corr_threshold`` (zero-lag correlation of the z-scored windows);
2. after aligning the **raw** windows at the lag that maximises
   ``numpy.correlate(z_a, z_b, mode="same")`` (lag = argmax - n // 2; lag > 0 compares
   ``a[lag:]`` with ``b[:-lag]``), ``||a' - b'||_2 / max(max|a'|, max|b'|) < dist_threshold``;
3. ``|y_a - y_b| > label_threshold``.

A window is multi-valued when at least one partner in the chosen scope (``intra``: same
record, ``inter``: other records, ``all``) collides with it.

Why this is fast and still exact:

- Test 1 for all pairs is a matrix product, computed in blocks in float32 (bounded memory,
  BLAS or a torch device). Windows are visited in label order, so the band of blocks where
  every pair fails test 3 is never computed.
- Filtered PPG windows are smooth, so the product runs on their first orthonormal-DCT
  coefficients (dot products are kept exactly; the left-out energy bounds the error, see
  ``_screen_features``). The float32 products only *screen*: a pair is kept when its product
  clears the threshold minus a margin far larger than float32 rounding (plus that bound), and
  pairs within the margin are decided in float64.
- The label and scope tests run on the candidates next (cheap); only the survivors get the
  alignment: a batched float32 FFT cross-correlation on a short transform (lags up to n/5),
  with a Cauchy-Schwarz certificate that no farther lag can win (pairs without one are
  searched again over the full range), and near-ties within float32 rounding redone with
  ``np.correlate`` in float64.
- The distance test first rejects, in O(1) per pair, the pairs that surely fail (expanded
  form of the squared distance with an error bound, and an upper bound on the peak); the few
  left get the literal slicing distance, and those within rounding of the threshold the
  literal per-pair definition.

So the counts are identical to a per-pair loop (``tests/ppg/mvm_reference.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from scipy import fft as sfft

from healthsense.runtime import get_logger, progress

__all__ = ["MVMResult", "multivalued_mapping", "pair_test", "zscore_windows"]

_log = get_logger("ppg.mvm")

Scope = Literal["intra", "inter", "all"]
_SCOPES = ("intra", "inter", "all")
#: Screening margin on the correlation (in correlation units). float32 rounding of a
#: 250-sample product of unit-variance vectors is below ~1e-5; real PPG pairs sit within
#: 1e-5 of the threshold, so the margin is generous and the final decision is float64.
_SCREEN_MARGIN = 2e-3
#: Largest fraction of a window's energy the compressed screen may leave out (it lowers the
#: screen's cut and widens the float64 band by at most this much, in correlation units).
_SCREEN_RESIDUAL = 1e-3
#: Relative tolerance under which a distance is re-done per pair (near the threshold).
_TIE_RTOL = 1e-9


@dataclass(frozen=True)
class MVMResult:
    """Outcome of :func:`multivalued_mapping`.

    Attributes
    ----------
    fraction : float
        Multi-valued windows / all windows (the MVM factor).
    n_windows, n_multivalued, n_pairs : int
        Windows, multi-valued windows, colliding (unordered) pairs.
    scope : str
        ``intra``, ``inter`` or ``all``.
    thresholds : dict
        ``corr``, ``dist``, ``label``.
    multivalued : ndarray of bool, shape (n_windows,)
        Which windows are multi-valued.
    per_group : list of dict
        One row per record/group: ``group``, ``n_windows``, ``n_multivalued``, ``fraction``.
    pairs : dict of ndarray
        Colliding pairs ``i < j`` (indices into the input), ``corr``, ``dist``, ``lag``; at most
        ``max_pairs`` are kept (``pairs_truncated`` says whether some were dropped).
    n_candidates : int
        Pairs that passed the float32 screen in the blocks computed (work done after the
        matrix products; blocks where every pair fails the label test are never computed).
    windows : dict
        How the windows were made (anchor, amplitude scale, fs, ...), reported with the result.
    """

    fraction: float
    n_windows: int
    n_multivalued: int
    n_pairs: int
    scope: str
    thresholds: dict[str, float]
    multivalued: np.ndarray
    per_group: list[dict[str, Any]]
    pairs: dict[str, np.ndarray]
    pairs_truncated: bool = False
    n_candidates: int = 0
    windows: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """JSON-ready summary (no per-window arrays)."""
        return {
            "fraction": self.fraction,
            "n_windows": self.n_windows,
            "n_multivalued": self.n_multivalued,
            "n_pairs": self.n_pairs,
            "scope": self.scope,
            "corr_threshold": self.thresholds["corr"],
            "dist_threshold": self.thresholds["dist"],
            "label_threshold": self.thresholds["label"],
            "n_candidates": self.n_candidates,
            "windows": dict(self.windows),
        }


def zscore_windows(raw: np.ndarray) -> np.ndarray:
    """Z-score each row (population SD); a constant row is a ValueError."""
    return _zscore_with_stats(raw)[0]


def _zscore_with_stats(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(z, mean, sd)`` per row, one pass for the mean and one for the deviations."""
    raw = np.asarray(raw, dtype=np.float64)
    mean = raw.mean(axis=1)
    z = raw - mean[:, None]
    sd = np.sqrt(np.einsum("ij,ij->i", z, z) / raw.shape[1])
    bad = np.flatnonzero(~(sd > 0))
    if bad.size:
        raise ValueError(
            f"{bad.size} window(s) are constant (zero SD), e.g. indices {bad[:5].tolist()}; "
            "drop them before computing the MVM factor"
        )
    z /= sd[:, None]
    return z, mean, sd


def pair_test(
    raw_a: np.ndarray, raw_b: np.ndarray, z_a: np.ndarray, z_b: np.ndarray
) -> tuple[float, int, float]:
    """The literal per-pair definition: (zero-lag correlation, best lag, distance).

    Used for borderline pairs only; the test suite keeps an independent reference loop.
    """
    n = z_a.size
    corr = float(np.dot(z_a, z_b)) / n
    lag = int(np.argmax(np.correlate(z_a, z_b, mode="same"))) - n // 2
    if lag > 0:
        a, b = raw_a[lag:], raw_b[:-lag]
    elif lag < 0:
        a, b = raw_a[:lag], raw_b[-lag:]
    else:
        a, b = raw_a, raw_b
    peak = max(float(np.max(np.abs(a))), float(np.max(np.abs(b))))
    with np.errstate(divide="ignore", invalid="ignore"):
        dist = float(np.linalg.norm(a - b)) / peak
    return corr, lag, dist


def _check_inputs(raw, labels, groups, z, scope, corr_threshold, dist_threshold, label_threshold):
    raw = np.asarray(raw, dtype=np.float64)
    if raw.ndim != 2:
        raise ValueError(
            f"raw windows must be a 2-D array (N windows x n samples), got {raw.shape}"
        )
    n_win, n = raw.shape
    if n_win < 2 or n < 2:
        raise ValueError(f"need at least 2 windows of at least 2 samples, got shape {raw.shape}")
    if not np.all(np.isfinite(raw)):
        bad = np.flatnonzero(~np.all(np.isfinite(raw), axis=1))
        raise ValueError(f"{bad.size} window(s) contain NaN/inf, e.g. indices {bad[:5].tolist()}")
    y = np.asarray(labels, dtype=np.float64)
    if y.shape != (n_win,):
        raise ValueError(f"labels must have shape ({n_win},) to match the windows, got {y.shape}")
    if not np.all(np.isfinite(y)):
        raise ValueError(f"labels contain {int(np.sum(~np.isfinite(y)))} NaN/inf value(s)")
    if scope not in _SCOPES:
        raise ValueError(f"scope must be one of {_SCOPES}, got {scope!r}")
    if groups is None:
        if scope != "all":
            raise ValueError(f"scope {scope!r} needs groups (record ids)")
        g = np.zeros(n_win, dtype=np.int64)
        names = np.array(["all"], dtype=object)
    else:
        garr = np.asarray(groups)
        if garr.shape != (n_win,):
            raise ValueError(f"groups must have shape ({n_win},), got {garr.shape}")
        names, g = np.unique(garr.astype(str), return_inverse=True)
    if not -1.0 <= corr_threshold <= 1.0:
        raise ValueError(f"corr_threshold must lie in [-1, 1], got {corr_threshold}")
    if not dist_threshold > 0:
        raise ValueError(f"dist_threshold must be > 0, got {dist_threshold}")
    if not label_threshold >= 0:
        raise ValueError(f"label_threshold must be >= 0, got {label_threshold}")
    stats = None
    if z is None:
        z, mean, sd = _zscore_with_stats(raw)
        stats = (mean, sd)
    else:
        z = np.asarray(z, dtype=np.float64)
        if z.shape != raw.shape:
            raise ValueError(f"z must have the shape of raw {raw.shape}, got {z.shape}")
        if not np.all(np.isfinite(z)):
            raise ValueError("z contains NaN/inf values")
    return raw, z, y, g, names, stats


def _screen_features(z: np.ndarray, z32: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Compressed float32 features for the correlation screen, and what they leave out.

    The orthonormal DCT-II keeps dot products (Parseval): ``z_a . z_b = d_a . d_b``. Band-
    limited windows (filtered PPG) put almost all their energy in the first coefficients, so
    the screen multiplies ``K`` of them instead of all ``n`` samples. What is dropped is
    bounded: ``|z_a . z_b - d_a[:K] . d_b[:K]| <= sqrt(e_a e_b)`` (Cauchy-Schwarz), with
    ``e`` the energy beyond ``K`` per window; the screen lowers its cut by that bound and
    widens the band of pairs decided in float64 by it, so no pair is lost. ``K`` is the
    smallest multiple of 8 whose largest ``e`` is at most ``_SCREEN_RESIDUAL`` of a
    window's energy; when that needs more than half the samples, the plain windows are used
    (``e = 0``). On 2,000 mw-ppg-bp windows ``K = 56`` of 250.

    Returns
    -------
    features : ndarray of float32, shape (N, K)
    residual : ndarray of float64, shape (N,)
        Energy left out per window (an upper bound, 0 when nothing is left out).
    """
    n = z.shape[1]
    z32 = np.ascontiguousarray(z, dtype=np.float32) if z32 is None else z32
    if n < 32:
        return z32, np.zeros(len(z))
    # float32 DCT: its rounding (~1e-7 of a window's norm per coefficient) is far below the
    # screen margin, and the left-out energies get a matching slack below.
    d = sfft.dct(z32, type=2, norm="ortho", axis=1)
    energy = np.einsum("ij,ij->i", z, z)
    step, top = 8, (n // 2) // 8 * 8
    # Energy per group of 8 coefficients (accumulated in float64), then cumulated.
    groups = d[:, :top].reshape(len(d), top // step, step)
    kept = np.cumsum(np.einsum("ijk,ijk->ij", groups, groups, dtype=np.float64), axis=1)
    left = energy[:, None] - kept  # energy beyond the first 8, 16, ... coefficients
    worst = (left / energy[:, None]).max(axis=0)
    fits = np.flatnonzero(worst <= _SCREEN_RESIDUAL)
    if fits.size == 0:
        return z32, np.zeros(len(z))
    k = step * (int(fits[0]) + 1)
    residual = np.maximum(left[:, fits[0]], 0.0) + 1e-5 * energy
    return np.ascontiguousarray(d[:, :k]), residual


class _Matmul:
    """Blocked float32 products on numpy (BLAS) or a torch device.

    ``residual`` (per row of ``x``) is what the features leave out (see
    :func:`_screen_features`): a block's cut is lowered by the largest possible omission in
    the block, and each candidate is then held to its own bound.
    """

    def __init__(self, x32: np.ndarray, residual: np.ndarray, device: str | None) -> None:
        self.device = device
        self._out: np.ndarray | None = None
        self._mask: np.ndarray | None = None
        self.root = np.sqrt(residual)
        if device is None:
            self.z = x32
        else:
            import torch

            self.torch = torch
            self.z = torch.from_numpy(x32).to(device)

    def candidates(self, rows: slice, cols: slice, cut: float):
        slack = float(self.root[rows].max(initial=0.0) * self.root[cols].max(initial=0.0))
        if self.device is None:
            a, b = self.z[rows], self.z[cols]
            shape = (a.shape[0], b.shape[0])
            size = shape[0] * shape[1]
            if self._out is None or self._out.size < size:
                # Reused between blocks: fresh multi-MB results cost a page fault per 4 kB.
                self._out = np.empty(size, dtype=np.float32)
                self._mask = np.empty(size, dtype=bool)
            block = self._out[:size].reshape(shape)
            np.matmul(a, b.T, out=block)
            mask = np.greater_equal(
                block, np.float32(cut - slack), out=self._mask[:size].reshape(shape)
            )
            # flatnonzero + divmod is ~10x faster than 2-D nonzero on a mostly-False mask.
            flat = np.flatnonzero(mask)
            ii, jj = np.divmod(flat, shape[1])
            vals = block.ravel()[flat]
        else:
            block = self.z[rows] @ self.z[cols].T
            idx = self.torch.nonzero(block >= cut - slack)
            vals = block[idx[:, 0], idx[:, 1]].cpu().numpy()
            idx = idx.cpu().numpy()
            ii, jj = idx[:, 0], idx[:, 1]
        if slack > 0:
            own = self.root[rows][ii] * self.root[cols][jj]
            keep = vals >= cut - own
            ii, jj, vals = ii[keep], jj[keep], vals[keep]
        return ii, jj, vals


@dataclass(frozen=True)
class _Spectra:
    """float32 spectra of every window and the lag range their inverse FFT covers.

    ``irfft(spec[a] * conj(spec[b]), size)`` is the circular cross-correlation, lag ``L`` at
    index ``L mod size``; the lags ``-neg .. pos - 1`` are free of circular aliasing. When
    that is not all of the 'same'-mode range ``-h .. n-h-1`` (``full`` False), a lag outside
    it can only be the argmax if its overlap energies allow a value as large as the best
    one inside (Cauchy-Schwarz): ``drop_head`` / ``drop_tail`` are ``||z||^2`` minus the
    energy of the first / last ``neg + 1`` samples, the most a shifted overlap can keep.
    """

    spec: np.ndarray
    norm: np.ndarray
    size: int
    neg: int
    pos: int
    full: bool
    drop_head: np.ndarray | None = None
    drop_tail: np.ndarray | None = None


def _lag_range(n: int) -> tuple[int, int, int]:
    """``(size, neg, pos)`` of the full 'same'-mode search for windows of ``n`` samples."""
    h = n // 2
    return sfft.next_fast_len(max(n + h, 2 * n - h - 1), real=True), h, n - h


def _spectra(z: np.ndarray, *, zscored: bool, z32: np.ndarray | None = None) -> _Spectra:
    """Spectra for the lag search (see :class:`_Spectra`).

    The full 'same'-mode range needs ``size >= max(n + h, 2n - h - 1)`` (375 points for
    n = 250); look-alike windows align within a few samples, so the search covers lags up
    to ``n // 5`` on a shorter transform (``size >= n + n // 5``: 300 points) and a pair
    whose best lag might lie outside is searched again over the full range
    (:func:`_full_lag_search`; about 1 % of pairs on real windows). float32 halves the
    memory traffic of the per-pair gathers and the inverse FFT; :func:`_align_lags` widens
    its near-tie test to float32 rounding.
    """
    n = z.shape[1]
    full_size, h, full_pos = _lag_range(n)
    # A z-scored row (population SD) has norm sqrt(n) exactly; a caller's own z is measured.
    energy = np.full(len(z), float(n)) if zscored else np.einsum("ij,ij->i", z, z)
    norm = np.sqrt(energy)
    size = sfft.next_fast_len(n + n // 5, real=True)
    lmax = size - n  # every lag in -lmax .. lmax is alias-free at this size
    z32 = z.astype(np.float32) if z32 is None else z32
    if lmax + 1 >= h or size >= full_size:
        return _Spectra(sfft.rfft(z32, full_size, axis=1), norm, full_size, h, full_pos, True)
    k = lmax + 1
    drop_head = energy - np.einsum("ij,ij->i", z[:, :k], z[:, :k])
    drop_tail = energy - np.einsum("ij,ij->i", z[:, -k:], z[:, -k:])
    return _Spectra(
        sfft.rfft(z32, size, axis=1), norm, size, lmax, lmax + 1, False, drop_head, drop_tail
    )


def _fft_tol(norm_a: np.ndarray, norm_b: np.ndarray, size: int) -> np.ndarray:
    """Bound on the error of float32 FFT correlation values of windows with these norms.

    The error is ~eps32 * log2(size) times the largest possible value ``||z_a|| ||z_b||``
    (``n`` for z-scored windows); 16x that (plus the float32 cast of the inputs) is generous.
    """
    return 16 * np.finfo(np.float32).eps * (np.log2(size) + 2) * norm_a * norm_b


def _best_lags(
    circ: np.ndarray, neg: int, pos: int, size: int, tol: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(lag, top, unsure)`` over the lags ``-neg .. pos - 1`` of circular correlations.

    In 'same' order the negative lags (the last ``neg`` points) come before ``0 .. pos - 1``
    (the first ``pos`` points); np.argmax keeps the first maximum, and so does this.
    ``unsure`` marks rows whose runner-up lies within ``tol`` of the maximum.
    """
    p = circ.shape[0]
    rows = np.arange(p)
    pos_part = circ[:, :pos]
    best_pos = np.argmax(pos_part, axis=1)
    top_pos = pos_part[rows, best_pos]
    if neg:
        neg_part = circ[:, size - neg :]
        best_neg = np.argmax(neg_part, axis=1)
        top_neg = neg_part[rows, best_neg]
        first = top_neg >= top_pos
        lag = np.where(first, best_neg - neg, best_pos)
        top = np.where(first, top_neg, top_pos)
        cut = (top - tol)[:, None]
        close = (neg_part >= cut).sum(axis=1) + (pos_part >= cut).sum(axis=1)
    else:
        lag, top = best_pos, top_pos
        close = (pos_part >= (top - tol)[:, None]).sum(axis=1)
    return lag, top, close > 1


def _full_lag_search(z: np.ndarray, i: np.ndarray, j: np.ndarray, norm: np.ndarray):
    """The full 'same'-mode lag search for a few pairs (spectra computed for them only).

    Returns ``(lag, value, tol)`` as :func:`_align_lags` does, near-ties already redone.
    """
    size, neg, pos = _lag_range(z.shape[1])
    a = sfft.rfft(z[i].astype(np.float32), size, axis=1)
    a *= np.conj(sfft.rfft(z[j].astype(np.float32), size, axis=1))
    tol = _fft_tol(norm[i], norm[j], size)
    lag, top, unsure = _best_lags(sfft.irfft(a, size, axis=1), neg, pos, size, tol)
    value = top.astype(np.float64)
    _exact_lags(z, i, j, lag, value, unsure)
    return lag, value, tol


def _align_lags(
    prod: np.ndarray, z, i, j, spectra: _Spectra, out: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Lags of ``np.correlate(z[i[p]], z[j[p]], 'same')``'s argmax per pair (via the FFT).

    ``prod`` holds ``spec[i] * conj(spec[j])`` (see :class:`_Spectra`); ``out`` is a float32
    scratch buffer of at least ``(len(i), size)``. Returns ``(lag, value, tol, redo)``:
    ``value`` is the float32 FFT correlation at ``lag``, within ``tol`` of the exact one
    (NaN for rows redone with ``np.correlate``); ``redo`` marks rows whose best lag may lie
    beyond the short transform (the caller searches them again with
    :func:`_full_lag_search`, all chunks' at once).

    The FFT runs in float32, so its values may be off by a few float32 roundings of the
    largest possible value ``||z_a|| * ||z_b||``. A row whose runner-up lies within ``tol``
    of the maximum could have its argmax flipped, so those rows are redone with the literal
    float64 ``np.correlate``; all others are exact.
    """
    p = i.size
    sp = spectra
    tol = _fft_tol(sp.norm[i], sp.norm[j], sp.size)
    circ = np.fft.irfft(prod, n=sp.size, axis=1, out=out[:p])
    lag, top, unsure = _best_lags(circ, sp.neg, sp.pos, sp.size, tol)
    value = top.astype(np.float64)
    redo = np.zeros(p, dtype=bool)
    if not sp.full:
        # Outside the searched lags the overlaps keep at most this much energy, so no
        # correlation there can reach `outside` (Cauchy-Schwarz); 1e-9 covers its rounding.
        outside = np.sqrt(
            np.maximum(sp.drop_head[i] * sp.drop_tail[j], sp.drop_tail[i] * sp.drop_head[j])
        )
        redo = (outside * (1 + 1e-9) >= top - tol) & ~unsure
    _exact_lags(z, i, j, lag, value, unsure)
    return lag, value, tol, redo


def _exact_lags(z, i, j, lag, value, unsure) -> None:
    """Rows marked ``unsure``: the literal float64 ``np.correlate`` decides (in place)."""
    h = z.shape[1] // 2
    for r in np.flatnonzero(unsure):
        lag[r] = int(np.argmax(np.correlate(z[i[r]], z[j[r]], mode="same"))) - h
        value[r] = np.nan


def _distances(ra: np.ndarray, rb: np.ndarray, lag: np.ndarray) -> np.ndarray:
    """Normalised distance of lag-aligned raw windows; pairs grouped by lag (slices, no gather).

    The literal slicing form, applied to the pairs that :class:`_RawStats` cannot reject.
    """
    out = np.empty(lag.size)
    for value in np.unique(lag):
        rows = np.flatnonzero(lag == value)
        if value > 0:
            a, b = ra[rows, value:], rb[rows, :-value]
        elif value < 0:
            a, b = ra[rows, :value], rb[rows, -value:]
        else:
            a, b = ra[rows], rb[rows]
        diff = a - b
        peak = np.maximum(np.abs(a).max(axis=1), np.abs(b).max(axis=1))
        with np.errstate(divide="ignore", invalid="ignore"):
            out[rows] = np.sqrt(np.einsum("ij,ij->i", diff, diff)) / peak
    return out


class _RawStats:
    """Per-window summaries that reject most candidates in O(1) per pair.

    For a pair (a, b) at lag L the overlap is ``a[s_a : s_a + m]`` and ``b[s_b : s_b + m]``
    (m = n - |L|), and ``||a' - b'||^2 = sum(a'^2) + sum(b'^2) - 2 a'.b'``. The two sums
    are the window totals minus the sums of the ``|L|`` samples left out. When ``z`` is the
    z-score of ``raw`` (``raw = sd * z + mean``), ``a'.b' = sd_a sd_b C + mean_b sum(a') +
    mean_a sum(b') - m mean_a mean_b`` with ``C = z_a'.z_b'``, the correlation value the lag
    search already has, and the same totals-minus-edges sums of ``raw``; otherwise (a
    caller's own ``z``) ``a'.b'`` is a dot of ``b`` with a zero-padded, shifted view of ``a``. The peak ``max(max|a'|, max|b'|)`` is
    bounded above by the peaks of the whole windows, so a pair whose squared distance
    exceeds ``(threshold * that bound)**2`` by more than its error bound surely fails; only
    the rest (a few percent of the candidates on real data) need the literal distance.
    """

    def __init__(
        self, raw: np.ndarray, zstats: tuple[np.ndarray, np.ndarray] | None = None
    ) -> None:
        """``zstats`` = ``(mean, sd)`` when ``z`` is the z-score of ``raw``, else None."""
        n_win, n = raw.shape
        self.n = n
        self.raw = raw
        self.peak = np.abs(raw).max(axis=1)
        self.sq_total = np.einsum("ij,ij->i", raw, raw)
        self.z_is_zscore = zstats is not None
        # Partial sums of the first / last k samples, k = 0 .. self.k, extended on demand:
        # real look-alikes align within a few samples, so full prefix sums would be waste.
        self.k = -1
        if zstats is not None:
            self.mean, self.sd = zstats
            self.total = raw.sum(axis=1)
        else:
            padded = np.zeros((n_win, 3 * n - 1))
            padded[:, n - 1 : 2 * n - 1] = raw
            # shifted[w, L + n - 1][k] = raw[w, k + L] (0 outside the window).
            self.shifted = np.lib.stride_tricks.sliding_window_view(padded, n, axis=1)

    def _edges(self, k: int) -> None:
        """Make ``edge_sq`` / ``edge`` hold the sums over the first / last c <= k samples."""
        if k <= self.k:
            return
        k = max(k, 2 * self.k, 8)  # grow geometrically: few recomputations
        k = min(k, self.n)
        head, tail = self.raw[:, :k], self.raw[:, ::-1][:, :k]
        # One row per window: [head sums for c = 0..k | tail sums for c = 0..k], so that a
        # pair's cut is a single flat take (see _cut).
        self.edge_sq = np.zeros((self.raw.shape[0], 2 * k + 2))
        np.cumsum(head * head, axis=1, out=self.edge_sq[:, 1 : k + 1])
        np.cumsum(tail * tail, axis=1, out=self.edge_sq[:, k + 2 :])
        if self.z_is_zscore:
            self.edge = np.zeros((self.raw.shape[0], 2 * k + 2))
            np.cumsum(head, axis=1, out=self.edge[:, 1 : k + 1])
            np.cumsum(tail, axis=1, out=self.edge[:, k + 2 :])
        self.k = k

    def _cut(self, table: np.ndarray, w: np.ndarray, k: np.ndarray, head: np.ndarray):
        """Sum over the first (``head``) or last ``k`` samples of window ``w``, per pair."""
        width = 2 * self.k + 2
        return table.take(w * width + np.where(head, k, self.k + 1 + k))

    def may_pass(self, i, j, lag, zcorr, zcorr_tol, threshold: float) -> np.ndarray:
        """False where pair ``(i[p], j[p])`` at ``lag[p]`` surely fails the distance test.

        ``zcorr`` is ``z_a'.z_b'`` within ``zcorr_tol`` (NaN: unknown, the pair may pass).
        """
        n = self.n
        k = np.abs(lag)
        self._edges(int(k.max(initial=0)))
        pos = lag > 0
        m = n - k
        # lag > 0 drops a's first k samples and b's last k; lag < 0 the reverse.
        sum_a = self.sq_total[i] - self._cut(self.edge_sq, i, k, pos)
        sum_b = self.sq_total[j] - self._cut(self.edge_sq, j, k, ~pos)
        # The subtraction cancels when a' ~ b', so its rounding error is a few eps of the
        # totals, not of d2; 1e3 eps of the totals (plus a relative 1e-6) is far beyond it.
        total = self.sq_total[i] + self.sq_total[j]
        err = 1e3 * np.finfo(np.float64).eps * total
        if self.z_is_zscore:
            scale = self.sd[i] * self.sd[j]
            mean_a, mean_b = self.mean[i], self.mean[j]
            part_a = self.total[i] - self._cut(self.edge, i, k, pos)
            part_b = self.total[j] - self._cut(self.edge, j, k, ~pos)
            cross = scale * zcorr + mean_b * part_a + mean_a * part_b - m * mean_a * mean_b
            # 2 cross enters d2; twice the FFT bound on top for safety.
            err = err + 4.0 * scale * zcorr_tol
        else:
            cross = np.einsum("ij,ij->i", self.shifted[i, lag + n - 1], self.raw[j])
        d2 = sum_a + sum_b - 2.0 * cross
        bound = (threshold * np.maximum(self.peak[i], self.peak[j])) ** 2
        # NaN (unknown zcorr) compares False, so such pairs are kept.
        return ~(d2 >= bound * (1 + 1e-6) + err)


#: Candidate pairs tested at once: keeps the FFT work arrays in cache-sized pieces (larger
#: chunks were measurably slower: 512 pairs beat 1,024 by 10 % and 2,048 by 35 %).
_CHUNK = 512


def _test_candidates(
    raw, z, spectra, stats, ii, jj, c32, *, residual, corr_threshold, dist_threshold
):
    """Tests 1 (decided in float64) and 2 on candidate pairs; returns the pairs passing both.

    ``c32`` is the float32 screen value: pairs far from the threshold are decided by it
    (its error is orders of magnitude below ``_SCREEN_MARGIN``); only pairs within the
    margin get the float64 product before the decision. ``spectra`` is what
    :func:`_spectra` returns. Test 2 first drops the pairs that surely fail
    (:class:`_RawStats`); the few left get the literal slicing distance, which decides and
    is what is reported.
    """
    n = z.shape[1]
    spec, size = spectra.spec, spectra.size
    corr = c32.astype(np.float64)
    # The screen value may be off by float32 rounding (far below the margin) plus what the
    # compressed features leave out (sqrt(e_a e_b) / n, see _screen_features).
    band = _SCREEN_MARGIN + np.sqrt(residual[ii] * residual[jj]) / n
    near = np.flatnonzero(np.abs(corr - corr_threshold) < band)
    corr[near] = np.einsum("ij,ij->i", z[ii[near]], z[jj[near]]) / n
    keep = corr >= corr_threshold
    # Pairs sharing a first window gather the same spectrum row: sorted, the gathers hit
    # the cache (a quarter of the lag-search time on real windows).
    ii, jj = ii[keep], jj[keep]
    by_first = np.argsort(ii, kind="stable")
    ii, jj = ii[by_first], jj[by_first]

    # Gather buffers reused by every chunk (fresh ones cost page faults on each chunk).
    buf_a = np.empty((_CHUNK, spec.shape[1]), dtype=spec.dtype)
    buf_b = np.empty_like(buf_a)
    buf_v = np.empty((_CHUNK, size), dtype=np.float32)

    pending: tuple[list[np.ndarray], list[np.ndarray]] = ([], [])

    def chunk(start: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        i, j = ii[start : start + _CHUNK], jj[start : start + _CHUNK]
        prod = np.take(spec, i, axis=0, out=buf_a[: i.size])
        other = np.take(spec, j, axis=0, out=buf_b[: i.size])
        prod *= np.conj(other, out=other)
        lag, zcorr, tol, redo = _align_lags(prod, z, i, j, spectra, buf_v)
        if redo.any():
            pending[0].append(i[redo])
            pending[1].append(j[redo])
            keep = ~redo
            i, j, lag, zcorr, tol = i[keep], j[keep], lag[keep], zcorr[keep], tol[keep]
        # Drop the pairs that surely fail; the literal distance decides the others.
        may = stats.may_pass(i, j, lag, zcorr, tol, dist_threshold)
        return i[may], j[may], lag[may]

    # (Two threads over the chunks were measured slower on 2 cores: memory-bound work.)
    parts = [chunk(start) for start in range(0, ii.size, _CHUNK)]
    if pending[0]:
        # Pairs whose best lag may lie beyond the short transform: one full-range search.
        i, j = np.concatenate(pending[0]), np.concatenate(pending[1])
        lag, zcorr, tol = _full_lag_search(z, i, j, spectra.norm)
        may = stats.may_pass(i, j, lag, zcorr, tol, dist_threshold)
        parts.append((i[may], j[may], lag[may]))
    todo = tuple(zip(*parts, strict=True)) if parts else ([], [], [])
    if not todo[0]:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0), np.zeros(0), empty
    # The survivors of all chunks at once: one pass of the per-lag loop.
    i, j, lag = (np.concatenate(lst) for lst in todo)
    dist = _distances(raw[i], raw[j], lag)
    hit = dist < dist_threshold
    # Within rounding of the distance threshold: redo with the literal definition.
    for r in np.flatnonzero(np.abs(dist - dist_threshold) <= _TIE_RTOL * max(dist_threshold, 1.0)):
        _, lag[r], dist[r] = pair_test(raw[i[r]], raw[j[r]], z[i[r]], z[j[r]])
        hit[r] = dist[r] < dist_threshold
    i, j, dist, lag = i[hit], j[hit], dist[hit], lag[hit]
    # Reported correlations of colliding pairs are the float64 values.
    return i, j, np.einsum("ij,ij->i", z[i], z[j]) / n, dist, lag


#: Candidate pairs buffered across blocks before they are tested (bounds the memory of
#: the candidate arrays; the FFT work itself runs in chunks of ``_CHUNK``).
_BUFFER = 1 << 18

#: Rows per matrix-product block. Small row blocks let the label test skip more of the
#: matrix (see :func:`_plan_blocks`); columns are widened so a block still holds about
#: ``block_size**2`` products.
_ROW_BLOCK = 256


def _plan_blocks(
    y: np.ndarray, g: np.ndarray, scope: str, label_threshold: float, block_size: int
) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """Visit order of the windows and the (r0, r1, c0, c1) blocks of the product to compute.

    Windows are sorted by label (within each record for ``intra``, where only same-record
    blocks are needed). A pair can only collide when its labels differ by more than
    ``label_threshold``, so for a row block whose smallest label is ``y0`` the partners
    further right in label order start where the labels exceed ``y0 + label_threshold``:
    the band around the diagonal where every pair fails the label test is never
    multiplied (37 % of all pairs on 2,000 mw-ppg-bp SBP windows). The per-pair label
    test is still applied to what the blocks return.
    """
    n_win = y.size
    if scope == "intra":
        order = np.lexsort((y, g))  # record-major, label-minor
        bounds = np.flatnonzero(np.diff(g[order])) + 1
        spans = list(zip(np.r_[0, bounds].tolist(), np.r_[bounds, n_win].tolist(), strict=True))
    else:
        order = np.argsort(y, kind="stable")
        spans = [(0, n_win)]
    ys = y[order]
    rows = min(block_size, _ROW_BLOCK)
    cols = max(block_size, block_size * block_size // rows)
    tasks = []
    for lo, hi in spans:
        for r0 in range(lo, hi, rows):
            r1 = min(r0 + rows, hi)
            # Slack of a few ulps: y_j - y_i > t and y_j > y_i + t can round differently, and
            # computing a few extra pairs is harmless (the per-pair test follows).
            edge = ys[r0] + label_threshold - 1e-9 * (abs(ys[r0]) + label_threshold + 1.0)
            first = lo + int(np.searchsorted(ys[lo:hi], edge, side="right"))
            for c0 in range(max(first, r0), hi, cols):
                tasks.append((r0, r1, c0, min(c0 + cols, hi)))
    return order, tasks


def multivalued_mapping(
    raw: np.ndarray,
    labels: np.ndarray,
    *,
    groups: np.ndarray | None = None,
    z: np.ndarray | None = None,
    scope: Scope = "all",
    corr_threshold: float = 0.9,
    dist_threshold: float = 1.0,
    label_threshold: float = 8.0,
    block_size: int = 2048,
    device: str | None = None,
    max_pairs: int | None = 1_000_000,
    windows_info: dict[str, Any] | None = None,
    show_progress: bool = True,
) -> MVMResult:
    """Multi-valued mapping factor of a set of windows (exact, blocked).

    Parameters
    ----------
    raw : ndarray, shape (N, n)
        The filtered windows in the amplitude scale the distance test should use (see the
        docs §1: per-record scaling matters when records come from different gains).
    labels : ndarray, shape (N,)
        One label per window (mmHg, bpm, ...).
    groups : ndarray, shape (N,), optional
        Record id of each window; required for the ``intra`` and ``inter`` scopes and used
        for the per-group table.
    z : ndarray, shape (N, n), optional
        Z-scored windows; computed from ``raw`` (population SD) when not given.
    scope : {"intra", "inter", "all"}
        Which partners count: same record, other records, or any.
    corr_threshold, dist_threshold, label_threshold : float
        The three tests of the contract (defaults 0.9, 1.0, 8).
    block_size : int
        Size of the matrix-product blocks; memory is about ``block_size**2 * 4`` bytes per
        block.
    device : str, optional
        A torch device (``"cuda"``, ``"cpu"``) for the products; numpy/BLAS when None.
    max_pairs : int or None
        Keep at most this many colliding pairs for plotting (counts are always complete).
    windows_info : dict, optional
        How the windows were made (``anchor``, ``amplitude_scale``, ``fs``, ...); copied
        into the result so that every number travels with its settings.
    show_progress : bool
        Draw a progress bar over the blocks (silent under ``--quiet``).

    Returns
    -------
    MVMResult
    """
    raw, z, y, g, names, zstats = _check_inputs(
        raw, labels, groups, z, scope, corr_threshold, dist_threshold, label_threshold
    )
    if int(block_size) < 1:
        raise ValueError(f"block_size must be >= 1, got {block_size}")
    block_size = int(block_size)
    n_win, n = raw.shape
    z32 = z.astype(np.float32)  # shared by the screen features and the spectra
    feats, residual = _screen_features(z, z32)
    cut = (corr_threshold - _SCREEN_MARGIN) * n

    order, tasks = _plan_blocks(y, g, scope, label_threshold, block_size)
    mm = _Matmul(np.ascontiguousarray(feats[order]), residual[order], device)

    multivalued = np.zeros(n_win, dtype=bool)
    # Window spectra and raw summaries, computed once when the first candidate shows up.
    spectra, stats = None, None
    kept: dict[str, list[np.ndarray]] = {"i": [], "j": [], "corr": [], "dist": [], "lag": []}
    n_kept = 0
    n_pairs = 0
    n_candidates = 0
    # Candidates of several blocks are tested together (fewer, larger vectorised passes);
    # the buffer is bounded so memory stays bounded on large inputs.
    buffer: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    n_buffered = 0

    def flush() -> None:
        nonlocal spectra, stats, n_pairs, n_kept, n_buffered
        if not buffer:
            return
        ii, jj, c32 = (np.concatenate(parts) for parts in zip(*buffer, strict=True))
        buffer.clear()
        n_buffered = 0
        if stats is None:
            spectra = _spectra(z, zscored=zstats is not None, z32=z32)
            stats = _RawStats(raw, zstats)
        ii, jj, corr, dist, lag = _test_candidates(
            raw,
            z,
            spectra,
            stats,
            ii,
            jj,
            c32 / n,
            residual=residual,
            corr_threshold=corr_threshold,
            dist_threshold=dist_threshold,
        )
        if ii.size == 0:
            return
        n_pairs += ii.size
        multivalued[ii] = True
        multivalued[jj] = True
        room = ii.size if max_pairs is None else max(0, min(ii.size, max_pairs - n_kept))
        if room:
            kept["i"].append(ii[:room])
            kept["j"].append(jj[:room])
            kept["corr"].append(corr[:room])
            kept["dist"].append(dist[:room])
            kept["lag"].append(lag[:room])
            n_kept += room

    iterator = (
        progress(tasks, total=len(tasks), desc="MVM blocks", unit="block")
        if show_progress
        else iter(tasks)
    )
    for r0, r1, c0, c1 in iterator:
        ii, jj, c32 = mm.candidates(slice(r0, r1), slice(c0, c1), float(cut))
        ii = ii.astype(np.int64) + r0
        jj = jj.astype(np.int64) + c0
        upper = jj > ii
        # Back to input indices, smaller first: the lag search is not symmetric in (a, b),
        # and the contract (and the reference) align the earlier window against the later.
        a, b = order[ii[upper]], order[jj[upper]]
        ii, jj, c32 = np.minimum(a, b), np.maximum(a, b), c32[upper]
        n_candidates += ii.size
        keep = np.abs(y[ii] - y[jj]) > label_threshold
        if scope == "inter":
            keep &= g[ii] != g[jj]
        elif scope == "intra":
            keep &= g[ii] == g[jj]
        if keep.any():
            buffer.append((ii[keep], jj[keep], c32[keep]))
            n_buffered += int(keep.sum())
        if n_buffered >= _BUFFER:
            flush()
    flush()

    int_keys = ("i", "j", "lag")
    pairs = {
        key: np.concatenate(v) if v else np.zeros(0, dtype=np.int64 if key in int_keys else float)
        for key, v in kept.items()
    }
    if n_kept:
        order = np.lexsort((pairs["j"], pairs["i"]))
        pairs = {k: v[order] for k, v in pairs.items()}
    per_group = []
    counts = np.bincount(g, minlength=names.size)
    hits = np.bincount(g, weights=multivalued, minlength=names.size)
    for code, name in enumerate(names):
        per_group.append(
            {
                "group": str(name),
                "n_windows": int(counts[code]),
                "n_multivalued": int(hits[code]),
                "fraction": float(hits[code] / counts[code]) if counts[code] else float("nan"),
            }
        )
    n_mv = int(multivalued.sum())
    _log.debug(
        "MVM %s: %d/%d windows, %d pairs, %d candidates", scope, n_mv, n_win, n_pairs, n_candidates
    )
    return MVMResult(
        fraction=n_mv / n_win,
        n_windows=n_win,
        n_multivalued=n_mv,
        n_pairs=n_pairs,
        scope=scope,
        thresholds={
            "corr": float(corr_threshold),
            "dist": float(dist_threshold),
            "label": float(label_threshold),
        },
        multivalued=multivalued,
        per_group=per_group,
        pairs=pairs,
        pairs_truncated=max_pairs is not None and n_pairs > n_kept,
        n_candidates=n_candidates,
        windows=dict(windows_info or {}),
    )
