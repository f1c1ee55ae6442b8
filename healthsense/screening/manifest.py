"""The screening manifest: one CSV row per eye, validated completely before any work starts.

Columns (header names exact; order free; paths relative to the manifest's folder):

=========================  ==========================================================
``patient_id``             required, non-empty
``eye``                    required, ``OD`` or ``OS`` (case-insensitive)
``retinoscopy_video``      optional: one sweep (the meridian the video measures)
``retinoscopy_horizontal`` optional: the two sweeps of a full refraction (give both,
``retinoscopy_vertical``   and not together with ``retinoscopy_video``)
``topography_npz``         optional: raw-map case (``axial_d``, ``tangential_d``, ...)
``axial_png``              optional: rendered heatmaps, a pair (not with ``topography_npz``)
``tangential_png``
``camera_profile``         optional: the phone's camera profile (JSON, as written by
                           ``healthsense retino calibrate`` or the simulator) for this
                           eye's videos; overrides ``refraction.camera_profile``
``reference_power_d``      optional reference refraction (D) of the eye, for the audit
``reference_keratoconus``  optional reference diagnosis: 1/0, yes/no, true/false,
                           keratoconus/suspect (positive) or normal (negative)
=========================  ==========================================================

A manifest that cannot be read, lacks a required column, has an unknown column (a typo would
silently drop a test), a duplicate (patient, eye), an invalid eye or reference value, or an
incomplete pair raises :class:`ManifestError` naming the file, row and column. A file that a
row names but that does not exist is *not* a manifest error: that eye becomes ungradable with a
reason and the run goes on.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, fields
from pathlib import Path

__all__ = [
    "INPUT_COLUMNS",
    "RETINOSCOPY_COLUMNS",
    "TOPOGRAPHY_COLUMNS",
    "MANIFEST_COLUMNS",
    "REQUIRED_COLUMNS",
    "EyeCase",
    "ManifestError",
    "read_manifest",
]

REQUIRED_COLUMNS = ("patient_id", "eye")
#: Input files of the refraction test (a video, or the two sweeps).
RETINOSCOPY_COLUMNS = ("retinoscopy_video", "retinoscopy_horizontal", "retinoscopy_vertical")
#: Input files of the keratoconus test (a raw-map case, or the two heatmaps).
TOPOGRAPHY_COLUMNS = ("topography_npz", "axial_png", "tangential_png")
#: Columns holding input file paths, in CSV order (each is hashed and reported).
INPUT_COLUMNS = RETINOSCOPY_COLUMNS + TOPOGRAPHY_COLUMNS + ("camera_profile",)
REFERENCE_COLUMNS = ("reference_power_d", "reference_keratoconus")
MANIFEST_COLUMNS = REQUIRED_COLUMNS + INPUT_COLUMNS + REFERENCE_COLUMNS

_POSITIVE = {"1", "yes", "true", "y", "keratoconus", "kc", "suspect", "positive"}
_NEGATIVE = {"0", "no", "false", "n", "normal", "negative"}


class ManifestError(ValueError):
    """The manifest is unusable; nothing has been run. The message names file, row, column."""


@dataclass(frozen=True)
class EyeCase:
    """One manifest row: an eye and its inputs (paths as written and resolved).

    ``inputs`` maps each input column that the row fills to the path as written in the
    manifest (what the outputs show, so they do not depend on where the run happens);
    :meth:`path` resolves it against the manifest's folder.
    """

    patient_id: str
    eye: str
    row: int
    root: str
    inputs: tuple[tuple[str, str], ...] = ()
    reference_power_d: float | None = None
    reference_keratoconus: bool | None = None

    @property
    def key(self) -> str:
        """``patient_id/eye``: unique within a manifest."""
        return f"{self.patient_id}/{self.eye}"

    def given(self, column: str) -> str | None:
        """The path written in ``column`` (None when the row leaves it empty)."""
        return dict(self.inputs).get(column)

    def path(self, column: str) -> Path | None:
        """The resolved path of an input column (None when empty)."""
        value = self.given(column)
        if value is None:
            return None
        p = Path(value).expanduser()
        return p if p.is_absolute() else Path(self.root) / p

    @property
    def wants_refraction(self) -> bool:
        return any(self.given(c) for c in RETINOSCOPY_COLUMNS)

    @property
    def wants_keratoconus(self) -> bool:
        return any(self.given(c) for c in TOPOGRAPHY_COLUMNS)


def _where(path: Path, row: int, column: str | None = None) -> str:
    return f"{path}: row {row}" + (f", column {column!r}" if column else "")


def _parse_reference_kc(value: str, where: str) -> bool | None:
    v = value.strip().lower()
    if not v:
        return None
    if v in _POSITIVE:
        return True
    if v in _NEGATIVE:
        return False
    raise ManifestError(
        f"{where}: {value!r} is not a reference diagnosis "
        "(use 1/0, yes/no, true/false, keratoconus/suspect or normal)"
    )


def _parse_reference_power(value: str, where: str) -> float | None:
    v = value.strip()
    if not v:
        return None
    try:
        power = float(v)
    except ValueError:
        raise ManifestError(f"{where}: {value!r} is not a number of dioptres") from None
    if not (-40.0 <= power <= 40.0):  # also rejects NaN and inf
        raise ManifestError(f"{where}: {value!r} is not a plausible refraction (−40 … +40 D)")
    return power


def read_manifest(path: str | os.PathLike) -> list[EyeCase]:
    """Read and validate a screening manifest.

    Parameters
    ----------
    path : path-like
        The manifest CSV (UTF-8, a byte-order mark is accepted).

    Returns
    -------
    list of EyeCase
        In manifest order.

    Raises
    ------
    ManifestError
        On anything that makes the manifest unusable (see the module docstring).
    """
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: manifest not found")
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            header = list(reader.fieldnames or [])
            raw_rows = list(reader)
    except (UnicodeDecodeError, csv.Error, OSError) as exc:
        raise ManifestError(f"{path}: not a readable CSV file ({exc})") from None
    if not header:
        raise ManifestError(f"{path}: the manifest is empty (no header line)")
    header = [h.strip() for h in header]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise ManifestError(
            f"{path}: missing required column(s) {', '.join(missing)} (found: {', '.join(header)})"
        )
    unknown = [c for c in header if c not in MANIFEST_COLUMNS]
    if unknown:
        raise ManifestError(
            f"{path}: unknown column(s) {', '.join(repr(c) for c in unknown)}; "
            f"valid columns: {', '.join(MANIFEST_COLUMNS)}"
        )
    if len(set(header)) != len(header):
        raise ManifestError(f"{path}: a column name appears twice")
    if not raw_rows:
        raise ManifestError(f"{path}: the manifest has a header but no rows")
    root = str(path.resolve().parent)
    cases: list[EyeCase] = []
    seen: dict[tuple[str, str], int] = {}
    for i, raw in enumerate(raw_rows, start=2):  # row 1 is the header
        if None in raw:
            raise ManifestError(f"{_where(path, i)}: more cells than header columns")
        row = {k.strip(): (v or "").strip() for k, v in raw.items()}
        patient = row.get("patient_id", "")
        if not patient:
            raise ManifestError(f"{_where(path, i, 'patient_id')}: empty patient_id")
        eye = row.get("eye", "").upper()
        if eye not in ("OD", "OS"):
            raise ManifestError(
                f"{_where(path, i, 'eye')}: eye must be OD or OS, got {row.get('eye')!r}"
            )
        if (patient, eye) in seen:
            raise ManifestError(
                f"{_where(path, i)}: duplicate eye {patient}/{eye} (first on row "
                f"{seen[(patient, eye)]})"
            )
        seen[(patient, eye)] = i
        inputs = tuple((c, row[c]) for c in INPUT_COLUMNS if row.get(c))
        given = {c for c, _ in inputs}
        if "retinoscopy_video" in given and given & {
            "retinoscopy_horizontal",
            "retinoscopy_vertical",
        }:
            raise ManifestError(
                f"{_where(path, i)}: give retinoscopy_video or the horizontal/vertical pair, "
                "not both"
            )
        for a, b in (
            ("retinoscopy_horizontal", "retinoscopy_vertical"),
            ("axial_png", "tangential_png"),
        ):
            if (a in given) != (b in given):
                have, lack = (a, b) if a in given else (b, a)
                raise ManifestError(f"{_where(path, i, lack)}: {have} is given, {lack} is empty")
        if "camera_profile" in given and not given & set(RETINOSCOPY_COLUMNS):
            raise ManifestError(
                f"{_where(path, i, 'camera_profile')}: a camera profile without a retinoscopy video"
            )
        if "topography_npz" in given and "axial_png" in given:
            raise ManifestError(
                f"{_where(path, i)}: give topography_npz or the axial/tangential PNG pair, not both"
            )
        cases.append(
            EyeCase(
                patient_id=patient,
                eye=eye,
                row=i,
                root=root,
                inputs=inputs,
                reference_power_d=_parse_reference_power(
                    row.get("reference_power_d", ""), _where(path, i, "reference_power_d")
                ),
                reference_keratoconus=_parse_reference_kc(
                    row.get("reference_keratoconus", ""), _where(path, i, "reference_keratoconus")
                ),
            )
        )
    return cases


def case_to_dict(case: EyeCase) -> dict:
    """A JSON-able dict of a case (inputs as a mapping)."""
    out = {f.name: getattr(case, f.name) for f in fields(case)}
    out["inputs"] = dict(case.inputs)
    return out
