"""Loader for the UCI "Cuff-Less Blood Pressure Estimation" set (MIMIC-II PPG/ABP/ECG).

Kachuee, Kiani, Mohammadzade, Shabany, *Cuff-Less High-Accuracy Calibration-Free Blood
Pressure Estimation Using Pulse Transit Time*, IEEE ISCAS 2015. Where to get it: the UCI
Machine Learning Repository, dataset 340 ("Cuff-Less Blood Pressure Estimation"),
``Part_1.mat`` … ``Part_4.mat``. Card: ``datasets/uci-cuffless.md``.

Each ``Part_N.mat`` holds one cell array (variable ``Part_N``) of ~3,000 matrices of shape
3 × N: row 0 the fingertip PPG, row 1 the invasive arterial blood pressure (mmHg), row 2 ECG
lead II, all at 125 Hz. The files are several gigabytes in all, so cells are streamed one at
a time (:mod:`ppg.datasets._matfile`); v7 and v7.3 files, plain or gzip, are accepted.

**There are no subject ids.** Records of one patient may appear several times (the set was
cut from MIMIC-II records); each record is therefore its own group (``subject_id`` =
``record_id``), and any split on this set can leak a patient across sides. Say so in results.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from ppg.datasets._matfile import iter_cells
from ppg.record import Record

__all__ = ["DEFAULT_PPG", "FS", "NAME", "count_records", "iter_records", "list_files"]

NAME = "uci-cuffless"
FS = 125.0
DEFAULT_PPG = "ppg"
LABELS = ("sbp", "dbp")
ROWS = ("ppg", "abp", "ecg")
_FILE_RE = re.compile(r"^part_(\d+)\.mat(\.gz)?$", re.IGNORECASE)


def list_files(path: str | os.PathLike) -> list[Path]:
    """``Part_N.mat(.gz)`` files in a folder (in part order), or the file itself."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: {NAME} folder or Part_N.mat file not found")
    files = sorted(
        (f for f in path.iterdir() if _FILE_RE.match(f.name)),
        key=lambda f: int(_FILE_RE.match(f.name).group(1)),
    )
    if not files:
        raise FileNotFoundError(f"{path}: no Part_N.mat(.gz) files (is this {NAME}?)")
    return files


def count_records(path: str | os.PathLike, **_) -> None:
    """Unknown without reading the files (streamed); progress bars run without a total."""
    return None


def iter_records(
    path: str | os.PathLike,
    *,
    parts: Iterable[int] | None = None,
    max_records: int | None = None,
) -> Iterator[Record]:
    """Yield one :class:`~ppg.record.Record` per cell, streaming (one cell in memory).

    Parameters
    ----------
    path : path-like
        Folder with ``Part_N.mat`` files, or one such file.
    parts : iterable of int, optional
        Part numbers to read (default: all found).
    max_records : int, optional
        Stop after this many records (quick looks at a multi-gigabyte set).
    """
    files = list_files(path)
    if parts is not None:
        wanted = {int(p) for p in parts}
        files = [
            f
            for f in files
            if _FILE_RE.match(f.name) and int(_FILE_RE.match(f.name).group(1)) in wanted
        ]
        if not files:
            raise FileNotFoundError(f"{path}: none of parts {sorted(wanted)} found")
    count = 0
    for file in files:
        stem = file.name.split(".")[0]
        n_cells = 0
        for var, index, arr in iter_cells(file):
            n_cells += 1
            if arr.ndim != 2 or 3 not in arr.shape:
                raise ValueError(
                    f"{file}: cell {index + 1} of {var!r} has shape {arr.shape}; expected "
                    "3 × N (PPG, ABP, ECG)"
                )
            if arr.shape[0] != 3:
                arr = arr.T
            if arr.shape[1] < 2:
                raise ValueError(
                    f"{file}: cell {index + 1} of {var!r} has {arr.shape[1]} sample(s)"
                )
            rid = f"{stem}/{index + 1}"
            yield Record(
                record_id=rid,
                subject_id=rid,
                signals={name: np.ascontiguousarray(arr[i]) for i, name in enumerate(ROWS)},
                fs=dict.fromkeys(ROWS, FS),
                metadata={
                    "file": file.name,
                    "cell": index + 1,
                    "variable": var,
                    "units": {"abp": "mmHg", "ecg": "mV", "ppg": "a.u."},
                    "subject_ids": "unknown (each record is its own group)",
                },
                dataset=NAME,
            )
            count += 1
            if max_records is not None and count >= max_records:
                return
        if n_cells == 0:
            raise ValueError(f"{file}: no cell array found (expected variable {stem!r})")
