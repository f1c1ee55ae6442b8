"""Simulated subjects with PPG and ABP whose BP content in the PPG is a dial.

Each beat's PPG is a systolic Gaussian wave plus a reflected (diastolic) wave; its ABP is the
same kind of shape scaled from the beat's DBP to its SBP. The PPG morphology (reflected-wave
amplitude and timing, systolic width) is driven by a latent

    m_b = ρ · z(SBP_b) + √(1 − ρ²) · ε_b,       ρ = ``bp_information`` ∈ [0, 1],

where z(SBP) = (SBP − 125) / 15 and ε_b is independent of BP (mostly per subject, partly per
beat). ρ = 0: the PPG shape carries no BP information; ρ = 1: the shape is a deterministic
function of SBP. Heart rate is always observable (beat timing) and drawn independently of
BP, so HR carries no BP information either. Noise, baseline wander and labelled motion
artifacts are optional. Used by the tests and the demo; not a physiological model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ppg.record import LabelSeries, Record

__all__ = ["SubjectParams", "ppg_simulate", "simulate_cohort", "simulate_subjects"]

_SBP_MEAN, _SBP_SD = 125.0, 15.0


@dataclass(frozen=True)
class SubjectParams:
    """Cardiovascular parameters of one simulated subject."""

    subject_id: str
    heart_rate: float = 70.0  #: mean HR (bpm)
    sbp: float = 120.0  #: mean SBP (mmHg)
    dbp: float = 80.0  #: mean DBP (mmHg)
    bp_variability: float = 6.0  #: SD of slow within-subject SBP changes (mmHg)
    hrv: float = 0.03  #: respiratory modulation of the beat interval (fraction)
    morphology: float = 0.0  #: the subject's BP-independent shape offset (SD units)


def _rng(random_state) -> np.random.Generator:
    return (
        random_state
        if isinstance(random_state, np.random.Generator)
        else np.random.default_rng(random_state)
    )


def simulate_subjects(n_subjects: int, *, random_state=None) -> list[SubjectParams]:
    """Draw subjects: HR 55–95 bpm, SBP ~ N(125, 15) clipped to 90–180, DBP from SBP."""
    if int(n_subjects) < 1:
        raise ValueError(f"n_subjects must be >= 1, got {n_subjects}")
    rng = _rng(random_state)
    out = []
    for i in range(int(n_subjects)):
        sbp = float(np.clip(rng.normal(_SBP_MEAN, _SBP_SD), 90, 180))
        dbp = float(np.clip(0.55 * sbp + rng.normal(12, 5), 45, sbp - 25))
        out.append(
            SubjectParams(
                subject_id=f"sim{i:03d}",
                heart_rate=float(rng.uniform(55, 95)),
                sbp=sbp,
                dbp=dbp,
                bp_variability=float(rng.uniform(3, 9)),
                hrv=float(rng.uniform(0.01, 0.05)),
                morphology=float(rng.normal()),
            )
        )
    return out


def _gauss(tau, mu, sd):
    return np.exp(-0.5 * ((tau - mu) / sd) ** 2)


def ppg_simulate(
    subject: SubjectParams | None = None,
    *,
    duration_s: float = 60.0,
    sampling_rate: float = 125.0,
    bp_information: float = 0.5,
    noise: float = 0.02,
    baseline_wander: float = 0.1,
    motion_per_min: float = 0.0,
    record_id: str | None = None,
    random_state=None,
) -> Record:
    """Simulate one record of ``subject`` (PPG in a.u., ABP in mmHg).

    Parameters
    ----------
    bp_information : float in [0, 1]
        How much of SBP shows in the PPG shape (0 none, 1 deterministic); see module docs.
    noise : float
        SD of white noise relative to the pulse amplitude (1).
    baseline_wander : float
        Amplitude of a 0.15–0.3 Hz baseline oscillation relative to the pulse amplitude.
    motion_per_min : float
        Mean number of motion artifacts per minute (1–4 s bursts, labelled in
        ``record.artifacts["ppg"]``).

    Returns
    -------
    Record
        Signals ``ppg`` and ``abp``; labels ``sbp``/``dbp`` (record means), ``hr`` (true mean
        rate); series ``sbp``/``dbp`` per beat; metadata with the parameters.
    """
    subject = subject or SubjectParams("sim000")
    rho = float(bp_information)
    if not 0.0 <= rho <= 1.0:
        raise ValueError(f"bp_information must be in [0, 1], got {bp_information}")
    if duration_s <= 0 or sampling_rate <= 0:
        raise ValueError("duration_s and sampling_rate must be > 0")
    if not 25 <= subject.heart_rate <= 220:
        raise ValueError(f"heart_rate {subject.heart_rate} bpm is outside 25–220")
    if subject.dbp >= subject.sbp:
        raise ValueError(f"dbp {subject.dbp} must be below sbp {subject.sbp}")
    rng = _rng(random_state)
    fs = float(sampling_rate)
    n = int(round(duration_s * fs))
    t = np.arange(n) / fs

    # Beat onsets with respiratory sinus arrhythmia; one extra beat before t = 0.
    resp_f = rng.uniform(0.15, 0.3)
    mean_ibi = 60.0 / subject.heart_rate
    onsets = [-rng.uniform(0, mean_ibi)]
    while onsets[-1] < duration_s:
        tb = onsets[-1]
        ibi = mean_ibi * (1 + subject.hrv * np.sin(2 * np.pi * resp_f * tb) + 0.01 * rng.normal())
        onsets.append(tb + max(ibi, 0.25))
    onsets = np.asarray(onsets)
    ibis = np.diff(onsets)
    nb = ibis.size
    tb = onsets[:-1]

    # Slow SBP changes (two random sinusoids) plus beat noise; DBP follows partly.
    phase = rng.uniform(0, 2 * np.pi, 2)
    freqs = rng.uniform(1 / 120, 1 / 30, 2)
    slow = (
        (
            np.sin(2 * np.pi * freqs[0] * tb + phase[0])
            + np.sin(2 * np.pi * freqs[1] * tb + phase[1])
        )
        / np.sqrt(2)
        * np.sqrt(2)
    )
    sbp = subject.sbp + subject.bp_variability * slow / np.sqrt(2) + rng.normal(0, 1.0, nb)
    dbp = subject.dbp + 0.5 * (sbp - subject.sbp) + rng.normal(0, 0.7, nb)
    dbp = np.minimum(dbp, sbp - 15)

    z_bp = (sbp - _SBP_MEAN) / _SBP_SD
    eps = np.sqrt(0.8) * subject.morphology + np.sqrt(0.2) * rng.normal(size=nb)
    m = rho * z_bp + np.sqrt(max(0.0, 1 - rho**2)) * eps
    refl_amp = np.clip(0.45 + 0.12 * m, 0.1, 0.9)
    refl_mu = np.clip(0.45 - 0.035 * m, 0.3, 0.6)
    sys_sd = np.clip(0.075 - 0.008 * m, 0.045, 0.11)

    # Per-sample beat index and phase; shapes pinned to 0 at both ends of each beat.
    b = np.clip(np.searchsorted(onsets, t, side="right") - 1, 0, nb - 1)
    tau = (t - onsets[b]) / ibis[b]

    def ppg_shape(tt, k):
        return _gauss(tt, 0.2, sys_sd[k]) + refl_amp[k] * _gauss(tt, refl_mu[k], 0.1)

    w = ppg_shape(tau, b) - ((1 - tau) * ppg_shape(0.0, b) + tau * ppg_shape(1.0, b))
    peak_val = np.array(
        [
            np.max(
                ppg_shape(np.linspace(0, 1, 200), k)
                - ppg_shape(0.0, k) * (1 - np.linspace(0, 1, 200))
                - ppg_shape(1.0, k) * np.linspace(0, 1, 200)
            )
            for k in range(nb)
        ]
    )
    ppg = w / peak_val[b]

    # ABP: same family, with a fixed aortic shape; from DBP at the onset to SBP at the peak.
    def abp_shape(tt):
        return _gauss(tt, 0.18, 0.07) + 0.35 * _gauss(tt, 0.42, 0.09)

    grid = np.linspace(0, 1, 400)
    base = abp_shape(grid) - ((1 - grid) * abp_shape(0.0) + grid * abp_shape(1.0))
    a = (abp_shape(tau) - ((1 - tau) * abp_shape(0.0) + tau * abp_shape(1.0))) / base.max()
    abp = dbp[b] + (sbp[b] - dbp[b]) * a
    abp_peak_t = onsets[:-1] + grid[np.argmax(base)] * ibis

    # Noise, baseline wander and motion artifacts.
    ppg = ppg + baseline_wander * np.sin(
        2 * np.pi * rng.uniform(0.15, 0.3) * t + rng.uniform(0, 6.3)
    )
    ppg = ppg + noise * rng.normal(size=n)
    artifact = np.zeros(n, dtype=bool)
    n_art = rng.poisson(motion_per_min * duration_s / 60.0) if motion_per_min > 0 else 0
    for _ in range(n_art):
        start = rng.uniform(0, duration_s)
        dur = rng.uniform(1, 4)
        sel = (t >= start) & (t < start + dur)
        k = int(sel.sum())
        if k == 0:
            continue
        walk = np.cumsum(rng.normal(size=k))
        walk = (walk - walk.mean()) / (walk.std() + 1e-12)
        ppg[sel] += rng.uniform(1.5, 4) * walk + 0.5 * rng.normal(size=k)
        artifact |= sel

    inside = (abp_peak_t >= 0) & (abp_peak_t < duration_s)
    true_hr = (
        60.0 / float(np.mean(ibis[(tb >= 0) & (tb < duration_s)]))
        if np.any((tb >= 0) & (tb < duration_s))
        else subject.heart_rate
    )
    return Record(
        record_id=record_id or subject.subject_id,
        subject_id=subject.subject_id,
        signals={"ppg": ppg, "abp": abp},
        fs={"ppg": fs, "abp": fs},
        labels={
            "sbp": float(np.mean(sbp[inside])),
            "dbp": float(np.mean(dbp[inside])),
            "hr": true_hr,
        },
        series={
            "sbp": LabelSeries(abp_peak_t[inside], sbp[inside], kind="beat", unit="mmHg"),
            "dbp": LabelSeries(abp_peak_t[inside], dbp[inside], kind="beat", unit="mmHg"),
            "hr": LabelSeries(tb[inside], 60.0 / ibis[inside], kind="beat", unit="bpm"),
        },
        artifacts={"ppg": artifact},
        metadata={
            "simulated": True,
            "bp_information": rho,
            "noise": noise,
            "motion_per_min": motion_per_min,
            **asdict(subject),
        },
        dataset="simulated",
    )


def simulate_cohort(
    n_subjects: int = 10,
    *,
    records_per_subject: int = 1,
    duration_s: float = 60.0,
    sampling_rate: float = 125.0,
    bp_information: float = 0.5,
    noise: float = 0.02,
    motion_per_min: float = 0.0,
    random_state=None,
) -> list[Record]:
    """Simulate ``n_subjects`` × ``records_per_subject`` records (see :func:`ppg_simulate`)."""
    rng = _rng(random_state)
    subjects = simulate_subjects(n_subjects, random_state=rng)
    return [
        ppg_simulate(
            s,
            duration_s=duration_s,
            sampling_rate=sampling_rate,
            bp_information=bp_information,
            noise=noise,
            motion_per_min=motion_per_min,
            record_id=f"{s.subject_id}/{r + 1}",
            random_state=rng,
        )
        for s in subjects
        for r in range(int(records_per_subject))
    ]
