"""Hand-crafted pulse-wave features per beat and per window, as a named numpy table.

Per beat (onset → next onset, detrended so both ends sit at 0 and scaled to a peak of 1):

- ``rise_time_s``: onset → systolic peak;
- ``width25_s``, ``width50_s``, ``width75_s``: time the pulse spends above 25/50/75 % of its
  amplitude;
- ``area_total``, ``area_systolic``, ``area_diastolic`` (normalised amplitude × s) and
  ``area_ratio`` (diastolic / systolic, the inflection-point-area ratio);
- ``max_slope_per_s``: steepest upstroke of the normalised pulse;
- ``apg_b_a``, ``apg_c_a``, ``apg_d_a``, ``apg_e_a``: second-derivative (APG) wave ratios, where
  the a-b-c-d-e sequence of alternating extrema is found in the first 60 % of the beat (NaN
  otherwise);
- ``notch_time_s``, ``notch_rel_height``: dicrotic notch (first local minimum of the
  descending limb, else NaN);
- ``duration_s``.

Per window: the median of the beat features of the complete beats inside it, plus
``hr_bpm`` (peak intervals), ``skewness``, ``kurtosis`` (Fisher), ``spectral_h2_h1`` (power at
the second cardiac harmonic over the first) and ``spectral_low_high`` (power 0.5–4 Hz over
4–8 Hz). A feature that cannot be measured is NaN, never a default.
"""

from __future__ import annotations

import numpy as np
from scipy import signal as sps
from scipy import stats

from ppg.signal import _MAX_IBI_S, _MIN_IBI_S, _check_fs, _check_signal

__all__ = ["BEAT_FEATURES", "WINDOW_FEATURES", "beat_features", "window_features"]

BEAT_FEATURES: tuple[str, ...] = (
    "rise_time_s",
    "width25_s",
    "width50_s",
    "width75_s",
    "area_total",
    "area_systolic",
    "area_diastolic",
    "area_ratio",
    "max_slope_per_s",
    "apg_b_a",
    "apg_c_a",
    "apg_d_a",
    "apg_e_a",
    "notch_time_s",
    "notch_rel_height",
    "duration_s",
)
WINDOW_FEATURES: tuple[str, ...] = (
    "hr_bpm",
    *BEAT_FEATURES,
    "skewness",
    "kurtosis",
    "spectral_h2_h1",
    "spectral_low_high",
)


def _apg_ratios(beat: np.ndarray, fs: float, peak: int) -> tuple[float, float, float, float]:
    d2 = np.gradient(np.gradient(beat)) * fs * fs
    stop = max(peak + 2, int(0.6 * beat.size))
    seg = d2[:stop]
    maxima = sps.argrelextrema(seg, np.greater)[0]
    minima = sps.argrelextrema(seg, np.less)[0]
    if maxima.size == 0:
        return (np.nan,) * 4
    a = (
        maxima[np.argmax(seg[maxima][: max(1, np.searchsorted(maxima, peak + 1))])]
        if np.any(maxima <= peak)
        else maxima[0]
    )
    waves = [a]
    want_min = True
    for _ in range(4):
        pool = minima if want_min else maxima
        nxt = pool[pool > waves[-1]]
        if nxt.size == 0:
            break
        waves.append(int(nxt[0]))
        want_min = not want_min
    va = seg[waves[0]]
    if va <= 0:
        return (np.nan,) * 4
    ratios = [seg[w] / va for w in waves[1:]]
    ratios += [np.nan] * (4 - len(ratios))
    return tuple(float(r) for r in ratios)  # type: ignore[return-value]


def beat_features(beat, sampling_rate: float) -> np.ndarray:
    """Features of one beat (onset to next onset), in the order of :data:`BEAT_FEATURES`."""
    fs = _check_fs(sampling_rate)
    x = _check_signal(beat, "beat", min_len=4)
    n = x.size
    tau = np.arange(n)
    y = x - (x[0] + (x[-1] - x[0]) * tau / (n - 1))
    amp = y.max()
    out = np.full(len(BEAT_FEATURES), np.nan)
    if not amp > 0:
        return out
    y = y / amp
    p = int(np.argmax(y))
    f = dict.fromkeys(BEAT_FEATURES, np.nan)
    f["duration_s"] = n / fs
    f["rise_time_s"] = p / fs
    for level, key in ((0.25, "width25_s"), (0.5, "width50_s"), (0.75, "width75_s")):
        f[key] = float(np.count_nonzero(y >= level)) / fs
    f["area_systolic"] = float(np.trapezoid(y[: p + 1], dx=1 / fs))
    f["area_diastolic"] = float(np.trapezoid(y[p:], dx=1 / fs))
    f["area_total"] = f["area_systolic"] + f["area_diastolic"]
    f["area_ratio"] = f["area_diastolic"] / f["area_systolic"] if f["area_systolic"] > 0 else np.nan
    f["max_slope_per_s"] = float(np.max(np.diff(y[: p + 1])) * fs) if p > 0 else np.nan
    f["apg_b_a"], f["apg_c_a"], f["apg_d_a"], f["apg_e_a"] = _apg_ratios(y, fs, p)
    # Dicrotic notch: first local minimum after the peak that leaves room for a rebound,
    # ignoring the final 10 % (the next onset) and the first 80 ms (still the systolic fall).
    lo, hi = p + int(0.08 * fs), int(0.9 * n)
    if hi - lo >= 3:
        mins = sps.argrelextrema(y[lo:hi], np.less)[0]
        if mins.size:
            k = lo + int(mins[0])
            f["notch_time_s"] = k / fs
            f["notch_rel_height"] = float(y[k])
    return np.array([f[k] for k in BEAT_FEATURES], dtype=float)


def _window_beats(w: np.ndarray, fs: float) -> tuple[np.ndarray, np.ndarray]:
    """Peaks and onsets inside one short window (a light detector for 2-s windows)."""
    rng = np.ptp(w)
    if rng == 0:
        return np.zeros(0, int), np.zeros(0, int)
    peaks, _ = sps.find_peaks(w, distance=max(1, int(_MIN_IBI_S * fs)), prominence=0.3 * rng)
    troughs, _ = sps.find_peaks(-w, distance=max(1, int(_MIN_IBI_S * fs)), prominence=0.3 * rng)
    return peaks, troughs


def _spectral(w: np.ndarray, fs: float, f0: float) -> tuple[float, float]:
    nfft = max(512, 1 << int(np.ceil(np.log2(w.size * 8))))
    spec = np.abs(np.fft.rfft((w - w.mean()) * np.hanning(w.size), nfft)) ** 2
    f = np.fft.rfftfreq(nfft, 1 / fs)
    low = spec[(f >= 0.5) & (f < 4)].sum()
    high = spec[(f >= 4) & (f <= 8)].sum()
    ratio_lh = float(low / high) if high > 0 else np.nan
    if not np.isfinite(f0):
        return np.nan, ratio_lh
    h1 = spec[np.abs(f - f0) <= 0.25].sum()
    h2 = spec[np.abs(f - 2 * f0) <= 0.25].sum()
    return (float(h2 / h1) if h1 > 0 else np.nan), ratio_lh


def window_features(windows, sampling_rate: float) -> tuple[np.ndarray, tuple[str, ...]]:
    """Feature table of windows (N × n) → (N × F float array, names :data:`WINDOW_FEATURES`).

    Beats are complete onset-to-onset cycles inside the window; beat features are their
    median. Windows with no complete beat keep NaN beat features but still get the
    distribution and spectral ones.
    """
    fs = _check_fs(sampling_rate)
    W = np.asarray(windows, dtype=float)
    if W.ndim == 1:
        W = W[None, :]
    if W.ndim != 2 or W.shape[1] < 8:
        raise ValueError(f"windows must be N × n with n >= 8, got shape {W.shape}")
    if not np.all(np.isfinite(W)):
        raise ValueError("windows contain NaN/inf values")
    out = np.full((W.shape[0], len(WINDOW_FEATURES)), np.nan)
    nb = len(BEAT_FEATURES)
    for i, w in enumerate(W):
        peaks, troughs = _window_beats(w, fs)
        hr = np.nan
        if peaks.size >= 2:
            ibi = np.diff(peaks) / fs
            ibi = ibi[(ibi >= _MIN_IBI_S) & (ibi <= _MAX_IBI_S)]
            if ibi.size:
                hr = 60.0 / float(np.median(ibi))
        feats = []
        for a, b in zip(troughs[:-1], troughs[1:], strict=True):
            if _MIN_IBI_S <= (b - a) / fs <= _MAX_IBI_S and np.any((peaks > a) & (peaks < b)):
                feats.append(beat_features(w[a : b + 1], fs))
        if feats:
            with np.errstate(all="ignore"):
                import warnings

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    out[i, 1 : 1 + nb] = np.nanmedian(np.vstack(feats), axis=0)
            if not np.isfinite(hr):
                hr = 60.0 / float(np.median([f[-1] for f in feats]))
        out[i, 0] = hr
        if np.ptp(w) > 0:
            out[i, 1 + nb] = stats.skew(w)
            out[i, 2 + nb] = stats.kurtosis(w)
        out[i, 3 + nb], out[i, 4 + nb] = _spectral(w, fs, hr / 60.0)
    return out, WINDOW_FEATURES
