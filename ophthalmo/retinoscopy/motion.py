"""How the hand moves the retinoscope: eased sweeps out and back, tremor and drift.

The examiner turns the instrument (mostly a wrist rotation, partly a translation) so the
beam crosses the eye opening; each crossing is a *pass*. Positions follow a minimum-jerk
profile between the turning points with a short dwell, durations vary from pass to pass,
and physiological tremor (8–12 Hz) plus a slow drift are added to every degree of freedom.
The camera rides on the instrument, so these are also the camera poses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["HandMotion", "InstrumentPath", "sweep_path"]


@dataclass(frozen=True)
class HandMotion:
    """Parameters of the examiner's hand (lengths mm, angles degrees, times s).

    Attributes
    ----------
    amplitude_mm : turning points of the beam centre on the paper, ± around the eye opening.
    pass_s : mean duration of one pass (one direction).
    pass_jitter : relative spread of pass durations.
    dwell_s : pause at each turning point.
    translation_share : share of the sweep done by translating rather than turning.
    tremor_mm, tremor_deg : amplitude of the 8–12 Hz tremor in translation and rotation.
    drift_mm, drift_deg : amplitude of the slow (< 1 Hz) drift.
    distance_drift_mm : slow change of the working distance.
    """

    amplitude_mm: float = 12.0
    pass_s: float = 1.0
    pass_jitter: float = 0.15
    dwell_s: float = 0.08
    translation_share: float = 0.2
    tremor_mm: float = 0.12
    tremor_deg: float = 0.04
    drift_mm: float = 0.8
    drift_deg: float = 0.3
    distance_drift_mm: float = 2.0

    def __post_init__(self) -> None:
        if not self.amplitude_mm > 0:
            raise ValueError(f"sweep amplitude must be positive, got {self.amplitude_mm}")
        if not self.pass_s > 0.05:
            raise ValueError(f"pass duration must be > 0.05 s, got {self.pass_s}")
        if not 0 <= self.translation_share < 1:
            raise ValueError("translation_share must be in [0, 1)")
        for name in ("pass_jitter", "dwell_s", "tremor_mm", "tremor_deg", "drift_mm", "drift_deg"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")


@dataclass(frozen=True)
class InstrumentPath:
    """Instrument (= camera) poses at given times.

    ``position_mm``: peephole offset ``(x, y, z)`` from its nominal place on the axis of the
    eye opening (z > 0: nearer the eye); ``yaw, pitch``: rotation (rad); ``pass_index`` and
    ``direction`` (+1/−1 along the sweep axis, 0 while dwelling) label the passes.
    """

    t_s: np.ndarray
    position_mm: np.ndarray
    yaw: np.ndarray
    pitch: np.ndarray
    pass_index: np.ndarray
    direction: np.ndarray


def _min_jerk(tau: np.ndarray) -> np.ndarray:
    return tau**3 * (10.0 - 15.0 * tau + 6.0 * tau**2)


def _smooth_noise(
    t: np.ndarray, rng: np.random.Generator, *, f_lo: float, f_hi: float
) -> np.ndarray:
    """Unit-RMS sum of random sinusoids with frequencies in ``[f_lo, f_hi]`` Hz."""
    n = 5
    freqs = rng.uniform(f_lo, f_hi, n)
    phases = rng.uniform(0, 2 * np.pi, n)
    amps = rng.uniform(0.5, 1.0, n)
    out = (amps[:, None] * np.sin(2 * np.pi * freqs[:, None] * t[None, :] + phases[:, None])).sum(0)
    return out / np.sqrt(0.5 * np.sum(amps**2))


def sweep_path(
    t_s: np.ndarray,
    *,
    axis: int,
    paper_distance_mm: float,
    motion: HandMotion,
    random_state: int | np.random.Generator | None = None,
) -> InstrumentPath:
    """Poses of the instrument sweeping the beam along ``axis`` (0: x, 1: y) at times ``t_s``.

    The beam centre on the paper plane follows the eased path; the instrument realises it
    with a translation (``translation_share``) and a turn about the peephole.
    """
    if axis not in (0, 1):
        raise ValueError(f"sweep axis must be 0 (horizontal) or 1 (vertical), got {axis}")
    if paper_distance_mm <= 0:
        raise ValueError("paper distance must be positive")
    rng = np.random.default_rng(random_state)
    t = np.asarray(t_s, dtype=float)
    amp = motion.amplitude_mm
    # Pass schedule: start at a random turning point, alternate directions.
    sign = rng.choice([-1.0, 1.0])
    t_end = float(t.max()) + motion.pass_s + motion.dwell_s if t.size else 0.0
    starts, ends, dirs = [], [], []
    clock = rng.uniform(0.0, motion.dwell_s)
    while clock < t_end:
        dur = motion.pass_s * float(
            np.clip(1 + motion.pass_jitter * rng.standard_normal(), 0.5, 1.5)
        )
        starts.append(clock)
        ends.append(clock + dur)
        dirs.append(-sign)  # moving from sign·amp to −sign·amp
        sign = -sign
        clock += dur + motion.dwell_s * rng.uniform(0.5, 1.5)
    starts_a, ends_a, dirs_a = np.array(starts), np.array(ends), np.array(dirs)
    idx = np.searchsorted(starts_a, t, side="right") - 1
    idx = np.clip(idx, 0, len(starts_a) - 1)
    tau = np.clip((t - starts_a[idx]) / (ends_a[idx] - starts_a[idx]), 0.0, 1.0)
    in_pass = (t >= starts_a[idx]) & (t <= ends_a[idx])
    beam = -dirs_a[idx] * amp + dirs_a[idx] * 2.0 * amp * _min_jerk(tau)
    # Before the first pass starts the beam waits at its starting turning point.
    beam = np.where(t < starts_a[0], -dirs_a[0] * amp, beam)

    trans = motion.translation_share * beam
    turn = (beam - trans) / paper_distance_mm  # tan of the turning angle

    def tremor(scale: float) -> np.ndarray:
        return scale * _smooth_noise(t, rng, f_lo=8.0, f_hi=12.0)

    def drift(scale: float) -> np.ndarray:
        return scale * _smooth_noise(t, rng, f_lo=0.1, f_hi=0.8)

    pos = np.zeros((t.size, 3))
    pos[:, axis] += trans
    for k in range(3):
        pos[:, k] += tremor(motion.tremor_mm)
        pos[:, k] += drift(motion.distance_drift_mm if k == 2 else motion.drift_mm)
    angles = np.zeros((t.size, 2))  # yaw (about y: moves x), pitch (about x: moves y)
    angles[:, axis] = np.arctan(turn)
    for k in range(2):
        angles[:, k] += np.deg2rad(tremor(motion.tremor_deg) + drift(motion.drift_deg))
    direction = np.where(in_pass, dirs_a[idx], 0.0).astype(int)
    pass_index = np.where(in_pass, idx, -1)
    return InstrumentPath(t, pos, angles[:, 0], angles[:, 1], pass_index, direction)
