"""Estimation, calibration, evaluation and video reading of the retinoscopy pipeline."""

from __future__ import annotations

import numpy as np
import pytest

from ophthalmo.retinoscopy import optics
from ophthalmo.retinoscopy.calibrate import fit_calibration, model_power
from ophthalmo.retinoscopy.estimate import (
    EstimateConfig,
    VideoMeasurements,
    _summarise,
    fit_passes,
    load_calibration,
    pooled_theil_sen,
    prescription_from_meridians,
    segment_passes,
)
from ophthalmo.retinoscopy.evaluate import EvaluationConfig, cohort_metrics, read_manifest
from ophthalmo.retinoscopy.pupil import PupilTrack
from ophthalmo.retinoscopy.reflex import ReflexTrack


def _sweep(n_passes=4, frames_per_pass=60, amp=12.0):
    """Beam positions going back and forth with eased turns."""
    tau = np.linspace(0, 1, frames_per_pass)
    ease = tau**3 * (10 - 15 * tau + 6 * tau**2)
    legs = [(-amp + 2 * amp * ease) * (1 if k % 2 == 0 else -1) for k in range(n_passes)]
    return np.concatenate(legs)


def _measurements(power, *, d=0.35, u=0.40, noise=0.0, half_width=1.2, seed=0, filled=False):
    """Per-frame beam and reflex edges generated from the optics (pupil plane, mm)."""
    rng = np.random.default_rng(seed)
    beam = _sweep()
    n = beam.size
    r = optics.sweep_ratio(power, working_distance_m=d, source_distance_m=u)
    centre = 0.3 + r * (beam - 0.5)
    rise = centre - half_width + noise * rng.standard_normal(n)
    fall = centre + half_width + noise * rng.standard_normal(n)
    rho = 2.8
    rise = np.where(np.abs(rise) < 0.85 * rho, rise, np.nan)
    fall = np.where(np.abs(fall) < 0.85 * rho, fall, np.nan)
    lit = np.zeros(n, bool)
    if filled:
        rise[:] = np.nan
        fall[:] = np.nan
        lit = np.abs(beam) < 5
    reflex = ReflexTrack(rise, fall, lit.astype(float), lit, np.ones(n), 0.0, 1.0)
    pupil = PupilTrack(np.zeros((n, 2)), np.full(n, rho), (0.0, 0.0), rho, 1, 0)
    return VideoMeasurements(
        path="synthetic.mp4",
        fps=30.0,
        width=1280,
        height=720,
        eye="OD",
        t_s=np.arange(n) / 30.0,
        has_pose=np.ones(n, bool),
        camera_center_mm=np.tile([0.0, 0.0, -1000 * d + 12], (n, 1)),
        rotation=np.tile(np.eye(3), (n, 1, 1)),
        pose_center_mm=np.tile([0.0, 0.0, -1000 * d + 12], (n, 1)),
        distance_mm=np.full(n, 1000 * d),
        beam_paper_mm=beam,
        beam_pupil_mm=beam,
        brightness=np.full(n, 80.0),
        pupil=pupil,
        reflex=reflex,
    )


def test_segment_passes_counts_legs():
    beam = _sweep(n_passes=5)
    labels = segment_passes(beam)
    assert labels.max() + 1 == 5
    assert (labels[10:50] == 0).all() and (labels[70:110] == 1).all()
    short = segment_passes(np.r_[np.zeros(10), np.linspace(0, 2, 10)], min_travel_mm=4.0)
    assert (short == -1).all()


def test_pooled_theil_sen_separate_intercepts_and_outlier():
    x = np.r_[np.arange(6.0), np.arange(6.0)]
    y = np.r_[0.7 * np.arange(6.0) + 5, 0.7 * np.arange(6.0) - 3]
    g = np.r_[np.zeros(6), np.ones(6)]
    y_out = y.copy()
    y_out[2] += 10
    assert pooled_theil_sen(x, y, g) == pytest.approx(0.7)
    assert pooled_theil_sen(x, y_out, g) == pytest.approx(0.7)
    assert np.isnan(pooled_theil_sen(np.array([1.0]), np.array([1.0]), np.array([0])))


@pytest.mark.parametrize("power", [-5.0, -2.0, -1.0, 0.0, 2.0, 4.0])
def test_power_recovered_from_exact_edge_tracks(power):
    cfg = EstimateConfig()
    m = _measurements(power)
    fits = fit_passes(m, cfg)
    assert len(fits) >= 3
    res = _summarise(m, fits, cfg)
    assert res.status == "ok"
    assert res.power_d == pytest.approx(power, abs=1e-6)
    assert res.motion == ("against" if power < -1 / 0.35 else "with")
    assert res.confidence > 0.5


def test_noisy_tracks_still_close_and_confidence_drops():
    cfg = EstimateConfig()
    clean = _summarise(m := _measurements(-1.0), fit_passes(m, cfg), cfg)
    noisy_m = _measurements(-1.0, noise=0.08, seed=3)
    noisy = _summarise(noisy_m, fit_passes(noisy_m, cfg), cfg)
    assert noisy.status == "ok"
    assert noisy.power_d == pytest.approx(-1.0, abs=0.25)
    assert noisy.confidence < clean.confidence


def test_source_distance_changes_the_answer_as_the_optics_say():
    m = _measurements(0.0, u=0.5)
    wrong = _summarise(m, fit_passes(m, EstimateConfig()), EstimateConfig())
    right_cfg = EstimateConfig(source_distance_m=0.5)
    right = _summarise(m, fit_passes(m, right_cfg), right_cfg)
    assert right.power_d == pytest.approx(0.0, abs=1e-6)
    expect = optics.power_from_ratio(wrong.ratio, working_distance_m=0.35, source_distance_m=0.4)
    assert wrong.power_d == pytest.approx(expect)


def test_filled_pupil_is_neutral_at_minus_one_over_d():
    cfg = EstimateConfig()
    m = _measurements(-1 / 0.35, filled=True)
    res = _summarise(m, fit_passes(m, cfg), cfg)
    assert res.status == "ok" and res.motion == "neutral"
    assert res.power_d == pytest.approx(-1 / 0.35)


def test_no_edges_no_fill_is_ungradable():
    cfg = EstimateConfig()
    m = _measurements(0.0)
    m.reflex.rising_mm[:] = np.nan
    m.reflex.falling_mm[:] = np.nan
    res = _summarise(m, fit_passes(m, cfg), cfg)
    assert res.status == "ungradable" and res.reason == "no usable pass"
    assert np.isnan(res.power_d)


def test_inconsistent_passes_are_ungradable():
    cfg = EstimateConfig()
    m = _measurements(0.0)
    labels = segment_passes(m.beam_pupil_mm)
    # Make every other pass move against the beam: passes disagree by many dioptres.
    odd = (labels % 2 == 1) & (labels >= 0)
    for arr in (m.reflex.rising_mm, m.reflex.falling_mm):
        arr[odd] = -arr[odd]
    res = _summarise(m, fit_passes(m, cfg), cfg)
    assert res.status == "ungradable" and res.reason == "inconsistent passes"


def test_prescription_from_two_meridians():
    assert prescription_from_meridians(-1.0, -2.5) == (-1.0, -1.5, 180.0)
    assert prescription_from_meridians(-2.5, -1.0) == (-1.0, -1.5, 90.0)
    s, c, a = prescription_from_meridians(0.5, 0.5)
    assert (s, c) == (0.5, 0.0)
    # Consistent with the meridional power of the doc: S + C sin²(θ − α).
    s, c, a = prescription_from_meridians(1.0, -0.75)
    assert optics.meridional_power(s, c, a, 0) == pytest.approx(1.0)
    assert optics.meridional_power(s, c, a, 90) == pytest.approx(-0.75)
    with pytest.raises(ValueError):
        prescription_from_meridians(np.nan, 1.0)


def test_config_validation_and_calibration_file(tmp_path):
    with pytest.raises(ValueError, match="source distance"):
        EstimateConfig(source_distance_m=-1)
    with pytest.raises(ValueError, match="axis"):
        EstimateConfig(axis=2)
    cal = tmp_path / "cal.json"
    cal.write_text('{"source_distance_m": 0.5, "distance_scale": 1.02}')
    cfg = load_calibration(cal)
    assert cfg.source_distance_m == 0.5 and cfg.distance_scale == 1.02
    bad = tmp_path / "bad.json"
    bad.write_text('{"u": 1}')
    with pytest.raises(ValueError, match="bad.json"):
        load_calibration(bad)


# --------------------------------------------------------------------------- calibrate


def test_calibration_recovers_source_distance_and_scale():
    rng = np.random.default_rng(1)
    k = rng.uniform(-6, 4, 30)
    d = rng.uniform(0.30, 0.40, 30)
    u_true, s_true = 0.55, 1.04
    r = optics.sweep_ratio(k, working_distance_m=d * s_true, source_distance_m=u_true)
    cal = fit_calibration(r, d, k, fit_scale=True)
    assert cal.source_distance_m == pytest.approx(u_true, rel=1e-3)
    assert cal.distance_scale == pytest.approx(s_true, rel=1e-3)
    assert cal.mae_after_d < 1e-3 < cal.mae_before_d
    only_u = fit_calibration(
        optics.sweep_ratio(k, working_distance_m=d, source_distance_m=0.3), d, k
    )
    assert only_u.source_distance_m == pytest.approx(0.3, rel=1e-3)
    assert model_power(np.array([np.inf]), np.array([0.4]), source_distance_m=0.4)[0] == -2.5
    with pytest.raises(ValueError, match="at least 2"):
        fit_calibration(r[:1], d[:1], k[:1])


# --------------------------------------------------------------------------- evaluate


def _pred(true, pred, status="ok", reason=None, motion="with", d=0.35):
    return {
        "video": "v.mp4",
        "power_d": pred,
        "status": status,
        "reason": reason,
        "true_power_d": true,
        "error_d": pred - true,
        "motion": motion,
        "working_distance_m": d,
        "true_working_distance_m": d,
    }


def test_cohort_metrics_by_hand():
    preds = [
        _pred(-2.0, -1.8),  # TP
        _pred(1.0, 0.5),  # FN (|0.5| < 0.75)
        _pred(0.0, 0.2),  # TN
        _pred(0.25, 1.0),  # FP
        _pred(-1 / 0.35, -1 / 0.35, motion="neutral"),  # TP, neutral
        _pred(-4.0, float("nan"), status="ungradable", reason="no pupil"),
    ]
    m = cohort_metrics(preds, config=EvaluationConfig())
    errs = np.array([0.2, -0.5, 0.2, 0.75, 0.0])
    assert m["n_videos"] == 6 and m["n_gradable"] == 5
    assert m["ungradable_rate"] == pytest.approx(1 / 6)
    assert m["ungradable_reasons"] == {"no pupil": 1}
    assert m["mae_d"] == pytest.approx(np.abs(errs).mean())
    assert m["sd_abs_error_d"] == pytest.approx(np.abs(errs).std(ddof=1))
    assert m["within_0_5"] == pytest.approx(4 / 5)
    assert m["sensitivity"] == pytest.approx(2 / 3)
    assert m["specificity"] == pytest.approx(1 / 2)
    lo, hi = m["sensitivity_ci"]
    assert lo < 2 / 3 < hi
    assert m["neutral_eyes"] == 1 and m["neutral_reported_neutral"] == 1
    names = [r["range"] for r in m["per_range"]]
    assert len(names) == 3 and sum(r["n"] for r in m["per_range"]) == 5


def test_manifest_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        read_manifest(tmp_path / "nope.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("video,eye\nv.mp4,OD\n")
    with pytest.raises(ValueError, match=r"bad\.csv.*power_d"):
        read_manifest(bad)
    nan = tmp_path / "nan.csv"
    nan.write_text("video,power_d\nv.mp4,abc\n")
    with pytest.raises(ValueError, match="line 2"):
        read_manifest(nan)
    good = tmp_path / "good.csv"
    good.write_text("video,power_d,meridian_deg\nsub/v.mp4,-1.5,90\n")
    rows = read_manifest(good)
    assert rows[0]["video_path"] == str((tmp_path / "sub" / "v.mp4").resolve())
    assert rows[0]["meridian_deg"] == 90 and rows[0]["power_d"] == -1.5


# --------------------------------------------------------------------------- video


def test_video_reader_errors(tmp_path):
    from ophthalmo.retinoscopy.video import iter_frames, probe_video

    with pytest.raises(FileNotFoundError, match="missing.mp4"):
        probe_video(tmp_path / "missing.mp4")
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty file"):
        probe_video(empty)
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 20)
    with pytest.raises(ValueError, match="notes.mp4"):
        list(iter_frames(text))


def test_video_reader_frames_and_truncation(tmp_path):
    cv2 = pytest.importorskip("cv2")
    from ophthalmo.retinoscopy.video import iter_frames, probe_video

    path = tmp_path / "ramp.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (64, 48))
    for k in range(20):
        writer.write(np.full((48, 64, 3), 10 * k, np.uint8))
    writer.release()
    info = probe_video(path)
    assert (info.width, info.height, info.fps) == (64, 48, 25.0)
    frames = list(iter_frames(path))
    assert len(frames) == 20 and frames[3][1] == pytest.approx(3 / 25)
    assert abs(int(frames[5][2].mean()) - 50) <= 3
    data = path.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 3])
    with pytest.raises(ValueError, match="cut.avi"):
        list(iter_frames(cut))
