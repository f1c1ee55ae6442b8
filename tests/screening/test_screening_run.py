"""Screening run end to end: decisions, bad inputs, atomic outputs, resume, executors, audit.

Inputs are real keratoconus cases made with the topography library (tiny grids), a corrupt
video, a corrupt case file and missing files; the retinoscopy pipeline is exercised with a
simulated clip in test_screening_pages.py.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from healthsense.screening import ScreeningConfig, run_screening
from healthsense.screening.audit import read_audit

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("ophthalmo.keratoconus.synthetic") is None,
    reason="the keratoconus library (synthetic cohorts) is not available",
)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Path:
    """A 3-patient manifest: good, corrupt and missing inputs, with reference labels."""
    from ophthalmo.keratoconus.synthetic import generate_cohort

    root = tmp_path_factory.mktemp("screen_cohort")
    generate_cohort(
        root / "kc", domain="topographer", n_eyes=6, random_state=3, image_size=64,
        grid_size=65, mm_per_px=0.15,
    )  # fmt: skip
    with open(root / "kc" / "generation.csv") as handle:
        gen = {r["case_id"]: r for r in csv.DictReader(handle)}
    normal = [k for k, r in gen.items() if r["rule_class"] == "normal"]
    kc = [k for k, r in gen.items() if r["rule_class"] == "keratoconus"]
    assert len(normal) >= 2 and len(kc) >= 2, "the seed must give both classes"
    (root / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video")
    (root / "corrupt.npz").write_bytes(b"PK\x03\x04 truncated zip")

    def eye(case_id):
        return case_id[-2:].upper()

    def lab(case_id):
        return gen[case_id]["label"]

    n1, n2, k1, k2 = normal[0], normal[1], kc[0], kc[1]
    rows = [
        # P1: a negative topography plus a corrupt video → the refraction is missing.
        ("P1", eye(n1), "corrupt.mp4", f"kc/raw/{n1}.npz", "", "", "-1.5", lab(n1)),
        # P2: keratoconus in the map and a missing video → REFER all the same.
        ("P2", eye(k1), "missing.mp4", f"kc/raw/{k1}.npz", "", "", "", lab(k1)),
        # P2 other eye: PNG heatmaps only.
        ("P2", "OS" if eye(k1) == "OD" else "OD", "", "", f"kc/axial/{k2}.png",
         f"kc/tangential/{k2}.png", "", lab(k2)),
        ("P3", "OD", "", "gone.npz", "", "", "", ""),
        ("P3", "OS", "", "corrupt.npz", "", "", "", "normal"),
        ("P4", eye(n2), "", f"kc/raw/{n2}.npz", "", "", "", lab(n2)),
    ]  # fmt: skip
    header = (
        "patient_id,eye,retinoscopy_video,topography_npz,axial_png,tangential_png,"
        "reference_power_d,reference_keratoconus"
    )
    (root / "manifest.csv").write_text(header + "\n" + "\n".join(",".join(r) for r in rows) + "\n")
    (root / "meta.json").write_text(json.dumps({"normal": normal, "kc": kc}))
    return root


def _csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _tmp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith(".tmp")]


@pytest.fixture(scope="module")
def first_run(cohort, tmp_path_factory):
    out = tmp_path_factory.mktemp("screen_out")
    summary = run_screening(cohort / "manifest.csv", out, config=ScreeningConfig())
    return out, summary


def test_end_to_end_decisions_and_reasons(cohort, first_run):
    out, summary = first_run
    rows = {(r["patient_id"], r["eye"]): r for r in _csv(out / "screening.csv")}
    assert len(rows) == 6 and summary.n_eyes == 6
    by_patient = {}
    for (p, _), r in rows.items():
        by_patient.setdefault(p, []).append(r)
    p1 = by_patient["P1"][0]
    assert p1["refraction_status"] == "ungradable"
    assert "corrupt.mp4" in p1["refraction_reason"]
    assert p1["keratoconus_status"] == "ok" and p1["keratoconus_positive"] == "no"
    assert p1["keratoconus_method"] == "index-rules"
    assert p1["decision"] == "UNGRADABLE"  # a requested test failed and nothing is positive
    p2 = {r["topography_npz"] != "": r for r in by_patient["P2"]}
    assert p2[True]["refraction_status"] == "ungradable"
    assert "missing.mp4: file not found" in p2[True]["refraction_reason"]
    assert p2[True]["keratoconus_positive"] == "yes" and p2[True]["decision"] == "REFER"
    assert p2[False]["keratoconus_status"] == "ok"  # from the PNG pair
    p3 = {r["eye"]: r for r in by_patient["P3"]}
    assert (
        p3["OD"]["decision"] == "UNGRADABLE" and "gone.npz: file not found" in p3["OD"]["reasons"]
    )
    assert p3["OS"]["decision"] == "UNGRADABLE" and "corrupt.npz" in p3["OS"]["reasons"]
    assert p3["OS"]["topography_npz_sha256"] and p3["OD"]["topography_npz_sha256"] == "missing"
    assert by_patient["P4"][0]["decision"] == "NO_REFER"
    assert summary.exit_code == 1  # some eyes are ungradable
    assert summary.counts == {"REFER": sum(r["decision"] == "REFER" for r in rows.values()),
                              "NO_REFER": 1, "UNGRADABLE": 3}  # fmt: skip
    # Input hashes are the files' sha256; the thresholds and versions are on every row.
    from healthsense.runtime import sha256_file

    r4 = by_patient["P4"][0]
    assert r4["topography_npz_sha256"] == sha256_file(cohort / r4["topography_npz"])
    assert {r["refer_power_threshold_d"] for r in rows.values()} == {"0.75"}
    assert all(r["software_version"].startswith("healthsense ") for r in rows.values())
    assert all(r["kc_model_version"] == "none (index rules)" for r in rows.values())


def test_png_pair_agrees_with_raw_map(cohort, first_run):
    """Decoding the heatmap PNGs loses at most one 1.5 D colour bin of central K."""
    from ophthalmo.keratoconus.indices import compute_indices
    from ophthalmo.keratoconus.io import load_case

    out, _ = first_run
    png_row = next(r for r in _csv(out / "screening.csv") if r["axial_png"])
    case_id = Path(png_row["axial_png"]).stem
    axial, _, mm, eye = load_case(cohort / "kc" / "raw" / f"{case_id}.npz")
    truth = compute_indices(axial, mm_per_px=mm, eye=eye)["central_k_d"]
    assert abs(float(png_row["keratoconus_central_k_d"]) - truth) <= 1.5


def test_outputs_complete_atomic_and_audited(cohort, first_run):
    out, summary = first_run
    for name in ("screening.csv", "summary.html", "config.json", "audit.jsonl"):
        assert (out / name).is_file(), name
    assert sorted(p.stem for p in (out / "patients").glob("*.html")) == ["P1", "P2", "P3", "P4"]
    assert _tmp_files(out) == []
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["config"]["refraction"]["refer_power_d"] == 0.75 and "versions" in cfg
    (record,) = read_audit(out / "audit.jsonl")
    for key in ("time_utc", "user", "host", "command", "versions", "config_sha256"):
        assert record[key], key
    assert record["exit_code"] == 1 and record["counts"] == summary.counts
    outputs = {o["path"]: o["sha256"] for o in record["outputs"]}
    from healthsense.runtime import sha256_file

    assert outputs["screening.csv"] == sha256_file(out / "screening.csv")
    assert {i["column"] for i in record["inputs"]} >= {"topography_npz", "retinoscopy_video"}
    html = (out / "summary.html").read_text()
    assert "Research software, not a medical device" in html
    assert "Wilson" in html and "STARD flow" in html


def test_summary_accuracy_matches_the_csv(first_run):
    """Sensitivity/specificity in the summary are recomputed independently from the CSV."""
    from healthsense.metrics import wilson_interval

    out, summary = first_run
    rows = _csv(out / "screening.csv")
    graded = [r for r in rows if r["keratoconus_status"] == "ok" and r["reference_keratoconus"]]
    tp = sum(
        r["keratoconus_positive"] == "yes" and r["reference_keratoconus"] == "yes" for r in graded
    )
    fn = sum(
        r["keratoconus_positive"] == "no" and r["reference_keratoconus"] == "yes" for r in graded
    )
    kc = next(d for d in summary.diagnostics if d["target"] == "keratoconus")
    assert (kc["tp"], kc["fn"]) == (tp, fn)
    assert kc["sensitivity"] == pytest.approx(tp / (tp + fn))
    assert kc["sensitivity_ci"] == pytest.approx(list(wilson_interval(tp, tp + fn)))
    # The eye with a corrupt case file has a reference but no index-test result.
    assert kc["ungradable"] == 1


def test_rerun_gives_identical_csv_and_appends_audit(cohort, first_run, tmp_path):
    out, _ = first_run
    again = tmp_path / "again"
    shutil.copytree(out, again)
    run_screening(cohort / "manifest.csv", again)
    assert (again / "screening.csv").read_bytes() == (out / "screening.csv").read_bytes()
    assert len(read_audit(again / "audit.jsonl")) == 2  # appended, the first line kept


def test_resume_skips_unchanged_and_redoes_changed(cohort, tmp_path):
    from ophthalmo.keratoconus.io import load_case, save_case

    src = tmp_path / "src"
    shutil.copytree(cohort, src)
    out = tmp_path / "out"
    first = run_screening(src / "manifest.csv", out)
    reference = (out / "screening.csv").read_bytes()
    resumed = run_screening(src / "manifest.csv", out, resume=True)
    assert (resumed.n_reused, resumed.n_screened) == (6, 0)
    assert (out / "screening.csv").read_bytes() == reference
    # Change one input: exactly that eye is screened again.
    p4 = next(r for r in first.results if r["patient_id"] == "P4")
    path = src / p4["inputs"]["topography_npz"]["path"]
    axial, tangential, mm, eye = load_case(path)
    save_case(path, axial + 0.25, tangential, mm_per_px=mm, eye=eye)
    changed = run_screening(src / "manifest.csv", out, resume=True)
    assert (changed.n_reused, changed.n_screened) == (5, 1)
    new = next(r for r in changed.results if r["patient_id"] == "P4")
    assert new["keratoconus"]["central_k_d"] == pytest.approx(
        p4["keratoconus"]["central_k_d"] + 0.25, abs=1e-3
    )
    # Change the configuration: every eye is screened again.
    cfg = ScreeningConfig(require_all_tests=False)
    redone = run_screening(src / "manifest.csv", out, config=cfg, resume=True)
    assert (redone.n_reused, redone.n_screened) == (0, 6)
    p1 = next(r for r in redone.results if r["patient_id"] == "P1")
    assert p1["decision"] == "NO_REFER"  # the documented effect of require_all_tests=false


def test_killed_run_keeps_finished_eyes_and_resumes(cohort, tmp_path, monkeypatch):
    import healthsense.screening.runner as runner

    real = runner.screen_eye
    calls = []

    def dies_on_third(job):
        calls.append(job.case.key)
        if len(calls) == 3:
            raise KeyboardInterrupt  # what a Ctrl-C or a kill looks like mid-run
        return real(job)

    out = tmp_path / "out"
    monkeypatch.setattr(runner, "screen_eye", dies_on_third)
    with pytest.raises(KeyboardInterrupt):
        run_screening(cohort / "manifest.csv", out)
    assert not (out / "screening.csv").exists()
    assert len(list(out.glob("eyes/*/result.json"))) == 2
    assert _tmp_files(out) == []
    monkeypatch.setattr(runner, "screen_eye", real)
    resumed = run_screening(cohort / "manifest.csv", out, resume=True)
    assert (resumed.n_reused, resumed.n_screened) == (2, 4)
    fresh = run_screening(cohort / "manifest.csv", tmp_path / "fresh")
    assert (out / "screening.csv").read_bytes() == fresh.csv.read_bytes()


def test_damaged_stored_result_is_redone(cohort, tmp_path):
    out = tmp_path / "out"
    run_screening(cohort / "manifest.csv", out)
    victim = sorted(out.glob("eyes/*/result.json"))[0]
    victim.write_text("{ half a json")
    resumed = run_screening(cohort / "manifest.csv", out, resume=True)
    assert (resumed.n_reused, resumed.n_screened) == (5, 1)
    json.loads(victim.read_text())  # rewritten whole


def test_process_pool_matches_serial(cohort, first_run, tmp_path):
    out, _ = first_run
    pooled = run_screening(cohort / "manifest.csv", tmp_path / "pool", workers=2)
    assert pooled.csv.read_bytes() == (out / "screening.csv").read_bytes()


def test_dask_local_cluster_matches_local(cohort, first_run, tmp_path):
    pytest.importorskip("distributed")
    from distributed import LocalCluster

    out, _ = first_run
    with LocalCluster(
        n_workers=1, processes=False, threads_per_worker=1, dashboard_address=None
    ) as cluster:
        result = run_screening(
            cohort / "manifest.csv",
            tmp_path / "dask",
            executor="dask",
            scheduler=cluster.scheduler_address,
        )
    assert result.csv.read_bytes() == (out / "screening.csv").read_bytes()
    assert read_audit(tmp_path / "dask" / "audit.jsonl")[0]["executor"] == "dask"


def test_worker_failure_is_ungradable_and_not_stored(cohort, tmp_path, monkeypatch):
    """An executor-level failure (a killed worker) is reported and retried on --resume."""
    import healthsense.screening.runner as runner

    real = runner.screen_eye

    def broken(job):
        if job.case.patient_id == "P4":
            raise RuntimeError("worker lost")
        return real(job)

    monkeypatch.setattr(runner, "screen_eye", broken)
    out = tmp_path / "out"
    summary = run_screening(cohort / "manifest.csv", out)
    p4 = next(r for r in summary.results if r["patient_id"] == "P4")
    assert p4["decision"] == "UNGRADABLE" and "worker failed" in p4["reasons"][0]
    assert not (Path(out) / "eyes" / f"P4_{p4['eye']}" / "result.json").exists()
    monkeypatch.setattr(runner, "screen_eye", real)
    again = run_screening(cohort / "manifest.csv", out, resume=True)
    assert again.n_screened == 1
    assert next(r for r in again.results if r["patient_id"] == "P4")["decision"] == "NO_REFER"


def test_cli_end_to_end_json_and_exit_code(cohort, run_cli, tmp_path):
    out = tmp_path / "cli"
    code, stdout, _ = run_cli(
        "screen", str(cohort / "manifest.csv"), "--out", str(out), "--json",
        "keratoconus.refer_suspect=true",
    )  # fmt: skip
    assert code == 1
    payload = json.loads(stdout.strip().splitlines()[-1])
    assert payload["eyes"] == 6 and payload["ungradable"] == 3
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["config"]["keratoconus"]["refer_suspect"] is True
    assert np.isfinite(cfg["config"]["refraction"]["refer_power_d"])
