"""One eye, start to finish: input hashes, both tests, the referral decision.

:func:`screen_eye` is what a worker process (or a Dask worker) runs. It takes one picklable
:class:`EyeJob` and returns a plain JSON-able dict, and it never raises for anything an input
can do: a missing, corrupt or implausible file makes that test ``ungradable`` with a reason, a
library that is not installed makes it ``not_run``, and even an unexpected error inside a test
is caught and reported, so one bad eye never stops the run.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from healthsense.runtime import sha256_bytes
from healthsense.screening._common import TestNotAvailable, test_result
from healthsense.screening.config import ScreeningConfig
from healthsense.screening.kc_test import KcModel, run_keratoconus
from healthsense.screening.manifest import INPUT_COLUMNS, EyeCase
from healthsense.screening.retino_test import run_refraction

__all__ = ["DECISIONS", "EyeJob", "decide", "input_hashes", "job_key", "screen_eye"]

DECISIONS = ("REFER", "NO_REFER", "UNGRADABLE")
_TEST_NAMES = {"refraction": "refraction (retinoscopy)", "keratoconus": "keratoconus (topography)"}


@dataclass(frozen=True)
class EyeJob:
    """Everything a worker needs for one eye (picklable; paths absolute)."""

    case: EyeCase
    config: ScreeningConfig
    out_dir: str
    eye_dir: str
    key: str
    input_sha256: tuple[tuple[str, str | None], ...]
    kc_model: KcModel | None = None


def input_hashes(case: EyeCase) -> dict[str, str | None]:
    """SHA-256 of each input file the row names (None when it is missing or unreadable)."""
    from healthsense.runtime import sha256_file

    out: dict[str, str | None] = {}
    for column in INPUT_COLUMNS:
        path = case.path(column)
        if path is None:
            continue
        try:
            out[column] = sha256_file(path) if path.is_file() else None
        except OSError:
            out[column] = None
    return out


def job_key(
    case: EyeCase,
    hashes: dict[str, str | None],
    *,
    config_sha256: str,
    model_sha256: str | None,
    software: str,
) -> str:
    """What must be unchanged for a resumed run to reuse an eye's result.

    The inputs as written and their content hashes, the configuration, the model weights and
    the software version: change any of them and the eye is screened again.
    """
    payload = {
        "patient_id": case.patient_id,
        "eye": case.eye,
        "inputs": dict(case.inputs),
        "sha256": hashes,
        "reference": [case.reference_power_d, case.reference_keratoconus],
        "config": config_sha256,
        "model": model_sha256,
        "software": software,
    }
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return sha256_bytes(text.encode())


def _guarded(test: str, fn, *args, **kwargs) -> dict[str, Any]:
    try:
        return fn(*args, **kwargs)
    except TestNotAvailable as exc:
        return test_result(test, "not_run", f"not available: {exc}")
    except (OSError, ValueError) as exc:
        return test_result(test, "ungradable", str(exc))
    except Exception as exc:  # a bug or an unforeseen input must not stop the other eyes
        from healthsense.runtime import get_logger

        get_logger("screening").debug("%s test failed", test, exc_info=True)
        return test_result(test, "ungradable", f"internal error ({type(exc).__name__}: {exc})")


def decide(tests: list[dict[str, Any]], *, require_all_tests: bool = True) -> tuple[str, list[str]]:
    """The referral decision of one eye from its test results, with the reasons.

    REFER if any gradable test is positive (whatever the other test did); UNGRADABLE if no
    requested test is gradable, or (``require_all_tests``) a requested test is ungradable or
    not run and nothing is positive; NO_REFER otherwise. Tests the manifest did not request
    do not count.
    """
    requested = [t for t in tests if t["status"] != "not_requested"]
    if not requested:
        return "UNGRADABLE", ["no test input in the manifest"]
    gradable = [t for t in requested if t["status"] == "ok"]
    failed = [t for t in requested if t["status"] != "ok"]
    reasons = []
    for t in requested:  # in test order, so the text reads the same for every eye
        name = _TEST_NAMES.get(t["test"], t["test"])
        if t["status"] == "ok":
            reasons.append(f"{name} {'positive' if t['positive'] else 'negative'}")
        else:
            status = "not run" if t["status"] == "not_run" else "ungradable"
            reasons.append(f"{name} {status}: {t['reason']}")
    if any(t["positive"] for t in gradable):
        return "REFER", reasons
    if not gradable or (failed and require_all_tests):
        return "UNGRADABLE", reasons
    return "NO_REFER", reasons


def _relative_figures(result: dict[str, Any], out_dir: str) -> None:
    result["figures"] = {
        name: Path(os.path.relpath(path, out_dir)).as_posix()
        for name, path in result.get("figures", {}).items()
    }


def screen_eye(job: EyeJob) -> dict[str, Any]:
    """Run both tests on one eye and decide; returns the eye's result as a plain dict."""
    case, cfg = job.case, job.config
    eye_dir = Path(job.eye_dir) if cfg.figures else None
    if eye_dir is not None:
        eye_dir.mkdir(parents=True, exist_ok=True)
    refraction = _guarded("refraction", run_refraction, case, cfg.refraction, debug_dir=eye_dir)
    keratoconus = _guarded(
        "keratoconus",
        run_keratoconus,
        case,
        cfg.keratoconus,
        model=job.kc_model,
        figure_dir=eye_dir,
    )
    for result in (refraction, keratoconus):
        _relative_figures(result, job.out_dir)
    decision, reasons = decide([refraction, keratoconus], require_all_tests=cfg.require_all_tests)
    hashes = dict(job.input_sha256)
    return {
        "patient_id": case.patient_id,
        "eye": case.eye,
        "row": case.row,
        "key": job.key,
        "inputs": {c: {"path": p, "sha256": hashes.get(c)} for c, p in case.inputs},
        "reference_power_d": case.reference_power_d,
        "reference_keratoconus": case.reference_keratoconus,
        "refraction": refraction,
        "keratoconus": keratoconus,
        "decision": decision,
        "reasons": reasons,
    }
