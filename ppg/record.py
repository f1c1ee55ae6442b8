"""The one record type every dataset loader yields.

A :class:`Record` is one continuous recording of one subject: named signals (plain 1-D float
numpy arrays) each with its own sampling rate, the subject and record ids (the subject id is
what leakage-safe splits group on), labels per record (a cuff reading), time-stamped labels
per beat or per window (:class:`LabelSeries`), per-sample artifact masks, and free metadata.
Records are immutable: processing steps return new records (:meth:`Record.replace`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["LabelSeries", "Record"]


@dataclass(frozen=True, eq=False)
class LabelSeries:
    """Time-stamped label values (one per beat or one per window).

    Parameters
    ----------
    times_s : ndarray of shape (n,)
        Time of each value in seconds from the start of the record (for a beat: its systolic
        peak; for a window: its start).
    values : ndarray of shape (n,)
        The label values, in the label's natural unit (mmHg, bpm).
    kind : {"beat", "window"}
        What each value describes.
    unit : str
        Unit of ``values`` (reported with every result).
    """

    times_s: np.ndarray
    values: np.ndarray
    kind: str = "beat"
    unit: str = ""

    def __post_init__(self) -> None:
        t = np.asarray(self.times_s, dtype=float).reshape(-1)
        v = np.asarray(self.values, dtype=float).reshape(-1)
        if t.shape != v.shape:
            raise ValueError(f"LabelSeries: times_s has {t.size} values but values has {v.size}")
        if self.kind not in {"beat", "window"}:
            raise ValueError(f"LabelSeries: kind must be 'beat' or 'window', got {self.kind!r}")
        if t.size > 1 and np.any(np.diff(t) < 0):
            raise ValueError("LabelSeries: times_s must be non-decreasing")
        object.__setattr__(self, "times_s", t)
        object.__setattr__(self, "values", v)

    def __len__(self) -> int:
        return int(self.values.size)

    def between(self, start_s: float, stop_s: float) -> np.ndarray:
        """Values whose time falls in ``[start_s, stop_s)``."""
        lo, hi = np.searchsorted(self.times_s, [start_s, stop_s], side="left")
        return self.values[lo:hi]


def _as_signal(name: str, x: Any, record_id: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_)
    ):
        raise ValueError(f"record {record_id}: signal {name!r} is not numeric (dtype {arr.dtype})")
    arr = np.asarray(arr, dtype=float)
    if arr.ndim == 2 and 1 in arr.shape:
        arr = arr.reshape(-1)
    if arr.ndim != 1:
        raise ValueError(
            f"record {record_id}: signal {name!r} must be 1-D, got shape {np.shape(x)}"
        )
    if arr.size == 0:
        raise ValueError(f"record {record_id}: signal {name!r} is empty")
    return arr


@dataclass(frozen=True, eq=False)
class Record:
    """One continuous recording of one subject.

    Parameters
    ----------
    record_id : str
        Unique within its dataset (e.g. ``"mw-ppg-bp/12"``).
    subject_id : str
        The person; several records may share it. Splits group on it.
    signals : mapping of str to ndarray
        1-D float arrays by name (``"ppg"``, ``"abp"``, ``"ecg"``, ``"ppg_red"``, ...).
    fs : mapping of str to float
        Sampling rate in Hz of every signal (same keys as ``signals``).
    labels : mapping of str to float
        Per-record labels (a cuff SBP/DBP reading), NaN when unknown.
    series : mapping of str to LabelSeries
        Per-beat or per-window labels with their times.
    artifacts : mapping of str to ndarray of bool
        Per-sample artifact masks, keyed by the signal they annotate (same length).
    metadata : mapping
        Anything else (age, sex, file name, measurement phase, units).
    dataset : str
        Name of the loader that produced the record.
    """

    record_id: str
    subject_id: str
    signals: Mapping[str, np.ndarray]
    fs: Mapping[str, float]
    labels: Mapping[str, float] = field(default_factory=dict)
    series: Mapping[str, LabelSeries] = field(default_factory=dict)
    artifacts: Mapping[str, np.ndarray] = field(default_factory=dict)
    metadata: Mapping[str, Any] = field(default_factory=dict)
    dataset: str = ""

    def __post_init__(self) -> None:
        rid = str(self.record_id)
        object.__setattr__(self, "record_id", rid)
        object.__setattr__(self, "subject_id", str(self.subject_id))
        if not self.signals:
            raise ValueError(f"record {rid}: no signals")
        signals = {str(k): _as_signal(str(k), v, rid) for k, v in self.signals.items()}
        fs: dict[str, float] = {}
        for name in signals:
            if name not in self.fs:
                raise ValueError(f"record {rid}: no sampling rate given for signal {name!r}")
            rate = float(self.fs[name])
            if not math.isfinite(rate) or rate <= 0:
                raise ValueError(f"record {rid}: sampling rate of {name!r} must be > 0, got {rate}")
            fs[name] = rate
        labels = {str(k): float(v) for k, v in self.labels.items()}
        artifacts: dict[str, np.ndarray] = {}
        for name, mask in self.artifacts.items():
            if name not in signals:
                raise ValueError(f"record {rid}: artifact mask for unknown signal {name!r}")
            m = np.asarray(mask, dtype=bool).reshape(-1)
            if m.size != signals[name].size:
                raise ValueError(
                    f"record {rid}: artifact mask of {name!r} has {m.size} samples, "
                    f"the signal has {signals[name].size}"
                )
            artifacts[name] = m
        for name, s in self.series.items():
            if not isinstance(s, LabelSeries):
                raise ValueError(f"record {rid}: series {name!r} must be a LabelSeries")
        object.__setattr__(self, "signals", signals)
        object.__setattr__(self, "fs", fs)
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "series", dict(self.series))
        object.__setattr__(self, "artifacts", artifacts)
        object.__setattr__(self, "metadata", dict(self.metadata))

    # ------------------------------------------------------------------ access
    def signal(self, name: str) -> np.ndarray:
        """The signal called ``name``; a clear error lists the available ones."""
        try:
            return self.signals[name]
        except KeyError:
            raise KeyError(
                f"record {self.record_id}: no signal {name!r}; available: {sorted(self.signals)}"
            ) from None

    def duration_s(self, name: str | None = None) -> float:
        """Duration in seconds of one signal (default: the first)."""
        name = name or next(iter(self.signals))
        return self.signal(name).size / self.fs[name]

    def time_s(self, name: str) -> np.ndarray:
        """Sample times in seconds of one signal."""
        return np.arange(self.signal(name).size) / self.fs[name]

    def replace(self, **changes: Any) -> Record:
        """A copy with some fields replaced (validated again)."""
        return dataclasses.replace(self, **changes)

    def select(self, names: Iterable[str]) -> Record:
        """A copy keeping only the signals in ``names`` (and their masks)."""
        names = list(names)
        for n in names:
            self.signal(n)
        return self.replace(
            signals={n: self.signals[n] for n in names},
            fs={n: self.fs[n] for n in names},
            artifacts={n: m for n, m in self.artifacts.items() if n in names},
        )

    def __repr__(self) -> str:
        sig = ", ".join(f"{k}[{v.size}@{self.fs[k]:g}Hz]" for k, v in self.signals.items())
        lab = ", ".join(f"{k}={v:g}" for k, v in self.labels.items())
        return (
            f"Record({self.record_id!r}, subject={self.subject_id!r}, {sig}"
            + (f", labels: {lab}" if lab else "")
            + (f", series: {sorted(self.series)}" if self.series else "")
            + ")"
        )
