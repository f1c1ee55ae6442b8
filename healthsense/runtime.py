"""Run-time plumbing shared by every domain: logging, progress bars, seeding, devices, hashing.

Nothing here knows about PPG or eyes. Domain code calls :func:`get_logger` and
:func:`progress` instead of ``print`` and raw ``tqdm`` so that ``--quiet`` and ``-v`` on the
command line govern all output in one place.
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
import random
import subprocess
import sys
from collections.abc import Iterable, Iterator
from importlib import metadata
from pathlib import Path
from typing import TypeVar

import numpy as np

__all__ = [
    "LOGGER_NAME",
    "RUNTIME_DEPENDENCIES",
    "get_logger",
    "git_revision",
    "progress",
    "progress_enabled",
    "select_device",
    "seed_everything",
    "setup_logging",
    "sha256_bytes",
    "sha256_file",
    "versions",
]

LOGGER_NAME = "healthsense"

#: Distributions whose versions are recorded with every result (and listed by ``sys-info``).
RUNTIME_DEPENDENCIES = (
    "numpy",
    "scipy",
    "pandas",
    "neurokit2",
    "scikit-learn",
    "torch",
    "torchvision",
    "opencv-python-headless",
    "albumentations",
    "matplotlib",
    "tqdm",
    "wfdb",
    "h5py",
)

T = TypeVar("T")


def get_logger(name: str | None = None) -> logging.Logger:
    """Return the project logger or one of its children.

    Parameters
    ----------
    name : str, optional
        Dotted suffix, e.g. ``"ppg.datasets"`` gives ``healthsense.ppg.datasets``. Domain
        packages pass their module name so that one handler serves the whole toolkit.
    """
    if not name:
        return logging.getLogger(LOGGER_NAME)
    if name == LOGGER_NAME or name.startswith(LOGGER_NAME + "."):
        return logging.getLogger(name)
    return logging.getLogger(f"{LOGGER_NAME}.{name}")


def setup_logging(verbosity: int = 0) -> logging.Logger:
    """Configure the project logger from a command-line verbosity.

    Parameters
    ----------
    verbosity : int
        ``-1`` for ``--quiet`` (warnings and errors only, no progress bars), ``0`` for the
        default (INFO, progress bars shown), ``>= 1`` for ``-v`` (DEBUG).
    """
    level = logging.WARNING if verbosity < 0 else logging.INFO if verbosity == 0 else logging.DEBUG
    logger = get_logger()
    logger.setLevel(level)
    # One handler only, even when called repeatedly (tests call main() many times).
    for handler in list(logger.handlers):
        if getattr(handler, "_healthsense", False):
            logger.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler._healthsense = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.propagate = False
    return logger


def progress_enabled() -> bool:
    """Whether progress bars should be drawn: only when the project logger shows INFO."""
    if os.environ.get("HEALTHSENSE_NO_PROGRESS"):
        return False
    return get_logger().getEffectiveLevel() <= logging.INFO


def progress(
    iterable: Iterable[T],
    *,
    total: int | None = None,
    desc: str | None = None,
    unit: str = "it",
    leave: bool = False,
) -> Iterator[T]:
    """Wrap an iterable in a tqdm bar that is silent when logging is above INFO.

    The bar writes to stderr so that ``--json`` output on stdout stays machine-readable.
    """
    from tqdm.auto import tqdm

    return iter(
        tqdm(
            iterable,
            total=total,
            desc=desc,
            unit=unit,
            leave=leave,
            disable=not progress_enabled(),
            file=sys.stderr,
            dynamic_ncols=True,
        )
    )


def seed_everything(seed: int | None, *, deterministic_torch: bool = False) -> np.random.Generator:
    """Seed Python, NumPy and (if installed) torch; return a NumPy Generator for local use.

    Parameters
    ----------
    seed : int or None
        ``None`` draws fresh entropy (the run is then not reproducible; the seed actually used
        should still be recorded by the caller from the returned generator's bit generator).
    deterministic_torch : bool
        Also ask torch for deterministic algorithms (slower; used by ``--deterministic``).
    """
    if seed is not None and (not isinstance(seed, int | np.integer) or seed < 0):
        raise ValueError(f"seed must be a non-negative integer or None, got {seed!r}")
    random.seed(seed)
    # The legacy global generator too: neurokit2 and older code draw from it.
    np.random.seed(None if seed is None else int(seed) % (2**32))  # noqa: NPY002
    try:
        import torch
    except ImportError:  # torch is a dependency, but keep the core importable without it
        torch = None
    if torch is not None and seed is not None:
        torch.manual_seed(int(seed))
        if deterministic_torch:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.benchmark = False
    return np.random.default_rng(seed)


def select_device(preference: str = "auto"):
    """Choose a torch device: ``auto`` prefers CUDA, then Apple MPS, then CPU.

    Parameters
    ----------
    preference : str
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``. Asking for a device that
        is not available is an error rather than a silent fallback, because a user who asked
        for the GPU wants to know when they are not getting it.
    """
    import torch

    pref = (preference or "auto").strip().lower()
    if pref == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if pref == "cpu":
        return torch.device("cpu")
    if pref.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError(f"device {preference!r} requested but CUDA is not available")
        device = torch.device(pref)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise RuntimeError(
                f"device {preference!r} requested but only {torch.cuda.device_count()} "
                "CUDA device(s) are visible"
            )
        return device
    if pref == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise RuntimeError("device 'mps' requested but Apple MPS is not available")
        return torch.device("mps")
    raise ValueError(f"unknown device {preference!r}; use auto, cpu, cuda, cuda:N or mps")


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256 of a bytes object."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike, *, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks so large videos do not fill memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def git_revision(path: str | os.PathLike | None = None) -> str | None:
    """The git commit of the source tree (with ``-dirty``), or None outside a checkout."""
    where = Path(path) if path is not None else Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=12"],
            cwd=where,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    rev = out.stdout.strip()
    return rev if out.returncode == 0 and rev else None


def _distribution_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def versions(*, include_git: bool = True) -> dict[str, str | None]:
    """Versions of Python, healthsense and every runtime dependency (None when missing).

    Written next to every result so that a number can be traced to the code that made it.
    """
    from healthsense._version import __version__

    info: dict[str, str | None] = {
        "healthsense": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    for dist in RUNTIME_DEPENDENCIES:
        info[dist] = _distribution_version(dist)
    if include_git:
        info["git_revision"] = git_revision()
    return info
