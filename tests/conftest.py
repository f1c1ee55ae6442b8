"""Shared test fixtures: the real-data folder, temporary outputs, quiet progress bars."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("HEALTHSENSE_NO_PROGRESS", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
#: Real recordings and device exports live beside the repository, never inside it.
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The ``../shared/data`` folder; tests that need it skip with a reason where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent (see datasets/README.md)")
    return SHARED_DATA


@pytest.fixture()
def run_cli(capsys):
    """Run the ``healthsense`` command in-process; returns (exit code, stdout, stderr)."""
    from healthsense.cli.main import main

    def _run(*argv: str) -> tuple[int, str, str]:
        try:
            code = main(list(argv))
        except SystemExit as exc:  # argparse --help / --version / usage errors
            code = exc.code if isinstance(exc.code, int) else 1
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return _run
