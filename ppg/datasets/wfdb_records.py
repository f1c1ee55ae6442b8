"""Loader for MIMIC-style WFDB records (PhysioNet format), picking PLETH/ABP/II channels.

Where to get the data: PhysioNet (https://physionet.org), e.g. the *MIMIC-III Waveform
Database Matched Subset* or *MIMIC-IV Waveform Database*, with ``wfdb.dl_database`` or any
download tool; read here with the ``wfdb`` package. Card: ``datasets/wfdb.md``.

Every record header (``.hea``) under the folder is one record; a multi-segment record is
read through its master header (segments merged, gaps as NaN) and its segment headers are
not read twice. Channels are matched by name, case-insensitively: ``ppg`` ← PLETH/PPG,
``abp`` ← ABP/ART, ``ecg`` ← II/ECG. Records without a PPG channel are skipped with a
warning. Gzip-compressed record files (``.hea.gz``, ``.dat.gz``) are inflated one record at
a time into a temporary folder. The subject id is the ``pNNNNNN`` folder the record sits in
(MIMIC layout), else the record name.
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import numpy as np

from healthsense.runtime import get_logger
from ppg.record import Record

__all__ = [
    "CHANNEL_ALIASES",
    "DEFAULT_PPG",
    "NAME",
    "count_records",
    "iter_records",
    "list_records",
]

NAME = "wfdb"
DEFAULT_PPG = "ppg"
LABELS = ("sbp", "dbp")
CHANNEL_ALIASES: dict[str, tuple[str, ...]] = {
    "ppg": ("pleth", "ppg", "pleth1"),
    "abp": ("abp", "art", "art1", "abp1"),
    "ecg": ("ii", "ecg", "ecg ii", "ecg2"),
}
_SUBJECT_RE = re.compile(r"^p\d{4,}$")
_log = get_logger("ppg.datasets.wfdb")


def _header_name(p: Path) -> str | None:
    if p.name.endswith(".hea"):
        return p.name[:-4]
    if p.name.endswith(".hea.gz"):
        return p.name[:-7]
    return None


def list_records(path: str | os.PathLike) -> list[Path]:
    """Record paths (folder/record-name, no extension), master headers only."""
    root = Path(path)
    if root.is_file():
        name = _header_name(root)
        if name is None:
            raise ValueError(f"{root}: not a WFDB header (.hea or .hea.gz)")
        return [root.parent / name]
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: WFDB folder not found")
    headers = sorted({p.parent / n for p in root.rglob("*.hea*") if (n := _header_name(p))})
    if not headers:
        raise FileNotFoundError(f"{root}: no WFDB headers (*.hea, *.hea.gz)")
    covered: set[Path] = set()
    for rec in headers:
        text = _read_header_text(rec)
        first = text.strip().splitlines()[0].split() if text.strip() else []
        # A master header's record line reads "name/n_segments n_sig fs n_samples".
        if first and "/" in first[0]:
            for line in text.splitlines()[1:]:
                parts = line.split()
                if parts and not line.startswith("#") and parts[0] != "~":
                    covered.add(rec.parent / parts[0])
    return [h for h in headers if h not in covered and not h.name.endswith("_layout")]


def _read_header_text(rec: Path) -> str:
    plain = rec.with_name(rec.name + ".hea")
    if plain.is_file():
        return plain.read_text(errors="replace")
    with gzip.open(rec.with_name(rec.name + ".hea.gz"), "rt", errors="replace") as handle:
        return handle.read()


def count_records(path: str | os.PathLike, **_) -> int:
    """Number of (master) records under the folder."""
    return len(list_records(path))


def _match(sig_names: list[str], aliases: Mapping[str, Iterable[str]]) -> dict[str, int]:
    lowered = [s.strip().lower() for s in sig_names]
    picked = {}
    for name, options in aliases.items():
        for option in options:
            if option in lowered:
                picked[name] = lowered.index(option)
                break
    return picked


def _inflate(rec: Path, tmp: Path) -> Path:
    """Copy (inflating ``.gz``) the files of one record, segments included, into ``tmp``."""
    base = rec.name.split("_")[0]  # multi-segment records name their segments base_NNNN
    for f in rec.parent.iterdir():
        if not f.is_file() or not f.name.startswith(base):
            continue
        if f.name.endswith(".gz"):
            with gzip.open(f, "rb") as src, open(tmp / f.name[:-3], "wb") as dst:
                shutil.copyfileobj(src, dst)
        else:
            shutil.copy(f, tmp / f.name)
    return tmp / rec.name


def iter_records(
    path: str | os.PathLike,
    *,
    channels: Mapping[str, Iterable[str]] | None = None,
    require: Iterable[str] = ("ppg",),
) -> Iterator[Record]:
    """Yield one :class:`~ppg.record.Record` per WFDB record (one record in memory).

    Parameters
    ----------
    path : path-like
        A folder searched recursively, or one header file.
    channels : mapping, optional
        Record signal name → accepted WFDB channel names (lower case); default
        :data:`CHANNEL_ALIASES`.
    require : iterable of str
        Records lacking any of these signals are skipped with a warning.
    """
    import wfdb

    aliases = {k: tuple(a.lower() for a in v) for k, v in (channels or CHANNEL_ALIASES).items()}
    required = list(require)
    for rec in list_records(path):
        gz = not rec.with_name(rec.name + ".hea").is_file()
        with tempfile.TemporaryDirectory(prefix="healthsense-wfdb-") as tmp:
            where = _inflate(rec, Path(tmp)) if gz else rec
            try:
                header = wfdb.rdheader(str(where))
                picked = _match(list(header.sig_name or []), aliases)
                missing = [r for r in required if r not in picked]
                if missing:
                    _log.warning(
                        "%s: no %s channel among %s; skipped", rec, missing, header.sig_name
                    )
                    continue
                data = wfdb.rdrecord(
                    str(where), channel_names=[header.sig_name[i] for i in picked.values()]
                )
            except (OSError, ValueError, IndexError) as exc:
                raise ValueError(f"{rec}: cannot read WFDB record ({exc})") from None
        fs = float(data.fs or 0)
        if fs <= 0:
            raise ValueError(f"{rec}: WFDB header gives no sampling rate")
        values = data.p_signal
        if values is None or values.shape[0] == 0:
            raise ValueError(f"{rec}: WFDB record has no samples")
        signals = {name: np.asarray(values[:, j], dtype=float) for j, name in enumerate(picked)}
        subject = rec.parent.name if _SUBJECT_RE.match(rec.parent.name) else rec.name
        units = dict(zip(picked, data.units or [], strict=False))
        yield Record(
            record_id=str(rec.name),
            subject_id=subject,
            signals=signals,
            fs=dict.fromkeys(signals, fs),
            metadata={
                "file": rec.name,
                "units": units,
                "channels": {k: header.sig_name[i] for k, i in picked.items()},
            },
            dataset=NAME,
        )
