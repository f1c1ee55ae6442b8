"""PPG signal functions: cleaning, resampling, peaks, onsets, beats, rate and quality.

Names and ``method=`` switches follow NeuroKit2 (``ppg_clean``, ``ppg_findpeaks``, ...), so a
NeuroKit2 user finds their way; neurokit2 itself is reused where it is the right tool
(Elgendi's peak detector, ECG R-peaks) and said so in each docstring. Everything else is
numpy/scipy: zero-phase Butterworth band-pass (``sosfiltfilt``), polyphase resampling,
onset detection, beat segmentation, and the signal-quality indices.

Conventions: a "cleaned" signal is band-passed and zero-mean; sample indices are integers
into the array given; every function validates its input and raises a ValueError that says
what is wrong (NaNs, too short, a cut-off above Nyquist) rather than returning a wrong number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from scipy import signal as sps
from scipy import stats

__all__ = [
    "Beats",
    "ecg_rpeaks",
    "heart_rate",
    "heart_rate_spectral",
    "ppg_beats",
    "ppg_clean",
    "ppg_findpeaks",
    "ppg_onsets",
    "ppg_polarity",
    "ppg_quality",
    "ppg_rate",
    "signal_bandpass",
    "signal_fillnan",
    "signal_resample",
    "window_sqi",
]

_MIN_IBI_S = 60.0 / 220.0  # 220 bpm: the fastest plausible rhythm
_MAX_IBI_S = 60.0 / 30.0  # 30 bpm


def _check_signal(
    x, name: str = "signal", *, allow_nan: bool = False, min_len: int = 2
) -> np.ndarray:
    arr = np.asarray(x, dtype=float)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size < min_len:
        raise ValueError(f"{name} has {arr.size} sample(s); need at least {min_len}")
    if not allow_nan and not np.all(np.isfinite(arr)):
        n_bad = int(np.sum(~np.isfinite(arr)))
        raise ValueError(
            f"{name} has {n_bad} NaN/inf sample(s); fill them first (signal_fillnan) or drop them"
        )
    return arr


def _check_fs(fs) -> float:
    try:
        fs = float(fs)
    except (TypeError, ValueError):
        raise ValueError(f"sampling_rate must be a number, got {fs!r}") from None
    if not math.isfinite(fs) or fs <= 0:
        raise ValueError(f"sampling_rate must be > 0 Hz, got {fs}")
    return fs


def signal_fillnan(x, *, max_gap: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Linearly interpolate NaN/inf samples; return (filled, mask of filled samples).

    Parameters
    ----------
    max_gap : int, optional
        Longest run of missing samples allowed; a longer gap is a ValueError.
    """
    arr = np.array(x, dtype=float, copy=True).reshape(-1)
    bad = ~np.isfinite(arr)
    if not bad.any():
        return arr, bad
    if bad.all():
        raise ValueError("signal has no finite samples")
    if max_gap is not None:
        edges = np.diff(np.concatenate([[0], bad.astype(np.int8), [0]]))
        longest = int(np.max(np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)))
        if longest > max_gap:
            raise ValueError(f"signal has a gap of {longest} missing samples (max_gap={max_gap})")
    idx = np.arange(arr.size)
    arr[bad] = np.interp(idx[bad], idx[~bad], arr[~bad])
    return arr, bad


def signal_bandpass(
    x,
    sampling_rate: float,
    *,
    lowcut: float | None = 0.5,
    highcut: float | None = 8.0,
    order: int = 4,
) -> np.ndarray:
    """Zero-phase Butterworth band-pass (or low/high-pass when one cut-off is None).

    ``scipy.signal.sosfiltfilt`` runs the filter forward and backward, so the effective order
    is ``2 * order`` and there is no phase shift: peak and onset times are not delayed.
    """
    fs = _check_fs(sampling_rate)
    arr = _check_signal(x)
    nyq = fs / 2.0
    if lowcut is None and highcut is None:
        return arr - arr.mean()
    if highcut is not None and not 0 < highcut < nyq:
        raise ValueError(
            f"highcut {highcut} Hz must be in (0, {nyq:g}) for sampling rate {fs:g} Hz"
        )
    if lowcut is not None and not 0 < lowcut < (highcut or nyq):
        raise ValueError(f"lowcut {lowcut} Hz must be in (0, {highcut or nyq:g}) Hz")
    if lowcut is not None and highcut is not None:
        sos = sps.butter(order, [lowcut, highcut], btype="bandpass", fs=fs, output="sos")
    elif lowcut is not None:
        sos = sps.butter(order, lowcut, btype="highpass", fs=fs, output="sos")
    else:
        sos = sps.butter(order, highcut, btype="lowpass", fs=fs, output="sos")
    padlen = 3 * (2 * len(sos) + 1)
    if arr.size <= padlen:
        raise ValueError(
            f"signal has {arr.size} samples; the zero-phase filter needs more than {padlen}"
        )
    # Pad with about one second of reflected signal so the slowest pole settles at the edges.
    pad = min(arr.size - 1, max(padlen, int(fs / (lowcut or 1.0))))
    return sps.sosfiltfilt(sos, arr - np.median(arr), padlen=pad)


def ppg_polarity(cleaned, sampling_rate: float) -> int:
    """+1 when the systolic upstroke goes up, −1 when the signal is inverted.

    A pulse rises fast and falls slowly, so the first derivative of a correctly oriented PPG
    is right-skewed. Raw reflectance-sensor counts are often inverted (more blood, less light).
    """
    arr = _check_signal(cleaned)
    d = np.diff(arr)
    if np.ptp(d) == 0:
        return 1
    return 1 if stats.skew(d) >= 0 else -1


def ppg_clean(
    ppg_signal,
    sampling_rate: float,
    *,
    method: str = "butterworth",
    lowcut: float = 0.5,
    highcut: float = 8.0,
    order: int = 4,
    polarity: str = "keep",
) -> np.ndarray:
    """Band-pass a raw PPG (zero-phase) and optionally fix its orientation.

    Parameters
    ----------
    method : {"butterworth", "elgendi", "nabian2018"}
        ``"butterworth"``: :func:`signal_bandpass` with ``lowcut``–``highcut`` (defaults
        0.5–8 Hz, the window defaults of the docs). ``"elgendi"``: neurokit2's
        ``ppg_clean(method="elgendi")`` (3rd-order Butterworth 0.5–8 Hz, zero-phase).
        ``"nabian2018"``: neurokit2's low-pass at 40 Hz (no band-pass).
    polarity : {"keep", "auto", "invert"}
        ``"auto"`` flips the signal when :func:`ppg_polarity` finds it inverted.
    """
    fs = _check_fs(sampling_rate)
    arr = _check_signal(ppg_signal)
    if method == "butterworth":
        out = signal_bandpass(arr, fs, lowcut=lowcut, highcut=highcut, order=order)
    elif method in {"elgendi", "nabian2018"}:
        import neurokit2 as nk

        if method == "nabian2018" and fs <= 80:
            raise ValueError(
                f"method 'nabian2018' low-passes at 40 Hz; sampling rate {fs:g} Hz is too low"
            )
        out = np.asarray(nk.ppg_clean(arr, sampling_rate=fs, method=method), dtype=float)
    else:
        raise ValueError(f"unknown method {method!r}; use 'butterworth', 'elgendi' or 'nabian2018'")
    if polarity == "invert" or (polarity == "auto" and ppg_polarity(out, fs) < 0):
        out = -out
    elif polarity not in {"keep", "auto", "invert"}:
        raise ValueError(f"polarity must be 'keep', 'auto' or 'invert', got {polarity!r}")
    return out


def signal_resample(
    x, sampling_rate: float, desired_sampling_rate: float, *, method: str = "polyphase"
) -> np.ndarray:
    """Resample to a new rate.

    ``"polyphase"`` (default) uses ``scipy.signal.resample_poly`` with the exact rational
    ratio (e.g. 200 → 125 Hz is up 5, down 8) and its anti-aliasing FIR; ``"fft"`` uses
    ``scipy.signal.resample``; ``"interpolation"`` is linear (no anti-aliasing: only for
    up-sampling or signals already band-limited). The output has
    ``ceil(n * desired / fs)`` samples for polyphase and ``round(...)`` otherwise.
    """
    fs = _check_fs(sampling_rate)
    target = _check_fs(desired_sampling_rate)
    arr = _check_signal(x)
    if fs == target:
        return arr.copy()
    ratio = Fraction(target / fs).limit_denominator(1000)
    if abs(float(ratio) - target / fs) > 1e-9 * target / fs and method == "polyphase":
        raise ValueError(
            f"cannot express {target:g}/{fs:g} Hz as a ratio of small integers; use method='fft'"
        )
    if method == "polyphase":
        return sps.resample_poly(arr, ratio.numerator, ratio.denominator, padtype="line")
    n_out = int(round(arr.size * target / fs))
    if n_out < 2:
        raise ValueError(
            f"resampling {arr.size} samples from {fs:g} to {target:g} Hz leaves {n_out}"
        )
    if method == "fft":
        return sps.resample(arr, n_out)
    if method == "interpolation":
        return np.interp(np.arange(n_out) / target, np.arange(arr.size) / fs, arr)
    raise ValueError(f"unknown method {method!r}; use 'polyphase', 'fft' or 'interpolation'")


def _peaks_derivative(x: np.ndarray, fs: float) -> np.ndarray:
    # Systolic peaks follow the steepest upstrokes: find prominent maxima of the slope,
    # then the signal maximum within the next 40 % of a typical beat.
    d = np.gradient(x) * fs
    thr = np.percentile(d, 98) * 0.3
    ups, _ = sps.find_peaks(d, height=thr, distance=max(1, int(_MIN_IBI_S * fs)))
    if ups.size == 0:
        return ups
    reach = int(0.3 * fs)
    peaks = []
    for u in ups:
        seg = x[u : min(x.size, u + reach)]
        # The peak is where the slope crosses zero after the upstroke.
        neg = np.flatnonzero(np.diff(seg) <= 0)
        p = u + (int(neg[0]) if neg.size else int(np.argmax(seg)))
        peaks.append(p)
    return np.unique(np.asarray(peaks, dtype=int))


def ppg_findpeaks(cleaned, sampling_rate: float, *, method: str = "elgendi") -> np.ndarray:
    """Systolic peak indices of a cleaned PPG.

    Parameters
    ----------
    method : {"elgendi", "derivative"}
        ``"elgendi"``: neurokit2's implementation of Elgendi et al. (PLoS ONE 2013, two
        moving averages of the clipped, squared signal; the best of the detectors compared
        there). ``"derivative"``: the first zero crossing of the slope after each prominent
        upstroke (robust for low-amplitude wrist PPG).
    """
    fs = _check_fs(sampling_rate)
    x = _check_signal(cleaned)
    if np.ptp(x) == 0:
        return np.zeros(0, dtype=int)
    if method == "elgendi":
        import neurokit2 as nk

        if x.size < int(0.7 * fs):  # neurokit's moving windows need ~0.67 s of signal
            return np.zeros(0, dtype=int)
        peaks = np.asarray(
            nk.ppg_findpeaks(x, sampling_rate=fs, method="elgendi")["PPG_Peaks"], dtype=int
        )
    elif method == "derivative":
        peaks = _peaks_derivative(x, fs)
    else:
        raise ValueError(f"unknown method {method!r}; use 'elgendi' or 'derivative'")
    return peaks


def ppg_onsets(cleaned, peaks, sampling_rate: float, *, method: str = "minimum") -> np.ndarray:
    """Pulse onset (foot) index before each peak; −1 where none can be placed.

    Parameters
    ----------
    method : {"minimum", "tangent", "d2max"}
        ``"minimum"``: the minimum between the previous peak (or at most one maximal beat
        back) and the peak. ``"tangent"``: intersecting tangents — the tangent at the steepest
        upstroke meets the horizontal line through that minimum (robust to a rounded foot).
        ``"d2max"``: the maximum of the second derivative between the minimum and the
        steepest upstroke.
    """
    fs = _check_fs(sampling_rate)
    x = _check_signal(cleaned)
    peaks = np.asarray(peaks, dtype=int).reshape(-1)
    if method not in {"minimum", "tangent", "d2max"}:
        raise ValueError(f"unknown method {method!r}; use 'minimum', 'tangent' or 'd2max'")
    onsets = np.full(peaks.size, -1, dtype=int)
    d1 = np.gradient(x)
    d2 = np.gradient(d1) if method == "d2max" else None
    reach = int(_MAX_IBI_S * fs * 0.6)
    for i, p in enumerate(peaks):
        lo = max(0, p - reach) if i == 0 else max(peaks[i - 1], p - reach)
        if p - lo < 2:
            continue
        m = lo + int(np.argmin(x[lo:p]))
        if m == lo and lo == 0 and i == 0:
            continue  # foot cut off by the start of the signal
        if method == "minimum":
            onsets[i] = m
            continue
        u = m + int(np.argmax(d1[m : p + 1]))
        if method == "d2max":
            onsets[i] = m + int(np.argmax(d2[m : u + 1])) if u > m else m
        else:
            slope = d1[u]
            if slope <= 0:
                onsets[i] = m
                continue
            t = u - (x[u] - x[m]) / slope
            onsets[i] = int(np.clip(round(t), m, u))
    return onsets


@dataclass(frozen=True)
class Beats:
    """Beats of one signal: index arrays of equal length (onset → next onset)."""

    onsets: np.ndarray
    peaks: np.ndarray
    ends: np.ndarray
    sampling_rate: float

    def __len__(self) -> int:
        return int(self.onsets.size)

    @property
    def durations_s(self) -> np.ndarray:
        return (self.ends - self.onsets) / self.sampling_rate

    def segments(self, x) -> list[np.ndarray]:
        """The samples of each beat (onset inclusive, end exclusive)."""
        arr = np.asarray(x)
        return [arr[a:b] for a, b in zip(self.onsets, self.ends, strict=True)]

    def matrix(self, x, n: int = 100) -> np.ndarray:
        """Every beat resampled (linear) to ``n`` points, one row per beat."""
        arr = np.asarray(x, dtype=float)
        out = np.empty((len(self), n))
        grid = np.linspace(0.0, 1.0, n)
        for i, (a, b) in enumerate(zip(self.onsets, self.ends, strict=True)):
            seg = arr[a : b + 1] if b < arr.size else arr[a:b]
            out[i] = np.interp(grid, np.linspace(0.0, 1.0, seg.size), seg)
        return out


def ppg_beats(
    cleaned,
    sampling_rate: float,
    *,
    peaks=None,
    peak_method: str = "elgendi",
    onset_method: str = "minimum",
) -> Beats:
    """Segment a cleaned PPG into beats from one onset to the next.

    Only complete beats are kept: an onset, its systolic peak, and the next onset no more
    than 2 s later (30 bpm) and no less than 0.27 s (220 bpm).
    """
    fs = _check_fs(sampling_rate)
    x = _check_signal(cleaned)
    pk = ppg_findpeaks(x, fs, method=peak_method) if peaks is None else np.asarray(peaks, dtype=int)
    on = ppg_onsets(x, pk, fs, method=onset_method)
    keep_on, keep_pk, keep_end = [], [], []
    for i in range(pk.size - 1):
        a, b = on[i], on[i + 1]
        if a < 0 or b <= pk[i]:
            continue
        dur = (b - a) / fs
        if _MIN_IBI_S <= dur <= _MAX_IBI_S and a < pk[i]:
            keep_on.append(a)
            keep_pk.append(pk[i])
            keep_end.append(b)
    as_int = lambda v: np.asarray(v, dtype=int)  # noqa: E731
    return Beats(as_int(keep_on), as_int(keep_pk), as_int(keep_end), fs)


def heart_rate(peaks, sampling_rate: float, *, min_beats: int = 2) -> float:
    """Heart rate in bpm from the median inter-beat interval; NaN with too few beats.

    Intervals outside 30–220 bpm are discarded before the median (missed or extra beats).
    """
    fs = _check_fs(sampling_rate)
    p = np.sort(np.asarray(peaks, dtype=float).reshape(-1))
    if p.size < max(2, min_beats):
        return math.nan
    ibi = np.diff(p) / fs
    ibi = ibi[(ibi >= _MIN_IBI_S) & (ibi <= _MAX_IBI_S)]
    if ibi.size == 0:
        return math.nan
    return 60.0 / float(np.median(ibi))


def heart_rate_spectral(
    x, sampling_rate: float, *, band: tuple[float, float] = (0.5, 3.7)
) -> float:
    """Heart rate (bpm) from the dominant spectral peak in ``band`` (Hz), zero-padded and
    refined by parabolic interpolation; an estimate independent of beat detection."""
    fs = _check_fs(sampling_rate)
    w = _check_signal(x)
    if np.ptp(w) == 0:
        return math.nan
    nfft = max(4096, 1 << int(np.ceil(np.log2(w.size * 8))))
    spec = np.abs(np.fft.rfft((w - w.mean()) * np.hanning(w.size), nfft)) ** 2
    f = np.fft.rfftfreq(nfft, 1.0 / fs)
    sel = np.flatnonzero((f >= band[0]) & (f <= band[1]))
    if sel.size < 3:
        raise ValueError(f"band {band} Hz holds too few frequency bins at {fs:g} Hz")
    k = sel[np.argmax(spec[sel])]
    if 0 < k < spec.size - 1:
        a, b, c = np.log(spec[k - 1 : k + 2] + 1e-300)
        delta = 0.5 * (a - c) / (a - 2 * b + c) if (a - 2 * b + c) != 0 else 0.0
    else:
        delta = 0.0
    return 60.0 * (f[k] + delta * (f[1] - f[0]))


def ppg_rate(peaks, sampling_rate: float, *, desired_length: int | None = None) -> np.ndarray:
    """Instantaneous rate (bpm) per peak interval, or interpolated to ``desired_length`` samples."""
    fs = _check_fs(sampling_rate)
    p = np.sort(np.asarray(peaks, dtype=float).reshape(-1))
    if p.size < 2:
        raise ValueError(f"need at least 2 peaks for a rate, got {p.size}")
    rate = 60.0 * fs / np.diff(p)
    if desired_length is None:
        return rate
    return np.interp(np.arange(desired_length), p[1:], rate)


def ecg_rpeaks(ecg, sampling_rate: float) -> np.ndarray:
    """R-peak indices of an ECG with neurokit2 (``ecg_clean`` + ``ecg_peaks``, method "neurokit")."""
    import neurokit2 as nk

    fs = _check_fs(sampling_rate)
    x = _check_signal(ecg, "ECG")
    if np.ptp(x) == 0:
        return np.zeros(0, dtype=int)
    clean = nk.ecg_clean(x, sampling_rate=fs)
    _, info = nk.ecg_peaks(clean, sampling_rate=fs)
    return np.asarray(info["ECG_R_Peaks"], dtype=int)


# ----------------------------------------------------------------------------- quality


def _template_correlation(
    x: np.ndarray, beats: Beats, n: int = 100
) -> tuple[np.ndarray, np.ndarray]:
    """Per-beat Pearson correlation with the median beat (Orphanidou et al. 2015 style)."""
    if len(beats) < 2:
        return np.full(len(beats), np.nan), np.zeros(n)
    mat = beats.matrix(x, n)
    template = np.median(mat, axis=0)
    mc = mat - mat.mean(axis=1, keepdims=True)
    tc = template - template.mean()
    denom = np.linalg.norm(mc, axis=1) * np.linalg.norm(tc)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = mc @ tc / denom
    return np.where(denom > 0, r, 0.0), template


def ppg_quality(
    cleaned,
    sampling_rate: float,
    *,
    method: str = "templatematch",
    beats: Beats | None = None,
    window_s: float = 2.0,
) -> np.ndarray:
    """Per-sample signal-quality index in [0, 1] (higher is cleaner).

    Parameters
    ----------
    method : {"templatematch", "skewness", "spectral"}
        ``"templatematch"``: each beat's correlation with the record's median beat (clipped
        at 0), spread over the samples of the beat; samples in no valid beat get 0.
        ``"skewness"``: Elgendi (2016)'s skewness SQI over sliding ``window_s`` windows,
        mapped to [0, 1] by ``clip(skew / 1.5, 0, 1)`` (a clean pulse is right-skewed).
        ``"spectral"``: share of the 0.5–8 Hz power that lies within ±0.2 Hz of the dominant
        cardiac frequency and its first harmonic, over sliding windows.
    """
    fs = _check_fs(sampling_rate)
    x = _check_signal(cleaned)
    out = np.zeros(x.size)
    if np.ptp(x) == 0:
        return out
    if method == "templatematch":
        b = beats if beats is not None else ppg_beats(x, fs)
        r, _ = _template_correlation(x, b)
        for a, e, v in zip(b.onsets, b.ends, r, strict=True):
            out[a:e] = max(0.0, float(v)) if np.isfinite(v) else 0.0
        return out
    if method not in {"skewness", "spectral"}:
        raise ValueError(
            f"unknown method {method!r}; use 'templatematch', 'skewness' or 'spectral'"
        )
    n = max(8, int(round(window_s * fs)))
    hop = max(1, n // 4)
    acc = np.zeros(x.size)
    cnt = np.zeros(x.size)
    for start in range(0, max(1, x.size - n + 1), hop):
        seg = x[start : start + n]
        acc[start : start + seg.size] += window_sqi(seg, fs, method=method)
        cnt[start : start + seg.size] += 1
    return np.divide(acc, cnt, out=np.zeros_like(acc), where=cnt > 0)


def window_sqi(window, sampling_rate: float, *, method: str = "skewness") -> float:
    """Quality of one short window in [0, 1] (``"skewness"`` or ``"spectral"``); 0 if flat/NaN."""
    fs = _check_fs(sampling_rate)
    w = np.asarray(window, dtype=float)
    if w.size < 4 or not np.all(np.isfinite(w)) or np.ptp(w) == 0:
        return 0.0
    if method == "skewness":
        return float(np.clip(stats.skew(w) / 1.5, 0.0, 1.0))
    if method == "spectral":
        nfft = max(256, 1 << int(np.ceil(np.log2(w.size * 4))))
        spec = np.abs(np.fft.rfft((w - w.mean()) * np.hanning(w.size), nfft)) ** 2
        f = np.fft.rfftfreq(nfft, 1.0 / fs)
        band = (f >= 0.5) & (f <= 8.0)
        total = spec[band].sum()
        if total <= 0:
            return 0.0
        cardiac = band & (f <= 3.7)
        f0 = f[cardiac][np.argmax(spec[cardiac])]
        near = (np.abs(f - f0) <= 0.2) | (np.abs(f - 2 * f0) <= 0.2)
        return float(spec[near & band].sum() / total)
    raise ValueError(f"unknown method {method!r}; use 'skewness' or 'spectral'")
