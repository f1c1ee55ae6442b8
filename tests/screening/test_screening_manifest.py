"""Screening run: manifest validation, configuration, the referral decision rule."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from healthsense.config import ConfigError
from healthsense.screening import ManifestError, decide, load_screening_config, read_manifest
from healthsense.screening._common import test_result as make_result
from healthsense.screening.retino_test import combine_meridians

HEADER = "patient_id,eye,retinoscopy_video,topography_npz,reference_power_d,reference_keratoconus\n"


def _write(tmp_path, text, name="manifest.csv", mode="w"):
    path = tmp_path / name
    if mode == "wb":
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_manifest_reads_rows_resolves_paths_and_references(tmp_path):
    path = _write(
        tmp_path,
        HEADER + "p1,od,videos/a.mp4,,-1.25,normal\np1,OS,,maps/b.npz,,1\np2,OD,,,,\n",
    )
    cases = read_manifest(path)
    assert [c.key for c in cases] == ["p1/OD", "p1/OS", "p2/OD"]
    assert [c.row for c in cases] == [2, 3, 4]
    assert cases[0].given("retinoscopy_video") == "videos/a.mp4"
    assert cases[0].path("retinoscopy_video") == tmp_path.resolve() / "videos" / "a.mp4"
    assert cases[0].reference_power_d == -1.25 and cases[0].reference_keratoconus is False
    assert cases[1].reference_keratoconus is True and cases[1].reference_power_d is None
    assert cases[0].wants_refraction and not cases[0].wants_keratoconus
    assert cases[1].wants_keratoconus and not cases[1].wants_refraction
    assert not cases[2].wants_refraction and not cases[2].wants_keratoconus


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("patient_id,retinoscopy_video\np1,a.mp4\n", "missing required column(s) eye"),
        (
            "patient_id,eye,retinoscopy_vidoe\np1,OD,a.mp4\n",
            "unknown column(s) 'retinoscopy_vidoe'",
        ),
        ("patient_id,eye\np1,OD\np1,od\n", "duplicate eye p1/OD (first on row 2)"),
        ("patient_id,eye\np1,OU\n", "eye must be OD or OS"),
        ("patient_id,eye\n,OD\n", "empty patient_id"),
        ("patient_id,eye\n", "no rows"),
        ("", "empty"),
        ("patient_id,eye,axial_png,tangential_png\np1,OD,a.png,\n", "tangential_png"),
        (
            "patient_id,eye,retinoscopy_video,retinoscopy_horizontal,retinoscopy_vertical\n"
            "p1,OD,a.mp4,h.mp4,v.mp4\n",
            "not both",
        ),
        ("patient_id,eye,reference_power_d\np1,OD,minus two\n", "not a number of dioptres"),
        ("patient_id,eye,reference_power_d\np1,OD,nan\n", "plausible"),
        ("patient_id,eye,reference_keratoconus\np1,OD,maybe\n", "not a reference diagnosis"),
        ("patient_id,eye\np1,OD,extra\n", "more cells than header"),
        ("patient_id,eye,camera_profile\np1,OD,phone.json\n", "without a retinoscopy video"),
    ],
)
def test_manifest_errors_name_the_problem(tmp_path, text, message):
    path = _write(tmp_path, text)
    with pytest.raises(ManifestError) as info:
        read_manifest(path)
    assert message in str(info.value)
    assert str(path) in str(info.value)


def test_manifest_unreadable_and_missing(tmp_path):
    with pytest.raises(ManifestError, match="manifest not found"):
        read_manifest(tmp_path / "nope.csv")
    binary = _write(tmp_path, b"\xff\xfe\x00\x81\x00garbage", mode="wb")
    with pytest.raises(ManifestError, match="not a readable CSV"):
        read_manifest(binary)


def test_cli_manifest_error_exits_2_before_any_work(tmp_path, run_cli):
    path = _write(tmp_path, "patient_id,eye\np1,OD\np1,OD\n")
    out = tmp_path / "out"
    code, _, err = run_cli("screen", str(path), "--out", str(out))
    assert code == 2
    assert "duplicate eye" in err
    assert not out.exists()  # nothing written, not even the folder


def test_cli_usage_errors_exit_2(tmp_path, run_cli):
    path = _write(tmp_path, "patient_id,eye\np1,OD\n")
    out = tmp_path / "out"
    code, _, err = run_cli("screen", str(path), "--out", str(out), "refraction.refer_power=1")
    assert code == 2 and "unknown configuration key" in err
    code, _, err = run_cli("screen", str(path), "--out", str(out), "--executor", "dask")
    assert code == 2 and "--scheduler" in err
    code, _, err = run_cli("screen", str(path), "--out", str(out), "--kc-model", "nope.pt")
    assert code == 2 and "--kc-model" in err
    assert not out.exists()


def test_config_toml_section_and_overrides(tmp_path):
    toml = tmp_path / "screen.toml"
    toml.write_text("[screen.refraction]\nrefer_power_d = 1.0\n[other]\nx = 1\n")
    cfg = load_screening_config(toml, ["keratoconus.refer_suspect=true"])
    assert cfg.refraction.refer_power_d == 1.0
    assert cfg.keratoconus.refer_suspect is True
    flat = tmp_path / "flat.toml"
    flat.write_text("require_all_tests = false\n[keratoconus]\nthreshold = 0.3\n")
    cfg = load_screening_config(flat)
    assert cfg.require_all_tests is False and cfg.keratoconus.threshold == 0.3
    with pytest.raises(ConfigError, match="refer_power_d"):
        load_screening_config(None, ["refraction.refer_power_d=-1"])
    with pytest.raises(ConfigError, match="not found"):
        load_screening_config(tmp_path / "missing.toml")


def _t(test, status, positive=None):
    r = make_result(test, status, "why" if status != "ok" else "")
    r["positive"] = positive
    return r


@pytest.mark.parametrize(
    ("refraction", "keratoconus", "require_all", "expected"),
    [
        (("ok", True), ("ungradable", None), True, "REFER"),  # one positive is enough
        (("ungradable", None), ("ok", True), True, "REFER"),
        (("ok", False), ("ok", False), True, "NO_REFER"),
        (("ok", False), ("ungradable", None), True, "UNGRADABLE"),  # cannot rule out
        (("ok", False), ("ungradable", None), False, "NO_REFER"),
        (("ok", False), ("not_run", None), True, "UNGRADABLE"),
        (("ungradable", None), ("not_run", None), False, "UNGRADABLE"),  # nothing gradable
        (("not_requested", None), ("ok", False), True, "NO_REFER"),  # not asked for
        (("not_requested", None), ("not_requested", None), True, "UNGRADABLE"),
    ],
)
def test_decision_rule(refraction, keratoconus, require_all, expected):
    tests = [_t("refraction", *refraction), _t("keratoconus", *keratoconus)]
    decision, reasons = decide(tests, require_all_tests=require_all)
    assert decision == expected
    assert reasons  # every decision carries its reasons
    if refraction[0] == "ungradable":
        assert any("refraction (retinoscopy) ungradable: why" in r for r in reasons)


@pytest.mark.parametrize(("h", "v"), [(-2.0, -0.5), (1.25, 3.0), (0.0, 0.0), (-4.0, 2.0)])
def test_combine_meridians_reproduces_meridian_powers(h, v):
    rx = combine_meridians(h, v)
    assert rx["cylinder_d"] <= 0
    # Power in meridian θ is S + C·sin²(θ − α): the two principal meridians come back.
    for theta, power in ((180.0, h), (90.0, v)):
        s2 = math.sin(math.radians(theta - rx["axis_deg"])) ** 2
        assert rx["sphere_d"] + rx["cylinder_d"] * s2 == pytest.approx(power)
    assert rx["se_d"] == pytest.approx((h + v) / 2)


def test_per_eye_camera_profile_overrides_the_config(tmp_path, monkeypatch):
    from healthsense.screening import retino_test
    from healthsense.screening.config import RefractionOptions

    for name in ("a.mp4", "b.mp4", "c.mp4", "site.json", "global.json"):
        (tmp_path / name).write_bytes(b"x")
    path = _write(
        tmp_path,
        "patient_id,eye,retinoscopy_video,camera_profile\n"
        "p1,OD,a.mp4,site.json\np1,OS,b.mp4,\np2,OD,c.mp4,missing.json\n",
    )
    cases = read_manifest(path)
    assert cases[0].given("camera_profile") == "site.json"
    assert cases[0].wants_refraction and not cases[0].wants_keratoconus
    seen = {}

    class Pipeline:  # the video pipeline, reduced to what run_refraction asks of it
        @staticmethod
        def EstimateConfig(**kwargs):  # the pipeline's config class
            return kwargs

        @staticmethod
        def estimate_power(video, *, camera, config, debug_dir):
            seen[Path(video).name] = Path(camera).name if camera else None
            return {"status": "ok", "power_d": -1.0, "confidence": 0.9, "eye": None}

    monkeypatch.setattr(retino_test, "_check_video", lambda p: None)
    monkeypatch.setattr(retino_test, "_pipeline", lambda: Pipeline)
    monkeypatch.setattr(retino_test, "_as_dict", lambda d: d)
    options = RefractionOptions(camera_profile="global.json")
    results = [retino_test.run_refraction(c, options) for c in cases]
    assert seen == {"a.mp4": "site.json", "b.mp4": "global.json"}
    assert results[0]["status"] == "ok" and results[1]["status"] == "ok"
    # A profile the row names but that is not there: that eye is ungradable, with the reason.
    assert results[2]["status"] == "ungradable" and "missing.json" in results[2]["reason"]
