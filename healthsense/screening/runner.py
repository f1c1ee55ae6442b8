"""The screening run: manifest in, ``screening.csv``, pages, summary and audit trail out.

Order of work, chosen so that a clinic can trust the outputs:

1. read and validate the whole manifest and the model checkpoint (any error stops here,
   before anything is screened or written);
2. hash every input; with ``resume``, reuse each eye whose stored result has the same key
   (inputs as written, their sha256, configuration, model weights, software version);
3. screen the other eyes on the chosen executor, writing each eye's ``result.json``
   atomically the moment it arrives (a killed run keeps every finished eye);
4. write ``screening.csv``, one page per patient, ``summary.html`` and ``config.json``
   atomically, then append one line to ``audit.jsonl``.

The CSV has no timestamps and its rows follow the manifest, so re-running on the same inputs
gives a byte-identical file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from healthsense.runtime import get_logger
from healthsense.screening._common import rounded, safe_name
from healthsense.screening.cases import EyeJob, input_hashes, job_key, screen_eye
from healthsense.screening.config import ScreeningConfig, config_sha256
from healthsense.screening.kc_test import KcModel, load_kc_model
from healthsense.screening.manifest import INPUT_COLUMNS, read_manifest
from healthsense.screening.retino_test import camera_profile_path

__all__ = ["CSV_COLUMNS", "ScreeningSummary", "csv_row", "run_screening"]

log = get_logger("screening")

_REFRACTION_FIELDS = (
    "status",
    "reason",
    "positive",
    "power_d",
    "sphere_d",
    "cylinder_d",
    "axis_deg",
    "se_d",
    "max_meridian_d",
    "confidence",
    "motion",
    "working_distance_m",
)
_KC_FIELDS = (
    "status",
    "reason",
    "positive",
    "method",
    "probability",
    "threshold",
    "rule_class",
    "kisa_pct",
    "central_k_d",
    "i_s_d",
)
CSV_COLUMNS = (
    ("patient_id", "eye", "decision", "reasons")
    + tuple(x for c in INPUT_COLUMNS for x in (c, f"{c}_sha256"))
    + tuple(f"refraction_{f}" for f in _REFRACTION_FIELDS)
    + tuple(f"keratoconus_{f}" for f in _KC_FIELDS)
    + (
        "reference_power_d",
        "reference_keratoconus",
        "refer_power_threshold_d",
        "kc_model_version",
        "kc_model_sha256",
        "config_sha256",
        "software_version",
    )
)


@dataclass
class ScreeningSummary:
    """What a screening run did and where its outputs are."""

    out_dir: Path
    counts: dict[str, int]
    n_eyes: int
    n_screened: int
    n_reused: int
    exit_code: int
    csv: Path
    summary_html: Path
    pages: list[Path]
    audit: Path
    config_json: Path
    results: list[dict[str, Any]] = field(default_factory=list, repr=False)
    diagnostics: list[dict[str, Any]] = field(default_factory=list, repr=False)

    @property
    def ungradable_reasons(self) -> list[str]:
        return [
            f"{r['patient_id']}/{r['eye']}: " + "; ".join(r["reasons"])
            for r in self.results
            if r["decision"] == "UNGRADABLE"
        ]


def _yes_no(value: Any) -> str:
    return "" if value is None else ("yes" if value else "no")


def csv_row(result: dict[str, Any], *, context: dict[str, Any]) -> dict[str, Any]:
    """Flatten one eye's result into a ``screening.csv`` row."""
    row: dict[str, Any] = {
        "patient_id": result["patient_id"],
        "eye": result["eye"],
        "decision": result["decision"],
        "reasons": " | ".join(result["reasons"]),
    }
    for column in INPUT_COLUMNS:
        given = result["inputs"].get(column)
        row[column] = given["path"] if given else ""
        row[f"{column}_sha256"] = (given or {}).get("sha256") or ("missing" if given else "")
    for prefix, fields, test in (
        ("refraction", _REFRACTION_FIELDS, result["refraction"]),
        ("keratoconus", _KC_FIELDS, result["keratoconus"]),
    ):
        for f in fields:
            value = test.get(f)
            row[f"{prefix}_{f}"] = _yes_no(value) if f == "positive" else rounded(value)
    row["reference_power_d"] = rounded(result.get("reference_power_d"))
    row["reference_keratoconus"] = _yes_no(result.get("reference_keratoconus"))
    row.update(context)
    return row


def _transient_result(job: EyeJob, error: str) -> dict[str, Any]:
    from healthsense.screening._common import test_result

    reason = f"not screened: the worker failed ({error}); run again with --resume"
    tests = {
        name: test_result(name, "ungradable", reason) for name in ("refraction", "keratoconus")
    }
    hashes = dict(job.input_sha256)
    return {
        "patient_id": job.case.patient_id,
        "eye": job.case.eye,
        "row": job.case.row,
        "key": job.key,
        "inputs": {c: {"path": p, "sha256": hashes.get(c)} for c, p in job.case.inputs},
        "reference_power_d": job.case.reference_power_d,
        "reference_keratoconus": job.case.reference_keratoconus,
        **tests,
        "decision": "UNGRADABLE",
        "reasons": [reason],
        "transient": True,
    }


def _load_previous(path: Path, key: str) -> dict[str, Any] | None:
    from healthsense.report import read_json

    if not path.is_file():
        return None
    try:
        previous = read_json(path)
    except (OSError, ValueError):
        return None  # a damaged result is simply redone
    if not isinstance(previous, dict) or previous.get("key") != key:
        return None
    figures = [
        f
        for test in ("refraction", "keratoconus")
        for f in previous.get(test, {}).get("figures", {}).values()
    ]
    if not all((path.parents[2] / f).is_file() for f in figures):
        return None
    return previous


def run_screening(
    manifest_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    config: ScreeningConfig | None = None,
    kc_model: str | os.PathLike | KcModel | None = None,
    workers: int = 1,
    executor: str = "local",
    scheduler: Any = None,
    resume: bool = False,
    seed: int | None = None,
    command: str | None = None,
) -> ScreeningSummary:
    """Screen every eye of a manifest and write the outputs to ``out_dir``.

    Parameters
    ----------
    manifest_path : path-like
        The manifest CSV (see :mod:`healthsense.screening.manifest`).
    out_dir : path-like
        Output folder (created).
    config : ScreeningConfig, optional
        Thresholds and test options (defaults: :class:`ScreeningConfig`).
    kc_model : path-like or KcModel, optional
        A keratoconus checkpoint; without it the keratoconus test uses the index rules.
    workers : int
        Process-pool size of the local executor.
    executor : {"local", "dask"}
    scheduler : str or distributed.Client, optional
        The Dask scheduler (``executor="dask"`` only).
    resume : bool
        Reuse stored results of eyes whose inputs, configuration, model and software are
        unchanged.
    seed : int, optional
        Recorded with the configuration (the screening itself draws nothing at random).

    Returns
    -------
    ScreeningSummary
        ``exit_code`` is 0 when every eye was graded and 1 when some are UNGRADABLE.

    Raises
    ------
    ManifestError
        For an unusable manifest (nothing has been run or written).
    FileNotFoundError, ValueError
        For a missing or invalid checkpoint, or invalid executor options (before any work).
    """
    from healthsense import __version__
    from healthsense.config import config_to_dict, write_config
    from healthsense.report import write_csv, write_json
    from healthsense.runtime import sha256_file
    from healthsense.screening.audit import append_audit
    from healthsense.screening.executors import EXECUTORS
    from healthsense.screening.pages import write_patient_pages, write_summary

    config = config or ScreeningConfig()
    manifest_path = Path(manifest_path)
    cases = read_manifest(manifest_path)
    if executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    if executor == "dask" and not scheduler:
        raise ValueError("the Dask executor needs a scheduler address (--scheduler HOST:PORT)")
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    camera = camera_profile_path(config.refraction, manifest_path.resolve().parent)
    if camera is not None and not camera.is_file():
        from healthsense.config import ConfigError

        raise ConfigError(f"refraction.camera_profile: file not found: {camera}")
    model = (
        kc_model if isinstance(kc_model, KcModel) or kc_model is None else load_kc_model(kc_model)
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg_hash = config_sha256(config)

    jobs: list[EyeJob] = []
    for case in cases:
        hashes = input_hashes(case)
        key = job_key(
            case,
            hashes,
            config_sha256=cfg_hash,
            model_sha256=model.sha256 if model else None,
            software=__version__,
        )
        eye_dir = out / "eyes" / f"{safe_name(case.patient_id)}_{case.eye}"
        jobs.append(
            EyeJob(
                case=case,
                config=config,
                out_dir=str(out.resolve()),
                eye_dir=str(eye_dir.resolve()),
                key=key,
                input_sha256=tuple(hashes.items()),
                kc_model=model,
            )
        )
    results: list[dict[str, Any] | None] = [None] * len(jobs)
    if resume:
        for i, job in enumerate(jobs):
            results[i] = _load_previous(Path(job.eye_dir) / "result.json", job.key)
    todo = [i for i, r in enumerate(results) if r is None]
    n_reused = len(jobs) - len(todo)
    log.info("screening %d eyes (%d reused from a previous run) into %s", len(todo), n_reused, out)

    def on_result(j: int, result: dict[str, Any]) -> None:
        index = todo[j]
        if result.get("transient"):
            results[index] = _transient_result(jobs[index], result.get("error", "unknown"))
            return
        write_json(Path(jobs[index].eye_dir) / "result.json", result)
        results[index] = result

    from healthsense.screening.executors import run_jobs

    run_jobs(
        screen_eye,
        [jobs[i] for i in todo],
        on_result,
        executor=executor,
        workers=workers,
        scheduler=scheduler,
    )
    final: list[dict[str, Any]] = [r for r in results if r is not None]
    context = {
        "refer_power_threshold_d": config.refraction.refer_power_d,
        "kc_model_version": model.version if model else "none (index rules)",
        "kc_model_sha256": model.sha256 if model else "",
        "config_sha256": cfg_hash,
        "software_version": f"healthsense {__version__}",
    }
    csv_path = write_csv(
        out / "screening.csv",
        [csv_row(r, context=context) for r in final],
        columns=list(CSV_COLUMNS),
    )
    pages = write_patient_pages(final, out, config=config, model=model)
    summary_path, diagnostics = write_summary(
        final, out, config=config, model=model, manifest=manifest_path, pages=pages
    )
    config_json = write_config(
        config,
        out,
        command=command or "healthsense.screening.run_screening",
        extra={
            "manifest": str(manifest_path.resolve()),
            "kc_model": {"path": model.path, "sha256": model.sha256, "version": model.version}
            if model
            else None,
            "executor": executor,
            "workers": workers,
            "seed": seed,
            "config_sha256": cfg_hash,
        },
    )
    counts = {
        d: sum(r["decision"] == d for r in final) for d in ("REFER", "NO_REFER", "UNGRADABLE")
    }
    exit_code = 1 if counts["UNGRADABLE"] else 0
    outputs = [csv_path, summary_path, config_json, *pages.values()]
    audit_path = out / "audit.jsonl"
    append_audit(
        audit_path,
        {
            "event": "screening",
            "versions": _versions(),
            "config_sha256": cfg_hash,
            "config": config_to_dict(config),
            "manifest": {
                "path": str(manifest_path.resolve()),
                "sha256": sha256_file(manifest_path),
            },
            "kc_model": {"path": model.path, "sha256": model.sha256, "version": model.version}
            if model
            else None,
            "executor": executor,
            "workers": workers,
            "resume": resume,
            "eyes": len(final),
            "screened": len(todo),
            "reused": n_reused,
            "counts": counts,
            "exit_code": exit_code,
            "inputs": [
                {"eye": f"{r['patient_id']}/{r['eye']}", "column": c, **v}
                for r in final
                for c, v in r["inputs"].items()
            ],
            "outputs": [
                {"path": Path(os.path.relpath(p, out)).as_posix(), "sha256": sha256_file(p)}
                for p in outputs
            ],
        },
    )
    return ScreeningSummary(
        out_dir=out,
        counts=counts,
        n_eyes=len(final),
        n_screened=len(todo),
        n_reused=n_reused,
        exit_code=exit_code,
        csv=csv_path,
        summary_html=summary_path,
        pages=list(pages.values()),
        audit=audit_path,
        config_json=config_json,
        results=final,
        diagnostics=diagnostics,
    )


def _versions() -> dict[str, Any]:
    from healthsense.runtime import versions

    return versions()
