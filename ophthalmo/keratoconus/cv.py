"""Cross-validated comparison of training recipes on the small domain (docs section 4).

Outer loop: patient-grouped, label-stratified k-fold over domain B. Inside each training
fold an inner patient split of B chooses the early-stopping epoch and the decision threshold,
so the test fold is touched only once, for scoring. Recipes:

``b_only``      random init, trained on the B training fold only;
``a_only``      trained once on A (threshold on A validation), applied zero-shot to B;
``joint``       random init, trained on A + the B training fold, validated on B;
``two_stage``   the ``a_only`` model fine-tuned on the B training fold (stage 2);
``indices``     the non-learned literature rules (KISA %, central K, I-S; no fitting).

Pooled out-of-fold predictions give AUC (DeLong CI), sensitivity and specificity (Wilson CI)
and a DeLong test of two-stage against B-only; per-fold figures are kept too.
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from healthsense.runtime import get_logger
from ophthalmo.keratoconus.data import (
    encode_labels,
    load_raw_case,
    patient_kfold,
    patient_split,
    read_labels,
)
from ophthalmo.keratoconus.train import (
    DatasetOptions,
    ModelOptions,
    OptimOptions,
    TrainConfig,
    fit,
    positive_score,
    predict_proba,
)

__all__ = ["RECIPES", "CVConfig", "CVResult", "index_rule_scores", "run_cv", "summarise"]

log = get_logger("kc.cv")
RECIPES = ("b_only", "a_only", "joint", "two_stage", "indices")
LABELS = {
    "b_only": "B only",
    "a_only": "A only (zero-shot)",
    "joint": "A+B jointly",
    "two_stage": "two-stage (A then B)",
    "indices": "index rules (KISA %)",
}


@dataclass(frozen=True)
class CVConfig:
    """``healthsense kc cv`` configuration.

    ``data_a``/``data_b`` may be the same folder; ``domain_a``/``domain_b`` then select the
    rows. ``optim`` trains stage 1, A-only and joint; ``b_optim`` B-only; ``stage2`` the
    fine-tuning of the two-stage recipe.
    """

    data_a: str = ""
    data_b: str = ""
    domain_a: str = "topographer"
    domain_b: str = "smartkc"
    out: str = "kc_cv"
    n_splits: int = 5
    seed: int = 0
    device: str = "auto"
    recipes: tuple[str, ...] = RECIPES
    inner_val_fraction: float = 0.25
    threads: int = 0  # torch CPU threads (0: torch's default; 1 on a shared 2-core machine)
    dataset: DatasetOptions = field(default_factory=DatasetOptions)
    model: ModelOptions = field(default_factory=ModelOptions)
    optim: OptimOptions = field(default_factory=lambda: OptimOptions(epochs=12, patience=4))
    joint_epochs: int = 6
    b_optim: OptimOptions = field(
        default_factory=lambda: OptimOptions(epochs=40, patience=10, batch_size=16)
    )
    stage2: OptimOptions = field(
        default_factory=lambda: OptimOptions(
            lr=1e-3,
            epochs=25,
            patience=8,
            batch_size=16,
            warmup_epochs=0,
            freeze_stages=1,
            lr_mult=0.3,
        )
    )

    def __post_init__(self) -> None:
        bad = sorted(set(self.recipes) - set(RECIPES))
        if bad:
            raise ValueError(f"unknown recipe(s) {bad}; valid: {list(RECIPES)}")
        if self.n_splits < 2:
            raise ValueError(f"n_splits must be >= 2, got {self.n_splits}")


@dataclass
class CVResult:
    """Pooled summary rows, per-fold rows, out-of-fold predictions, timing."""

    summary: list[dict[str, Any]]
    folds: list[dict[str, Any]]
    predictions: pd.DataFrame
    comparisons: list[dict[str, Any]]
    seconds: float


def _domain(frame: pd.DataFrame, domain: str, where: str) -> pd.DataFrame:
    if domain:
        frame = frame[frame["domain"] == domain]
    if frame.empty:
        raise ValueError(f"{where}: no case of domain {domain!r}")
    return frame.reset_index(drop=True)


def index_rule_scores(frame: pd.DataFrame, *, suspect: str = "positive") -> pd.DataFrame:
    """KISA %, central K, I-S and the rule decision of every case (needs raw maps).

    ``rule_positive`` is the binary decision of the literature rule: "keratoconus", plus
    "suspect" when suspects count as positive.
    """
    from ophthalmo.keratoconus.indices import compute_indices

    rows = []
    for raw in frame["raw"]:
        if not raw:
            raise ValueError("the index-rule baseline needs raw maps (.npz) for every case")
        case = load_raw_case(raw)
        try:
            ind = compute_indices(case["axial_d"], mm_per_px=case["mm_per_px"], eye=case["eye"])
        except ValueError as exc:
            raise ValueError(f"{raw}: clinical indices undefined ({exc})") from None
        positive = {"keratoconus"} | ({"suspect"} if suspect == "positive" else set())
        rows.append(
            {
                "kisa_pct": ind["kisa_pct"],
                "central_k_d": ind["central_k_d"],
                "i_s_d": ind["i_s_d"],
                "rule_class": ind["rule_class"],
                "rule_positive": ind["rule_class"] in positive,
            }
        )
    return pd.DataFrame(rows, index=frame.index)


def _train_cfg(
    cfg: CVConfig, optim: OptimOptions, *, stage: int = 1, init: str = "", seed: int = 0
):
    return TrainConfig(
        stage=stage,
        init=init,
        device=cfg.device,
        threads=cfg.threads,
        seed=seed,
        dataset=cfg.dataset,
        model=cfg.model,
        optim=optim,
    )


def _score(model, frame: pd.DataFrame, cfg: CVConfig, device: str) -> np.ndarray:
    from ophthalmo.keratoconus.data import KCDataset

    ds = KCDataset(
        frame,
        image_size=cfg.dataset.image_size,
        task=cfg.dataset.task,
        suspect=cfg.dataset.suspect,
        use_indices=cfg.dataset.use_indices,
        labelled=False,
    )
    return positive_score(predict_proba(model, ds, device=device))


def run_cv(cfg: CVConfig, *, renderer=None) -> CVResult:
    """Run every recipe of ``cfg.recipes`` on the same outer folds of domain B."""
    from healthsense.runtime import progress, select_device

    t0 = time.perf_counter()
    device = str(select_device(cfg.device))
    frame_b = _domain(read_labels(cfg.data_b), cfg.domain_b, cfg.data_b)
    need_a = bool({"a_only", "joint", "two_stage"} & set(cfg.recipes))
    frame_a = _domain(read_labels(cfg.data_a), cfg.domain_a, cfg.data_a) if need_a else None
    ds = cfg.dataset
    yb = encode_labels(frame_b["label"], task=ds.task, suspect=ds.suspect)
    frame_b, yb = frame_b[yb >= 0].reset_index(drop=True), yb[yb >= 0]
    target = (yb == (1 if ds.task == "binary" else 2)).astype(int)
    out = Path(cfg.out)

    model_a, thr_a = None, math.nan
    if need_a:
        ya = encode_labels(frame_a["label"], task=ds.task, suspect=ds.suspect)
        frame_a = frame_a[ya >= 0].reset_index(drop=True)
        tr, va = patient_split(
            frame_a, val_fraction=ds.val_fraction, y=ya[ya >= 0], random_state=cfg.seed
        )
        log.info("stage 1 / A-only: %d train, %d validation eyes of domain A", len(tr), len(va))
        res_a = fit(
            _train_cfg(cfg, cfg.optim, seed=cfg.seed),
            frame_a.iloc[tr],
            frame_a.iloc[va],
            out_dir=out / "stage1",
            renderer=renderer,
            data_info={"role": "domain A"},
        )
        model_a, thr_a, stage1_ckpt = res_a.model, res_a.threshold, str(res_a.checkpoint)
        a_train = frame_a.iloc[tr]

    scores = {r: np.full(len(frame_b), np.nan) for r in cfg.recipes}
    decisions = {r: np.zeros(len(frame_b), dtype=bool) for r in cfg.recipes}
    fold_of = np.full(len(frame_b), -1)
    folds = patient_kfold(frame_b, cfg.n_splits, y=yb, random_state=cfg.seed)
    if "indices" in cfg.recipes:
        rules = index_rule_scores(frame_b, suspect=ds.suspect)
        scores["indices"] = rules["kisa_pct"].to_numpy(float)
        decisions["indices"] = rules["rule_positive"].to_numpy(bool)
    for k, (tr, te) in enumerate(progress(folds, total=len(folds), desc="folds")):
        fold_of[te] = k
        b_tr, b_te = frame_b.iloc[tr].reset_index(drop=True), frame_b.iloc[te]
        i_fit, i_val = patient_split(
            b_tr, val_fraction=cfg.inner_val_fraction, y=yb[tr], random_state=cfg.seed + k
        )
        b_fit, b_val = b_tr.iloc[i_fit], b_tr.iloc[i_val]
        seed = cfg.seed + 100 * (k + 1)
        runs: dict[str, tuple[Any, float]] = {}
        if "b_only" in cfg.recipes:
            r = fit(_train_cfg(cfg, cfg.b_optim, seed=seed), b_fit, b_val, renderer=renderer)
            runs["b_only"] = (r.model, r.threshold)
        if "a_only" in cfg.recipes:
            runs["a_only"] = (model_a, thr_a)
        if "joint" in cfg.recipes:
            optim = dataclasses.replace(cfg.optim, epochs=cfg.joint_epochs)
            r = fit(
                _train_cfg(cfg, optim, seed=seed),
                pd.concat([a_train, b_fit]),
                b_val,
                renderer=renderer,
            )
            runs["joint"] = (r.model, r.threshold)
        if "two_stage" in cfg.recipes:
            r = fit(
                _train_cfg(cfg, cfg.stage2, stage=2, init=stage1_ckpt, seed=seed),
                b_fit,
                b_val,
                renderer=renderer,
            )
            runs["two_stage"] = (r.model, r.threshold)
        for name, (model, thr) in runs.items():
            s = _score(model, b_te, cfg, device)
            scores[name][te] = s
            decisions[name][te] = s >= thr
        log.info("fold %d/%d done (%d test eyes)", k + 1, len(folds), len(te))

    pred = pd.DataFrame(
        {
            "case_id": frame_b["case_id"],
            "patient_id": frame_b["patient_id"],
            "label": frame_b["label"],
            "target": target,
            "fold": fold_of,
        }
    )
    for r in cfg.recipes:
        pred[f"score_{r}"] = scores[r]
        pred[f"positive_{r}"] = decisions[r]
    summary, fold_rows, comparisons = summarise(pred, cfg.recipes)
    return CVResult(summary, fold_rows, pred, comparisons, time.perf_counter() - t0)


def _diagnostics(y: np.ndarray, s: np.ndarray, d: np.ndarray) -> dict[str, Any]:
    from healthsense.metrics import UndefinedMetricWarning, binary_diagnostics, roc_auc_ci

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        auc, lo, hi = roc_auc_ci(y, s)
        diag = binary_diagnostics(y, d.astype(int))
    return {
        "auc": auc,
        "auc_low": lo,
        "auc_high": hi,
        "sensitivity": diag.sensitivity,
        "sensitivity_low": diag.sensitivity_ci[0],
        "sensitivity_high": diag.sensitivity_ci[1],
        "specificity": diag.specificity,
        "specificity_low": diag.specificity_ci[0],
        "specificity_high": diag.specificity_ci[1],
        "tp": diag.counts.tp,
        "fp": diag.counts.fp,
        "tn": diag.counts.tn,
        "fn": diag.counts.fn,
    }


def summarise(pred: pd.DataFrame, recipes) -> tuple[list[dict], list[dict], list[dict]]:
    """Pooled and per-fold diagnostics of out-of-fold predictions, and DeLong comparisons."""
    from healthsense.metrics import UndefinedMetricWarning, delong_test, threshold_at_specificity

    y = pred["target"].to_numpy(int)
    summary, folds, comps = [], [], []
    for r in recipes:
        s, d = pred[f"score_{r}"].to_numpy(float), pred[f"positive_{r}"].to_numpy(bool)
        summary.append({"recipe": r, "name": LABELS[r], "n": len(y), **_diagnostics(y, s, d)})
        for k in sorted(pred["fold"].unique()):
            m = (pred["fold"] == k).to_numpy()
            folds.append(
                {"recipe": r, "fold": int(k), "n": int(m.sum()), **_diagnostics(y[m], s[m], d[m])}
            )
    ref = "b_only" if "b_only" in recipes else None
    for r in recipes:
        if r == ref or ref is None:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UndefinedMetricWarning)
            auc_r, auc_ref, z, p = delong_test(y, pred[f"score_{r}"], pred[f"score_{ref}"])
            # Sensitivity of each at the specificity the reference reaches at its own threshold.
            spec = next(row["specificity"] for row in summary if row["recipe"] == ref)
            sens = {}
            for name in (r, ref):
                sc = pred[f"score_{name}"].to_numpy(float)
                t = (
                    threshold_at_specificity(y, sc, specificity=spec)
                    if math.isfinite(spec)
                    else math.nan
                )
                sens[name] = float(np.mean(sc[y == 1] >= t)) if not math.isnan(t) else math.nan
        comps.append(
            {
                "recipe": r,
                "versus": ref,
                "auc": auc_r,
                "auc_versus": auc_ref,
                "auc_diff": auc_r - auc_ref,
                "z": z,
                "p_value": p,
                "at_specificity": spec,
                "sensitivity": sens[r],
                "sensitivity_versus": sens[ref],
            }
        )
    return summary, folds, comps


def roc_figure(pred: pd.DataFrame, recipes):
    """ROC curves of the pooled out-of-fold scores, one line per recipe, rule point marked."""
    from healthsense.metrics import roc_curve
    from healthsense.report import new_figure

    fig, ax = new_figure(figsize=(5.2, 5.0))
    y = pred["target"].to_numpy(int)
    for r in recipes:
        fpr, tpr, _ = roc_curve(y, pred[f"score_{r}"].to_numpy(float))
        d = pred[f"positive_{r}"].to_numpy(bool)
        line = ax.plot(fpr, tpr, label=LABELS[r], lw=1.6)[0]
        ax.plot([np.mean(d[y == 0])], [np.mean(d[y == 1])], "o", color=line.get_color(), ms=5)
    ax.plot([0, 1], [0, 1], ":", color="grey", lw=1)
    ax.set_xlabel("1 - specificity")
    ax.set_ylabel("sensitivity")
    ax.set_title("Pooled out-of-fold ROC, domain B (dots: thresholds)", fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    return fig


def write_cv_outputs(result: CVResult, cfg: CVConfig) -> dict[str, Path]:
    """Write table.csv, folds.csv, predictions.csv, comparisons.csv, roc.png, report.html, results.json."""
    from healthsense.config import config_to_dict, write_config
    from healthsense.report import Report, atomic_write_bytes, figure_to_png, write_csv, write_json

    out = Path(cfg.out)
    fig = roc_figure(result.predictions, cfg.recipes)
    paths = {
        "table": write_csv(out / "table.csv", result.summary),
        "folds": write_csv(out / "folds.csv", result.folds),
        "predictions": write_csv(out / "predictions.csv", result.predictions.to_dict("records")),
        "comparisons": write_csv(out / "comparisons.csv", result.comparisons),
        "roc": atomic_write_bytes(out / "roc.png", figure_to_png(fig)),
        "results": write_json(
            out / "results.json",
            {
                "summary": result.summary,
                "comparisons": result.comparisons,
                "folds": result.folds,
                "seconds": result.seconds,
                "config": config_to_dict(cfg),
            },
        ),
    }
    rep = Report("Keratoconus classifier: recipes under patient-grouped cross-validation")
    rep.add_text(
        f"{cfg.n_splits}-fold CV on domain B ({len(result.predictions)} eyes); thresholds chosen on "
        "an inner validation split of each training fold; pooled out-of-fold figures with 95 % CIs."
    )
    cols = [
        "name",
        "auc",
        "auc_low",
        "auc_high",
        "sensitivity",
        "sensitivity_low",
        "sensitivity_high",
        "specificity",
        "specificity_low",
        "specificity_high",
        "tp",
        "fp",
        "tn",
        "fn",
    ]
    rep.add_table(result.summary, columns=cols, float_format=".3f")
    if result.comparisons:
        rep.add_heading("Against B-only (DeLong test on pooled scores)")
        rep.add_table(result.comparisons, float_format=".3f")
    rep.add_figure(fig, caption="Pooled out-of-fold ROC curves")
    rep.add_heading("Per fold")
    rep.add_table(
        result.folds,
        columns=["recipe", "fold", "n", "auc", "sensitivity", "specificity"],
        float_format=".3f",
    )
    paths["report"] = rep.save(out / "report.html")
    write_config(cfg, out, command="healthsense kc cv")
    return paths
