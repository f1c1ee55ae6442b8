"""Signal functions: analytic cases, simulate-then-recover, and the real artifact labels."""

from __future__ import annotations

import numpy as np
import pytest

from ppg import signal as s
from ppg.labels import abp_beats, hr_per_window, series_per_window
from ppg.record import LabelSeries
from ppg.simulate import SubjectParams, ppg_simulate, simulate_cohort


def test_bandpass_zero_phase_and_band():
    fs = 125.0
    t = np.arange(int(20 * fs)) / fs
    inband = np.sin(2 * np.pi * 1.5 * t)
    x = (
        inband
        + 2.0
        + 0.5 * t / 20
        + 0.8 * np.sin(2 * np.pi * 20 * t)
        + 0.8 * np.sin(2 * np.pi * 0.05 * t)
    )
    y = s.signal_bandpass(x, fs, lowcut=0.5, highcut=8.0)
    core = slice(int(3 * fs), -int(3 * fs))
    # the in-band sine passes unchanged in amplitude and phase (zero-phase filter)
    assert np.max(np.abs(y[core] - inband[core])) < 0.03
    lag = np.argmax(np.correlate(y[core], inband[core], "full")) - (y[core].size - 1)
    assert lag == 0


def test_bandpass_errors():
    with pytest.raises(ValueError, match="highcut"):
        s.signal_bandpass(np.ones(1000), 10.0, highcut=8.0)
    with pytest.raises(ValueError, match="NaN"):
        s.signal_bandpass(np.array([1.0, np.nan] * 100), 100.0)
    with pytest.raises(ValueError, match="1 sample"):
        s.ppg_clean(np.ones(1), 100.0)
    with pytest.raises(ValueError, match="needs more than"):
        s.signal_bandpass(np.ones(20), 100.0)
    with pytest.raises(ValueError, match="sampling_rate"):
        s.ppg_clean(np.ones(100), 0)


def test_fillnan():
    filled, mask = s.signal_fillnan([1.0, np.nan, 3.0, np.nan, np.nan, 6.0])
    assert filled.tolist() == [1, 2, 3, 4, 5, 6] and mask.sum() == 3
    with pytest.raises(ValueError, match="gap of 2"):
        s.signal_fillnan([1.0, np.nan, np.nan, 4.0], max_gap=1)


@pytest.mark.parametrize("method", ["polyphase", "fft", "interpolation"])
def test_resample_preserves_sine(method):
    t0 = np.arange(2000) / 200.0
    y = s.signal_resample(np.sin(2 * np.pi * 1.2 * t0), 200, 125, method=method)
    assert abs(y.size - 1250) <= 1
    t1 = np.arange(y.size) / 125.0
    core = slice(50, -50)
    assert np.max(np.abs(y[core] - np.sin(2 * np.pi * 1.2 * t1[core]))) < 0.02


def test_polarity_and_inverted_clean():
    rec = ppg_simulate(SubjectParams("a", heart_rate=70), duration_s=20, random_state=0)
    x = s.ppg_clean(rec.signal("ppg"), 125)
    assert s.ppg_polarity(x, 125) == 1 and s.ppg_polarity(-x, 125) == -1
    fixed = s.ppg_clean(-rec.signal("ppg"), 125, polarity="auto")
    assert np.allclose(fixed, x)


@pytest.mark.parametrize("method", ["elgendi", "derivative"])
@pytest.mark.parametrize("hr", [52.0, 75.0, 118.0])
def test_hr_recovered_from_simulation_within_1_bpm(method, hr):
    rec = ppg_simulate(
        SubjectParams("a", heart_rate=hr), duration_s=60, noise=0.03, random_state=int(hr)
    )
    x = s.ppg_clean(rec.signal("ppg"), 125)
    peaks = s.ppg_findpeaks(x, 125, method=method)
    # compare like with like: the true median rate of the simulated beats
    truth = 60.0 / np.median(60.0 / rec.series["hr"].values)
    assert abs(s.heart_rate(peaks, 125) - truth) < 1.0
    assert abs(s.heart_rate_spectral(x, 125) - rec.labels["hr"]) < 1.5


def test_onsets_and_beats_on_simulation():
    rec = ppg_simulate(
        SubjectParams("a", heart_rate=72),
        duration_s=30,
        noise=0.0,
        baseline_wander=0,
        random_state=1,
    )
    x = s.ppg_clean(rec.signal("ppg"), 125)
    peaks = s.ppg_findpeaks(x, 125)
    for method in ("minimum", "tangent", "d2max"):
        on = s.ppg_onsets(x, peaks, 125, method=method)
        ok = on >= 0
        assert ok.sum() >= peaks.size - 1
        assert np.all(on[ok] < peaks[ok])
        # the foot precedes the peak by a plausible rise time (simulated peak at 20 % of the beat)
        rise = (peaks[ok] - on[ok]) / 125
        assert 0.05 < np.median(rise) < 0.4
    beats = s.ppg_beats(x, 125)
    assert len(beats) >= 30 and np.allclose(np.median(beats.durations_s), 60 / 72, atol=0.05)
    assert beats.matrix(x, 50).shape == (len(beats), 50)


def test_flat_and_nan_inputs_are_flagged_not_guessed():
    flat = np.zeros(2000)
    assert s.ppg_findpeaks(flat, 125).size == 0
    assert np.all(s.ppg_quality(flat, 125) == 0)
    assert np.isnan(s.heart_rate([], 125))
    assert np.isnan(s.heart_rate_spectral(flat, 125))
    assert s.window_sqi([1.0, np.nan, 2.0, 3.0], 125) == 0.0


@pytest.mark.parametrize("method", ["templatematch", "skewness", "spectral"])
def test_quality_drops_in_simulated_artifacts(method):
    rec = ppg_simulate(
        SubjectParams("a", heart_rate=70), duration_s=120, motion_per_min=3, random_state=5
    )
    x = s.ppg_clean(rec.signal("ppg"), 125)
    q = s.ppg_quality(x, 125, method=method)
    art = rec.artifacts["ppg"]
    assert art.any()
    assert q.shape == x.shape and np.all((q >= 0) & (q <= 1))
    assert q[~art].mean() > q[art].mean()


def test_abp_beats_match_simulated_truth():
    rec = ppg_simulate(
        SubjectParams("a", heart_rate=65, sbp=140, dbp=85), duration_s=30, random_state=2
    )
    peaks, troughs, sbp, dbp = abp_beats(rec.signal("abp"), 125)
    truth = rec.series["sbp"]
    assert peaks.size >= len(truth) - 1
    # each detected beat sits within 30 ms of a true systolic peak and has its SBP within 1 mmHg
    idx = np.searchsorted(truth.times_s, peaks / 125)
    idx = np.clip(idx, 1, len(truth) - 1)
    nearest = np.where(
        np.abs(truth.times_s[idx] - peaks / 125) < np.abs(truth.times_s[idx - 1] - peaks / 125),
        idx,
        idx - 1,
    )
    assert np.all(np.abs(truth.times_s[nearest] - peaks / 125) < 0.03)
    assert np.nanmax(np.abs(sbp - truth.values[nearest])) < 1.0
    assert np.all(troughs < peaks) and np.nanmean(dbp) == pytest.approx(
        np.mean(rec.series["dbp"].values), abs=2
    )


def test_abp_implausible_values_are_nan():
    t = np.arange(1250) / 125
    p, _, sbp, _ = abp_beats(400 + 50 * np.sin(2 * np.pi * t), 125)
    assert p.size > 5 and np.all(np.isnan(sbp))


def test_window_label_helpers_analytic():
    series = LabelSeries([0.5, 1.5, 2.5, 3.5], [100, 110, np.nan, 130])
    got = series_per_window(series, [0.0, 2.0, 4.0], 2.0)
    assert got[0] == 105 and got[1] == 130 and np.isnan(got[2])
    # peaks every 0.8 s at fs 100 → 75 bpm everywhere; no peak beyond 4 s → NaN
    peaks = np.arange(0, 400, 80)
    hr = hr_per_window(peaks, 100, [0.0, 2.0, 10.0], 2.0)
    assert hr[0] == pytest.approx(75) and hr[1] == pytest.approx(75) and np.isnan(hr[2])


def test_bp_information_dial():
    from scipy.stats import spearmanr

    from ppg.features import window_features
    from ppg.windows import make_windows

    corr = {}
    for rho in (0.0, 1.0):
        recs = simulate_cohort(12, duration_s=20, bp_information=rho, noise=0.005, random_state=3)
        ws = make_windows(recs, labels=("sbp",))
        X, names = window_features(ws.raw, ws.fs)
        f = X[:, names.index("spectral_h2_h1")]
        ok = np.isfinite(f)
        corr[rho] = abs(spearmanr(f[ok], ws.labels["sbp"][ok]).statistic)
    assert corr[1.0] > 0.6 and corr[0.0] < 0.35


def test_sqi_detects_real_artifacts(shared_data):
    """Template-match SQI against the labelled artifacts of mw-ppg-bp (subjects with some)."""
    from healthsense.metrics import roc_auc
    from ppg.datasets import iter_dataset
    from ppg.windows import make_windows

    ws = make_windows(
        iter_dataset(
            "mw-ppg-bp", shared_data / "mw-ppg-bp", subjects=[6, 40, 55, 61, 70], channels=["green"]
        ),
        channel="green",
        labels=("hr",),
    )
    y = (ws.labels["artifact"] > 0).astype(int)
    assert 0 < y.sum() < y.size
    assert roc_auc(y, -ws.quality) > 0.8
