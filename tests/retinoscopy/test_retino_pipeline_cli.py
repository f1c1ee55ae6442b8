"""End to end: simulated clips → ``retino estimate / evaluate / calibrate``; bad inputs."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from healthsense.cli._common import CommandError, HealthsenseArgumentParser  # noqa: E402
from healthsense.cli.retino_pipeline import register  # noqa: E402


@pytest.fixture()
def cli(capsys):
    """Run the pipeline's sub-commands through a parser built from :func:`register`."""

    def _run(*argv: str) -> tuple[int, str, str]:
        parser = HealthsenseArgumentParser(prog="healthsense retino")
        sub = parser.add_subparsers(dest="retino_command", parser_class=HealthsenseArgumentParser)
        register(sub)
        try:
            args = parser.parse_args(list(argv))
            code = args._run(args)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except CommandError as exc:
            print(f"healthsense: error: {exc}")
            code = exc.exit_code
        out = capsys.readouterr()
        return code, out.out, out.err

    return _run


def _render(folder, power, *, meridian=0, seed=3):
    from ophthalmo.retinoscopy.simulate import make_scenario, simulate_clip

    # Small and short (CPU is scarce); a narrower field of view keeps the markers ~40 px.
    sc = make_scenario(
        power,
        width=640,
        height=360,
        hfov_deg=20.0,
        duration_s=2.5,
        meridian_deg=meridian,
        difficulty="easy",
        random_state=seed,
    )
    return simulate_clip(sc, folder / f"clip_m{meridian}.mp4", random_state=seed + 1)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("retino_clips")
    h = _render(folder, -1.0)
    v = _render(folder, -2.0, meridian=90, seed=5)
    return {"h": h, "v": v, "folder": folder}


def test_estimate_json_on_simulated_clip(cli, clips):
    truth = json.loads(clips["h"]["sidecar"].read_text())["truth"]
    code, out, _ = cli(
        "estimate",
        str(clips["h"]["video"]),
        "--camera",
        str(clips["h"]["camera_profile"]),
        "--json",
    )
    res = json.loads(out)
    assert code == 0, res
    for key in (
        "video",
        "eye",
        "power_d",
        "working_distance_m",
        "ratio",
        "motion",
        "passes_used",
        "confidence",
        "status",
        "reason",
    ):
        assert key in res
    assert res["status"] == "ok" and res["reason"] is None
    assert res["eye"] == truth["eye"]
    assert res["working_distance_m"] == pytest.approx(truth["working_distance_m"], abs=0.01)
    assert res["power_d"] == pytest.approx(truth["power_d"], abs=0.5)
    assert res["motion"] == "with" and res["passes_used"] >= 1


def test_estimate_debug_dir(cli, clips, tmp_path):
    out_dir = tmp_path / "debug"
    code, out, _ = cli(
        "estimate",
        str(clips["h"]["video"]),
        "--camera",
        str(clips["h"]["camera_profile"]),
        "--debug-dir",
        str(out_dir),
    )
    assert code == 0 and " D (" in out
    assert (out_dir / "tracks.png").stat().st_size > 1000
    assert list(out_dir.glob("frame_*.png"))
    assert json.loads((out_dir / "config.json").read_text())["command"] == "retino estimate"
    assert json.loads((out_dir / "estimate.json").read_text())["fits"]


def test_prescription_from_two_sweeps(cli, clips):
    code, out, _ = cli(
        "estimate",
        "--horizontal",
        str(clips["h"]["video"]),
        "--vertical",
        str(clips["v"]["video"]),
        "--camera",
        str(clips["h"]["camera_profile"]),
        "--json",
    )
    res = json.loads(out)
    assert code == 0, res
    kh, kv = res["horizontal"]["power_d"], res["vertical"]["power_d"]
    assert kh == pytest.approx(-1.0, abs=0.5) and kv == pytest.approx(-2.0, abs=0.6)
    assert res["sphere_d"] == pytest.approx(max(kh, kv))
    assert res["cylinder_d"] == pytest.approx(min(kh, kv) - max(kh, kv))
    assert res["axis_deg"] in (90.0, 180.0)
    assert res["spherical_equivalent_d"] == pytest.approx(res["sphere_d"] + res["cylinder_d"] / 2)


def _write_video(path, frames, fps=25.0):
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for f in frames:
        writer.write(f)
    writer.release()
    return path


def test_bad_inputs_are_ungradable_with_reason(cli, clips, tmp_path):
    rng = np.random.default_rng(0)
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n" * 50)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    black = _write_video(tmp_path / "black.mp4", [np.zeros((240, 320, 3), np.uint8)] * 15)
    noise = _write_video(
        tmp_path / "noise.mp4",
        [rng.integers(40, 200, (240, 320, 3), dtype=np.uint8) for _ in range(15)],
    )
    data = clips["h"]["video"].read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    expected = {
        text: "unreadable file",
        empty: "unreadable file",
        black: "too dark",
        noise: "no markers",
        cut: "unreadable file",
    }
    for path, reason in expected.items():
        code, out, _ = cli("estimate", str(path), "--json")
        res = json.loads(out)
        assert code == 1, (path.name, res)
        assert res["status"] == "ungradable" and res["reason"] == reason, path.name
        assert res["power_d"] is None  # NaN → null: never a number


def test_usage_errors(cli, clips, tmp_path):
    assert cli("estimate")[0] == 2
    video = str(clips["h"]["video"])
    assert cli("estimate", video, "--horizontal", video, "--vertical", video)[0] == 2
    assert cli("estimate", "--horizontal", video)[0] == 2
    code, out, _ = cli("estimate", video, "--camera", str(tmp_path / "nope.json"))
    assert code == 2 and "nope.json" in out
    assert cli("estimate", video, "--source-distance", "-1")[0] == 2
    assert cli("evaluate", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "o"))[0] == 2


def test_evaluate_and_calibrate_commands(cli, clips, tmp_path):
    folder = clips["folder"]
    (folder / "bad.mp4").write_text("garbage")
    truth = json.loads(clips["h"]["sidecar"].read_text())["truth"]
    cam = clips["h"]["camera_profile"].name
    manifest = folder / "manifest.csv"
    manifest.write_text(
        "video,power_d,camera_profile,meridian_deg,working_distance_m\n"
        f"clip_m0.mp4,{truth['power_d']},{cam},0,{truth['working_distance_m']}\n"
        f"bad.mp4,-2.0,{cam},0,0.35\n"
    )
    out_dir = tmp_path / "eval"
    code, out, _ = cli("evaluate", str(manifest), "--out", str(out_dir), "--json")
    assert code == 1  # one video was ungradable
    metrics = json.loads(out)
    assert metrics["n_videos"] == 2 and metrics["n_gradable"] == 1
    assert metrics["ungradable_reasons"] == {"unreadable file": 1}
    for name in ("predictions.csv", "metrics.json", "report.html", "config.json"):
        assert (out_dir / name).is_file()
    lines = (out_dir / "predictions.csv").read_text().splitlines()
    assert lines[0].startswith("video,power_d,status,reason") and len(lines) == 3

    known = folder / "known.csv"
    known.write_text(
        "video,power_d,camera_profile\n"
        f"clip_m0.mp4,{truth['power_d']},{cam}\nclip_m0.mp4,{truth['power_d']},{cam}\n"
    )
    cal_path = tmp_path / "cal.json"
    code, out, _ = cli("calibrate", str(known), "--out", str(cal_path), "--json")
    assert code == 0
    cal = json.loads(cal_path.read_text())
    assert 0.05 <= cal["source_distance_m"] <= 5.0 and cal["n_videos"] == 2
    assert cal["mae_after_d"] <= cal["mae_before_d"] + 1e-9
    code, out, _ = cli(
        "estimate",
        str(clips["h"]["video"]),
        "--camera",
        str(clips["h"]["camera_profile"]),
        "--calibration",
        str(cal_path),
        "--json",
    )
    assert code == 0
    assert json.loads(out)["source_distance_m"] == pytest.approx(cal["source_distance_m"])


def test_register_adds_three_subcommands():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd")
    register(sub)
    assert {"estimate", "evaluate", "calibrate"} <= set(sub.choices)


def test_wired_into_healthsense_retino(run_cli, clips):
    import importlib.util

    if importlib.util.find_spec("healthsense.cli.retino") is None:
        pytest.skip("the retino command group is not installed")
    code, out, _ = run_cli(
        "retino",
        "estimate",
        str(clips["h"]["video"]),
        "--camera",
        str(clips["h"]["camera_profile"]),
        "--json",
    )
    assert code == 0 and json.loads(out)["status"] == "ok"
    code, _, _ = run_cli("retino", "estimate")
    assert code == 2
