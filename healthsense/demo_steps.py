"""The steps of ``healthsense demo``, one function per domain (see :mod:`healthsense.demo`).

Each step makes its own small data set with the toolkit's simulators, runs the library and
returns a :class:`~healthsense.demo.StepResult`. Steps import their domain lazily, so
``healthsense --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path

from healthsense.demo import DemoConfig, StepResult

#: Morphology features for the demo's information fraction: low-dimensional on purpose, as
#: KSG estimates of a joint MI fall as weak features are added (docs §3).
PPG_FEATURES = ("hr_bpm", "rise_time_s", "width50_s", "max_slope_per_s", "area_ratio")


def _ppg_rows(ws, source: str, *, scope: str, seed: int) -> tuple[list[dict], object]:
    """MVM and information fraction of SBP and HR for one window set."""
    import numpy as np

    from ppg.features import window_features
    from ppg.information import information_fraction
    from ppg.mvm import multivalued_mapping

    feats, names = window_features(ws.raw, ws.fs)
    X = feats[:, [names.index(f) for f in PPG_FEATURES]]
    rows, sbp_mvm = [], None
    for label, unit in (("sbp", "mmHg"), ("hr", "bpm")):
        y = ws.labels[label]
        ok = np.isfinite(y) & np.all(np.isfinite(X), axis=1)
        mvm = multivalued_mapping(
            ws.raw[ok], y[ok], groups=ws.groups[ok], scope=scope, show_progress=False
        )
        info = information_fraction(
            X[ok],
            y[ok],
            groups=ws.groups[ok],
            n_bootstrap=50,
            label_unit=unit,
            random_state=seed,
            show_progress=False,
        )
        low, high = info.fraction_ci
        rows.append(
            {
                "data": source,
                "label": label.upper(),
                "windows": int(ok.sum()),
                "MVM scope": scope,
                "MVM factor": mvm.fraction,
                "colliding pairs": mvm.n_pairs,
                "information fraction": info.fraction,
                "fraction 95 % CI": f"{low:.2f}–{high:.2f}",
                "H(label) bits": info.entropy,
            }
        )
        if label == "sbp":
            sbp_mvm = (mvm, ws.raw[ok], y[ok])
    return rows, sbp_mvm


def _overlay(mvm, raw, y, fs: float):
    """The figure that convinces people: two look-alike windows with different labels."""
    import numpy as np

    from healthsense.report import new_figure

    fig, ax = new_figure(figsize=(6, 3))
    t = np.arange(raw.shape[1]) / fs
    i, j = int(mvm.pairs["i"][0]), int(mvm.pairs["j"][0])
    ax.plot(t, raw[i], label=f"SBP {y[i]:.0f} mmHg")
    ax.plot(t, raw[j], label=f"SBP {y[j]:.0f} mmHg", linestyle="--")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("PPG (record-scaled)")
    ax.legend(loc="upper right", fontsize=8)
    return fig


def ppg_step(config: DemoConfig, out: Path) -> StepResult:
    """MVM and information fraction of SBP vs HR on simulated (and real, if present) PPG."""
    from healthsense.report import Report, write_csv
    from ppg.simulate import simulate_cohort
    from ppg.windows import WindowConfig, make_windows, save_windows

    records = simulate_cohort(
        config.ppg_subjects, duration_s=60.0, bp_information=0.3, random_state=config.seed
    )
    ws = make_windows(
        records, WindowConfig(labels=("sbp", "hr")), total=len(records), dataset="simulated"
    )
    save_windows(ws, out / "simulated_windows.npz")
    rows, sbp = _ppg_rows(ws, "simulated (BP information 0.3)", scope="all", seed=config.seed)
    figures = [(_overlay(*sbp, ws.fs), "simulated")] if sbp[0].n_pairs else []
    real = _shared_data(config) / "mw-ppg-bp"
    if config.use_shared_data and real.is_dir():
        from ppg.datasets import iter_dataset

        real_ws = make_windows(
            iter_dataset("mw-ppg-bp", real),
            WindowConfig(channel="green", labels=("sbp", "hr"), scale="record"),
            dataset="mw-ppg-bp",
        )
        # One cuff SBP per subject: only other subjects' windows can disagree with it.
        real_rows, real_sbp = _ppg_rows(
            real_ws, "mw-ppg-bp (real)", scope="inter", seed=config.seed
        )
        rows += real_rows
        if real_sbp[0].n_pairs:
            figures.append((_overlay(*real_sbp, real_ws.fs), "mw-ppg-bp"))
    write_csv(out / "informativeness.csv", rows)

    report = Report("Is PPG informative enough for blood pressure? (demo)")
    report.add_text(
        "Multi-valued mapping (MVM) factor: share of 2-s windows that have a near-identical "
        "partner window whose label differs by more than 8 units (correlation ≥ 0.9, distance "
        "< 1.0, grid windows, record-scaled amplitude). Information fraction: KSG mutual "
        f"information between {len(PPG_FEATURES)} morphology features ({', '.join(PPG_FEATURES)}) "
        "and the label, divided by the label's entropy in its natural unit (mmHg, bpm); 95 % "
        "CI by subject bootstrap. Mehta et al. report MVM 33 % / information 10 % for BP and "
        "0.75 % / 88 % for heart rate."
    )
    report.add_table(rows)
    for fig, source in figures:
        report.add_figure(fig, caption=f"Look-alike windows with different SBP ({source})")
    report.save(out / "report.html")
    by = {(r["data"], r["label"]): r for r in rows}
    first = rows[0]["data"]
    summary = (
        f"{first}: MVM SBP {by[(first, 'SBP')]['MVM factor']:.1%} vs HR "
        f"{by[(first, 'HR')]['MVM factor']:.1%}; information fraction SBP "
        f"{by[(first, 'SBP')]['information fraction']:.2f} vs HR "
        f"{by[(first, 'HR')]['information fraction']:.2f}"
    )
    if len(rows) > 2:
        summary += f"; real mw-ppg-bp included ({rows[2]['windows']} windows)"
    figs = {
        f"{r['data'].split(' ')[0]} {r['label']} {k}": r[k]
        for r in rows
        for k in ("MVM factor", "information fraction")
    }
    return StepResult(
        "ppg",
        "ok",
        summary,
        figures=figs,
        outputs=[str(out / "report.html"), str(out / "informativeness.csv")],
    )


def _shared_data(config: DemoConfig) -> Path:
    """``../shared/data`` beside the working directory or the source tree, or the configured one."""
    if config.shared_data is not None:
        return Path(config.shared_data)
    for base in (Path.cwd(), Path(__file__).resolve().parents[1]):
        candidate = base.parent / "shared" / "data"
        if candidate.is_dir():
            return candidate
    return Path.cwd().parent / "shared" / "data"


#: Heatmap size the demo's keratoconus model sees: enough for the cone, fast on a CPU.
KC_IMAGE_SIZE = 64


def kc_model_path(out: Path) -> Path:
    """Where the keratoconus step leaves its model (the screening step uses it)."""
    return out / "model" / "best.pt"


def kc_step(config: DemoConfig, out: Path) -> StepResult:
    """Stage-1 training on synthetic topographer eyes, zero-shot test on smartphone-style eyes."""
    import dataclasses
    import warnings

    import numpy as np
    import pandas as pd

    from healthsense import metrics
    from healthsense.report import Report, write_csv
    from ophthalmo.keratoconus.predict import predict_cases
    from ophthalmo.keratoconus.synthetic import generate_cohort
    from ophthalmo.keratoconus.train import DatasetOptions, OptimOptions, TrainConfig, train

    train_csv = generate_cohort(
        out / "topographer",
        domain="topographer",
        n_eyes=config.kc_train_eyes,
        random_state=config.seed,
        image_size=KC_IMAGE_SIZE * 2,
    )
    test_csv = generate_cohort(
        out / "smartkc",
        domain="smartkc",
        n_eyes=config.kc_test_eyes,
        random_state=config.seed + 1,
        image_size=KC_IMAGE_SIZE * 2,
    )
    cfg = TrainConfig(
        data=str(train_csv.parent),
        out=str(out / "model"),
        seed=config.seed,
        deterministic=True,
        # One thread: small convolutions gain nothing from a second one, and on a busy
        # 2-core machine two threads contend badly (measured 10-30x slower).
        threads=1,
        dataset=DatasetOptions(image_size=KC_IMAGE_SIZE),
        optim=dataclasses.replace(OptimOptions(), epochs=config.kc_epochs, patience=4),
    )
    fit = train(cfg)
    frame = pd.read_csv(test_csv)
    frame[["axial", "tangential", "raw"]] = frame[["axial", "tangential", "raw"]].map(
        lambda p: str(test_csv.parent / p) if isinstance(p, str) and p else p
    )
    rows = predict_cases(fit.model, fit.card, frame)
    scored = [r for r in rows if "error" not in r]
    y = np.array([r["label"] != "normal" for r in scored], dtype=int)
    p = np.array([r["probability"] for r in scored])
    d = np.array([r["decision"] == "keratoconus" for r in scored], dtype=int)
    auc, lo, hi = metrics.roc_auc_ci(y, p)
    with warnings.catch_warnings():
        # Likelihood ratios are often undefined on a small test set; the demo reports only
        # sensitivity and specificity, so their warnings would be noise on the console.
        warnings.simplefilter("ignore", metrics.UndefinedMetricWarning)
        diag = metrics.binary_diagnostics(y, d)
    # The literature's index rules on the same eyes, as the non-learned baseline.
    truth = pd.read_csv(test_csv.parent / "generation.csv")
    rule_pos = (truth["rule_class"] != "normal").astype(int).to_numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", metrics.UndefinedMetricWarning)
        rule = metrics.binary_diagnostics(
            (truth["label"] != "normal").astype(int).to_numpy(), rule_pos
        )
    write_csv(out / "predictions.csv", scored)

    report = Report("Keratoconus screening on synthetic topography (demo)")
    report.add_text(
        f"A small dual-head CNN trained on {config.kc_train_eyes} synthetic topographer eyes "
        f"(stage 1), tested zero-shot on {config.kc_test_eyes} synthetic smartphone-topographer "
        "eyes. Suspect "
        "eyes count as positive. Synthetic eyes: the figures show the pipeline works, not "
        "clinical accuracy."
    )
    report.add_table(
        [
            {
                "method": "dual-head CNN (stage 1)",
                "AUC": auc,
                "AUC 95 % CI": f"{lo:.3f}–{hi:.3f}",
                "sensitivity": diag.sensitivity,
                "specificity": diag.specificity,
            },
            {
                "method": "index rules (central K, I-S, KISA %)",
                "AUC": float("nan"),
                "AUC 95 % CI": "",
                "sensitivity": rule.sensitivity,
                "specificity": rule.specificity,
            },
        ]
    )
    report.save(out / "report.html")
    return StepResult(
        "keratoconus",
        "ok",
        f"zero-shot AUC {auc:.3f} on {len(scored)} smartphone-style eyes "
        f"(sens {diag.sensitivity:.2f}, spec {diag.specificity:.2f}; rules "
        f"{rule.sensitivity:.2f}/{rule.specificity:.2f})",
        figures={
            "auc": auc,
            "auc_low": lo,
            "auc_high": hi,
            "sensitivity": diag.sensitivity,
            "specificity": diag.specificity,
            "rule_sensitivity": rule.sensitivity,
            "rule_specificity": rule.specificity,
            "threshold": fit.threshold,
        },
        outputs=[str(out / "report.html"), str(fit.checkpoint or kc_model_path(out))],
    )


#: Clip settings of the demo's retinoscopy videos: qHD is enough for the markers and the
#: reflex edges and keeps rendering and analysis inside the demo's time budget.
RETINO_CLIPS = {"width": 960, "height": 540, "fps": 25.0, "duration_s": 3.0}


def retino_clips(root: Path) -> Path:
    """The manifest of the retinoscopy step's clips (the screening step reuses the clips)."""
    return root / "retinoscopy" / "clips" / "manifest.csv"


def retino_step(config: DemoConfig, out: Path) -> StepResult:
    """Simulated retinoscopy videos of both eyes of every demo patient → dioptres → agreement."""
    from ophthalmo.retinoscopy.evaluate import (
        cohort_metrics,
        read_manifest,
        run_manifest,
        write_evaluation,
    )
    from ophthalmo.retinoscopy.simulate import simulate_cohort

    manifest = simulate_cohort(
        out / "clips",
        2 * config.screening_patients,
        difficulty="realistic",
        random_state=config.seed,
        **RETINO_CLIPS,
    )
    predictions = run_manifest(read_manifest(manifest), workers=2)
    found = cohort_metrics(predictions)
    paths = write_evaluation(out / "evaluation", predictions, found)
    ok = [p for p in predictions if p["status"] == "ok"]
    mae = found.get("mae_d", float("nan"))
    return StepResult(
        "retinoscopy",
        "ok",
        f"{len(ok)}/{len(predictions)} clips gradable; MAE {mae:.2f} D against the simulated truth",
        figures={
            k: v for k, v in found.items() if isinstance(v, int | float) and not isinstance(v, bool)
        },
        outputs=[str(paths["report"]) if "report" in paths else str(out / "evaluation")],
    )


def _screening_manifest(config: DemoConfig, root: Path, out: Path) -> Path:
    """A clinic-style manifest: both eyes of each patient, one deliberately corrupt video."""
    import csv

    from healthsense.report import atomic_write_bytes, write_csv
    from ophthalmo.keratoconus.synthetic import generate_cohort

    clips = retino_clips(root)
    with open(clips, newline="", encoding="utf-8") as handle:
        videos = list(csv.DictReader(handle))
    topo_csv = generate_cohort(
        out / "topography",
        domain="smartkc",
        n_eyes=2 * config.screening_patients,
        random_state=config.seed + 2,
        image_size=KC_IMAGE_SIZE * 2,
    )
    with open(topo_csv, newline="", encoding="utf-8") as handle:
        cases = list(csv.DictReader(handle))
    by_eye = {
        eye: ([v for v in videos if v["eye"] == eye], [c for c in cases if c["eye"] == eye])
        for eye in ("OD", "OS")
    }
    # A truncated recording, as a phone that ran out of storage leaves behind.
    corrupt = out / "corrupt.mp4"
    atomic_write_bytes(corrupt, (clips.parent / videos[0]["video"]).read_bytes()[:2048])
    rows = []
    for p in range(config.screening_patients):
        for eye in ("OD", "OS"):
            eye_videos, eye_cases = by_eye[eye]
            video = eye_videos[p % len(eye_videos)] if eye_videos else None
            case = eye_cases[p % len(eye_cases)]
            row = {
                "patient_id": f"P{p + 1:02d}",
                "eye": eye,
                "retinoscopy_video": "",
                "topography_npz": str((topo_csv.parent / case["raw"]).resolve()),
                "reference_power_d": "",
                "reference_keratoconus": "0" if case["label"] == "normal" else "1",
            }
            if video is not None and video["eye"] == eye:
                row["retinoscopy_video"] = str((clips.parent / video["video"]).resolve())
                row["reference_power_d"] = video["power_d"]
            rows.append(row)
    rows[-1]["retinoscopy_video"] = str(corrupt.resolve())
    rows[-1]["reference_power_d"] = ""
    return write_csv(out / "manifest.csv", rows)


def screening_step(config: DemoConfig, out: Path) -> StepResult:
    """The clinician batch run on the demo patients, with the keratoconus model just trained."""
    from healthsense.demo import StepUnavailable
    from healthsense.screening import ScreeningConfig, run_screening
    from healthsense.screening.config import RefractionOptions

    root = out.parent
    if not retino_clips(root).is_file():
        raise StepUnavailable("needs the retinoscopy step's clips")
    manifest = _screening_manifest(config, root, out)
    model = kc_model_path(root / "keratoconus")
    summary = run_screening(
        manifest,
        out / "run",
        # The clips were filmed (simulated) with this camera: its profile, not a guess.
        config=ScreeningConfig(
            refraction=RefractionOptions(
                camera_profile=str((retino_clips(root).parent / "camera.json").resolve())
            )
        ),
        kc_model=model if model.is_file() else None,
        workers=2,
        seed=config.seed,
        command="healthsense demo",
    )
    counts = ", ".join(f"{k} {v}" for k, v in sorted(summary.counts.items()))
    return StepResult(
        "screening",
        "ok",
        f"{summary.n_eyes} eyes: {counts}"
        + ("" if model.is_file() else " (index rules: no keratoconus model)"),
        figures={k.lower(): v for k, v in summary.counts.items()},
        outputs=[str(summary.summary_html), str(summary.csv), str(summary.audit)],
    )
