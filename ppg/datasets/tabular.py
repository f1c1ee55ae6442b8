"""Generic loader for CSV/TSV/NPZ files with a column mapping (one record per file).

For data in no known layout: tell the loader which column holds which signal, the sampling
rate (or a time column to infer it from), and where subject ids and labels are. Files may be
plain or gzip-compressed (``.csv.gz``, ``.tsv.gz``; NPZ files are zip archives already).

Example: ``iter_records("mydata/", fs=100, columns={"ppg": "PPG", "abp": "ART"},
labels={"sbp": "cuff_sbp"}, subject_column="patient")``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import numpy as np

from ppg.datasets._io import read_table
from ppg.record import Record

__all__ = ["DEFAULT_PPG", "NAME", "count_records", "iter_records", "list_files"]

NAME = "csv"
DEFAULT_PPG = "ppg"
LABELS: tuple[str, ...] = ()
_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".tsv.gz", ".txt", ".txt.gz", ".npz")


def list_files(path: str | os.PathLike | Iterable[str | os.PathLike]) -> list[Path]:
    """Data files in a folder (sorted), a single file, or a list of files."""
    if isinstance(path, str | os.PathLike):
        p = Path(path)
        if p.is_file():
            return [p]
        if not p.is_dir():
            raise FileNotFoundError(f"{p}: file or folder not found")
        files = sorted(f for f in p.iterdir() if f.name.lower().endswith(_SUFFIXES))
        if not files:
            raise FileNotFoundError(f"{p}: no {', '.join(_SUFFIXES)} files")
        return files
    files = [Path(f) for f in path]
    for f in files:
        if not f.is_file():
            raise FileNotFoundError(f"{f}: file not found")
    return files


def count_records(path, **_) -> int:
    """One record per file."""
    return len(list_files(path))


def _fs_from_time(file: Path, t: np.ndarray, scale: float) -> float:
    dt = np.diff(np.asarray(t, dtype=float)) * scale
    if dt.size == 0 or not np.all(np.isfinite(dt)) or np.any(dt <= 0):
        raise ValueError(f"{file}: time column is not strictly increasing")
    fs = 1.0 / float(np.median(dt))
    if np.max(np.abs(dt * fs - 1.0)) > 0.5:
        raise ValueError(f"{file}: time column is irregular (gaps or jitter over half a sample)")
    return fs


def _constant(file: Path, name: str, values: np.ndarray):
    vals = values[~_isnan(values)] if values.dtype.kind == "f" else values
    if vals.size == 0:
        return float("nan")
    if np.any(vals != vals[0]):
        raise ValueError(f"{file}: column {name!r} is not constant within the file")
    return vals[0]


def _isnan(v: np.ndarray) -> np.ndarray:
    return np.isnan(v) if v.dtype.kind == "f" else np.zeros(v.shape, bool)


def iter_records(
    path: str | os.PathLike | Iterable[str | os.PathLike],
    *,
    columns: Mapping[str, str],
    fs: float | None = None,
    time_column: str | None = None,
    time_unit_s: float = 1.0,
    labels: Mapping[str, str] | None = None,
    subject_column: str | None = None,
    subject_id: str | None = None,
    sep: str | None = None,
) -> Iterator[Record]:
    """Yield one :class:`~ppg.record.Record` per file.

    Parameters
    ----------
    columns : mapping
        Record signal name → column (CSV) or array key (NPZ), e.g. ``{"ppg": "PLETH"}``.
    fs : float, optional
        Sampling rate in Hz. Needed unless ``time_column`` is given or an NPZ file holds a
        scalar ``fs``; when both are known they must agree within 1 %.
    time_column : str, optional
        Column of sample times (in ``time_unit_s`` seconds) to infer/check the rate.
    labels : mapping, optional
        Record label name → column holding a per-record value (constant within the file).
    subject_column / subject_id : str, optional
        Column holding the subject id (constant within the file) or a fixed id; default the
        file name without extensions.
    sep : str, optional
        CSV separator (default: tab for ``.tsv``, comma otherwise).
    """
    if not columns:
        raise ValueError("columns must map at least one signal name to a column")
    labels = dict(labels or {})
    for file in list_files(path):
        stem = file.name.split(".")[0]
        file_fs = None
        if file.name.lower().endswith(".npz"):
            try:
                data = np.load(file, allow_pickle=False)
            except (OSError, ValueError) as exc:
                raise ValueError(f"{file}: cannot read NPZ ({exc})") from None
            with data:
                keys = set(data.files)
                needed = list(columns.values()) + list(labels.values())
                needed += [k for k in (time_column, subject_column) if k]
                missing = [k for k in needed if k not in keys]
                if missing:
                    raise ValueError(f"{file}: missing array(s) {missing}; found {sorted(keys)}")
                table = {k: np.asarray(data[k]) for k in needed}
                if "fs" in keys:
                    file_fs = float(np.asarray(data["fs"]).reshape(-1)[0])
        else:
            s = sep or ("\t" if ".tsv" in file.name.lower() else ",")
            cols = list(columns.values()) + [c for c in (time_column,) if c]
            frame = read_table(
                file,
                sep=s,
                required=cols
                + list(labels.values())
                + ([subject_column] if subject_column else []),
                numeric=cols + list(labels.values()),
                what="data file",
            )
            table = {c: frame[c].to_numpy() for c in frame.columns}
        if time_column:
            t_fs = _fs_from_time(file, table[time_column], time_unit_s)
            file_fs = t_fs if file_fs is None else file_fs
        rate = fs if fs is not None else file_fs
        if rate is None:
            raise ValueError(
                f"{file}: unknown sampling rate (give fs=, a time column, or an 'fs' key in NPZ)"
            )
        if file_fs is not None and fs is not None and abs(file_fs - fs) > 0.01 * fs:
            raise ValueError(
                f"{file}: sampling rate in the file is {file_fs:.4g} Hz, but fs={fs:g} Hz was given"
            )
        signals = {}
        for name, col in columns.items():
            arr = np.asarray(table[col], dtype=float).reshape(-1)
            if arr.size < 2:
                raise ValueError(
                    f"{file}: signal {col!r} has {arr.size} sample(s); need at least 2"
                )
            signals[name] = arr
        lab = {
            k: float(_constant(file, c, np.asarray(table[c], dtype=float)))
            for k, c in labels.items()
        }
        if subject_column:
            sid = str(
                _constant(file, subject_column, np.asarray(table[subject_column]).astype(str))
            )
        else:
            sid = subject_id if subject_id is not None else stem
        yield Record(
            record_id=stem,
            subject_id=sid,
            signals=signals,
            fs=dict.fromkeys(signals, float(rate)),
            labels=lab,
            metadata={"file": file.name},
            dataset=NAME,
        )
