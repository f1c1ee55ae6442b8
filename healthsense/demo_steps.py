"""The steps of ``healthsense demo``, one function per domain (see :mod:`healthsense.demo`).

Each step makes its own small data set with the toolkit's simulators, runs the library and
returns a :class:`~healthsense.demo.StepResult`. Steps import their domain lazily, so the
demo runs whatever parts of the toolkit are built.
"""

from __future__ import annotations

from pathlib import Path

from healthsense.demo import DemoConfig, StepResult, _require


def ppg_step(config: DemoConfig, out: Path) -> StepResult:
    _require("ppg.simulate", "ppg.windows", "ppg.mvm", "ppg.information")
    raise NotImplementedError  # replaced when the PPG parts land


#: Sizes of the demo's keratoconus cohorts: enough for a meaningful AUC, small enough for
#: a CPU training run of a few seconds.
KC_TRAIN_EYES = 240
KC_TEST_EYES = 80
KC_IMAGE_SIZE = 64


def kc_model_path(out: Path) -> Path:
    """Where the keratoconus step leaves its model (the screening step uses it)."""
    return out / "model" / "best.pt"


def kc_step(config: DemoConfig, out: Path) -> StepResult:
    """Stage-1 training on synthetic topographer eyes, zero-shot test on smartphone-style eyes."""
    _require("ophthalmo.keratoconus.synthetic", "ophthalmo.keratoconus.train")
    import dataclasses

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
        n_eyes=KC_TRAIN_EYES,
        random_state=config.seed,
        image_size=KC_IMAGE_SIZE * 2,
    )
    test_csv = generate_cohort(
        out / "smartkc",
        domain="smartkc",
        n_eyes=KC_TEST_EYES,
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
        optim=dataclasses.replace(OptimOptions(), epochs=12, patience=4),
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
    diag = metrics.binary_diagnostics(y, d)
    # The literature's index rules on the same eyes, as the non-learned baseline.
    truth = pd.read_csv(test_csv.parent / "generation.csv")
    rule_pos = (truth["rule_class"] != "normal").astype(int).to_numpy()
    rule = metrics.binary_diagnostics((truth["label"] != "normal").astype(int).to_numpy(), rule_pos)
    write_csv(out / "predictions.csv", scored)

    report = Report("Keratoconus screening on synthetic topography (demo)")
    report.add_text(
        f"A small dual-head CNN trained on {KC_TRAIN_EYES} synthetic topographer eyes (stage 1), "
        f"tested zero-shot on {KC_TEST_EYES} synthetic smartphone-topographer eyes. Suspect "
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


def retino_step(config: DemoConfig, out: Path) -> StepResult:
    _require("ophthalmo.retinoscopy.simulate", "ophthalmo.retinoscopy.estimate")
    raise NotImplementedError


def screening_step(config: DemoConfig, out: Path) -> StepResult:
    _require("healthsense.screening")
    raise NotImplementedError
