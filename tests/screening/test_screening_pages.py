"""Screening pages in a real browser, and the two adapters on real library outputs.

- headless Chromium loads ``summary.html`` and a patient page from file:// with no console
  errors, and the tables and images are in the rendered DOM (a page with a script error and
  a broken image is the negative control that proves the check can fail);
- the retinoscopy adapter on a simulated clip (when the video pipeline is installed);
- the keratoconus CNN adapter with a freshly trained tiny checkpoint (slow).
"""

from __future__ import annotations

import csv
import importlib.util
import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from healthsense.screening import ScreeningConfig, run_screening

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
_HAVE_KC = importlib.util.find_spec("ophthalmo.keratoconus.synthetic") is not None


def _have(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def _chromium(url: str, profile: Path, *extra: str) -> subprocess.CompletedProcess:
    args = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        *extra,
        url,
    ]
    return subprocess.run(args, capture_output=True, text=True, timeout=90, check=False)


def _console_errors(stderr: str) -> list[str]:
    """Console messages and failed loads that the page itself caused (not chromium's own
    sandbox/dbus chatter, which is about the headless machine, not the page)."""
    pattern = re.compile(r"CONSOLE|Uncaught|net::ERR_|Failed to load resource|Not allowed to load")
    return [line for line in stderr.splitlines() if pattern.search(line)]


def _load(page: Path, profile: Path) -> tuple[str, list[str]]:
    proc = _chromium(page.resolve().as_uri(), profile, "--dump-dom")
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout, _console_errors(proc.stderr)


@pytest.fixture(scope="module")
def screened(tmp_path_factory):
    if not _HAVE_KC:
        pytest.skip("the keratoconus library (synthetic cohorts) is not available")
    from ophthalmo.keratoconus.synthetic import generate_cohort

    root = tmp_path_factory.mktemp("pages")
    generate_cohort(
        root / "kc", domain="topographer", n_eyes=2, random_state=5, image_size=64,
        grid_size=65, mm_per_px=0.15,
    )  # fmt: skip
    with open(root / "kc" / "labels.csv") as handle:
        labels = list(csv.DictReader(handle))
    (root / "bad.mp4").write_bytes(b"not a video at all")
    lines = ["patient_id,eye,retinoscopy_video,topography_npz,reference_keratoconus"]
    for i, row in enumerate(labels):
        video = "bad.mp4" if i == 0 else ""
        lines.append(f"<P&1>,{row['eye']},{video},kc/{row['raw']},{row['label']}")
    (root / "manifest.csv").write_text("\n".join(lines) + "\n")
    out = root / "out"
    summary = run_screening(root / "manifest.csv", out)
    return out, summary


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (CI installs it by apt)")
def test_pages_render_in_headless_chromium(screened, tmp_path):
    out, summary = screened
    (page,) = summary.pages
    assert "<P&1>" not in page.name  # an unsafe patient id becomes a safe file name
    dom, errors = _load(out / "summary.html", tmp_path / "p1")
    assert errors == []
    for table in ("counts", "eyes", "accuracy"):
        assert f'id="{table}"' in dom, table
    assert dom.count("<img") >= 1 and "data:image/png;base64," in dom
    assert "&lt;P&amp;1&gt;" in dom  # escaped, not injected
    assert "Research software, not a medical device" in dom
    dom, errors = _load(page, tmp_path / "p2")
    assert errors == []
    assert 'id="decisions"' in dom and "<table" in dom
    assert dom.count("<img") >= 2  # a curvature heatmap figure per eye
    shot = tmp_path / "summary.png"
    proc = _chromium(
        (out / "summary.html").resolve().as_uri(),
        tmp_path / "p3",
        f"--screenshot={shot}",
        "--window-size=1100,1600",
    )
    assert proc.returncode == 0 and shot.is_file()
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (CI installs it by apt)")
def test_browser_check_detects_a_broken_page(tmp_path):
    bad = tmp_path / "bad.html"
    bad.write_text(
        "<!DOCTYPE html><html><body><table><tr><td>x</td></tr></table>"
        '<img src="missing.png"><script>console.error("boom"); undefinedCall();</script>'
        "</body></html>"
    )
    _, errors = _load(bad, tmp_path / "p")
    assert errors, "the console-error scan must catch a script error and a missing image"


@pytest.mark.skipif(
    not (_have("ophthalmo.retinoscopy.simulate") and _have("ophthalmo.retinoscopy.estimate")),
    reason="the retinoscopy simulator or video pipeline is not available yet",
)
def test_refraction_adapter_on_a_simulated_clip(tmp_path):
    from ophthalmo.retinoscopy.simulate import simulate_cohort

    clips = tmp_path / "clips"
    manifest = simulate_cohort(
        clips, 1, difficulty="easy", random_state=1, width=640, height=360, duration_s=2.0
    )
    with open(manifest) as handle:
        (truth,) = list(csv.DictReader(handle))
    other = "OS" if truth["eye"] == "OD" else "OD"
    (clips / "screen.csv").write_text(
        "patient_id,eye,retinoscopy_video,reference_power_d\n"
        f"S1,{truth['eye']},{truth['video']},{truth['power_d']}\n"
        f"S1,{other},{truth['video']},\n"  # the markers show the other eye
    )
    cfg = ScreeningConfig(figures=False)
    cfg = replace(cfg, refraction=replace(cfg.refraction, camera_profile="camera.json"))
    summary = run_screening(clips / "screen.csv", tmp_path / "out", config=cfg)
    right, wrong = summary.results
    ref = right["refraction"]
    assert "internal error" not in ref["reason"]
    assert ref["status"] in ("ok", "ungradable")
    # The adapter hands the clip, camera profile and optics to the pipeline faithfully: its
    # number is the pipeline's own (the pipeline's accuracy is tested in its own suite).
    from ophthalmo.retinoscopy.estimate import estimate_power

    direct = estimate_power(clips / truth["video"], camera=clips / "camera.json")
    assert ref["status"] == direct.status
    if ref["status"] == "ok":
        assert ref["power_d"] == pytest.approx(direct.power_d, abs=1e-4)
        assert ref["positive"] == (abs(ref["power_d"]) >= 0.75)
        assert right["decision"] == ("REFER" if ref["positive"] else "NO_REFER")
        assert wrong["refraction"]["status"] == "ungradable"
        assert "laterality mismatch" in wrong["refraction"]["reason"]
    else:
        assert ref["reason"]


@pytest.mark.slow
@pytest.mark.skipif(not _have("ophthalmo.keratoconus.train"), reason="no keratoconus model code")
def test_cnn_adapter_with_a_trained_checkpoint(screened, tmp_path):
    from ophthalmo.keratoconus.synthetic import generate_cohort
    from ophthalmo.keratoconus.train import (
        DatasetOptions,
        ModelOptions,
        OptimOptions,
        TrainConfig,
        train,
    )

    data = tmp_path / "train"
    generate_cohort(data, domain="topographer", n_eyes=8, random_state=2, image_size=32,
                    grid_size=65, mm_per_px=0.15)  # fmt: skip
    cfg = TrainConfig(
        data=str(data), out=str(tmp_path / "model"), device="cpu",
        dataset=DatasetOptions(image_size=32, val_fraction=0.34), model=ModelOptions(width=4),
        optim=OptimOptions(epochs=1, batch_size=2, patience=1),
    )  # fmt: skip
    fit = train(cfg)
    out, _ = screened
    manifest = out.parent / "manifest.csv"
    result = run_screening(manifest, tmp_path / "cnn", kc_model=fit.checkpoint)
    for eye in result.results:
        kc = eye["keratoconus"]
        assert kc["method"] == "cnn"
        assert 0.0 <= kc["probability"] <= 1.0
        assert kc["threshold"] == pytest.approx(fit.card["threshold"], abs=1e-4)
        assert kc["positive"] == (kc["probability"] >= kc["threshold"])
    with open(result.csv) as handle:
        rows = list(csv.DictReader(handle))
    from healthsense.runtime import sha256_file

    assert {r["kc_model_sha256"] for r in rows} == {sha256_file(fit.checkpoint)}
    assert all(r["kc_model_version"].startswith("healthsense") for r in rows)
