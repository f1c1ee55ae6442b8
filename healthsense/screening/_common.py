"""Small pieces shared by the screening adapters and the runner (no domain imports here)."""

from __future__ import annotations

import math
import re
from typing import Any

__all__ = [
    "STATUSES",
    "TestNotAvailable",
    "rounded",
    "safe_name",
    "test_result",
]

#: ``ok``: gradable result; ``ungradable``: input present but no usable result (reason given);
#: ``not_run``: the library for this test is not available here; ``not_requested``: the
#: manifest gives no input for it.
STATUSES = ("ok", "ungradable", "not_run", "not_requested")


class TestNotAvailable(RuntimeError):
    """The library behind a test is not installed or not built yet: the test is not run."""

    __test__ = False  # not a pytest class, despite the name


def rounded(value: Any, digits: int = 4) -> Any:
    """Round floats for the outputs (stable CSV text); NaN/inf become None; others unchanged."""
    if isinstance(value, bool) or value is None:
        return value
    try:
        import numpy as np

        if isinstance(value, np.generic):
            value = value.item()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return round(value, digits) + 0.0  # + 0.0 turns -0.0 into 0.0
    return value


def test_result(test: str, status: str, reason: str = "", **values: Any) -> dict[str, Any]:
    """A test's result as a plain JSON-able dict (``positive`` is None unless gradable)."""
    if status not in STATUSES:
        raise ValueError(f"unknown test status {status!r}")
    out: dict[str, Any] = {
        "test": test,
        "status": status,
        "reason": reason,
        "positive": None,
        "finding": "",
        "figures": {},
    }
    out.update({k: rounded(v) for k, v in values.items()})
    return out


test_result.__test__ = False  # type: ignore[attr-defined]


def safe_name(text: str) -> str:
    """A file-name-safe version of an identifier (a short hash keeps altered names unique)."""
    import hashlib

    clean = re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._") or "x"
    if clean != text:
        clean = f"{clean[:60]}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"
    return clean
