"""Informativeness commands (mvm, information, audit, analyze) run in-process."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ppg.windows import WindowSet, save_windows


@pytest.fixture()
def window_file(tmp_path):
    """Shifted copies of one pulse shape with different SBP, in two records, plus noise."""
    rng = np.random.default_rng(0)
    t = np.arange(260) / 125.0
    pulse = np.sin(2 * np.pi * 1.2 * t) + 0.4 * np.sin(2 * np.pi * 2.4 * t + 0.7)
    raw = np.vstack([pulse[s : s + 250] for s in rng.integers(0, 3, 40)])
    raw += rng.normal(0, 0.02, raw.shape)
    groups = np.repeat(["s1", "s2", "s3", "s4"], 10)
    sbp = np.repeat([110.0, 130.0, 150.0, 112.0], 10)
    ws = WindowSet(
        raw=raw,
        fs=125.0,
        groups=groups,
        labels={"sbp": sbp},
        meta={"config": {"anchor": "grid", "scale": "record"}},
    )
    return save_windows(ws, tmp_path / "w.npz")


def test_mvm_command_json(run_cli, window_file, tmp_path):
    code, out, err = run_cli(
        "ppg",
        "mvm",
        "--windows",
        str(window_file),
        "--label",
        "sbp",
        "--scope",
        "inter",
        "--json",
        "--pairs-out",
        str(tmp_path / "p.csv"),
    )
    assert code == 0, err
    res = json.loads(out)
    # Records s1/s4 (110 vs 112) differ by <= 8 mmHg: only pairs with s2 or s3 collide.
    assert res["n_windows"] == 40 and res["scope"] == "inter"
    assert res["n_multivalued"] == 40 and res["fraction"] == 1.0
    assert res["n_pairs"] == 10 * 10 * 5  # (s1,s2) (s1,s3) (s2,s3) (s2,s4) (s3,s4)
    assert res["windows"]["anchor"] == "grid"
    assert len(pd.read_csv(tmp_path / "p.csv")) == res["n_pairs"]


def test_mvm_command_errors(run_cli, window_file, tmp_path):
    code, _, err = run_cli("ppg", "mvm", "--windows", str(window_file), "--label", "hr")
    assert code == 1 and "no label 'hr'" in err
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    code, _, err = run_cli("ppg", "mvm", "--windows", str(bad), "--label", "sbp")
    assert code == 1 and "bad.npz" in err


def test_information_command_csv_and_npz(run_cli, tmp_path):
    rng = np.random.default_rng(1)
    y = rng.normal(120, 15, 400)
    frame = pd.DataFrame(
        {
            "pid": np.repeat(np.arange(40), 10),
            "sbp": np.round(y),
            "good": y + rng.normal(0, 3, 400),
            "noise": rng.normal(size=400),
        }
    )
    frame.loc[[3, 7], "good"] = np.nan
    csv = tmp_path / "t.csv"
    frame.to_csv(csv, index=False)
    code, out, err = run_cli(
        "ppg",
        "information",
        "--table",
        str(csv),
        "--target",
        "sbp",
        "--features",
        "good",
        "--bootstrap",
        "5",
        "--group",
        "pid",
        "--json",
    )
    assert code == 0, err
    r = json.loads(out)
    assert r["n"] == 398 and r["n_dropped"] == 2 and r["k"] == 3
    assert r["label_resolution"] == 1.0
    assert 0.3 < r["information_fraction"] < 1.0
    assert r["mi_bits"] == pytest.approx(r["mi_nats"] / np.log(2))
    code, out, _ = run_cli(
        "ppg",
        "information",
        "--table",
        str(csv),
        "--target",
        "sbp",
        "--exclude",
        "good",
        "--group",
        "pid",
        "--bootstrap",
        "0",
        "--json",
    )
    assert code == 0 and json.loads(out)["features"] == ["noise"]
    assert json.loads(out)["information_fraction"] < 0.1
    npz = tmp_path / "t.npz"
    np.savez(npz, X=frame[["noise"]].to_numpy(), y=y)
    code, out, _ = run_cli(
        "ppg", "information", "--table", str(npz), "--target", "y", "--bootstrap", "0", "--json"
    )
    assert code == 0 and json.loads(out)["n"] == 400
    code, _, err = run_cli("ppg", "information", "--table", str(csv), "--target", "dbp")
    assert code == 1 and "no target column 'dbp'" in err
    code, out, _ = run_cli(
        "ppg", "info", "--table", str(npz), "--target", "y", "--bootstrap", "0", "--json"
    )
    if code == 0 and out.startswith("{"):  # `ppg info` is ours unless the data commands take it
        assert json.loads(out)["n"] == 400


def test_audit_command(run_cli, window_file):
    code, out, err = run_cli(
        "ppg",
        "audit",
        "--windows",
        str(window_file),
        "--label",
        "sbp",
        "--models",
        "mean,ridge",
        "--folds",
        "2",
        "--json",
    )
    assert code == 0, err
    r = json.loads(out)
    assert {row["split"] for row in r["rows"]} == {"subject", "window"}
    assert any("record unavailable" in n for n in r["notes"])


@pytest.mark.slow
def test_analyze_on_real_data(run_cli, shared_data, tmp_path):
    out = tmp_path / "an"
    code, stdout, err = run_cli(
        "ppg",
        "analyze",
        "--dataset",
        "mw-ppg-bp",
        "--data-dir",
        str(shared_data / "mw-ppg-bp"),
        "--target",
        "hr",
        "--out",
        str(out),
        "--max-windows",
        "400",
        "--bootstrap",
        "5",
        "--set",
        "embedding_epochs=2",
        "cnn_epochs=1",
        "--json",
    )
    assert code == 0, err
    res = json.loads((out / "results.json").read_text())
    assert res["target"] == "hr" and res["mvm"]["scope"] == "all"
    assert (out / "report.html").stat().st_size > 1000 and (out / "config.json").is_file()
    frac = {r["source"]: r.get("information_fraction") for r in res["information"]}
    assert frac["hr_feature"] > 0.3  # the PPG-derived rate carries the HR label


def test_downsample_and_autoencoder_feature_sources():
    from ppg.embedding import autoencoder_embedding, downsample_windows

    w = np.tile(np.r_[np.zeros(5), np.ones(5)], (3, 1)) + np.arange(3)[:, None]
    d = downsample_windows(w, n_points=2)
    np.testing.assert_allclose(d, [[-1.0, 1.0]] * 3)  # z-scored halves
    rng = np.random.default_rng(0)
    t = np.linspace(0, 1, 50)
    windows = np.sin(2 * np.pi * rng.uniform(1, 3, 64)[:, None] * t) + rng.normal(0, 0.01, (64, 50))
    a = autoencoder_embedding(windows, dim=4, epochs=2, random_state=0, show_progress=False)
    b = autoencoder_embedding(windows, dim=4, epochs=2, random_state=0, show_progress=False)
    assert a.shape == (64, 4) and np.all(np.isfinite(a))
    np.testing.assert_allclose(a, b)  # seeded
    with pytest.raises(ValueError, match="constant"):
        downsample_windows(np.ones((3, 10)), n_points=2)
    with pytest.raises(ValueError, match="NaN"):
        autoencoder_embedding(np.full((3, 10), np.nan), show_progress=False)


def test_mvm_for_windows_drops_unlabelled_windows(tmp_path):
    from ppg.analyze import mvm_for_windows

    rng = np.random.default_rng(2)
    sbp = rng.uniform(90, 160, 30)
    sbp[:4] = np.nan
    ws = WindowSet(
        raw=rng.normal(size=(30, 40)),
        fs=20.0,
        groups=np.repeat(["a", "b", "c"], 10),
        labels={"sbp": sbp},
        meta={"config": {"anchor": "onset", "scale": "none"}},
    )
    res = mvm_for_windows(ws, "sbp", scope="inter", show_progress=False)
    assert res.n_windows == 26 and res.windows["anchor"] == "onset"
    with pytest.raises(ValueError, match="no label 'hr'"):
        mvm_for_windows(ws, "hr")
