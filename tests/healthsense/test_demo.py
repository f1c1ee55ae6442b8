"""The demo runner: failing and unavailable steps are reported, the others still run."""

from __future__ import annotations

import json

import pytest

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


#: The demo at toy sizes: every step runs for real, in well under a minute.
TINY = (
    "ppg_subjects=4",
    "kc_train_eyes=24",
    "kc_test_eyes=12",
    "kc_epochs=2",
    "screening_patients=3",
    "use_shared_data=false",
)


def test_demo_command_runs_every_step(run_cli, tmp_path):
    code, out, err = run_cli("demo", "--out", str(tmp_path / "d"), "--seed", "1", *TINY)
    assert "research software, not a medical device" in out
    results = json.loads((tmp_path / "d" / "results.json").read_text())
    statuses = {r["name"]: r["status"] for r in results}
    assert code == 0, (statuses, err)
    assert set(statuses.values()) == {"ok"}, [r["summary"] for r in results]
    resolved = json.loads((tmp_path / "d" / "config.json").read_text())["config"]
    assert resolved["kc_epochs"] == 2 and resolved["seed"] == 1


def test_demo_rejects_bad_overrides(run_cli, tmp_path):
    code, _, err = run_cli("demo", "--out", str(tmp_path / "d"), "kc_epochs=zero")
    assert code == 2 and "kc_epochs: expected int" in err
    code, _, err = run_cli("demo", "--out", str(tmp_path / "d"), "screening_patients=1")
    assert code == 2 and "screening_patients must be >= 3" in err


@pytest.mark.slow
def test_full_demo_is_deterministic(run_cli, tmp_path):
    """The README's main job at its real size, twice: every step ok, identical figures."""
    runs = []
    for name in ("a", "b"):
        code, _, err = run_cli("demo", "--out", str(tmp_path / name), "--seed", "0")
        assert code == 0, err
        runs.append(json.loads((tmp_path / name / "results.json").read_text()))
    assert [r["status"] for r in runs[0]] == ["ok"] * len(runs[0])
    assert [r["figures"] for r in runs[0]] == [r["figures"] for r in runs[1]]
