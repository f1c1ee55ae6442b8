"""Reports: atomic file writers, matplotlib figures and self-contained HTML pages.

Every file the toolkit writes goes through :func:`atomic_write_bytes` (temp file in the same
folder, fsync, ``os.replace``), so a crash or a kill never leaves a half-written report: a
reader sees the old file or the new one. HTML reports embed their images as base64 PNG and
carry their own CSS, so they open offline and can be mailed as one file.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import html
import io
import json
import math
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "Report",
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_writer",
    "figure_to_png",
    "new_figure",
    "read_json",
    "to_jsonable",
    "write_csv",
    "write_json",
]


# --------------------------------------------------------------------------- atomic writers


def _umask_mode() -> int:
    # mkstemp creates files readable by the owner only; outputs should get the permissions a
    # plain open() would give them (0666 minus the umask), so colleagues can read reports.
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _mkstemp_beside(path: Path, *, prefix: str, suffix: str) -> tuple[int, str]:
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=path.parent)
    os.fchmod(fd, _umask_mode())
    return fd, tmp


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temp file in the same folder + rename).

    The parent folder is created if needed. Returns the path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _mkstemp_beside(path, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str, *, encoding: str = "utf-8") -> Path:
    """Write text atomically (see :func:`atomic_write_bytes`)."""
    return atomic_write_bytes(path, text.encode(encoding))


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike, mode: str = "w", **kwargs: Any) -> Iterator[Any]:
    """Context manager yielding a file handle whose content replaces ``path`` on success only.

    Use for writers that stream (``numpy.savez``, ``csv.writer``, video encoders given a
    path use :func:`atomic_path` instead). On an exception the target is left untouched.
    """
    if mode not in {"w", "wb", "wt"}:
        raise ValueError(f"atomic_writer supports write modes only, got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _mkstemp_beside(path, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, **kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` if the block succeeds.

    For libraries that insist on writing to a file name themselves (OpenCV's VideoWriter,
    ``np.savez``, matplotlib). ``suffix`` keeps the extension that such writers look at.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _mkstemp_beside(
        path, prefix=f".{path.stem}.", suffix=suffix if suffix is not None else path.suffix
    )
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        raise


__all__.append("atomic_path")


def to_jsonable(obj: Any) -> Any:
    """Convert numpy scalars/arrays, paths, dataclasses and non-finite floats for JSON.

    NaN becomes ``null`` (JSON has no NaN); infinities become the strings ``"inf"``/``"-inf"``.
    """
    import dataclasses

    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(dataclasses.asdict(obj))
    if isinstance(obj, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        value = float(obj)
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return value
    if isinstance(obj, os.PathLike):
        return str(obj)
    if isinstance(obj, datetime):
        return obj.isoformat()
    return obj


def write_json(path: str | os.PathLike, obj: Any, *, indent: int | None = 2) -> Path:
    """Write an object as JSON atomically (numpy types and NaN handled by :func:`to_jsonable`)."""
    text = json.dumps(to_jsonable(obj), indent=indent, allow_nan=False)
    return atomic_write_text(path, text + "\n")


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file with a clear error naming the file when it is missing or corrupt."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: file not found") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None


def _csv_cell(value: Any) -> Any:
    value = to_jsonable(value)
    if value is None:
        return ""
    if isinstance(value, list | dict):
        return json.dumps(value)
    return value


def write_csv(
    path: str | os.PathLike,
    rows: Sequence[Mapping[str, Any]],
    *,
    columns: Sequence[str] | None = None,
) -> Path:
    """Write a list of dict rows as CSV atomically.

    ``columns`` fixes the column order (default: keys in first-seen order over all rows).
    Missing values and NaN are written as empty cells, so re-running gives identical bytes.
    """
    if columns is None:
        seen: dict[str, None] = {}
        for row in rows:
            for key in row:
                seen.setdefault(key, None)
        columns = list(seen)
    known = set(columns)
    for i, row in enumerate(rows):
        extra = [k for k in row if k not in known]
        if extra:
            # Dropping a value silently would lose data; the caller must list every column.
            raise ValueError(f"row {i} has keys not in columns: {', '.join(map(str, extra))}")
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: _csv_cell(row.get(c)) for c in columns})
    return atomic_write_text(path, buffer.getvalue())


# --------------------------------------------------------------------------- figures


def new_figure(*, figsize: tuple[float, float] = (6.0, 4.0), nrows: int = 1, ncols: int = 1):
    """A matplotlib figure on the Agg backend (no display needed), with its axes."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=True)
    return fig, axes


def figure_to_png(fig: Any, *, dpi: int = 110) -> bytes:
    """Render a matplotlib figure to PNG bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def _png_bytes(image: Any) -> bytes:
    """Accept PNG bytes, a matplotlib figure, a path to a PNG, or an (H, W[, 3]) uint8 array."""
    if isinstance(image, bytes | bytearray):
        data = bytes(image)
        if not data.startswith(b"\x89PNG"):
            raise ValueError("image bytes are not a PNG")
        return data
    if isinstance(image, str | os.PathLike):
        return Path(image).read_bytes()
    if isinstance(image, np.ndarray):
        import cv2

        arr = image
        if arr.dtype != np.uint8:
            raise ValueError(f"image arrays must be uint8, got {arr.dtype}")
        if arr.ndim == 3 and arr.shape[2] == 3:
            arr = arr[:, :, ::-1]  # RGB in, OpenCV writes BGR
        ok, buf = cv2.imencode(".png", arr)
        if not ok:
            raise ValueError("could not encode image array as PNG")
        return buf.tobytes()
    if hasattr(image, "savefig"):
        return figure_to_png(image)
    raise TypeError(f"cannot embed an image of type {type(image).__name__}")


# --------------------------------------------------------------------------- HTML report

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,Helvetica,Arial,sans-serif;
margin:0 auto;max-width:1100px;padding:1.5rem;color:#1d2327;line-height:1.45}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.25rem;margin-top:2rem;
border-bottom:1px solid #d0d7de;padding-bottom:.2rem}h3{font-size:1.05rem}
.meta{color:#57606a;font-size:.85rem}
.disclaimer{background:#fff8c5;border:1px solid #d4a72c;padding:.6rem .8rem;border-radius:6px;
margin:1rem 0;font-weight:600}
table{border-collapse:collapse;margin:.6rem 0;font-size:.9rem}
th,td{border:1px solid #d0d7de;padding:.3rem .55rem;text-align:left;vertical-align:top}
th{background:#f6f8fa}td.num{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:1rem 0}figure img{max-width:100%;height:auto;border:1px solid #eaeef2}
figcaption{color:#57606a;font-size:.85rem}
.ok{color:#1a7f37;font-weight:600}.warn{color:#9a6700;font-weight:600}
.bad{color:#cf222e;font-weight:600}
pre{background:#f6f8fa;padding:.6rem;overflow-x:auto;font-size:.8rem}
"""


def _format_cell(value: Any, float_format: str) -> tuple[str, bool]:
    value = to_jsonable(value) if not isinstance(value, str) else value
    if value is None:
        return "–", True
    if isinstance(value, bool):
        return ("yes" if value else "no"), False
    if isinstance(value, int):
        return str(value), True
    if isinstance(value, float):
        return format(value, float_format), True
    if isinstance(value, str) and value in {"inf", "-inf"}:
        return ("∞" if value == "inf" else "−∞"), True
    return html.escape(str(value)), False


@dataclass
class Report:
    """A self-contained HTML report assembled from headings, text, tables and figures.

    Parameters
    ----------
    title : str
        Page title and top heading.
    disclaimer : str or None
        A banner shown at the top; clinician-facing reports keep the default, which says the
        software is research software, not a medical device.

    Examples
    --------
    >>> rep = Report("PPG informativeness")
    >>> rep.add_heading("Summary")
    >>> rep.add_table([{"label": "SBP", "mvm": 0.33}], float_format=".2f")
    >>> html_text = rep.to_html()
    """

    title: str
    disclaimer: str | None = None
    subtitle: str | None = None
    _blocks: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.disclaimer is None:
            from healthsense import DISCLAIMER

            self.disclaimer = DISCLAIMER

    def add_heading(self, text: str, *, level: int = 2, anchor: str | None = None) -> None:
        """Add a section heading (``level`` 2 or 3)."""
        if level not in (2, 3):
            raise ValueError("heading level must be 2 or 3")
        attr = f' id="{html.escape(anchor)}"' if anchor else ""
        self._blocks.append(f"<h{level}{attr}>{html.escape(text)}</h{level}>")

    def add_text(self, text: str, *, css_class: str | None = None) -> None:
        """Add a paragraph of plain text (escaped; blank lines start new paragraphs)."""
        cls = f' class="{html.escape(css_class)}"' if css_class else ""
        for para in str(text).split("\n\n"):
            if para.strip():
                self._blocks.append(f"<p{cls}>{html.escape(para.strip())}</p>")

    def add_html(self, fragment: str) -> None:
        """Add a trusted HTML fragment verbatim (callers escape user data themselves)."""
        self._blocks.append(fragment)

    def add_preformatted(self, text: str) -> None:
        """Add monospaced text (configuration dumps, logs)."""
        self._blocks.append(f"<pre>{html.escape(text)}</pre>")

    def add_table(
        self,
        rows: Sequence[Mapping[str, Any]],
        *,
        columns: Sequence[str] | None = None,
        headers: Mapping[str, str] | None = None,
        float_format: str = ".3g",
        caption: str | None = None,
        table_id: str | None = None,
    ) -> None:
        """Add a table from dict rows; numbers right-aligned, NaN shown as an en dash."""
        if columns is None:
            seen: dict[str, None] = {}
            for row in rows:
                for key in row:
                    seen.setdefault(key, None)
            columns = list(seen)
        headers = dict(headers or {})
        parts = [f"<table{f' id={chr(34)}{html.escape(table_id)}{chr(34)}' if table_id else ''}>"]
        if caption:
            parts.append(f"<caption>{html.escape(caption)}</caption>")
        parts.append(
            "<thead><tr>"
            + "".join(f"<th>{html.escape(headers.get(c, c))}</th>" for c in columns)
            + "</tr></thead><tbody>"
        )
        for row in rows:
            cells = []
            for c in columns:
                text, numeric = _format_cell(row.get(c), float_format)
                cells.append(f'<td class="num">{text}</td>' if numeric else f"<td>{text}</td>")
            parts.append("<tr>" + "".join(cells) + "</tr>")
        parts.append("</tbody></table>")
        self._blocks.append("".join(parts))

    def add_figure(self, image: Any, *, caption: str | None = None, alt: str | None = None) -> None:
        """Embed a figure (matplotlib figure, PNG bytes/path, or uint8 image array) as base64."""
        data = base64.b64encode(_png_bytes(image)).decode("ascii")
        alt_text = html.escape(alt or caption or "figure")
        cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
        self._blocks.append(
            f'<figure><img alt="{alt_text}" src="data:image/png;base64,{data}">{cap}</figure>'
        )

    def to_html(self, *, generated: datetime | None = None) -> str:
        """The whole page as a string (no external assets, no scripts)."""
        from healthsense._version import __version__

        stamp = (generated or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
        head = (
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(self.title)}</title><style>{_CSS}</style></head><body>"
        )
        top = [f"<h1>{html.escape(self.title)}</h1>"]
        if self.subtitle:
            top.append(f'<p class="meta">{html.escape(self.subtitle)}</p>')
        top.append(
            f'<p class="meta">healthsense {html.escape(__version__)} · generated {stamp}</p>'
        )
        if self.disclaimer:
            top.append(f'<div class="disclaimer" role="note">{html.escape(self.disclaimer)}</div>')
        return head + "".join(top) + "\n".join(self._blocks) + "</body></html>\n"

    def save(self, path: str | os.PathLike, *, generated: datetime | None = None) -> Path:
        """Write the page atomically and return its path."""
        return atomic_write_text(path, self.to_html(generated=generated))
