"""Stream the cells of MATLAB cell arrays one at a time (v5/v7 files and v7.3/HDF5 files).

``scipy.io.loadmat`` reads a whole variable at once: for the UCI cuff-less BP set that is a
cell array of ~3,000 recordings, about a gigabyte per file. This module walks the MAT v5
element stream instead (inflating ``miCOMPRESSED`` elements incrementally with ``zlib``) and
materialises one cell at a time, so memory stays at the size of the largest cell. Files
saved with ``-v7.3`` are HDF5; their cells are object references that ``h5py`` dereferences
one by one. Plain and gzip-compressed files are both accepted.

Format reference: MathWorks, *MAT-File Format* (Level 5), chapters 1.3–1.6.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import numpy as np

from ppg.datasets._io import is_gzip, open_binary

__all__ = ["iter_cells", "mat_format"]

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_MI_MATRIX, _MI_COMPRESSED = 14, 15
_MX_CELL = 1
#: miTYPE → numpy dtype character (endianness added at read time).
_MI_DTYPES = {
    1: "i1",
    2: "u1",
    3: "i2",
    4: "u2",
    5: "i4",
    6: "u4",
    7: "f4",
    9: "f8",
    12: "i8",
    13: "u8",
}
_MX_NUMERIC = {6, 7, 8, 9, 10, 11, 12, 13, 14, 15}


def mat_format(path: str | os.PathLike) -> str:
    """``"v5"`` (covers v6/v7), ``"v7.3"`` (HDF5) or a ValueError naming the file."""
    with open_binary(path) as handle:
        head = handle.read(520)
    if len(head) >= 520 and head[512:520] == _HDF5_SIGNATURE or head[:8] == _HDF5_SIGNATURE:
        return "v7.3"
    if len(head) < 128:
        raise ValueError(f"{path}: too short to be a MATLAB file ({len(head)} bytes)")
    if head[:6] != b"MATLAB":
        raise ValueError(f"{path}: not a MATLAB .mat file (no 'MATLAB' header)")
    if head[124:126] not in (b"\x00\x01", b"\x01\x00"):
        raise ValueError(f"{path}: MATLAB v4 files are not supported; re-save with -v7 or -v7.3")
    return "v5"


class _Source:
    """Exact reads from a file, with a byte counter."""

    def __init__(self, handle: IO[bytes], name: str) -> None:
        self.handle, self.name = handle, name

    def read(self, n: int) -> bytes:
        data = self.handle.read(n)
        if len(data) != n:
            raise ValueError(
                f"{self.name}: truncated MATLAB file (wanted {n} bytes, got {len(data)})"
            )
        return data

    def at_end(self) -> bool:
        return self.handle.peek(1) == b"" if hasattr(self.handle, "peek") else False


class _Inflater:
    """Incremental zlib reader over the ``nbytes`` of one miCOMPRESSED element."""

    def __init__(self, src: _Source, nbytes: int) -> None:
        self.src, self.left = src, nbytes
        self.z = zlib.decompressobj()
        self.buf = bytearray()
        self.pos = 0
        self.name = src.name

    def _fill(self, n: int) -> None:
        while len(self.buf) - self.pos < n:
            if self.pos > (1 << 22):
                del self.buf[: self.pos]
                self.pos = 0
            if self.z.unconsumed_tail:
                chunk = self.z.unconsumed_tail
            elif self.left > 0:
                chunk = self.src.read(min(1 << 20, self.left))
                self.left -= len(chunk)
            else:
                self.buf += self.z.flush()
                if len(self.buf) - self.pos < n:
                    raise ValueError(f"{self.name}: truncated compressed MATLAB element")
                return
            try:
                self.buf += self.z.decompress(chunk, max(n, 1 << 22))
            except zlib.error as exc:
                raise ValueError(
                    f"{self.name}: corrupt compressed MATLAB element ({exc})"
                ) from None

    def read(self, n: int) -> bytes:
        self._fill(n)
        out = bytes(self.buf[self.pos : self.pos + n])
        self.pos += n
        return out

    def finish(self) -> None:
        while self.left > 0:
            self.left -= len(self.src.read(min(1 << 20, self.left)))


def _tag(src, bo: str) -> tuple[int, int, bytes | None]:
    raw = src.read(8)
    first, second = struct.unpack(bo + "II", raw)
    if first >> 16:  # small data element: type and size packed in the first word
        return first & 0xFFFF, first >> 16, raw[4 : 4 + (first >> 16)]
    return first, second, None


def _pad(n: int) -> int:
    return (8 - n % 8) % 8


def _sub(src, bo: str) -> tuple[int, bytes]:
    mtype, nbytes, small = _tag(src, bo)
    if small is not None:
        return mtype, small
    data = src.read(nbytes)
    if _pad(nbytes):
        src.read(_pad(nbytes))
    return mtype, data


def _numeric(mtype: int, data: bytes, bo: str, name: str) -> np.ndarray:
    if mtype not in _MI_DTYPES:
        raise ValueError(f"{name}: unsupported MATLAB data type {mtype}")
    return np.frombuffer(data, dtype=bo + _MI_DTYPES[mtype])


class _Bytes:
    def __init__(self, data: bytes, name: str) -> None:
        self.data, self.pos, self.name = data, 0, name

    def read(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise ValueError(f"{self.name}: truncated MATLAB matrix element")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out


def _matrix_body(src, nbytes: int, bo: str, name: str) -> np.ndarray:
    """Parse a numeric miMATRIX body (already read into memory) into a Fortran-order array."""
    if nbytes == 0:
        return np.zeros((0, 0))
    body = _Bytes(src.read(nbytes), name)
    _, flags = _sub(body, bo)
    mclass = struct.unpack(bo + "I", flags[:4])[0] & 0xFF
    dtype_, dims_raw = _sub(body, bo)
    dims = tuple(int(d) for d in _numeric(dtype_, dims_raw, bo, name))
    _sub(body, bo)  # array name (empty inside a cell)
    if mclass not in _MX_NUMERIC:
        raise ValueError(f"{name}: cell holds a MATLAB class {mclass} array; expected numbers")
    mtype, data = _sub(body, bo)
    values = _numeric(mtype, data, bo, name).astype(float)
    if values.size != int(np.prod(dims)):
        raise ValueError(f"{name}: matrix data has {values.size} values for dimensions {dims}")
    return values.reshape(dims, order="F")


def _iter_v5(path: Path) -> Iterator[tuple[str, int, np.ndarray]]:
    with open_binary(path) as handle:
        src = _Source(handle, str(path))
        header = src.read(128)
        bo = "<" if header[126:128] == b"IM" else ">"
        while True:
            raw = handle.read(8)
            if not raw:
                return
            if len(raw) < 8:
                raise ValueError(f"{path}: truncated MATLAB file (partial element tag)")
            mtype, nbytes = struct.unpack(bo + "II", raw)
            if mtype == _MI_COMPRESSED:
                inner = _Inflater(src, nbytes)
                yield from _iter_variable(inner, bo, str(path))
                inner.finish()
            elif mtype == _MI_MATRIX:
                yield from _iter_variable(src, bo, str(path), tag=(mtype, nbytes))
                if _pad(nbytes):
                    src.read(_pad(nbytes))
            else:
                src.read(nbytes + _pad(nbytes))


def _iter_variable(src, bo: str, name: str, tag=None) -> Iterator[tuple[str, int, np.ndarray]]:
    mtype, nbytes = tag if tag is not None else _tag(src, bo)[:2]
    if mtype != _MI_MATRIX:
        raise ValueError(f"{name}: unexpected MATLAB element type {mtype}")
    consumed = 0

    def read_sub():
        nonlocal consumed
        t, n, small = _tag(src, bo)
        consumed += 8
        if small is not None:
            return t, small
        data = src.read(n + _pad(n))
        consumed += n + _pad(n)
        return t, data[:n]

    _, flags = read_sub()
    mclass = struct.unpack(bo + "I", flags[:4])[0] & 0xFF
    dtype_, dims_raw = read_sub()
    dims = tuple(int(d) for d in _numeric(dtype_, dims_raw, bo, name))
    _, var_raw = read_sub()
    var = var_raw.decode("latin-1")
    if mclass != _MX_CELL:
        # Not a cell array: skip its bytes without materialising them.
        rest = nbytes - consumed
        while rest > 0:
            rest -= len(src.read(min(rest, 1 << 20)))
        return
    for index in range(int(np.prod(dims))):
        t, n, _ = _tag(src, bo)
        if t != _MI_MATRIX:
            raise ValueError(f"{name}: cell {index + 1} of {var!r} is not a matrix element")
        yield var, index, _matrix_body(src, n, bo, f"{name}: {var}{{{index + 1}}}")
        if _pad(n):
            src.read(_pad(n))


def _iter_v73(path: Path) -> Iterator[tuple[str, int, np.ndarray]]:
    import h5py

    handle = open_binary(path) if is_gzip(path) else None
    try:
        with h5py.File(handle if handle is not None else path, "r") as f:
            for var in f:
                if var.startswith("#"):
                    continue
                dset = f[var]
                if not isinstance(dset, h5py.Dataset) or dset.dtype != h5py.ref_dtype:
                    continue
                refs = dset[()].reshape(-1, order="F") if dset.ndim else [dset[()]]
                for index, ref in enumerate(refs):
                    # HDF5 stores MATLAB's column-major arrays with reversed dimensions.
                    yield var, index, np.asarray(f[ref][()], dtype=float).T
    except OSError as exc:
        raise ValueError(f"{path}: cannot read MATLAB v7.3 (HDF5) file ({exc})") from None
    finally:
        if handle is not None:
            handle.close()


def iter_cells(path: str | os.PathLike) -> Iterator[tuple[str, int, np.ndarray]]:
    """Yield ``(variable, index, array)`` for every cell of every cell-array variable.

    ``index`` is 0-based in MATLAB's column-major cell order; arrays come back as float64
    with MATLAB's shape (a 3 × N matrix is ``(3, N)``).
    """
    path = Path(path)
    fmt = mat_format(path)
    return _iter_v73(path) if fmt == "v7.3" else _iter_v5(path)
