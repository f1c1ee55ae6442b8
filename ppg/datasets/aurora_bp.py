"""Loader for the Aurora-BP layout (Microsoft; wrist PPG, ECG, tonometry, cuff BP).

Mieloszyk et al., *A Comparison of Wearable Tonometry, Photoplethysmography, and
Electrocardiography for Cuffless Measurement of Blood Pressure in an Ambulatory Setting*,
IEEE JBHI 26(7), 2022. Where to get it: the public sample is the GitHub repository
``microsoft/aurorabp-sample-data`` (folder ``sample/``, MIT licence); the full de-identified
set is granted on request (see that repository's *Data Access* section). Card:
``datasets/aurora-bp.md``.

Layout read (every text file plain or ``.gz``)::

    participants.tsv                 pid, age, gender, ... (one row per participant)
    measurements_<protocol>.tsv      pid, phase, measurement, sbp, dbp, waveform_file_path, ...
    measurements_<protocol>/<pid>/<pid>.<phase>.<measurement>.tsv
                                     t, ekg, optical, pressure, accel_x, accel_y, accel_z (500 Hz)
    features.tsv                     one featurised measurement per row (see load_features)

One record per measurement with a waveform file: signals ``ppg`` (``optical``), ``ecg``
(``ekg``, mV), ``pressure`` (wrist tonometry, mbar) and ``accel_x/y/z`` (g); labels ``sbp``
and ``dbp`` (the cuff reference of that measurement; NaN where the table has none).
The sampling rate is checked against the ``t`` column, not assumed.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from healthsense.runtime import get_logger
from ppg.datasets._io import check_dir, find_file, read_table, strip_gz
from ppg.record import Record

__all__ = [
    "DEFAULT_PPG",
    "FS",
    "NAME",
    "PROTOCOLS",
    "count_records",
    "iter_records",
    "load_features",
]

NAME = "aurora-bp"
FS = 500.0
PROTOCOLS = ("auscultatory", "oscillometric")
DEFAULT_PPG = "ppg"
LABELS = ("sbp", "dbp")
#: Signal name in the record → column of the waveform file.
COLUMNS = {
    "ppg": "optical",
    "ecg": "ekg",
    "pressure": "pressure",
    "accel_x": "accel_x",
    "accel_y": "accel_y",
    "accel_z": "accel_z",
}
_log = get_logger("ppg.datasets.aurora_bp")


def _measurements(folder: Path, protocols, participants, phases):
    import pandas as pd

    frames = []
    for protocol in protocols:
        if protocol not in PROTOCOLS:
            raise ValueError(f"{NAME}: unknown protocol {protocol!r}; choose from {PROTOCOLS}")
        path = find_file(folder, f"measurements_{protocol}.tsv", required=False)
        if path is None:
            continue
        frame = read_table(
            path,
            sep="\t",
            required=["pid", "phase", "measurement", "sbp", "dbp", "waveform_file_path"],
            numeric=["sbp", "dbp"],
            what="measurement table",
        )
        frame["protocol"] = protocol
        frames.append(frame)
    if not frames:
        raise FileNotFoundError(
            f"{folder}: no measurements_auscultatory.tsv or measurements_oscillometric.tsv "
            f"(is this {NAME}?)"
        )
    table = pd.concat(frames, ignore_index=True)
    table = table[table["waveform_file_path"].notna()]
    if participants is not None:
        table = table[table["pid"].isin(set(participants))]
    if phases is not None:
        table = table[table["phase"].isin(set(phases))]
    return table


def _participants(folder: Path) -> dict[str, dict]:
    path = find_file(folder, "participants.tsv", required=False)
    if path is None:
        return {}
    frame = read_table(path, sep="\t", required=["pid"], what="participant table")
    return {str(r["pid"]): r for r in frame.to_dict("records")}


def _resolve(folder: Path, rel: str) -> Path | None:
    # The tables name the uncompressed file; a download may hold either form.
    rel_path = Path(str(rel))
    return find_file(folder / rel_path.parent, rel_path.name, required=False)


def count_records(
    path: str | os.PathLike,
    *,
    protocols: Iterable[str] = PROTOCOLS,
    participants: Iterable[str] | None = None,
    phases: Iterable[str] | None = None,
    **_,
) -> int:
    """Number of measurements with a waveform file present."""
    folder = check_dir(path, NAME)
    table = _measurements(folder, tuple(protocols), participants, phases)
    return int(sum(_resolve(folder, p) is not None for p in table["waveform_file_path"]))


def _check_fs(file: Path, t: np.ndarray, expected: float) -> None:
    if t.size < 2:
        raise ValueError(f"{file}: waveform file has {t.size} sample(s); need at least 2")
    dt = np.diff(t)
    if not np.all(np.isfinite(dt)) or np.any(dt <= 0):
        raise ValueError(f"{file}: time column 't' is not strictly increasing")
    fs = 1.0 / float(np.median(dt))
    if abs(fs - expected) > 0.01 * expected:
        raise ValueError(
            f"{file}: sampling rate from column 't' is {fs:.3f} Hz, expected {expected:g} Hz"
        )
    if np.max(np.abs(dt - 1.0 / expected)) > 0.5 / expected:
        raise ValueError(f"{file}: time column 't' is irregular (gaps or jitter > half a sample)")


def iter_records(
    path: str | os.PathLike,
    *,
    protocols: Iterable[str] = PROTOCOLS,
    participants: Iterable[str] | None = None,
    phases: Iterable[str] | None = None,
    signals: Iterable[str] | None = None,
    missing: str = "skip",
) -> Iterator[Record]:
    """Yield one :class:`~ppg.record.Record` per measurement, reading one file at a time.

    Parameters
    ----------
    path : path-like
        The dataset folder (the one holding ``participants.tsv``).
    protocols : iterable of str
        ``"auscultatory"`` and/or ``"oscillometric"``.
    participants, phases : iterable of str, optional
        Keep only these participant ids (``"a000"``) or phases (``"initial"``, ``"ambulatory"``).
    signals : iterable of str, optional
        Subset of ``("ppg", "ecg", "pressure", "accel_x", "accel_y", "accel_z")``.
    missing : {"skip", "error"}
        What to do when a waveform file named in a table is absent (the public sample lacks a
        few): log a warning and skip, or raise.
    """
    if missing not in {"skip", "error"}:
        raise ValueError(f"missing must be 'skip' or 'error', got {missing!r}")
    folder = check_dir(path, NAME)
    names = list(signals) if signals is not None else list(COLUMNS)
    unknown = [s for s in names if s not in COLUMNS]
    if unknown:
        raise ValueError(f"{NAME}: unknown signal(s) {unknown}; choose from {list(COLUMNS)}")
    people = _participants(folder)
    table = _measurements(folder, tuple(protocols), participants, phases)
    for row in table.to_dict("records"):
        file = _resolve(folder, row["waveform_file_path"])
        if file is None:
            msg = f"{folder / row['waveform_file_path']}: waveform file not found (nor .gz)"
            if missing == "error":
                raise FileNotFoundError(msg)
            _log.warning("%s; skipped", msg)
            continue
        cols = ["t"] + [COLUMNS[s] for s in names]
        frame = read_table(file, sep="\t", required=cols, numeric=cols, what="waveform file")
        _check_fs(file, frame["t"].to_numpy(), FS)
        pid = str(row["pid"])
        meta = {
            "protocol": row["protocol"],
            "phase": row["phase"],
            "measurement": row["measurement"],
            "file": strip_gz(file.name),
            "units": {"ppg": "a.u.", "ecg": "mV", "pressure": "mbar", "accel": "g"},
        }
        for key in ("date_time", "optical_quality", "pressure_quality", "duration"):
            if key in row and row[key] == row[key]:
                meta[key] = row[key]
        person = people.get(pid, {})
        for key in ("age", "gender", "height", "weight", "self_report_htn"):
            if key in person and person[key] == person[key]:
                meta[key] = person[key]
        yield Record(
            record_id=f"{pid}.{row['phase']}.{str(row['measurement']).replace(' ', '_')}",
            subject_id=pid,
            signals={s: frame[COLUMNS[s]].to_numpy(dtype=float) for s in names},
            fs=dict.fromkeys(names, FS),
            labels={"sbp": row["sbp"], "dbp": row["dbp"]},
            metadata=meta,
            dataset=NAME,
        )


def load_features(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read ``features.tsv`` as a dict of column arrays (numeric columns as float).

    ``path`` is the dataset folder or the file itself. Identifier columns (``pid``,
    ``phase``, ``measurement``, ``date_time``) stay strings; every other column is numeric.
    """
    path = Path(path)
    file = find_file(path, "features.tsv") if path.is_dir() else path
    frame = read_table(file, sep="\t", required=["pid", "sbp"], what="feature table")
    ids = {"pid", "phase", "measurement", "date_time"}
    numeric = [c for c in frame.columns if c not in ids]
    frame = read_table(
        file, sep="\t", required=["pid", "sbp"], numeric=numeric, what="feature table"
    )
    return {c: frame[c].to_numpy(dtype=float if c in numeric else object) for c in frame.columns}
