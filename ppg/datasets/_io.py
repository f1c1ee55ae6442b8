"""File helpers shared by the loaders: plain or gzip files, tables with clear errors."""

from __future__ import annotations

import gzip
import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import numpy as np

__all__ = [
    "check_dir",
    "find_file",
    "is_gzip",
    "open_binary",
    "read_table",
    "strip_gz",
]

_GZIP_MAGIC = b"\x1f\x8b"


def is_gzip(path: str | os.PathLike) -> bool:
    """Whether a file starts with the gzip magic bytes (the extension is not trusted)."""
    with open(path, "rb") as handle:
        return handle.read(2) == _GZIP_MAGIC


def open_binary(path: str | os.PathLike) -> IO[bytes]:
    """Open a plain or gzip-compressed file for binary reading (decompressed on the fly)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: empty file")
    if is_gzip(path):
        return gzip.open(path, "rb")
    return open(path, "rb")


def strip_gz(name: str) -> str:
    """``"a.csv.gz"`` → ``"a.csv"``."""
    return name[:-3] if name.endswith(".gz") else name


def find_file(folder: str | os.PathLike, name: str, *, required: bool = True) -> Path | None:
    """``folder/name`` or ``folder/name.gz``, whichever exists (the plain file first)."""
    folder = Path(folder)
    for candidate in (folder / name, folder / (name + ".gz")):
        if candidate.is_file():
            return candidate
    if required:
        raise FileNotFoundError(f"{folder / name}: file not found (nor {name}.gz)")
    return None


def check_dir(path: str | os.PathLike, what: str) -> Path:
    """A clear error when a dataset folder is missing."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: {what} folder not found")
    if not path.is_dir():
        raise ValueError(f"{path}: expected the {what} folder, got a file")
    return path


def read_table(
    path: str | os.PathLike,
    *,
    sep: str = ",",
    required: Sequence[str] = (),
    numeric: Sequence[str] = (),
    what: str = "table",
):
    """Read a CSV/TSV (plain or gzip) into a DataFrame with clear errors.

    Parameters
    ----------
    required : sequence of str
        Columns that must be present.
    numeric : sequence of str
        Columns that must parse as numbers (NaN allowed, text not).
    """
    import pandas as pd

    path = Path(path)
    with open_binary(path) as handle:
        raw = handle.read()
    if not raw.strip():
        raise ValueError(f"{path}: empty {what}")
    try:
        frame = pd.read_csv(io.BytesIO(raw), sep=sep)
    except pd.errors.EmptyDataError:
        raise ValueError(f"{path}: empty {what}") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot parse {what} ({exc})") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{path}: missing column(s) {missing} in {what}; found {list(frame.columns)}"
        )
    if len(frame) == 0:
        raise ValueError(f"{path}: {what} has a header but no rows")
    for col in numeric:
        values = pd.to_numeric(frame[col], errors="coerce")
        bad = values.isna() & frame[col].notna()
        if bad.any():
            first = frame[col][bad].iloc[0]
            raise ValueError(
                f"{path}: column {col!r} has non-numeric values (first: {first!r} at row "
                f"{int(np.flatnonzero(bad.to_numpy())[0]) + 1})"
            )
        frame[col] = values.astype(float)
    return frame
