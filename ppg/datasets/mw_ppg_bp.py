"""Loader for the four-wavelength finger PPG + cuff BP set ("mw-ppg-bp").

*Blood Pressure Measurement based on Four-wavelength PPG Signals* (Liang et al., CardioWorks
team). Where to get it: the public repository ``vladBaciu/TSL-MW-PPG`` on GitHub, folder
``mw_ppg_dataset/bp_dataset_200Hz`` (signal files, the artifact-labelled copies in
``artifact_labeled/``, and the subject table, saved here as ``subjects.csv``). See
``datasets/mw-ppg-bp.md`` for the card.

Layout read (every file plain or ``.gz``)::

    bp_dataset_<ID>.csv                 green_channel, red_channel, ir_channel (raw ADC counts)
    artifact_labeled/bp_dataset_<ID>.csv  the same + Anomaly_ch0..2 (1 = artifact)
    subjects.csv                        subject_id, sbp_mmhg, dbp_mmhg, age_years, height_cm,
                                        weight_kg, sex

One record per subject (60 s at 200 Hz), one cuff SBP/DBP per subject (labels ``sbp``,
``dbp``), per-sample artifact masks when the artifact-labelled copy exists. Signals are named
``green``, ``red``, ``ir`` after the upstream column names (upstream documents the channels
as 660, 730 and 850 nm; the names are kept as in the files).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from healthsense.runtime import get_logger
from ppg.datasets._io import check_dir, find_file, read_table, strip_gz
from ppg.record import Record

__all__ = [
    "CHANNELS",
    "DEFAULT_PPG",
    "FS",
    "NAME",
    "count_records",
    "iter_records",
    "list_subjects",
]

NAME = "mw-ppg-bp"
FS = 200.0
#: Signal name → column in the files; Anomaly_ch<i> annotates the i-th channel.
CHANNELS = {"green": "green_channel", "red": "red_channel", "ir": "ir_channel"}
DEFAULT_PPG = "green"
LABELS = ("sbp", "dbp")
_FILE_RE = re.compile(r"^bp_dataset_(\d+)\.csv(\.gz)?$")
_log = get_logger("ppg.datasets.mw_ppg_bp")


def list_subjects(path: str | os.PathLike) -> list[int]:
    """Subject ids that have a signal file, in numeric order."""
    folder = check_dir(path, NAME)
    ids = {int(m.group(1)) for f in folder.iterdir() if (m := _FILE_RE.match(f.name))}
    if not ids:
        raise FileNotFoundError(f"{folder}: no bp_dataset_<ID>.csv(.gz) files (is this {NAME}?)")
    return sorted(ids)


def _subject_table(folder: Path) -> dict[int, dict]:
    path = find_file(folder, "subjects.csv")
    cols = ["subject_id", "sbp_mmhg", "dbp_mmhg"]
    frame = read_table(path, required=cols, numeric=cols, what="subject table")
    table = {}
    for row in frame.to_dict("records"):
        table[int(row["subject_id"])] = row
    return table


def _selected(path: str | os.PathLike, subjects: Iterable[int] | None) -> list[int]:
    available = list_subjects(path)
    if subjects is None:
        return available
    wanted = [int(s) for s in subjects]
    missing = sorted(set(wanted) - set(available))
    if missing:
        raise FileNotFoundError(f"{path}: no signal file for subject(s) {missing}")
    return wanted


def count_records(path: str | os.PathLike, *, subjects: Iterable[int] | None = None, **_) -> int:
    """Number of records :func:`iter_records` will yield (for progress bars)."""
    return len(_selected(path, subjects))


def iter_records(
    path: str | os.PathLike,
    *,
    subjects: Iterable[int] | None = None,
    channels: Iterable[str] | None = None,
    artifacts: bool = True,
) -> Iterator[Record]:
    """Yield one :class:`~ppg.record.Record` per subject, reading one file at a time.

    Parameters
    ----------
    path : path-like
        The dataset folder.
    subjects : iterable of int, optional
        Subject ids to read (default: all with a signal file).
    channels : iterable of str, optional
        Subset of ``("green", "red", "ir")``.
    artifacts : bool
        Read the per-sample artifact masks from ``artifact_labeled/`` where present.
    """
    folder = check_dir(path, NAME)
    names = list(channels) if channels is not None else list(CHANNELS)
    unknown = [c for c in names if c not in CHANNELS]
    if unknown:
        raise ValueError(f"{NAME}: unknown channel(s) {unknown}; choose from {list(CHANNELS)}")
    table = _subject_table(folder)
    for sid in _selected(folder, subjects):
        labelled = find_file(folder / "artifact_labeled", f"bp_dataset_{sid}.csv", required=False)
        use_labelled = artifacts and labelled is not None
        file = labelled if use_labelled else find_file(folder, f"bp_dataset_{sid}.csv")
        cols = [CHANNELS[c] for c in names]
        mask_cols = [f"Anomaly_ch{list(CHANNELS).index(c)}" for c in names] if use_labelled else []
        frame = read_table(file, required=cols + mask_cols, numeric=cols, what="signal file")
        signals = {c: frame[CHANNELS[c]].to_numpy(dtype=float) for c in names}
        masks = {}
        for c, mc in zip(names, mask_cols, strict=False):
            masks[c] = frame[mc].fillna(0).to_numpy() > 0
        row = table.get(sid)
        if row is None:
            _log.warning(
                "%s: subject %d has no row in subjects.csv; BP labels are NaN", folder, sid
            )
            labels = {"sbp": np.nan, "dbp": np.nan}
            meta = {}
        else:
            labels = {"sbp": row["sbp_mmhg"], "dbp": row["dbp_mmhg"]}
            meta = {
                k: row[k]
                for k in ("age_years", "height_cm", "weight_kg", "sex")
                if k in row and row[k] == row[k]
            }
        meta.update(
            file=strip_gz(file.name), units="ADC counts", bp_reference="cuff (OMRON HEM-7201)"
        )
        yield Record(
            record_id=f"{NAME}/{sid}",
            subject_id=str(sid),
            signals=signals,
            fs=dict.fromkeys(names, FS),
            labels=labels,
            artifacts=masks,
            metadata=meta,
            dataset=NAME,
        )
