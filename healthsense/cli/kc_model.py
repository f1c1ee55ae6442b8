"""Dual-head keratoconus CNN commands: train, evaluate, predict, cv (see ``kc SUBCOMMAND -h``)."""

from __future__ import annotations

import argparse

from healthsense.cli._common import (
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_USAGE,
    CommandError,
    add_subcommand,
    print_json,
)

__all__ = ["register"]

_TRAIN_DOC = """Train the dual-head CNN (stage 1 on domain A, or stage 2 from a stage-1 checkpoint).

Configuration: defaults in code, then --config FILE (TOML), then key=value overrides, e.g.
  healthsense kc train --config kc.toml data=cohortA out=runs/s1 device=cuda
  healthsense kc train stage=2 init=runs/s1/best.pt data=cohortB out=runs/s2 optim.freeze_stages=2
Multi-GPU: torchrun --nproc_per_node 4 -m healthsense kc train ... (DDP, rank-0 outputs).
Writes best.pt (model + model card), last.pt (resume=), history.csv and config.json to out.
"""

_EVAL_DOC = """Evaluate a checkpoint on a dataset folder: AUC, sensitivity, specificity with CIs.

The decision threshold is the one stored in the checkpoint (chosen on validation data).
  healthsense kc evaluate cohortB --model runs/s2/best.pt --out eval/ --json
"""

_PREDICT_DOC = """Screen cases with a checkpoint: raw-map .npz files, axial/tangential PNG pairs
(in that order, with --eye) or dataset folders.

  healthsense kc predict case1.npz case2.npz --model best.pt --json --cam cams/
--json prints one object per case: case, probability, decision, threshold (and eye, label).
Research software, not a medical device.
"""

_CV_DOC = """Compare training recipes under patient-grouped k-fold CV on domain B.

Recipes: B only, A only (zero-shot), A+B jointly, two-stage, and the index rules. Writes
table.csv, folds.csv, predictions.csv, comparisons.csv, roc.png, report.html, results.json.
  healthsense kc cv --config experiments/keratoconus_transfer.toml data_a=A data_b=B out=cv/
"""


def register(subparsers) -> None:
    """Add ``train``, ``evaluate``, ``predict`` and ``cv`` to the ``kc`` group."""
    p = add_subcommand(subparsers, "train", doc=_TRAIN_DOC)
    p.add_argument("--config", metavar="TOML", help="configuration file")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="configuration overrides")
    p.add_argument("--json", action="store_true", help="print a JSON summary line")
    p.set_defaults(_run=_run_train)

    p = add_subcommand(subparsers, "evaluate", doc=_EVAL_DOC)
    p.add_argument("data", help="dataset folder (labels.csv)")
    p.add_argument("--model", required=True, metavar="CKPT", help="checkpoint (best.pt)")
    p.add_argument("--domain", default="", help="evaluate only rows of this domain")
    p.add_argument(
        "--out", metavar="DIR", help="write metrics.json, predictions.csv, roc.png, report.html"
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N, mps")
    p.add_argument("--json", action="store_true", help="print the metrics as one JSON line")
    p.set_defaults(_run=_run_evaluate)

    p = add_subcommand(subparsers, "predict", doc=_PREDICT_DOC)
    p.add_argument("cases", nargs="+", metavar="CASE", help=".npz, PNG pair or dataset folder")
    p.add_argument("--model", required=True, metavar="CKPT", help="checkpoint (best.pt)")
    p.add_argument("--eye", choices=("OD", "OS"), help="laterality of PNG pairs")
    p.add_argument("--threshold", type=float, help="override the checkpoint's threshold")
    p.add_argument("--cam", metavar="DIR", help="write Grad-CAM overlays to DIR")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N, mps")
    p.add_argument("--json", action="store_true", help="one JSON object per case")
    p.set_defaults(_run=_run_predict)

    p = add_subcommand(subparsers, "cv", doc=_CV_DOC)
    p.add_argument(
        "--config", metavar="TOML", help="configuration file (a [cv] table or top level)"
    )
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="configuration overrides")
    p.add_argument("--json", action="store_true", help="print the summary rows as JSON lines")
    p.set_defaults(_run=_run_cv)


def _load_checkpoint(path: str):
    from ophthalmo.keratoconus.train import load_checkpoint

    try:
        return load_checkpoint(path)
    except (FileNotFoundError, ValueError) as exc:
        raise CommandError(str(exc)) from None


def _with_seed(overrides: list[str], seed: int | None) -> list[str]:
    if seed is not None and not any(o.split("=", 1)[0].strip() == "seed" for o in overrides):
        return [*overrides, f"seed={seed}"]
    return overrides


def _run_train(args: argparse.Namespace) -> int:
    from healthsense.config import load_config
    from ophthalmo.keratoconus.train import TrainConfig, train

    cfg = load_config(TrainConfig, args.config, _with_seed(args.overrides, args.seed))
    try:
        result = train(cfg)
    except FileNotFoundError as exc:
        raise CommandError(str(exc)) from None
    v = result.card["validation"]
    summary = {
        "checkpoint": str(result.checkpoint),
        "stage": cfg.stage,
        "threshold": result.threshold,
        "val_auc": v["auc"],
        "val_sensitivity": v["sensitivity"],
        "val_specificity": v["specificity"],
        "epochs": len(result.history),
    }
    if result.checkpoint is None:  # a non-zero rank under torchrun: rank 0 reports
        return EXIT_OK
    if args.json:
        print_json(summary)
    else:
        print(
            f"{result.checkpoint}: validation AUC {v['auc']:.3f}, sensitivity {v['sensitivity']:.3f}, "
            f"specificity {v['specificity']:.3f} at threshold {result.threshold:.3f}"
        )
    return EXIT_OK


def _run_evaluate(args: argparse.Namespace) -> int:
    import warnings

    import numpy as np

    from healthsense.metrics import UndefinedMetricWarning, binary_diagnostics, roc_auc_ci
    from healthsense.runtime import select_device
    from ophthalmo.keratoconus.data import encode_labels, read_labels
    from ophthalmo.keratoconus.predict import predict_cases

    model, card = _load_checkpoint(args.model)
    try:
        frame = read_labels(args.data)
    except (FileNotFoundError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    if args.domain:
        frame = frame[frame["domain"] == args.domain].reset_index(drop=True)
        if frame.empty:
            raise CommandError(f"{args.data}: no case of domain {args.domain!r}")
    y = encode_labels(frame["label"], task=card["task"], suspect=card["suspect"])
    frame, y = frame[y >= 0].reset_index(drop=True), y[y >= 0]
    device = str(select_device(args.device))
    model.to(device)
    res = predict_cases(model, card, frame, device=device)
    failed = [r for r in res if "error" in r]
    ok = np.array(["error" not in r for r in res])
    target = (y == (1 if card["task"] == "binary" else 2)).astype(int)[ok]
    score = np.array([r["probability"] for r in res if "error" not in r])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        auc, lo, hi = roc_auc_ci(target, score)
        diag = binary_diagnostics(target, (score >= card["threshold"]).astype(int))
    metrics = {
        "n": int(ok.sum()),
        "n_failed": len(failed),
        "threshold": card["threshold"],
        "auc": auc,
        "auc_ci": [lo, hi],
        **{k: v for k, v in diag.to_dict().items() if k != "ci_method"},
    }
    if args.out:
        _write_eval(args, frame[ok], target, score, res, metrics, card)
    if args.json:
        print_json(metrics)
    else:
        print(
            f"{metrics['n']} eyes: AUC {auc:.3f} ({lo:.3f}-{hi:.3f}); sensitivity {diag.sensitivity:.3f} "
            f"({diag.sensitivity_ci[0]:.3f}-{diag.sensitivity_ci[1]:.3f}); specificity {diag.specificity:.3f} "
            f"({diag.specificity_ci[0]:.3f}-{diag.specificity_ci[1]:.3f}) at threshold {card['threshold']:.3f}"
        )
    for r in failed:
        print(f"{r['case']}: {r['error']}")
    return EXIT_FAILURE if failed else EXIT_OK


def _write_eval(args, frame, target, score, res, metrics, card) -> None:
    from pathlib import Path

    from healthsense.config import write_config
    from healthsense.metrics import roc_curve
    from healthsense.report import (
        Report,
        atomic_write_bytes,
        figure_to_png,
        new_figure,
        write_csv,
        write_json,
    )

    out = Path(args.out)
    write_json(out / "metrics.json", metrics)
    write_csv(out / "predictions.csv", res)
    fig, ax = new_figure(figsize=(4.8, 4.6))
    fpr, tpr, _ = roc_curve(target, score)
    ax.plot(fpr, tpr, lw=1.6, label=f"AUC {metrics['auc']:.3f}")
    ax.plot([1 - metrics["specificity"]], [metrics["sensitivity"]], "o", label="threshold")
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.set_xlabel("1 - specificity")
    ax.set_ylabel("sensitivity")
    ax.legend(loc="lower right")
    atomic_write_bytes(out / "roc.png", figure_to_png(fig))
    rep = Report("Keratoconus classifier evaluation", subtitle=f"{args.model} on {args.data}")
    rep.add_table(
        [{k: v for k, v in metrics.items() if not isinstance(v, list)}], float_format=".3f"
    )
    rep.add_table(
        [
            {
                "": "reference keratoconus",
                "predicted yes": metrics["tp"],
                "predicted no": metrics["fn"],
            },
            {"": "reference not", "predicted yes": metrics["fp"], "predicted no": metrics["tn"]},
        ],
        caption="Confusion matrix",
    )
    rep.add_figure(fig, caption="ROC curve")
    rep.add_preformatted(
        str({k: card[k] for k in ("stage", "model", "task", "suspect", "validation")})
    )
    rep.save(out / "report.html")
    write_config(
        {"data": args.data, "model": args.model, "domain": args.domain},
        out,
        command="healthsense kc evaluate",
    )


def _run_predict(args: argparse.Namespace) -> int:
    from healthsense.runtime import select_device
    from ophthalmo.keratoconus.predict import collect_cases, predict_cases

    model, card = _load_checkpoint(args.model)
    try:
        frame = collect_cases(args.cases, eye=args.eye)
    except FileNotFoundError as exc:
        raise CommandError(str(exc)) from None
    except ValueError as exc:
        raise CommandError(str(exc), exit_code=EXIT_USAGE) from None
    device = str(select_device(args.device))
    model.to(device)
    results = predict_cases(
        model, card, frame, threshold=args.threshold, device=device, cam_dir=args.cam
    )
    failed = 0
    for r in results:
        failed += "error" in r
        if args.json:
            print_json(r)
        elif "error" in r:
            print(f"{r['case']}: error: {r['error']}")
        else:
            print(
                f"{r['case']}: {r['decision']} (p={r['probability']:.3f}, threshold {r['threshold']:.3f})"
            )
    return EXIT_FAILURE if failed else EXIT_OK


def _run_cv(args: argparse.Namespace) -> int:
    import tomllib

    from healthsense.config import load_config
    from ophthalmo.keratoconus.cv import CVConfig, run_cv, write_cv_outputs

    section = None
    if args.config:
        try:
            with open(args.config, "rb") as handle:
                section = "cv" if "cv" in tomllib.load(handle) else None
        except (OSError, tomllib.TOMLDecodeError):
            section = None  # load_config reports the problem with the file name
    cfg = load_config(CVConfig, args.config, _with_seed(args.overrides, args.seed), section=section)
    if not cfg.data_b:
        raise CommandError("no domain-B dataset: set data_b=<folder>", exit_code=EXIT_USAGE)
    try:
        result = run_cv(cfg)
    except FileNotFoundError as exc:
        raise CommandError(str(exc)) from None
    paths = write_cv_outputs(result, cfg)
    for row in result.summary:
        if args.json:
            print_json(row)
        else:
            print(
                f"{row['name']:<24} AUC {row['auc']:.3f} ({row['auc_low']:.3f}-{row['auc_high']:.3f})  "
                f"sens {row['sensitivity']:.3f}  spec {row['specificity']:.3f}"
            )
    if not args.json:
        print(f"report: {paths['report']}")
    return EXIT_OK
