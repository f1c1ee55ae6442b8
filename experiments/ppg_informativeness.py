"""Experiment: MVM factor and information fraction of SBP, DBP and HR on real PPG data.

Reproduces the structure of Mehta et al.'s table on the datasets at hand (docs §5):

* ``mw-ppg-bp`` (78 subjects, finger PPG, one cuff BP per subject): MVM of SBP, DBP and HR in
  the inter-subject scope with grid and onset-anchored windows (record-scaled) and a sweep of
  the distance threshold; information fraction of SBP, DBP and HR from four feature sources
  (PPG-derived rate alone, hand-crafted features, 20-D autoencoder, downsampled windows).
* Aurora-BP sample waveforms (wrist PPG, cuff BP per measurement): MVM of SBP.
* Aurora-BP feature table: information fraction of SBP, HR (ECG) and RWAT with stated
  feature sets (PPG-derived, all non-target, best single feature).

Writes ``experiments/results/ppg_informativeness.md`` (and ``.json`` beside it).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from healthsense.config import load_config, write_config
from healthsense.report import atomic_write_text, write_json
from healthsense.runtime import get_logger, seed_everything, setup_logging

ROOT = Path(__file__).resolve().parents[1]
_log = get_logger("experiments.ppg_informativeness")


@dataclass(frozen=True)
class ExperimentConfig:
    data_dir: str = "../shared/data"
    out: str = "experiments/results/ppg_informativeness.md"
    k: int = 3
    n_bootstrap: int = 30
    embedding_dim: int = 20
    embedding_epochs: int = 30
    corr_threshold: float = 0.9
    label_threshold: float = 8.0
    dist_sweep: tuple[float, ...] = (1.0, 2.0, 5.0)
    seed: int = 0


PAPER = {  # Mehta et al. 2024: MIMIC (MVM, fraction) and Aurora-BP Table 8 (I / H bits)
    "sbp": {"mvm": 0.332, "fraction": 0.098, "aurora": (0.364, 3.680, 0.0989)},
    "hr": {"mvm": 0.0075, "fraction": 0.877, "aurora": (3.240, 3.650, 0.888)},
    "rwat": {"aurora": (1.650, 2.540, 0.650)},
}


def _windows(dataset: str, folder: Path, anchor: str, channel: str, labels):
    from ppg.datasets import count_records, iter_dataset
    from ppg.windows import WindowConfig, make_windows

    ws = make_windows(
        iter_dataset(dataset, folder),
        WindowConfig(channel=channel, labels=labels, scale="record", anchor=anchor),
        total=count_records(dataset, folder),
        dataset=dataset,
    )
    return ws.subset(ws.raw.std(axis=1) > 0)


def _fmt(x, spec=".3f"):
    return "–" if x is None or (isinstance(x, float) and not np.isfinite(x)) else format(x, spec)


def run_mw(cfg: ExperimentConfig, folder: Path) -> dict:
    from ppg.analyze import information_sources, mvm_for_windows
    from ppg.information import information_fraction

    out: dict = {"mvm": [], "information": []}
    for anchor in ("grid", "onset"):
        ws = _windows("mw-ppg-bp", folder, anchor, "green", ("sbp", "dbp", "hr"))
        out[f"n_windows_{anchor}"] = len(ws)
        for label in ("sbp", "dbp", "hr"):
            for dist in cfg.dist_sweep:
                t0 = time.perf_counter()
                r = mvm_for_windows(
                    ws,
                    label,
                    scope="inter",
                    corr_threshold=cfg.corr_threshold,
                    dist_threshold=dist,
                    label_threshold=cfg.label_threshold,
                    show_progress=False,
                )
                out["mvm"].append(
                    {
                        "anchor": anchor,
                        "label": label,
                        "dist": dist,
                        **r.summary(),
                        "seconds": time.perf_counter() - t0,
                    }
                )
        if anchor != "grid":
            continue
        sources = information_sources(
            ws, "sbp", dim=cfg.embedding_dim, epochs=cfg.embedding_epochs, seed=cfg.seed
        )
        for label in ("sbp", "dbp", "hr"):
            y = ws.labels[label]
            for name, (X, desc) in sources.items():
                ok = np.all(np.isfinite(X), axis=1) & np.isfinite(y)
                res = information_fraction(
                    X[ok],
                    y[ok],
                    k=cfg.k,
                    groups=ws.groups[ok],
                    n_bootstrap=cfg.n_bootstrap,
                    random_state=cfg.seed,
                    label_unit="bpm" if label == "hr" else "mmHg",
                    show_progress=False,
                )
                out["information"].append(
                    {"label": label, "source": name, "description": desc, **res.summary()}
                )
    return out


def run_aurora_waveforms(cfg: ExperimentConfig, folder: Path) -> dict:
    from ppg.analyze import mvm_for_windows

    ws = _windows("aurora-bp", folder, "grid", "ppg", ("sbp",))
    ws = ws.subset(np.isfinite(ws.labels["sbp"]))
    rows = []
    for scope in ("inter", "all"):
        for dist in cfg.dist_sweep:
            r = mvm_for_windows(
                ws,
                "sbp",
                scope=scope,
                corr_threshold=cfg.corr_threshold,
                dist_threshold=dist,
                label_threshold=cfg.label_threshold,
                show_progress=False,
            )
            rows.append({"scope": scope, "dist": dist, **r.summary()})
    return {
        "n_windows": len(ws),
        "n_records": int(np.unique(ws.record_ids).size),
        "n_subjects": int(np.unique(ws.groups).size),
        "mvm": rows,
    }


def run_aurora_table(cfg: ExperimentConfig, folder: Path) -> list[dict]:
    from ppg.datasets.aurora_bp import load_features
    from ppg.information import information_fraction

    table = load_features(folder)
    ids = {"pid", "phase", "measurement", "date_time"}
    numeric = [c for c in table if c not in ids]
    leaks = {  # columns that are the target (or a function of it) for each target
        "sbp": {"sbp", "dbp", "baseline_sbp", "baseline_dbp", "delta_sbp", "delta_dbp"},
        "hr_ekg": {"hr_ekg", "beat_length_ekg", "delta_hr_ekg", "delta_beat_length_ekg"},
        "rwat_pressure": {"rwat_pressure", "delta_rwat_pressure"},
    }
    ppg_set = ["dpdt_optical", "hr_optical", "rpat_optical"]
    units = {"sbp": "mmHg", "hr_ekg": "bpm", "rwat_pressure": "s (reported in ms)"}
    rows = []
    for target, leak in leaks.items():
        y_all = table[target] * (1000.0 if target == "rwat_pressure" else 1.0)  # RWAT in ms
        sets = {
            "PPG-derived (dpdt, hr, rPAT optical)": ppg_set,
            "PPG rate alone (hr_optical)": ["hr_optical"],
            "all non-target features": [
                c for c in numeric if c not in leak and c not in {"sbp", "dbp"}
            ],
        }
        singles = []
        for c in [c for c in numeric if c not in leak and c not in {"sbp", "dbp"}]:
            X = table[c][:, None]
            ok = np.isfinite(X[:, 0]) & np.isfinite(y_all)
            if ok.sum() < 50 or np.unique(X[ok]).size < 5:
                continue
            r = information_fraction(
                X[ok], y_all[ok], k=cfg.k, random_state=cfg.seed, show_progress=False
            )
            singles.append((r.mi_bits, c))
        best = max(singles)[1]
        sets[f"best single feature ({best})"] = [best]
        for name, cols in sets.items():
            X = np.column_stack([table[c] for c in cols])
            ok = np.all(np.isfinite(X), axis=1) & np.isfinite(y_all)
            r = information_fraction(
                X[ok],
                y_all[ok],
                k=cfg.k,
                groups=table["pid"][ok],
                n_bootstrap=cfg.n_bootstrap,
                random_state=cfg.seed,
                label_unit=units[target],
                show_progress=False,
            )
            rows.append({"target": target, "feature_set": name, "columns": cols, **r.summary()})
    return rows


def _markdown(cfg, mw, aw, at, seconds) -> str:
    L = ["# PPG informativeness on real data (experiments/ppg_informativeness.py)", ""]
    L += [
        f"Run: `.venv/bin/python experiments/ppg_informativeness.py` (config "
        f"`experiments/ppg_informativeness.toml`: k = {cfg.k}, {cfg.n_bootstrap} subject-level "
        f"bootstrap replicates, corr ≥ {cfg.corr_threshold}, |Δy| > {cfg.label_threshold}, "
        f"dist sweep {list(cfg.dist_sweep)}, seed {cfg.seed}); {seconds / 60:.1f} min on the "
        "shared 2-core machine. Windows: band-pass 0.5–8 Hz, 125 Hz, 2 s, non-overlapping, "
        "amplitude scaled per record (1st–99th percentile → [0, 1]). Entropies are in the "
        "label's natural unit (mmHg, bpm, ms): the fraction depends on it.",
        "",
    ]
    L += [
        "## 1. mw-ppg-bp: MVM factor (inter-subject scope)",
        "",
        f"{mw['n_windows_grid']} grid windows, {mw['n_windows_onset']} onset-anchored windows "
        "of 78 subjects. BP is one cuff value per subject; HR is per window (PPG peaks).",
        "",
        "| anchor | label | dist < | MVM | multi-valued / N | colliding pairs | paper (MIMIC) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in mw["mvm"]:
        paper = PAPER.get(r["label"], {}).get("mvm")
        L.append(
            f"| {r['windows']['anchor']} | {r['label'].upper()} | {r['dist_threshold']:g} | "
            f"{100 * r['fraction']:.1f} % | {r['n_multivalued']}/{r['n_windows']} | "
            f"{r['n_pairs']} | {_fmt(100 * paper, '.2f') + ' %' if paper else '–'} |"
        )
    L += [
        "",
        "## 2. mw-ppg-bp: information fraction (grid windows)",
        "",
        "| label | X | d | n | I (bits) | H (bits) | fraction [95 % CI] | paper |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in mw["information"]:
        paper = PAPER.get(r["label"], {}).get("fraction")
        lo, hi = r["information_fraction_ci"]
        L.append(
            f"| {r['label'].upper()} | {r['source']} | {r['d']} | {r['n']} | "
            f"{r['mi_bits']:.3f} | {r['entropy_bits']:.3f} | {100 * r['information_fraction']:.1f} % "
            f"[{_fmt(100 * lo, '.1f')}, {_fmt(100 * hi, '.1f')}] | "
            f"{_fmt(100 * paper, '.1f') + ' %' if paper else '–'} |"
        )
    L += [
        "",
        "## 3. Aurora-BP sample waveforms: MVM factor of SBP",
        "",
        f"{aw['n_windows']} grid windows of wrist PPG from {aw['n_records']} measurements of "
        f"{aw['n_subjects']} participants (one cuff SBP per measurement).",
        "",
        "| scope | dist < | MVM | multi-valued / N | colliding pairs |",
        "|---|---|---|---|---|",
    ]
    for r in aw["mvm"]:
        L.append(
            f"| {r['scope']} | {r['dist_threshold']:g} | {100 * r['fraction']:.1f} % | "
            f"{r['n_multivalued']}/{r['n_windows']} | {r['n_pairs']} |"
        )
    L += [
        "",
        "## 4. Aurora-BP feature table: information fraction",
        "",
        "| target | feature set | d | n | I (bits) | H (bits) | fraction [95 % CI] | paper I / H = fraction |",
        "|---|---|---|---|---|---|---|---|",
    ]
    key = {"sbp": "sbp", "hr_ekg": "hr", "rwat_pressure": "rwat"}
    for r in at:
        pi, ph, pf = PAPER[key[r["target"]]]["aurora"]
        lo, hi = r["information_fraction_ci"]
        L.append(
            f"| {r['target']} ({r['label_unit']}) | {r['feature_set']} | {r['d']} | {r['n']} | "
            f"{r['mi_bits']:.3f} | {r['entropy_bits']:.3f} | "
            f"{100 * r['information_fraction']:.1f} % [{_fmt(100 * lo, '.1f')}, "
            f"{_fmt(100 * hi, '.1f')}] | {pi:.3f} / {ph:.3f} = {100 * pf:.1f} % |"
        )
    L += ["", *_discussion(mw, at), ""]
    return "\n".join(L)


def _discussion(mw, at) -> list[str]:
    """The comparison with the paper, with this run's numbers filled in."""

    def mvm(anchor, label, dist=1.0):
        return next(
            r["fraction"]
            for r in mw["mvm"]
            if r["windows"]["anchor"] == anchor
            and r["label"] == label
            and r["dist_threshold"] == dist
        )

    def frac(label, source):
        return next(
            r["information_fraction"]
            for r in mw["information"]
            if r["label"] == label and r["source"] == source
        )

    g_s, g_h, o_s, o_h = (
        mvm("grid", "sbp"),
        mvm("grid", "hr"),
        mvm("onset", "sbp"),
        mvm("onset", "hr"),
    )
    f_s, f_h = frac("sbp", "hr_feature"), frac("hr", "hr_feature")
    e_s, e_h = frac("sbp", "embedding"), frac("hr", "embedding")
    holds_mvm = g_s > 5 * max(g_h, 1e-9) and o_s > 5 * max(o_h, 1e-9)
    holds_info = f_h > f_s and e_h > e_s
    return [
        "## Discussion: what holds, and why our numbers differ from the paper's",
        "",
        f"**The qualitative result holds on mw-ppg-bp** ({'yes' if holds_mvm else 'NO'} for MVM, "
        f"{'yes' if holds_info else 'NO'} for the information fraction): at the default "
        f"thresholds SBP's MVM factor is {100 * g_s:.1f} % (grid) / {100 * o_s:.1f} % (onset) "
        f"against {100 * g_h:.1f} % / {100 * o_h:.1f} % for HR, and HR's information fraction is "
        f"{100 * f_h:.0f} % (PPG rate alone) / {100 * e_h:.0f} % (20-D embedding) against "
        f"{100 * f_s:.0f} % / {100 * e_s:.0f} % for SBP.",
        "",
        "**Why the values differ.** (1) *Label granularity*: mw-ppg-bp has one cuff BP per "
        "subject (mean of three readings, right before the recording), so every window of a "
        "subject carries the same SBP. The MI between a window and that label is then bounded by "
        "how well the window identifies its subject; a morphology fingerprint does that "
        "partly, which is why SBP's fraction from hand-crafted features (d = 21) is well above "
        "the paper's 9.8 % — it measures subject identity as much as blood pressure. The paper "
        "used beat-level ABP labels on MIMIC, where the same waveform shape meets many BP "
        "values within one patient. (2) *Dataset size*: 78 subjects / ~2,300 windows here versus "
        "thousands of ICU patients; the KSG estimate of a joint MI falls with dimension at small "
        "n (compare the 1-D rows with the 20–25-D rows), so only rows of equal d are comparable. "
        "(3) *Estimator and unit*: the paper used a k-NN KL estimator with k = 100, we use KSG "
        "with k = 3; entropies are differential, in mmHg / bpm / ms, so the fraction moves with "
        "the unit (RWAT in ms gives H ≈ 5.8 bits where the paper reports 2.54). (4) *HR labels*: "
        "on mw-ppg-bp the HR label comes from PPG peaks of the same window, and 2-s windows hold "
        "only 1–3 beats, so the rate is quantised and noisy; MIMIC's HR came from a monitor. "
        "(5) *MVM thresholds and scaling*: the MVM factor depends strongly on the distance "
        "threshold and the amplitude scale (the sweep above); with record scaling and onset "
        "anchoring, SBP collisions are frequent even at the default `dist < 1`. On Aurora-BP "
        "the `all` and `inter` scopes agree because a measurement has one cuff SBP, so "
        "same-record pairs never differ in label; and the 385-row table with ~12 participants "
        "gives wide subject-bootstrap intervals. The bootstrap intervals are the spread of "
        "subject resamples centred on the estimate; duplicated subjects raise k-NN estimates, "
        "and that shift is stored as `bootstrap_bias` in the JSON beside this file.",
    ]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(ROOT / "experiments/ppg_informativeness.toml"))
    ap.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    args = ap.parse_args(argv)
    setup_logging(0)
    cfg = load_config(ExperimentConfig, args.config, args.overrides)
    seed_everything(cfg.seed)
    data = (ROOT / cfg.data_dir).resolve()
    t0 = time.perf_counter()
    mw = run_mw(cfg, data / "mw-ppg-bp")
    aw = run_aurora_waveforms(cfg, data / "aurora-bp-sample")
    at = run_aurora_table(cfg, data / "aurora-bp-sample")
    seconds = time.perf_counter() - t0
    out = ROOT / cfg.out
    text = _markdown(cfg, mw, aw, at, seconds)
    atomic_write_text(out, text)
    write_json(
        out.with_suffix(".json"),
        {"config": asdict(cfg), "mw_ppg_bp": mw, "aurora_waveforms": aw, "aurora_table": at},
    )
    write_config(
        cfg,
        out.parent,
        name="ppg_informativeness.config.json",
        command="experiments/ppg_informativeness.py",
    )
    print(json.dumps({"out": str(out), "minutes": round(seconds / 60, 2)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
