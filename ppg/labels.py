"""Labels for windows: SBP/DBP from an arterial pressure waveform or a cuff, HR from beats.

Per beat, SBP is the ABP maximum at a systolic peak and DBP the minimum (diastolic trough)
before it; per window, the median over the beats whose systolic peak falls in the window.
A cuff reading (one per record) is broadcast to every window of the record. HR per window is
60 / median inter-beat interval of the intervals that overlap the window, from PPG systolic
peaks or ECG R-peaks. A window without enough beats gets NaN, never a guess.
"""

from __future__ import annotations

import numpy as np
from scipy import signal as sps

from ppg.record import LabelSeries
from ppg.signal import _MAX_IBI_S, _MIN_IBI_S, _check_fs, _check_signal, signal_bandpass

__all__ = [
    "abp_beats",
    "abp_series",
    "hr_per_window",
    "series_per_window",
]

#: Physiological plausibility limits (mmHg) outside which a beat's value is NaN.
SBP_RANGE = (40.0, 300.0)
DBP_RANGE = (10.0, 200.0)


def abp_beats(abp, sampling_rate: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Systolic peaks and diastolic troughs of an arterial pressure waveform.

    Peaks are found on a 0.5–8 Hz band-passed copy (robust to drift) and refined to the
    maximum of the raw pressure within ±60 ms; the trough of a beat is the raw minimum between
    the previous peak (or 1.2 s back) and its peak. Values outside plausible ranges
    (SBP 40–300, DBP 10–200 mmHg, pulse pressure > 5 mmHg) become NaN.

    Returns
    -------
    peaks, troughs : ndarray of int
        Sample indices (same length).
    sbp, dbp : ndarray of float
        Per-beat values in the waveform's unit (mmHg).
    """
    fs = _check_fs(sampling_rate)
    x = _check_signal(abp, "ABP", allow_nan=True)
    finite = np.isfinite(x)
    if finite.sum() < 2 or np.ptp(x[finite]) == 0:
        empty = np.zeros(0, dtype=int)
        return empty, empty, np.zeros(0), np.zeros(0)
    filled = np.interp(np.arange(x.size), np.flatnonzero(finite), x[finite])
    if x.size > int(2 * fs):
        band = signal_bandpass(filled, fs, lowcut=0.5, highcut=8.0, order=2)
    else:
        band = filled - filled.mean()
    prom = 0.3 * (np.percentile(band, 95) - np.percentile(band, 5))
    rough, _ = sps.find_peaks(
        band, distance=max(1, int(_MIN_IBI_S * fs)), prominence=max(prom, 1e-12)
    )
    half = max(1, int(0.06 * fs))
    peaks = np.array(
        [max(0, p - half) + int(np.argmax(filled[max(0, p - half) : p + half + 1])) for p in rough],
        dtype=int,
    )
    peaks = np.unique(peaks)
    troughs = np.empty(peaks.size, dtype=int)
    back = int(_MAX_IBI_S * fs * 0.6)
    for i, p in enumerate(peaks):
        lo = max(0, p - back) if i == 0 else max(peaks[i - 1], p - back)
        troughs[i] = lo + int(np.argmin(filled[lo : p + 1])) if p > lo else p
    sbp = filled[peaks].astype(float)
    dbp = filled[troughs].astype(float)
    # NaN samples near a fiducial make the beat unusable.
    bad = ~finite[peaks] | ~finite[troughs]
    bad |= (sbp < SBP_RANGE[0]) | (sbp > SBP_RANGE[1]) | (dbp < DBP_RANGE[0]) | (dbp > DBP_RANGE[1])
    bad |= (sbp - dbp) <= 5.0
    bad |= troughs == peaks
    sbp[bad] = np.nan
    dbp[bad] = np.nan
    return peaks, troughs, sbp, dbp


def abp_series(abp, sampling_rate: float) -> dict[str, LabelSeries]:
    """Per-beat ``sbp`` and ``dbp`` label series (times = systolic peak times)."""
    fs = _check_fs(sampling_rate)
    peaks, _, sbp, dbp = abp_beats(abp, fs)
    t = peaks / fs
    return {
        "sbp": LabelSeries(t, sbp, kind="beat", unit="mmHg"),
        "dbp": LabelSeries(t, dbp, kind="beat", unit="mmHg"),
    }


def series_per_window(
    series: LabelSeries, starts_s, window_s: float, *, min_count: int = 1, reduce: str = "median"
) -> np.ndarray:
    """Median (or mean) of the series values inside each window ``[start, start + window_s)``.

    NaN values are ignored; a window with fewer than ``min_count`` finite values gets NaN.
    """
    starts = np.asarray(starts_s, dtype=float).reshape(-1)
    out = np.full(starts.size, np.nan)
    t, v = series.times_s, series.values
    lo = np.searchsorted(t, starts, side="left")
    hi = np.searchsorted(t, starts + window_s, side="left")
    fn = np.nanmedian if reduce == "median" else np.nanmean
    if reduce not in {"median", "mean"}:
        raise ValueError(f"reduce must be 'median' or 'mean', got {reduce!r}")
    for i, (a, b) in enumerate(zip(lo, hi, strict=True)):
        vals = v[a:b]
        if np.isfinite(vals).sum() >= min_count:
            out[i] = fn(vals)
    return out


def hr_per_window(peaks, sampling_rate: float, starts_s, window_s: float) -> np.ndarray:
    """Heart rate (bpm) per window from the beat intervals that overlap it.

    An interval ``[p_i, p_{i+1}]`` counts for a window when the two overlap; intervals outside
    30–220 bpm (missed or spurious beats) are ignored; a window with no valid interval is NaN.
    """
    fs = _check_fs(sampling_rate)
    p = np.sort(np.asarray(peaks, dtype=float).reshape(-1)) / fs
    starts = np.asarray(starts_s, dtype=float).reshape(-1)
    out = np.full(starts.size, np.nan)
    if p.size < 2:
        return out
    a, b = p[:-1], p[1:]
    ibi = b - a
    ok = (ibi >= _MIN_IBI_S) & (ibi <= _MAX_IBI_S)
    a, b, ibi = a[ok], b[ok], ibi[ok]
    if ibi.size == 0:
        return out
    # intervals overlapping [s, s + w): b > s and a < s + w; intervals are sorted by a and b.
    first = np.searchsorted(b, starts, side="right")
    last = np.searchsorted(a, starts + window_s, side="left")
    for i, (f, lst) in enumerate(zip(first, last, strict=True)):
        if lst > f:
            out[i] = 60.0 / float(np.median(ibi[f:lst]))
    return out
