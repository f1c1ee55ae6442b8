"""Windows of PPG with labels, groups and quality; the window-file format.

Default windowing (docs/ppg-informativeness.md §1, the paper's MIMIC setting): band-pass the
PPG 0.5–8 Hz zero-phase, resample to 125 Hz, cut non-overlapping 2 s windows (250 samples).
Each window carries its subject id (``groups``), record id, start time, a quality index and
its labels. ``raw`` is the filtered window (optionally per-record scaled), ``z`` the window
z-scored with the population SD. :func:`iter_windows` works one record at a time, so a
dataset iterator is windowed lazily; :func:`make_windows` collects the result.

Window-file format (``.npz``, read by the informativeness commands and by anything that
reads numpy files): ``raw`` (N × n float), ``z`` (N × n, optional: computed when absent),
``groups`` (N subject ids), ``label_<name>`` (N floats per label), ``fs`` (scalar), and
optionally ``record_ids`` (N), ``start_s`` (N), ``quality`` (N), ``meta`` (a JSON string
with the parameters that made the file).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from healthsense.runtime import get_logger, progress
from ppg import labels as lab
from ppg.record import Record
from ppg.signal import (
    ecg_rpeaks,
    ppg_beats,
    ppg_clean,
    ppg_findpeaks,
    ppg_quality,
    signal_fillnan,
    signal_resample,
)

__all__ = [
    "WindowConfig",
    "WindowSet",
    "iter_windows",
    "load_windows",
    "make_windows",
    "save_windows",
    "window_record",
    "zscore",
]

_log = get_logger("ppg.windows")


@dataclass(frozen=True)
class WindowConfig:
    """Every choice that shapes a window set (written into the window file's ``meta``).

    Attributes
    ----------
    channel : str
        Record signal to window (``"ppg"``, ``"green"``, ...).
    fs : float
        Output sampling rate (Hz).
    window_s, overlap : float
        Window length (s) and overlap fraction in [0, 1) (0 = non-overlapping).
    lowcut, highcut : float
        Band-pass edges (Hz), zero-phase Butterworth of order ``filter_order``.
    polarity : {"keep", "auto", "invert"}
        Orientation fix applied after filtering (see :func:`ppg.signal.ppg_clean`).
    scale : {"none", "record"}
        Amplitude scale of ``raw``: as filtered, or the record's 1st–99th percentile range of
        the filtered signal mapped to [0, 1] (docs §1: needed to compare raw ADC counts of
        different records).
    anchor : {"grid", "onset"}
        Windows on a fixed time grid, or starting at detected beat onsets (at least one hop
        apart), so that look-alike pulses line up.
    labels : tuple of str
        Label names: ``sbp``/``dbp`` (ABP waveform, else per-beat series, else the record's
        cuff value), ``hr`` (see ``hr_source``), or any record label or series name.
    hr_source : {"auto", "ppg", "ecg"}
        HR from ECG R-peaks (``auto`` when an ``ecg`` signal exists) or PPG peaks.
    min_quality : float or None
        Drop windows whose quality is below this (None keeps all; quality is still stored).
    max_nan_fraction : float
        Windows with a larger share of missing (interpolated) input samples get quality 0.
    """

    channel: str = "ppg"
    fs: float = 125.0
    window_s: float = 2.0
    overlap: float = 0.0
    lowcut: float = 0.5
    highcut: float = 8.0
    filter_order: int = 4
    polarity: str = "keep"
    scale: str = "none"
    anchor: str = "grid"
    labels: tuple[str, ...] = ("sbp", "dbp", "hr")
    hr_source: str = "auto"
    min_quality: float | None = None
    max_nan_fraction: float = 0.0

    def __post_init__(self) -> None:
        if not self.fs > 0:
            raise ValueError(f"fs must be > 0 Hz, got {self.fs}")
        if not self.window_s > 0:
            raise ValueError(f"window_s must be > 0, got {self.window_s}")
        if round(self.window_s * self.fs) < 4:
            raise ValueError(
                f"window of {self.window_s} s at {self.fs} Hz has fewer than 4 samples"
            )
        if not 0 <= self.overlap < 1:
            raise ValueError(f"overlap must be in [0, 1), got {self.overlap}")
        if self.highcut >= self.fs / 2:
            raise ValueError(
                f"highcut {self.highcut} Hz must be below the output Nyquist frequency {self.fs / 2} Hz"
            )
        for key, allowed in (
            ("scale", {"none", "record"}),
            ("anchor", {"grid", "onset"}),
            ("hr_source", {"auto", "ppg", "ecg"}),
            ("polarity", {"keep", "auto", "invert"}),
        ):
            if getattr(self, key) not in allowed:
                raise ValueError(
                    f"{key} must be one of {sorted(allowed)}, got {getattr(self, key)!r}"
                )
        object.__setattr__(self, "labels", tuple(self.labels))

    @property
    def n_samples(self) -> int:
        return int(round(self.window_s * self.fs))

    @property
    def hop_s(self) -> float:
        return self.window_s * (1.0 - self.overlap)


def zscore(raw: np.ndarray) -> np.ndarray:
    """Row-wise z-score with the population SD; a flat row becomes zeros (not NaN)."""
    raw = np.asarray(raw, dtype=float)
    mu = raw.mean(axis=1, keepdims=True)
    sd = raw.std(axis=1, keepdims=True)
    return np.divide(raw - mu, sd, out=np.zeros_like(raw), where=sd > 0)


@dataclass(eq=False)
class WindowSet:
    """Windows of one or more records (rows aligned across every array)."""

    raw: np.ndarray
    fs: float
    groups: np.ndarray
    labels: dict[str, np.ndarray] = field(default_factory=dict)
    z: np.ndarray | None = None
    record_ids: np.ndarray | None = None
    start_s: np.ndarray | None = None
    quality: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        raw = np.asarray(self.raw, dtype=np.float32)
        if raw.ndim != 2:
            raise ValueError(f"raw must be N × n, got shape {raw.shape}")
        n = raw.shape[0]
        self.raw = raw
        self.fs = float(np.asarray(self.fs).reshape(-1)[0]) if np.size(self.fs) else float("nan")
        if not np.isfinite(self.fs) or self.fs <= 0:
            raise ValueError(f"fs must be a positive number, got {self.fs}")

        def vec(name, v, dtype):
            arr = np.asarray(v, dtype=dtype).reshape(-1)
            if arr.size != n:
                raise ValueError(f"{name} has {arr.size} entries for {n} windows")
            return arr

        self.groups = vec("groups", self.groups, str)
        self.labels = {str(k): vec(f"label_{k}", v, float) for k, v in self.labels.items()}
        if self.z is None:
            self.z = zscore(raw).astype(np.float32)
        else:
            self.z = np.asarray(self.z, dtype=np.float32)
            if self.z.shape != raw.shape:
                raise ValueError(f"z has shape {self.z.shape}, raw has {raw.shape}")
        self.record_ids = vec(
            "record_ids", self.record_ids if self.record_ids is not None else self.groups, str
        )
        self.start_s = (
            vec("start_s", self.start_s, float) if self.start_s is not None else np.full(n, np.nan)
        )
        self.quality = (
            vec("quality", self.quality, float) if self.quality is not None else np.full(n, np.nan)
        )

    def __len__(self) -> int:
        return int(self.raw.shape[0])

    @property
    def n_samples(self) -> int:
        return int(self.raw.shape[1])

    def subset(self, index) -> WindowSet:
        """Rows selected by a boolean mask or integer index."""
        return WindowSet(
            raw=self.raw[index],
            z=self.z[index],
            fs=self.fs,
            groups=self.groups[index],
            labels={k: v[index] for k, v in self.labels.items()},
            record_ids=self.record_ids[index],
            start_s=self.start_s[index],
            quality=self.quality[index],
            meta=dict(self.meta),
        )

    @classmethod
    def concat(
        cls, parts: Iterable[WindowSet], *, meta: Mapping[str, Any] | None = None
    ) -> WindowSet:
        """Stack window sets with the same rate, length and label names."""
        parts = [p for p in parts if len(p)]
        if not parts:
            raise ValueError("no windows to concatenate")
        first = parts[0]
        for p in parts[1:]:
            if p.fs != first.fs or p.n_samples != first.n_samples:
                raise ValueError("window sets differ in sampling rate or window length")
            if set(p.labels) != set(first.labels):
                raise ValueError(
                    f"window sets differ in labels: {sorted(p.labels)} vs {sorted(first.labels)}"
                )
        cat = lambda name: np.concatenate([getattr(p, name) for p in parts])  # noqa: E731
        return cls(
            raw=cat("raw"),
            z=cat("z"),
            fs=first.fs,
            groups=cat("groups"),
            labels={k: np.concatenate([p.labels[k] for p in parts]) for k in first.labels},
            record_ids=cat("record_ids"),
            start_s=cat("start_s"),
            quality=cat("quality"),
            meta=dict(meta if meta is not None else first.meta),
        )

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The window-file arrays (see the module docstring)."""
        out = {
            "raw": self.raw,
            "z": self.z,
            "groups": self.groups,
            "fs": np.asarray(self.fs),
            "record_ids": self.record_ids,
            "start_s": self.start_s,
            "quality": self.quality,
            "meta": np.asarray(json.dumps(_jsonable(self.meta))),
        }
        for k, v in self.labels.items():
            out[f"label_{k}"] = v
        return out


def _jsonable(obj):
    from healthsense.report import to_jsonable

    return to_jsonable(obj)


# ------------------------------------------------------------------------------ windowing


def _starts(duration_s: float, cfg: WindowConfig, onsets_s: np.ndarray | None) -> np.ndarray:
    last = duration_s - cfg.window_s
    if last < 0:
        return np.zeros(0)
    if cfg.anchor == "grid":
        # integer steps avoid float drift over long records
        return np.arange(int(np.floor(last / cfg.hop_s + 1e-9)) + 1) * cfg.hop_s
    starts: list[float] = []
    for t in onsets_s if onsets_s is not None else []:
        if t > last + 1e-9:
            break
        if not starts or t >= starts[-1] + cfg.hop_s - 1e-9:
            starts.append(float(t))
    return np.asarray(starts)


def _bp_series(record: Record, name: str) -> tuple[lab.LabelSeries | None, str]:
    if "abp" in record.signals:
        return lab.abp_series(record.signals["abp"], record.fs["abp"])[name], "abp waveform"
    if name in record.series:
        return record.series[name], "record series"
    return None, ""


def window_record(record: Record, cfg: WindowConfig | None = None, **options) -> WindowSet:
    """Cut one record into windows (see :class:`WindowConfig`; ``options`` override it).

    Returns an empty :class:`WindowSet` (0 rows) when the record is shorter than a window or
    than the filter needs; a constant or all-NaN channel gives windows of quality 0.
    """
    cfg = _config(cfg, options)
    x0 = record.signal(cfg.channel)
    fs0 = record.fs[cfg.channel]
    if cfg.highcut >= fs0 / 2:
        raise ValueError(
            f"record {record.record_id}: highcut {cfg.highcut} Hz is above the Nyquist frequency "
            f"of channel {cfg.channel!r} sampled at {fs0:g} Hz"
        )
    n = cfg.n_samples
    empty = _empty(cfg, n)
    duration = x0.size / fs0
    if duration < cfg.window_s or x0.size < max(30, int(fs0 / cfg.lowcut)):
        _log.info("record %s: %.2f s is shorter than a window; skipped", record.record_id, duration)
        return empty
    finite = np.isfinite(x0)
    if not finite.any():
        _log.warning("record %s: channel %r is all NaN; skipped", record.record_id, cfg.channel)
        return empty
    filled, missing = signal_fillnan(x0)
    cleaned = ppg_clean(
        filled,
        fs0,
        lowcut=cfg.lowcut,
        highcut=cfg.highcut,
        order=cfg.filter_order,
        polarity=cfg.polarity,
    )
    flat = np.ptp(cleaned) <= 1e-12 * max(1.0, float(np.max(np.abs(filled))))
    if flat:
        peaks = np.zeros(0, dtype=int)
        sqi = np.zeros(cleaned.size)
        onsets_s = np.zeros(0)
    else:
        peaks = ppg_findpeaks(cleaned, fs0)
        # intersecting tangents: a well-defined foot even when the diastolic tail is flat
        beats = ppg_beats(cleaned, fs0, peaks=peaks, onset_method="tangent")
        sqi = ppg_quality(cleaned, fs0, beats=beats)
        onsets_s = beats.onsets / fs0
    y = signal_resample(cleaned, fs0, cfg.fs)
    if cfg.scale == "record" and not flat:
        lo, hi = np.percentile(y, [1, 99])
        y = (y - lo) / (hi - lo) if hi > lo else y - lo
    starts = _starts(min(duration, y.size / cfg.fs), cfg, onsets_s)
    idx = np.round(starts * cfg.fs).astype(int)
    idx = idx[idx + n <= y.size]
    starts = idx / cfg.fs
    if idx.size == 0:
        return empty
    raw = y[idx[:, None] + np.arange(n)[None, :]]
    # quality: mean per-sample SQI over the window span at the source rate
    a0 = np.round(starts * fs0).astype(int)
    b0 = np.minimum(a0 + int(round(cfg.window_s * fs0)), sqi.size)
    csum = np.concatenate([[0.0], np.cumsum(sqi)])
    quality = (csum[b0] - csum[a0]) / np.maximum(b0 - a0, 1)
    msum = np.concatenate([[0], np.cumsum(missing)])
    nan_frac = (msum[b0] - msum[a0]) / np.maximum(b0 - a0, 1)
    quality[nan_frac > cfg.max_nan_fraction] = 0.0
    labels: dict[str, np.ndarray] = {}
    sources: dict[str, str] = {}
    for name in cfg.labels:
        labels[name], sources[name] = _label(record, name, cfg, starts, peaks, fs0)
    if record.artifacts.get(cfg.channel) is not None:
        art = record.artifacts[cfg.channel].astype(float)
        asum = np.concatenate([[0.0], np.cumsum(art)])
        labels["artifact"] = (asum[b0] - asum[a0]) / np.maximum(b0 - a0, 1)
        sources["artifact"] = "share of samples annotated as artifact"
    ws = WindowSet(
        raw=raw,
        fs=cfg.fs,
        groups=np.full(idx.size, record.subject_id),
        labels=labels,
        record_ids=np.full(idx.size, record.record_id),
        start_s=starts,
        quality=quality,
        meta={"label_sources": sources},
    )
    if cfg.min_quality is not None:
        ws = ws.subset(ws.quality >= cfg.min_quality)
    return ws


def _empty(cfg: WindowConfig, n: int) -> WindowSet:
    return WindowSet(
        raw=np.zeros((0, n)),
        fs=cfg.fs,
        groups=np.zeros(0, str),
        labels={k: np.zeros(0) for k in cfg.labels},
    )


def _label(
    record: Record, name: str, cfg: WindowConfig, starts, ppg_peaks, fs0
) -> tuple[np.ndarray, str]:
    if name == "hr":
        use_ecg = cfg.hr_source == "ecg" or (cfg.hr_source == "auto" and "ecg" in record.signals)
        if use_ecg:
            if "ecg" not in record.signals:
                raise ValueError(
                    f"record {record.record_id}: hr_source='ecg' but the record has no 'ecg' signal"
                )
            ecg, _ = signal_fillnan(record.signals["ecg"])
            r = ecg_rpeaks(ecg, record.fs["ecg"])
            return lab.hr_per_window(r, record.fs["ecg"], starts, cfg.window_s), "ECG R-peaks"
        return lab.hr_per_window(ppg_peaks, fs0, starts, cfg.window_s), f"PPG peaks ({cfg.channel})"
    if name in {"sbp", "dbp"}:
        series, source = _bp_series(record, name)
        if series is not None:
            return lab.series_per_window(
                series, starts, cfg.window_s
            ), f"median of beats ({source})"
    elif name in record.series:
        return lab.series_per_window(
            record.series[name], starts, cfg.window_s
        ), "median of record series"
    if name in record.labels:
        return np.full(starts.size, record.labels[name]), "record label broadcast"
    raise ValueError(
        f"record {record.record_id}: label {name!r} not available (no ABP waveform, no per-beat "
        f"series, no record label; record labels: {sorted(record.labels)})"
    )


def _config(cfg: WindowConfig | None, options: Mapping[str, Any]) -> WindowConfig:
    if cfg is None:
        return WindowConfig(**options)
    if options:
        return WindowConfig(**{**asdict(cfg), **options})
    return cfg


def iter_windows(
    records: Iterable[Record], cfg: WindowConfig | None = None, **options
) -> Iterator[WindowSet]:
    """Lazily window a stream of records (one :class:`WindowSet` per record)."""
    cfg = _config(cfg, options)
    for record in records:
        yield window_record(record, cfg)


def make_windows(
    records: Iterable[Record],
    cfg: WindowConfig | None = None,
    *,
    total: int | None = None,
    dataset: str = "",
    **options,
) -> WindowSet:
    """Window every record and stack the result; the config goes into ``meta``.

    Raises
    ------
    ValueError
        When no record gives a window (all too short, or all rejected by ``min_quality``).
    """
    cfg = _config(cfg, options)
    parts: list[WindowSet] = []
    sources: dict[str, str] = {}
    n_records = 0
    for ws in progress(iter_windows(records, cfg), total=total, desc="windowing", unit="record"):
        n_records += 1
        if len(ws):
            parts.append(ws)
            sources.update(ws.meta.get("label_sources", {}))
    if not parts:
        raise ValueError(
            f"no windows from {n_records} record(s): records shorter than {cfg.window_s} s, "
            "or every window rejected by min_quality"
        )
    names = set(parts[0].labels)
    if any(set(p.labels) != names for p in parts):
        # artifact masks exist for some records only: keep the common labels
        common = set.intersection(*(set(p.labels) for p in parts))
        for p in parts:
            p.labels = {k: v for k, v in p.labels.items() if k in common}
    meta = {
        "config": asdict(cfg),
        "dataset": dataset,
        "label_sources": sources,
        "n_records": n_records,
        "z": "window z-scored with the population SD",
        "units": {"sbp": "mmHg", "dbp": "mmHg", "hr": "bpm"},
    }
    return WindowSet.concat(parts, meta=meta)


# ------------------------------------------------------------------------------ file format


def save_windows(ws: WindowSet, path: str | os.PathLike, *, compress: bool = True) -> Path:
    """Write the window file atomically (``np.savez_compressed`` unless ``compress=False``)."""
    from healthsense.report import atomic_writer

    path = Path(path)
    with atomic_writer(path, "wb") as handle:
        (np.savez_compressed if compress else np.savez)(handle, **ws.to_arrays())
    return path


def load_windows(path: str | os.PathLike) -> WindowSet:
    """Read a window file (this toolkit's or any tool's that follows the format).

    Raises
    ------
    FileNotFoundError, ValueError
        Missing file, not an NPZ, missing ``raw``/``groups``/``fs``, wrong shapes, or
        non-finite values in ``raw``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: window file not found")
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a window file (.npz): {exc}") from None
    with data:
        keys = set(data.files)
        missing = [k for k in ("raw", "groups", "fs") if k not in keys]
        if missing:
            raise ValueError(f"{path}: window file lacks {missing}; found {sorted(keys)}")
        raw = np.asarray(data["raw"])
        if raw.ndim != 2 or raw.shape[0] == 0:
            raise ValueError(
                f"{path}: 'raw' must be a non-empty N × n array, got shape {raw.shape}"
            )
        if not np.issubdtype(raw.dtype, np.number) or not np.all(np.isfinite(raw)):
            raise ValueError(f"{path}: 'raw' must hold finite numbers")
        if np.size(data["fs"]) != 1:
            raise ValueError(f"{path}: 'fs' must be a scalar")
        meta = {}
        if "meta" in keys:
            try:
                meta = json.loads(str(data["meta"]))
            except json.JSONDecodeError:
                meta = {}
        try:
            return WindowSet(
                raw=raw,
                z=data["z"] if "z" in keys else None,
                fs=float(np.asarray(data["fs"]).reshape(-1)[0]),
                groups=data["groups"],
                labels={k[6:]: data[k] for k in keys if k.startswith("label_")},
                record_ids=data["record_ids"] if "record_ids" in keys else None,
                start_s=data["start_s"] if "start_s" in keys else None,
                quality=data["quality"] if "quality" in keys else None,
                meta=meta,
            )
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None
