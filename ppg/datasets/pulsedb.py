"""Loader for PulseDB subject files (MATLAB v7.3 / HDF5, 10-s segments at 125 Hz).

Wang, Mahmoudi, Hong, Wang, *PulseDB: A large, cleaned dataset based on MIMIC-III and
VitalDB for benchmarking cuff-less blood pressure estimation methods*, Frontiers in Digital
Health 4 (2023). Where to get it: the GitHub repository ``pulselabteam/PulseDB`` links the
segment files (``PulseDB_MIMIC`` and ``PulseDB_Vital`` folders, one ``.mat`` per subject).
Card: ``datasets/pulsedb.md``.

Each subject file holds a struct ``Subj_Wins`` whose fields are 1 × K cell arrays, one cell
per segment: waveforms ``PPG_Raw``/``PPG_F``, ``ABP_Raw``/``ABP_F``, ``ECG_Raw``/``ECG_F`` and
scalars such as ``SegSBP``/``SegDBP`` (the segment's reference BP), ``Age``, ``Gender``.
One record per segment; the subject id is the file name (``p000123``), so all segments of a
subject share a group.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from ppg.datasets._io import is_gzip, open_binary
from ppg.record import Record

__all__ = ["DEFAULT_PPG", "FS", "NAME", "count_records", "iter_records", "list_files"]

NAME = "pulsedb"
FS = 125.0
DEFAULT_PPG = "ppg"
LABELS = ("sbp", "dbp")
#: Record signal → (raw field, filtered field).
WAVEFORMS = {"ppg": ("PPG_Raw", "PPG_F"), "abp": ("ABP_Raw", "ABP_F"), "ecg": ("ECG_Raw", "ECG_F")}
LABEL_FIELDS = {"sbp": ("SegSBP", "SBP"), "dbp": ("SegDBP", "DBP")}
META_FIELDS = ("Age", "Gender", "Height", "Weight", "BMI")


def list_files(path: str | os.PathLike) -> list[Path]:
    """Subject ``.mat``/``.mat.gz`` files in a folder (sorted), or the file itself."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: {NAME} folder or subject file not found")
    files = sorted(f for f in path.iterdir() if f.name.endswith((".mat", ".mat.gz")))
    if not files:
        raise FileNotFoundError(f"{path}: no subject .mat files (is this {NAME}?)")
    return files


def count_records(path: str | os.PathLike, **_) -> None:
    """Unknown without opening every file; progress bars run without a total."""
    return None


def _cell(f, field, index: int) -> np.ndarray:
    ref = field[index]
    return np.asarray(f[ref][()])


def _scalar(f, field, index: int):
    value = _cell(f, field, index)
    if value.dtype.kind in "ui" and value.dtype.itemsize == 2 and value.size > 1:
        return "".join(map(chr, value.reshape(-1)))  # MATLAB char array
    flat = value.reshape(-1)
    if flat.size == 0:
        return float("nan")
    if flat.dtype.kind in "ui" and flat.dtype.itemsize == 2:
        return chr(int(flat[0]))
    return float(flat[0])


def iter_records(
    path: str | os.PathLike,
    *,
    filtered: bool = False,
    signals: Iterable[str] = ("ppg", "abp", "ecg"),
) -> Iterator[Record]:
    """Yield one :class:`~ppg.record.Record` per segment, one segment in memory at a time.

    Parameters
    ----------
    path : path-like
        A folder of subject files or one file.
    filtered : bool
        Read PulseDB's filtered waveforms (``*_F``) instead of the raw ones.
    signals : iterable of str
        Subset of ``("ppg", "abp", "ecg")``; fields absent from a file are skipped.
    """
    import h5py

    names = list(signals)
    unknown = [s for s in names if s not in WAVEFORMS]
    if unknown:
        raise ValueError(f"{NAME}: unknown signal(s) {unknown}; choose from {list(WAVEFORMS)}")
    for file in list_files(path):
        subject = file.name.split(".")[0]
        handle = open_binary(file) if is_gzip(file) else None
        try:
            f = h5py.File(handle if handle is not None else file, "r")
        except OSError as exc:
            if handle is not None:
                handle.close()
            raise ValueError(f"{file}: not a MATLAB v7.3 (HDF5) file ({exc})") from None
        try:
            if "Subj_Wins" not in f:
                raise ValueError(f"{file}: no 'Subj_Wins' struct (is this a PulseDB segment file?)")
            wins = f["Subj_Wins"]
            fields = {}
            for name in names:
                key = WAVEFORMS[name][1 if filtered else 0]
                if key in wins:
                    fields[name] = wins[key][()].reshape(-1, order="F")
            if not fields:
                raise ValueError(
                    f"{file}: none of the fields {[WAVEFORMS[n][int(filtered)] for n in names]} "
                    "in Subj_Wins"
                )
            n_seg = {len(v) for v in fields.values()}
            if len(n_seg) != 1:
                raise ValueError(f"{file}: waveform fields have different segment counts {n_seg}")
            labels_ref = {}
            for label, keys in LABEL_FIELDS.items():
                key = next((k for k in keys if k in wins), None)
                if key is not None:
                    labels_ref[label] = wins[key][()].reshape(-1, order="F")
            meta_ref = {k: wins[k][()].reshape(-1, order="F") for k in META_FIELDS if k in wins}
            for index in range(n_seg.pop()):
                sig = {}
                for name, refs in fields.items():
                    arr = np.asarray(f[refs[index]][()], dtype=float).reshape(-1)
                    sig[name] = arr
                labels = {k: _scalar(f, v, index) for k, v in labels_ref.items()}
                meta = {k.lower(): _scalar(f, v, index) for k, v in meta_ref.items()}
                meta.update(file=file.name, segment=index + 1, filtered=filtered)
                yield Record(
                    record_id=f"{subject}/{index + 1}",
                    subject_id=subject,
                    signals=sig,
                    fs=dict.fromkeys(sig, FS),
                    labels={k: float(v) for k, v in labels.items() if isinstance(v, float)},
                    metadata=meta,
                    dataset=NAME,
                )
        finally:
            f.close()
            if handle is not None:
                handle.close()
