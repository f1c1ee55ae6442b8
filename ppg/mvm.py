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

Why this is fast and still exact: test 1 for all pairs is a matrix product, computed in
blocks of ``block_size`` rows in float32 (bounded memory, BLAS or a torch device). The float32
products only *screen*: a pair is kept when its product clears the threshold minus a safety
margin far larger than float32 rounding, and the decision is then taken in float64 on the
candidates alone. The label and scope tests are applied to the candidates next (cheap), and
only the survivors get the alignment (batched FFT cross-correlation) and the distance.
Candidates whose FFT lag is a near-tie, or whose distance lies within rounding of the
threshold, are recomputed with the literal per-pair definition, so counts are identical to a
per-pair loop.
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
#: Relative tolerance under which an FFT lag maximum or a distance is re-done per pair.
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
        Pairs that passed the float32 screen (work done after the matrix products).
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
    raw = np.asarray(raw, dtype=np.float64)
    sd = raw.std(axis=1)
    bad = np.flatnonzero(~(sd > 0))
    if bad.size:
        raise ValueError(
            f"{bad.size} window(s) are constant (zero SD), e.g. indices {bad[:5].tolist()}; "
            "drop them before computing the MVM factor"
        )
    return (raw - raw.mean(axis=1, keepdims=True)) / sd[:, None]


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
    if z is None:
        z = zscore_windows(raw)
    else:
        z = np.asarray(z, dtype=np.float64)
        if z.shape != raw.shape:
            raise ValueError(f"z must have the shape of raw {raw.shape}, got {z.shape}")
        if not np.all(np.isfinite(z)):
            raise ValueError("z contains NaN/inf values")
    return raw, z, y, g, names


class _Matmul:
    """Blocked float32 products on numpy (BLAS) or a torch device."""

    def __init__(self, z32: np.ndarray, device: str | None) -> None:
        self.device = device
        if device is None:
            self.z = z32
        else:
            import torch

            self.torch = torch
            self.z = torch.from_numpy(z32).to(device)

    def candidates(self, rows: slice, cols: slice, cut: float):
        block = self.z[rows] @ self.z[cols].T
        if self.device is None:
            ii, jj = np.nonzero(block >= cut)
            return ii, jj, block[ii, jj]
        idx = self.torch.nonzero(block >= cut)
        vals = block[idx[:, 0], idx[:, 1]].cpu().numpy()
        idx = idx.cpu().numpy()
        return idx[:, 0], idx[:, 1], vals


def _spectra(z: np.ndarray) -> tuple[np.ndarray, int]:
    """rfft of every z-scored window, zero-padded so circular = linear cross-correlation."""
    n = z.shape[1]
    size = sfft.next_fast_len(2 * n - 1, real=True)
    return sfft.rfft(z, size, axis=1), size


def _align_lags(spec_a: np.ndarray, spec_b: np.ndarray, z, i, j, size: int) -> np.ndarray:
    """Lags of ``np.correlate(z[i[p]], z[j[p]], 'same')``'s argmax per pair (via the FFT)."""
    p, n = i.size, z.shape[1]
    circ = sfft.irfft(spec_a * np.conj(spec_b), size, axis=1)
    h = n // 2
    # 'same' mode covers lags -h .. n-h-1, in that order: the tail then the head of circ.
    values = np.concatenate([circ[:, size - h :], circ[:, : n - h]], axis=1)
    rows = np.arange(p)
    best = np.argmax(values, axis=1)
    top = values[rows, best]
    # A near-tie could flip under rounding: those rows are redone with np.correlate.
    tol = _TIE_RTOL * n + 1e-9 * np.abs(top)
    tie = np.count_nonzero(values >= (top - tol)[:, None], axis=1) > 1
    out = best - h
    for r in np.flatnonzero(tie):
        out[r] = int(np.argmax(np.correlate(z[i[r]], z[j[r]], mode="same"))) - h
    return out


def _distances(ra: np.ndarray, rb: np.ndarray, lag: np.ndarray) -> np.ndarray:
    """Normalised distance of lag-aligned raw windows; pairs grouped by lag (slices, no gather)."""
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


#: Candidate pairs tested at once: keeps the FFT work arrays in cache-sized pieces.
_CHUNK = 4096


def _test_candidates(raw, z, spec, size, ii, jj, c32, *, corr_threshold, dist_threshold):
    """Tests 1 (decided in float64) and 2 on candidate pairs; returns the pairs passing both.

    ``c32`` is the float32 screen value: pairs far from the threshold are decided by it
    (its error is orders of magnitude below ``_SCREEN_MARGIN``); only pairs within the
    margin get the float64 product before the decision.
    """
    n = z.shape[1]
    out = [], [], [], [], []
    for s in range(0, ii.size, _CHUNK):
        i, j, corr = ii[s : s + _CHUNK], jj[s : s + _CHUNK], c32[s : s + _CHUNK].astype(np.float64)
        near = np.flatnonzero(np.abs(corr - corr_threshold) < _SCREEN_MARGIN)
        corr[near] = np.einsum("ij,ij->i", z[i[near]], z[j[near]]) / n
        keep = corr >= corr_threshold
        if not keep.any():
            continue
        i, j = i[keep], j[keep]
        lag = _align_lags(spec[i], spec[j], z, i, j, size)
        dist = _distances(raw[i], raw[j], lag)
        hit = dist < dist_threshold
        # Within rounding of the distance threshold: redo with the literal definition.
        for r in np.flatnonzero(
            np.abs(dist - dist_threshold) <= _TIE_RTOL * max(dist_threshold, 1.0)
        ):
            _, lag[r], dist[r] = pair_test(raw[i[r]], raw[j[r]], z[i[r]], z[j[r]])
            hit[r] = dist[r] < dist_threshold
        i, j, dist, lag = i[hit], j[hit], dist[hit], lag[hit]
        # Reported correlations of colliding pairs are the float64 values.
        for lst, arr in zip(out, (i, j, np.einsum("ij,ij->i", z[i], z[j]) / n, dist, lag)):
            lst.append(arr)
    if not out[0]:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0), np.zeros(0), empty
    return tuple(np.concatenate(lst) for lst in out)


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
        Rows per matrix-product block; memory is about ``block_size**2 * 4`` bytes per block.
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
    raw, z, y, g, names = _check_inputs(
        raw, labels, groups, z, scope, corr_threshold, dist_threshold, label_threshold
    )
    if int(block_size) < 1:
        raise ValueError(f"block_size must be >= 1, got {block_size}")
    block_size = int(block_size)
    n_win, n = raw.shape
    z32 = np.ascontiguousarray(z, dtype=np.float32)
    cut = np.float32((corr_threshold - _SCREEN_MARGIN) * n)

    # Block pairs (rows, cols) to visit. For `intra` only same-record blocks are needed, so
    # windows are visited per record; otherwise the upper triangle of the full matrix.
    if scope == "intra":
        order = np.argsort(g, kind="stable")
        bounds = np.flatnonzero(np.diff(g[order])) + 1
        spans = np.split(np.arange(n_win), bounds)
        sorted_ids = order
        tasks = []
        for span in spans:
            lo, hi = int(span[0]), int(span[-1]) + 1
            for r0 in range(lo, hi, block_size):
                for c0 in range(r0, hi, block_size):
                    tasks.append((r0, min(r0 + block_size, hi), c0, min(c0 + block_size, hi)))
        mm = _Matmul(np.ascontiguousarray(z32[order]), device)
    else:
        mm = _Matmul(z32, device)
        sorted_ids = np.arange(n_win)
        tasks = [
            (r0, min(r0 + block_size, n_win), c0, min(c0 + block_size, n_win))
            for r0 in range(0, n_win, block_size)
            for c0 in range(r0, n_win, block_size)
        ]

    multivalued = np.zeros(n_win, dtype=bool)
    spec, size = None, 0  # window spectra, computed once when the first candidate shows up
    kept: dict[str, list[np.ndarray]] = {"i": [], "j": [], "corr": [], "dist": [], "lag": []}
    n_kept = 0
    n_pairs = 0
    n_candidates = 0
    iterator = progress(tasks, total=len(tasks), desc="MVM blocks", unit="block")
    if not show_progress:
        iterator = iter(tasks)
    for r0, r1, c0, c1 in iterator:
        ii, jj, c32 = mm.candidates(slice(r0, r1), slice(c0, c1), float(cut))
        ii = ii.astype(np.int64) + r0
        jj = jj.astype(np.int64) + c0
        upper = jj > ii
        ii, jj, c32 = sorted_ids[ii[upper]], sorted_ids[jj[upper]], c32[upper]
        n_candidates += ii.size
        keep = np.abs(y[ii] - y[jj]) > label_threshold
        if scope == "inter":
            keep &= g[ii] != g[jj]
        elif scope == "intra":
            keep &= g[ii] == g[jj]
        ii, jj, c32 = ii[keep], jj[keep], c32[keep]
        if ii.size == 0:
            continue
        if spec is None:
            spec, size = _spectra(z)
        ii, jj, corr, dist, lag = _test_candidates(
            raw,
            z,
            spec,
            size,
            ii,
            jj,
            c32 / n,
            corr_threshold=corr_threshold,
            dist_threshold=dist_threshold,
        )
        if ii.size == 0:
            continue
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
