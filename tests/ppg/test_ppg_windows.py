"""WindowSet, window files, features and the ``healthsense ppg`` commands."""

from __future__ import annotations

import numpy as np
import pytest

from ppg.features import BEAT_FEATURES, WINDOW_FEATURES, beat_features, window_features
from ppg.record import Record
from ppg.simulate import SubjectParams, ppg_simulate, simulate_cohort
from ppg.windows import (
    WindowConfig,
    WindowSet,
    load_windows,
    make_windows,
    save_windows,
    window_record,
    zscore,
)


def test_zscore_population_sd_and_flat_rows():
    raw = np.array([[1.0, 2.0, 3.0, 4.0], [5.0, 5.0, 5.0, 5.0]])
    z = zscore(raw)
    assert np.allclose(z[0], (raw[0] - 2.5) / np.std(raw[0])) and np.all(z[1] == 0)


def test_default_windows_of_simulation():
    recs = simulate_cohort(3, duration_s=21, random_state=0)
    ws = make_windows(recs)
    assert ws.n_samples == 250 and ws.fs == 125
    assert len(ws) == 3 * 10  # floor((21 - 2) / 2) + 1 grid windows per record
    assert set(ws.groups) == {"sim000", "sim001", "sim002"}
    assert np.allclose(ws.start_s[:10], np.arange(10) * 2.0)
    # SBP per window from the ABP waveform equals the true per-beat SBP of that window (±1 mmHg)
    for rec in recs:
        rows = ws.record_ids == rec.record_id
        truth = np.array([np.median(rec.series["sbp"].between(t, t + 2)) for t in ws.start_s[rows]])
        assert np.nanmax(np.abs(ws.labels["sbp"][rows] - truth)) < 1.0
        assert np.nanmax(np.abs(ws.labels["hr"][rows] - rec.labels["hr"])) < 12
    assert ws.meta["label_sources"]["sbp"].startswith("median of beats (abp")
    assert np.allclose(ws.z.mean(axis=1), 0, atol=1e-5)


def test_overlap_onset_anchor_scale_and_cuff_broadcast():
    rec = ppg_simulate(SubjectParams("s", heart_rate=60), duration_s=20, random_state=1)
    cuff = Record("c", "s", {"ppg": rec.signal("ppg")}, {"ppg": 125}, labels={"sbp": 123.0})
    ws = window_record(cuff, labels=("sbp", "hr"), overlap=0.5)
    assert len(ws) == 19 and np.all(ws.labels["sbp"] == 123.0)
    on = window_record(cuff, labels=("sbp",), anchor="onset")
    assert len(on) >= 6 and np.all(np.diff(on.start_s) >= 2.0 - 1e-9)
    # onset-anchored windows start at a pulse foot: within 80 ms of a true simulated onset
    true_onsets = rec.series["hr"].times_s
    gap = np.min(np.abs(on.start_s[:, None] - true_onsets[None, :]), axis=1)
    assert np.all(gap < 0.08)
    sc = window_record(cuff, labels=("sbp",), scale="record")
    assert -0.2 < sc.raw.min() and sc.raw.max() < 1.2
    with pytest.raises(ValueError, match="label 'dbp' not available"):
        window_record(cuff, labels=("dbp",))


def test_bad_inputs_flagged_or_rejected():
    fs = 125
    const = Record("k", "s", {"ppg": np.full(fs * 10, 7.0)}, {"ppg": fs})
    ws = window_record(const, labels=("hr",))
    assert len(ws) == 5 and np.all(ws.quality == 0) and np.all(np.isnan(ws.labels["hr"]))
    rec = ppg_simulate(SubjectParams("n"), duration_s=10, random_state=2)
    x = rec.signal("ppg").copy()
    x[300:400] = np.nan
    ws = window_record(Record("n", "n", {"ppg": x}, {"ppg": 125}), labels=("hr",))
    hit = (ws.start_s * 125 < 400) & (ws.start_s * 125 + 250 > 300)
    assert hit.sum() == 1 and np.all(ws.quality[hit] == 0) and np.all(ws.quality[2:4] > 0.8)
    assert len(window_record(Record("t", "t", {"ppg": np.ones(50)}, {"ppg": 125}), labels=())) == 0
    with pytest.raises(ValueError, match="no windows"):
        make_windows([Record("t", "t", {"ppg": np.ones(50)}, {"ppg": 125})], labels=())
    with pytest.raises(ValueError, match="Nyquist"):
        window_record(Record("w", "w", {"ppg": np.ones(500)}, {"ppg": 10}), labels=())
    with pytest.raises(ValueError, match="overlap"):
        WindowConfig(overlap=1.0)
    # min_quality drops the flagged windows
    kept = window_record(Record("n", "n", {"ppg": x}, {"ppg": 125}), labels=(), min_quality=0.5)
    assert len(kept) == int((ws.quality >= 0.5).sum()) and len(kept) < len(ws)


def test_window_file_roundtrip_and_foreign_files(tmp_path):
    ws = make_windows(simulate_cohort(2, duration_s=10, random_state=3))
    path = save_windows(ws, tmp_path / "w.npz")
    back = load_windows(path)
    assert np.array_equal(back.raw, ws.raw) and np.array_equal(back.groups, ws.groups)
    assert set(back.labels) == set(ws.labels) and back.meta["config"]["fs"] == 125
    # a file written by another tool with only the required keys: z is computed
    raw = np.random.default_rng(0).normal(size=(4, 20))
    np.savez(
        tmp_path / "min.npz", raw=raw, groups=np.array([1, 1, 2, 2]), fs=50, label_y=np.arange(4.0)
    )
    m = load_windows(tmp_path / "min.npz")
    assert np.allclose(m.z, zscore(raw), atol=1e-6) and m.groups.tolist() == ["1", "1", "2", "2"]
    np.savez(tmp_path / "bad.npz", raw=raw, groups=np.array([1, 2]), fs=50)
    with pytest.raises(ValueError, match=r"bad\.npz: groups has 2 entries for 4"):
        load_windows(tmp_path / "bad.npz")
    np.savez(tmp_path / "nofs.npz", raw=raw, groups=np.arange(4))
    with pytest.raises(ValueError, match="lacks \\['fs'\\]"):
        load_windows(tmp_path / "nofs.npz")
    with pytest.raises(FileNotFoundError):
        load_windows(tmp_path / "absent.npz")
    sub = ws.subset(ws.groups == ws.groups[0])
    assert len(WindowSet.concat([sub, sub])) == 2 * len(sub)


def test_beat_features_analytic_triangle():
    fs = 100.0
    # triangle: 0 → 1 over 0.2 s, back to 0 over 0.6 s
    beat = np.concatenate([np.linspace(0, 1, 21), np.linspace(1, 0, 61)[1:]])
    f = dict(zip(BEAT_FEATURES, beat_features(beat, fs), strict=True))
    assert f["rise_time_s"] == pytest.approx(0.2)
    assert f["width50_s"] == pytest.approx(0.41, abs=0.02)  # half of 0.8 s, sampled
    assert f["area_total"] == pytest.approx(0.4, abs=0.01)
    assert f["area_ratio"] == pytest.approx(3.0, abs=0.05)
    assert f["max_slope_per_s"] == pytest.approx(5.0, rel=0.01)
    assert np.isnan(f["notch_time_s"])  # a triangle has no dicrotic notch
    assert np.all(np.isnan(beat_features(np.zeros(10), fs)))


def test_window_features_on_simulation():
    recs = simulate_cohort(4, duration_s=20, noise=0.005, random_state=4)
    ws = make_windows(recs, window_s=4.0)
    X, names = window_features(ws.raw, ws.fs)
    assert names == WINDOW_FEATURES and X.shape == (len(ws), len(names))
    hr = X[:, names.index("hr_bpm")]
    ok = np.isfinite(hr)
    assert ok.mean() > 0.9 and np.median(np.abs(hr[ok] - ws.labels["hr"][ok])) < 3
    assert np.isfinite(X[:, names.index("notch_time_s")]).mean() > 0.5
    with pytest.raises(ValueError, match="NaN"):
        window_features(np.full((2, 50), np.nan), 125)


def test_hr_real_vs_spectral(shared_data):
    """PPG-peak HR vs an independent spectral estimate on clean mw-ppg-bp windows."""
    from ppg.datasets import iter_dataset
    from ppg.signal import heart_rate_spectral

    ws = make_windows(
        iter_dataset(
            "mw-ppg-bp", shared_data / "mw-ppg-bp", subjects=range(1, 21), channels=["green"]
        ),
        channel="green",
        labels=("hr",),
        window_s=10.0,
        overlap=0.5,
    )
    clean = (ws.quality >= 0.9) & (ws.labels["artifact"] == 0)
    spec = np.array([heart_rate_spectral(w, ws.fs) for w in ws.raw[clean]])
    assert clean.sum() > 100
    assert np.mean(np.abs(spec - ws.labels["hr"][clean]) <= 3) >= 0.9


# ----------------------------------------------------------------------------- commands


def test_cli_simulate_info_windows(tmp_path, run_cli):
    import json

    out = tmp_path / "sim.npz"
    code, stdout, err = run_cli(
        "ppg", "simulate", "--n", "3", "--duration-s", "10", "--out", str(out), "--json"
    )
    assert code == 0, err
    summary = json.loads(stdout)
    assert summary["n_windows"] == 15
    resolved = json.loads((tmp_path / "sim.config.json").read_text())
    assert (
        resolved["command"] == "ppg simulate"
        and resolved["config"]["simulation"]["n_subjects"] == 3
    )
    code, stdout, _ = run_cli("ppg", "inspect", str(out), "--json")
    assert code == 0 and json.loads(stdout)["meta"]["config"]["window_s"] == 2.0
    # the generic CSV route end to end
    t = np.arange(1500) / 100
    np.savetxt(
        tmp_path / "a.csv",
        np.column_stack([np.sin(2 * np.pi * 1.2 * t) ** 3 + 1, np.full(t.size, 120.0)]),
        delimiter=",",
        header="PLETH,cuff",
        comments="",
    )
    code, stdout, err = run_cli(
        "ppg",
        "windows",
        "--dataset",
        "csv",
        "--data-dir",
        str(tmp_path / "a.csv"),
        "--columns",
        "ppg=PLETH",
        "--input-fs",
        "100",
        "--record-labels",
        "sbp=cuff",
        "--labels",
        "sbp,hr",
        "--out",
        str(tmp_path / "c.npz"),
    )
    assert code == 0, err
    got = load_windows(tmp_path / "c.npz")
    assert len(got) == 7 and np.all(got.labels["sbp"] == 120)
    assert np.nanmedian(got.labels["hr"]) == pytest.approx(72, abs=1)


def test_cli_errors(tmp_path, run_cli):
    code, _, err = run_cli(
        "ppg",
        "windows",
        "--dataset",
        "nope",
        "--data-dir",
        str(tmp_path),
        "--out",
        str(tmp_path / "x.npz"),
    )
    assert code == 2 and "unknown dataset" in err
    code, _, err = run_cli(
        "ppg",
        "windows",
        "--dataset",
        "mw-ppg-bp",
        "--data-dir",
        str(tmp_path / "missing"),
        "--out",
        str(tmp_path / "x.npz"),
    )
    assert code == 1 and "not found" in err
    code, _, err = run_cli(
        "ppg", "simulate", "--n", "2", "--fs", "10", "--out", str(tmp_path / "x.npz")
    )
    assert code == 2 and "Nyquist" in err
    code, _, err = run_cli("ppg", "inspect", str(tmp_path / "none.npz"))
    assert code == 1 and "not found" in err


def test_cli_windows_real(shared_data, tmp_path, run_cli):
    out = tmp_path / "mw.npz"
    code, _, err = run_cli(
        "ppg",
        "windows",
        "--dataset",
        "mw-ppg-bp",
        "--data-dir",
        str(shared_data / "mw-ppg-bp"),
        "--max-records",
        "3",
        "--out",
        str(out),
        "--scale",
        "record",
    )
    assert code == 0, err
    ws = load_windows(out)
    assert (
        len(ws) == 90
        and set(ws.labels) >= {"sbp", "dbp", "hr"}
        and ws.meta["config"]["scale"] == "record"
    )
