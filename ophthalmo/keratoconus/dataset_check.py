"""Validate a keratoconus dataset folder (``labels.csv`` + heatmaps + raw maps).

Checks, each reported as one readable line: ``labels.csv`` present and parseable; required
columns; allowed values of ``eye`` (OD|OS), ``label`` (normal|suspect|keratoconus) and
``domain`` (topographer|smartkc); empty cells; duplicate ``case_id``; duplicate file paths;
a patient with more than two eyes or the same eye twice; referenced files missing (paths are
relative to ``labels.csv``); with ``deep=True`` also that every PNG decodes as an RGB image and
every raw ``.npz`` is a valid case of the right laterality; and, where a ``fold`` or ``split``
column exists, patients whose eyes fall in different folds (a leak between training and test).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["REQUIRED_COLUMNS", "check_dataset"]

REQUIRED_COLUMNS = ("case_id", "patient_id", "eye", "label", "domain", "axial", "tangential")
_ALLOWED = {
    "eye": ("OD", "OS"),
    "label": ("normal", "suspect", "keratoconus"),
    "domain": ("topographer", "smartkc"),
}
_FILE_COLUMNS = ("axial", "tangential", "raw")
_MAX_LISTED = 5


def _listing(items: list[str]) -> str:
    shown = ", ".join(items[:_MAX_LISTED])
    return shown + (f" and {len(items) - _MAX_LISTED} more" if len(items) > _MAX_LISTED else "")


def check_dataset(folder: str | os.PathLike, *, deep: bool = False) -> list[str]:
    """Problems found in a dataset folder (empty list: the dataset is valid).

    Parameters
    ----------
    folder : path
        The folder holding ``labels.csv`` (or the path of the CSV itself).
    deep : bool
        Also open every image and raw case (slower).

    Raises
    ------
    FileNotFoundError
        If the folder does not exist.
    """
    import pandas as pd

    folder = Path(folder)
    csv_path = folder if folder.suffix.lower() == ".csv" else folder / "labels.csv"
    root = csv_path.parent
    if not root.is_dir():
        raise FileNotFoundError(f"dataset folder not found: {root}")
    if not csv_path.is_file():
        return [f"{csv_path}: labels.csv is missing"]
    try:
        df = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        return [f"{csv_path}: cannot be parsed as CSV ({exc})"]
    problems: list[str] = []
    missing_cols = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing_cols:
        return [
            f"{csv_path}: missing column(s) {', '.join(missing_cols)} (has: {', '.join(df.columns)})"
        ]
    if df.empty:
        return [f"{csv_path}: no cases (header only)"]
    line = df.index + 2  # 1-based, after the header

    for col in REQUIRED_COLUMNS:
        empty = df[col].str.strip() == ""
        if empty.any():
            problems.append(f"empty {col} on line(s) {_listing([str(n) for n in line[empty]])}")
    for col, allowed in _ALLOWED.items():
        bad = (df[col].str.strip() != "") & ~df[col].isin(allowed)
        if bad.any():
            values = sorted(set(df.loc[bad, col]))
            problems.append(
                f"unknown {col} value(s) {_listing([repr(v) for v in values])} on line(s) "
                f"{_listing([str(n) for n in line[bad]])}; allowed: {', '.join(allowed)}"
            )
    dup = df["case_id"].duplicated(keep=False) & (df["case_id"] != "")
    if dup.any():
        problems.append(f"duplicate case_id(s): {_listing(sorted(set(df.loc[dup, 'case_id'])))}")
    file_cols = [c for c in _FILE_COLUMNS if c in df.columns]
    for col in file_cols:
        d = df[col].duplicated(keep=False) & (df[col] != "")
        if d.any():
            problems.append(
                f"the same {col} file is used by several cases: {_listing(sorted(set(df.loc[d, col])))}"
            )
    per_patient = df[df["patient_id"] != ""].groupby("patient_id")
    too_many = [p for p, g in per_patient if len(g) > 2]
    if too_many:
        problems.append(f"patient(s) with more than two eyes: {_listing(too_many)}")
    twice = [p for p, g in per_patient if len(g) <= 2 and g["eye"].duplicated().any()]
    if twice:
        problems.append(f"patient(s) with the same eye twice: {_listing(twice)}")
    for fold_col in ("fold", "split"):
        if fold_col in df.columns:
            split = [p for p, g in per_patient if g[fold_col].nunique() > 1]
            if split:
                problems.append(
                    f"patient(s) split across {fold_col}s (both eyes must be on the same side): "
                    f"{_listing(split)}"
                )
    for col in file_cols:
        paths = [(n, v) for n, v in zip(line, df[col], strict=True) if v.strip()]
        missing = [v for _, v in paths if not (root / v).is_file()]
        if missing:
            problems.append(f"{len(missing)} missing {col} file(s): {_listing(missing)}")
    if deep:
        problems.extend(_deep_checks(df, root, file_cols))
    return problems


def _deep_checks(df, root: Path, file_cols: list[str]) -> list[str]:
    from ophthalmo.keratoconus.heatmap import read_png
    from ophthalmo.keratoconus.io import load_case

    problems: list[str] = []
    for _, row in df.iterrows():
        for col in ("axial", "tangential"):
            if col in file_cols and row[col] and (root / row[col]).is_file():
                try:
                    read_png(root / row[col])
                except ValueError as exc:
                    problems.append(f"case {row['case_id']}: {exc}")
        if "raw" in file_cols and row["raw"] and (root / row["raw"]).is_file():
            try:
                case = load_case(root / row["raw"])
            except ValueError as exc:
                problems.append(f"case {row['case_id']}: {exc}")
                continue
            if row["eye"] in _ALLOWED["eye"] and case.eye != row["eye"]:
                problems.append(
                    f"case {row['case_id']}: labels.csv says {row['eye']} but the raw map says "
                    f"{case.eye}"
                )
    return problems
