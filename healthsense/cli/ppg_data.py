"""PPG data commands: ``windows`` (dataset → window file), ``simulate``, ``info``."""

from __future__ import annotations

import argparse
from pathlib import Path

from healthsense.cli._common import EXIT_OK, EXIT_USAGE, CommandError, add_subcommand, print_json


def _floats_map(text: str, what: str) -> dict[str, str]:
    out = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        if "=" not in item:
            raise CommandError(
                f"{what}: expected NAME=COLUMN items, got {item!r}", exit_code=EXIT_USAGE
            )
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def _add_window_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("windowing (defaults: docs/ppg-informativeness.md §1)")
    g.add_argument("--fs", type=float, default=125.0, help="output sampling rate, Hz (default 125)")
    g.add_argument("--window-s", type=float, default=2.0, help="window length, s (default 2)")
    g.add_argument(
        "--overlap", type=float, default=0.0, help="overlap fraction in [0, 1) (default 0)"
    )
    g.add_argument("--lowcut", type=float, default=0.5, help="band-pass low edge, Hz (default 0.5)")
    g.add_argument("--highcut", type=float, default=8.0, help="band-pass high edge, Hz (default 8)")
    g.add_argument(
        "--scale",
        choices=("none", "record"),
        default="none",
        help="amplitude scale of raw: as filtered, or per-record 1st-99th percentile → [0, 1]",
    )
    g.add_argument(
        "--anchor",
        choices=("grid", "onset"),
        default="grid",
        help="windows on a time grid or starting at beat onsets (default grid)",
    )
    g.add_argument(
        "--polarity",
        choices=("keep", "auto", "invert"),
        default="keep",
        help="flip inverted PPG (auto: by the skewness of the slope)",
    )
    g.add_argument(
        "--hr-source",
        choices=("auto", "ppg", "ecg"),
        default="auto",
        help="HR label from ECG R-peaks or PPG peaks (auto: ECG when present)",
    )
    g.add_argument(
        "--min-quality",
        type=float,
        default=None,
        metavar="Q",
        help="drop windows whose template-match quality is below Q (default keep all)",
    )


def _config(args, channel: str, labels: tuple[str, ...]):
    from ppg.windows import WindowConfig

    try:
        return WindowConfig(
            channel=channel,
            fs=args.fs,
            window_s=args.window_s,
            overlap=args.overlap,
            lowcut=args.lowcut,
            highcut=args.highcut,
            scale=args.scale,
            anchor=args.anchor,
            polarity=args.polarity,
            hr_source=args.hr_source,
            min_quality=args.min_quality,
            labels=labels,
        )
    except ValueError as exc:
        raise CommandError(str(exc), exit_code=EXIT_USAGE) from None


def _summary(ws, out: Path | None) -> dict:
    import numpy as np

    labels = {}
    for k, v in ws.labels.items():
        finite = v[np.isfinite(v)]
        labels[k] = {
            "n_finite": int(finite.size),
            "mean": float(finite.mean()) if finite.size else None,
            "sd": float(finite.std()) if finite.size else None,
        }
    return {
        "out": str(out) if out else None,
        "n_windows": len(ws),
        "n_samples": ws.n_samples,
        "fs": ws.fs,
        "n_groups": int(np.unique(ws.groups).size),
        "n_records": int(np.unique(ws.record_ids).size),
        "quality_median": float(np.nanmedian(ws.quality)) if len(ws) else None,
        "labels": labels,
    }


def _print_summary(s: dict) -> None:
    print(
        f"{s['n_windows']} windows × {s['n_samples']} samples at {s['fs']:g} Hz from "
        f"{s['n_records']} record(s) of {s['n_groups']} subject(s); median quality "
        f"{s['quality_median']:.3f}" + (f" → {s['out']}" if s["out"] else "")
    )
    for k, v in s["labels"].items():
        mean = "nan" if v["mean"] is None else f"{v['mean']:.2f} ± {v['sd']:.2f}"
        print(f"  label_{k}: {v['n_finite']} finite, {mean}")


def _run_windows(args: argparse.Namespace) -> int:
    """Cut a dataset into a window file (see the README's window-file format)."""
    from healthsense.config import write_config
    from ppg.datasets import count_records, dataset_info, iter_dataset
    from ppg.windows import make_windows, save_windows

    try:
        info = dataset_info(args.dataset)
    except ValueError as exc:
        raise CommandError(str(exc), exit_code=EXIT_USAGE) from None
    options: dict = {}
    if args.dataset == "csv":
        if not args.columns:
            raise CommandError(
                "--dataset csv needs --columns ppg=COLUMN[,abp=COLUMN,...]", exit_code=EXIT_USAGE
            )
        options["columns"] = _floats_map(args.columns, "--columns")
        options["fs"] = args.input_fs
        if args.subject_column:
            options["subject_column"] = args.subject_column
        if args.record_labels:
            options["labels"] = _floats_map(args.record_labels, "--record-labels")
    elif args.columns or args.input_fs or args.subject_column or args.record_labels:
        raise CommandError(
            "--columns/--input-fs/--subject-column/--record-labels are for --dataset csv",
            exit_code=EXIT_USAGE,
        )
    if args.max_records is not None and args.dataset == "uci-cuffless":
        options["max_records"] = args.max_records
    labels = (
        tuple(s.strip() for s in args.labels.split(",") if s.strip())
        if args.labels is not None
        else (*info.labels, "hr")
    )
    cfg = _config(args, args.channel or info.default_ppg, labels)
    records = iter_dataset(args.dataset, args.data_dir, **options)
    if args.max_records is not None and args.dataset != "uci-cuffless":
        import itertools

        records = itertools.islice(records, args.max_records)
    total = count_records(args.dataset, args.data_dir, **options)
    if total is not None and args.max_records is not None:
        total = min(total, args.max_records)
    ws = make_windows(records, cfg, total=total, dataset=args.dataset)
    ws.meta["data_dir"] = str(args.data_dir)
    out = Path(args.out)
    save_windows(ws, out)
    write_config(
        {"window": cfg, "dataset": args.dataset, "data_dir": str(args.data_dir), "out": str(out)},
        out.parent,
        name=f"{out.stem}.config.json",  # one config per window file, not per folder
        command="ppg windows",
    )
    s = _summary(ws, out)
    if args.json:
        print_json(s)
    else:
        _print_summary(s)
    return EXIT_OK


def _run_simulate(args: argparse.Namespace) -> int:
    """Simulate a cohort (PPG + ABP with a BP-information dial) and write its window file."""
    from healthsense.config import write_config
    from ppg.simulate import simulate_cohort
    from ppg.windows import make_windows, save_windows

    seed = 0 if args.seed is None else args.seed
    if not 0 <= args.bp_information <= 1:
        raise CommandError("--bp-information must be in [0, 1]", exit_code=EXIT_USAGE)
    if args.n < 1 or args.duration_s <= 0:
        raise CommandError("--n must be >= 1 and --duration-s > 0", exit_code=EXIT_USAGE)
    records = simulate_cohort(
        args.n,
        records_per_subject=args.records_per_subject,
        duration_s=args.duration_s,
        sampling_rate=args.sim_fs,
        bp_information=args.bp_information,
        noise=args.noise,
        motion_per_min=args.motion_per_min,
        random_state=seed,
    )
    cfg = _config(args, "ppg", ("sbp", "dbp", "hr"))
    ws = make_windows(records, cfg, total=len(records), dataset="simulated")
    ws.meta["simulation"] = {
        "n_subjects": args.n,
        "bp_information": args.bp_information,
        "noise": args.noise,
        "motion_per_min": args.motion_per_min,
        "seed": seed,
    }
    out = Path(args.out)
    save_windows(ws, out)
    write_config(
        {"window": cfg, "simulation": ws.meta["simulation"], "out": str(out)},
        out.parent,
        name=f"{out.stem}.config.json",
        command="ppg simulate",
    )
    s = _summary(ws, out)
    print_json(s) if args.json else _print_summary(s)
    return EXIT_OK


def _run_inspect(args: argparse.Namespace) -> int:
    """Summarise a window file (counts, labels, quality, the parameters that made it)."""
    from ppg.windows import load_windows

    try:
        ws = load_windows(args.file)
    except (FileNotFoundError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    s = _summary(ws, None)
    s["file"] = str(args.file)
    s["meta"] = ws.meta
    if args.json:
        print_json(s)
    else:
        _print_summary(s)
        cfg = ws.meta.get("config")
        if cfg:
            print("  made with: " + ", ".join(f"{k}={v}" for k, v in cfg.items()))
    return EXIT_OK


def register(sub) -> None:
    """Add the data sub-commands to the ``ppg`` group."""
    p = add_subcommand(sub, "windows", doc=_run_windows.__doc__)
    p.add_argument(
        "--dataset", required=True, help="mw-ppg-bp, aurora-bp, uci-cuffless, wfdb, pulsedb or csv"
    )
    p.add_argument("--data-dir", required=True, type=Path, help="dataset folder (or file)")
    p.add_argument("--channel", default=None, help="signal to window (default: the dataset's PPG)")
    p.add_argument("--labels", default=None, help="comma-separated labels (default: sbp,dbp,hr)")
    p.add_argument("--out", required=True, help="window file to write (.npz)")
    p.add_argument(
        "--max-records", type=int, default=None, metavar="N", help="stop after N records"
    )
    p.add_argument("--json", action="store_true", help="print one JSON summary line")
    g = p.add_argument_group("generic CSV/NPZ (--dataset csv)")
    g.add_argument("--columns", default=None, help="signal=COLUMN pairs, e.g. ppg=PLETH,abp=ART")
    g.add_argument("--input-fs", type=float, default=None, help="sampling rate of the files, Hz")
    g.add_argument("--subject-column", default=None, help="column holding the subject id")
    g.add_argument("--record-labels", default=None, help="label=COLUMN pairs of per-record labels")
    _add_window_options(p)
    p.set_defaults(_run=_run_windows)

    p = add_subcommand(sub, "simulate", doc=_run_simulate.__doc__)
    p.add_argument("--n", type=int, default=20, help="number of subjects (default 20)")
    p.add_argument("--records-per-subject", type=int, default=1)
    p.add_argument("--duration-s", type=float, default=60.0, help="record length, s (default 60)")
    p.add_argument("--sim-fs", type=float, default=125.0, help="simulation rate, Hz (default 125)")
    p.add_argument(
        "--bp-information",
        type=float,
        default=0.5,
        help="0: PPG shape carries no BP information; 1: shape is a function of SBP",
    )
    p.add_argument("--noise", type=float, default=0.02, help="white-noise SD / pulse amplitude")
    p.add_argument("--motion-per-min", type=float, default=0.0, help="motion artifacts per minute")
    p.add_argument("--out", required=True, help="window file to write (.npz)")
    p.add_argument("--json", action="store_true", help="print one JSON summary line")
    _add_window_options(p)
    p.set_defaults(_run=_run_simulate)

    # `ppg info` is the information fraction (healthsense.cli.ppg_info); this one inspects files.
    p = add_subcommand(sub, "inspect", doc=_run_inspect.__doc__)
    p.add_argument("file", type=Path, help="window file (.npz)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(_run=_run_inspect)
