"""The demo runner: failing and unavailable steps are reported, the others still run."""

from __future__ import annotations

import json

from healthsense.demo import DemoConfig, DemoStep, StepResult, StepUnavailable, run_demo


def _ok(config, out):
    out.mkdir(parents=True, exist_ok=True)
    (out / "a.txt").write_text("x")
    return StepResult("ok", "ok", "did it", figures={"auc": 0.9}, outputs=[str(out / "a.txt")])


def _broken(config, out):
    raise RuntimeError("simulated crash")


def _missing(config, out):
    raise StepUnavailable("not built yet: x")


def test_demo_reports_each_step_and_goes_on(tmp_path):
    steps = [
        DemoStep("broken", "b", _broken),
        DemoStep("missing", "m", _missing),
        DemoStep("ok", "o", _ok),
    ]
    results = run_demo(DemoConfig(out=tmp_path, seed=5), steps=steps)
    assert [(r.name, r.status) for r in results] == [
        ("broken", "failed"),
        ("missing", "skipped"),
        ("ok", "ok"),
    ]
    assert "simulated crash" in results[0].summary
    saved = json.loads((tmp_path / "results.json").read_text())
    assert [r["status"] for r in saved] == ["failed", "skipped", "ok"]
    assert json.loads((tmp_path / "config.json").read_text())["config"]["seed"] == 5
    page = (tmp_path / "index.html").read_text()
    assert "simulated crash" in page and 'href="ok/a.txt"' in page
    assert "not a medical device" in page


def test_demo_command_exit_code(run_cli, tmp_path):
    code, out, _ = run_cli("demo", "--out", str(tmp_path / "d"), "--seed", "1")
    assert code in (0, 1)
    assert "research software, not a medical device" in out
    statuses = [r["status"] for r in json.loads((tmp_path / "d" / "results.json").read_text())]
    assert (code == 1) == ("failed" in statuses)
