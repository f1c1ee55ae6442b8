"""The audit trail: ``audit.jsonl``, one JSON object per screening run, append-only.

Unlike every other output (replaced atomically), the audit log only ever grows: each run
appends exactly one line in a single ``write`` on a file opened in append mode, then flushes
and fsyncs it, so a crash can at worst lose the line of the run that crashed, never an earlier
one. The line records when (UTC), who (user, host), what (command line, software versions,
configuration hash) and on which data (sha256 of every input and output).
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["append_audit", "read_audit"]


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry in some containers
        return os.environ.get("USER", "unknown")


def append_audit(path: str | os.PathLike, record: Mapping[str, Any]) -> dict[str, Any]:
    """Append one run's record (time, user, host and command are added) and fsync it.

    Returns the full record written.
    """
    from healthsense.report import to_jsonable

    full = {
        "time_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "user": _user(),
        "host": socket.gethostname(),
        "command": list(sys.argv),
        "pid": os.getpid(),
        **dict(record),
    }
    line = json.dumps(to_jsonable(full), sort_keys=False, allow_nan=False) + "\n"
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(line)
        handle.flush()
        os.fsync(handle.fileno())
    return full


def read_audit(path: str | os.PathLike) -> list[dict[str, Any]]:
    """All records of an audit log (a torn last line from a crash is skipped)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: audit log not found")
    records = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if not line:
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records
