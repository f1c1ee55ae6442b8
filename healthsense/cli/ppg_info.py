"""PPG informativeness commands: ``mvm``, ``information`` (alias ``info``), ``audit``, ``analyze``."""

from __future__ import annotations

import argparse
from pathlib import Path

from healthsense.cli._common import EXIT_OK, EXIT_USAGE, CommandError, add_subcommand, print_json


def _load(path: str):
    from ppg.windows import load_windows

    try:
        return load_windows(path)
    except (FileNotFoundError, ValueError) as exc:
        raise CommandError(str(exc)) from None


def _label(ws, name: str, path: str):
    if name not in ws.labels:
        raise CommandError(f"{path}: no label {name!r}; labels in the file: {sorted(ws.labels)}")
    return ws.labels[name]


def _mvm(args: argparse.Namespace) -> int:
    """Multi-valued mapping factor of a window file (docs/ppg-informativeness.md §2).

    Share of windows with a near-identical partner (zero-lag correlation >= corr threshold,
    aligned normalised distance < dist threshold) whose label differs by more than the label
    threshold. Scope intra/inter/all picks partners from the same record, other records, or
    any. The window anchor and amplitude scale of the file are reported with the result.
    """
    from ppg.analyze import mvm_for_windows

    ws = _load(args.windows)
    _label(ws, args.label, args.windows)
    try:
        res = mvm_for_windows(
            ws,
            args.label,
            scope=args.scope,
            corr_threshold=args.corr_threshold,
            dist_threshold=args.dist_threshold,
            label_threshold=args.label_threshold,
            block_size=args.block_size,
            device=args.device,
        )
    except ValueError as exc:
        raise CommandError(f"{args.windows}: {exc}") from None
    summary = res.summary()
    summary["label"] = args.label
    if args.pairs_out:
        from healthsense.report import write_csv

        rows = [
            {"i": int(i), "j": int(j), "corr": c, "dist": d, "lag": int(g)}
            for i, j, c, d, g in zip(
                res.pairs["i"],
                res.pairs["j"],
                res.pairs["corr"],
                res.pairs["dist"],
                res.pairs["lag"],
            )
        ]
        write_csv(args.pairs_out, rows, columns=["i", "j", "corr", "dist", "lag"])
    if args.json:
        print_json(summary)
    else:
        print(
            f"MVM factor ({args.scope}, {args.label}): {res.fraction:.4f} = "
            f"{res.n_multivalued}/{res.n_windows} windows, {res.n_pairs} colliding pairs "
            f"(corr >= {args.corr_threshold}, dist < {args.dist_threshold}, "
            f"|dy| > {args.label_threshold}; anchor {summary['windows'].get('anchor')}, "
            f"scale {summary['windows'].get('amplitude_scale')})"
        )
    return EXIT_OK


def _read_table(
    path: str, target: str, features: str | None, exclude: str | None, group: str | None
):
    """(X, y, groups, names, n_dropped) from a CSV/TSV with named columns or an NPZ with X, y."""
    import numpy as np
    import pandas as pd

    p = Path(path)
    if not p.is_file():
        raise CommandError(f"{path}: table not found")
    name = p.name.lower().removesuffix(".gz")
    if name.endswith(".npz"):
        try:
            with np.load(p, allow_pickle=False) as data:
                if "X" not in data.files or "y" not in data.files:
                    raise CommandError(
                        f"{path}: an NPZ table needs arrays X and y, found {data.files}"
                    )
                X = np.asarray(data["X"], dtype=float)
                y = np.asarray(data["y"], dtype=float)
                groups = np.asarray(data["groups"]) if "groups" in data.files else None
        except (OSError, ValueError) as exc:
            raise CommandError(f"{path}: not a readable NPZ file: {exc}") from None
        if X.ndim == 1:
            X = X[:, None]
        if X.ndim != 2 or X.shape[0] != y.shape[0]:
            raise CommandError(f"{path}: X has shape {X.shape} but y has {y.shape[0]} rows")
        names = [f"x{i}" for i in range(X.shape[1])]
    else:
        sep = "\t" if name.endswith(".tsv") else ","
        try:
            frame = pd.read_csv(p, sep=sep, compression="infer")
        except (OSError, ValueError, pd.errors.ParserError) as exc:
            raise CommandError(f"{path}: cannot read the table: {exc}") from None
        if frame.empty:
            raise CommandError(f"{path}: the table is empty")
        if target not in frame.columns:
            raise CommandError(
                f"{path}: no target column {target!r}; columns: {list(frame.columns)}"
            )
        if features:
            names = [c.strip() for c in features.split(",") if c.strip()]
            missing = [c for c in names if c not in frame.columns]
            if missing:
                raise CommandError(f"{path}: missing feature column(s) {missing}")
        else:
            skip = {target, *(c.strip() for c in (exclude or "").split(",") if c.strip())}
            if group:
                skip.add(group)
            names = [
                c
                for c in frame.columns
                if c not in skip and pd.api.types.is_numeric_dtype(frame[c])
            ]
        if not names:
            raise CommandError(f"{path}: no numeric feature column left")
        if target in names:
            raise CommandError(f"{path}: the target {target!r} cannot also be a feature")
        try:
            X = frame[names].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
            y = pd.to_numeric(frame[target], errors="coerce").to_numpy(dtype=float)
        except (TypeError, ValueError) as exc:
            raise CommandError(f"{path}: non-numeric values: {exc}") from None
        groups = None
        if group:
            if group not in frame.columns:
                raise CommandError(f"{path}: no group column {group!r}")
            groups = frame[group].astype(str).to_numpy()
    ok = np.all(np.isfinite(X), axis=1) & np.isfinite(y)
    n_dropped = int((~ok).sum())
    return X[ok], y[ok], (groups[ok] if groups is not None else None), names, n_dropped


def _information(args: argparse.Namespace) -> int:
    """Information fraction I(X; y) / H(y) of a feature table (docs §3).

    KSG mutual information (algorithm 1, max-norm, standardised columns, strict counts) over
    the chosen feature columns jointly, Kozachenko-Leonenko entropy of the target in its
    natural unit, tied values dequantised over their resolution (reported). Rows with a
    missing value in the chosen columns are dropped and counted. With --group, the bootstrap
    CI resamples that column's subjects.
    """
    from ppg.information import information_fraction

    if args.features and args.exclude:
        raise CommandError("give --features or --exclude, not both", exit_code=EXIT_USAGE)
    X, y, groups, names, n_dropped = _read_table(
        args.table, args.target, args.features, args.exclude, args.group
    )
    try:
        res = information_fraction(
            X,
            y,
            k=args.k,
            groups=groups,
            n_bootstrap=args.bootstrap,
            label_resolution=args.resolution,
            random_state=0 if args.seed is None else args.seed,
        )
    except ValueError as exc:
        raise CommandError(f"{args.table}: {exc}") from None
    summary = res.summary()
    summary.update(target=args.target, features=names, n_dropped=n_dropped)
    if args.json:
        print_json(summary)
    else:
        lo, hi = summary["information_fraction_ci"]
        print(
            f"{args.target}: I = {summary['mi_bits']:.3f} bits, H = {summary['entropy_bits']:.3f} "
            f"bits (natural unit of the label), fraction = {summary['information_fraction']:.3f}"
            + (f" [{lo:.3f}, {hi:.3f}]" if args.bootstrap else "")
            + f"; n = {res.n} ({n_dropped} rows dropped), d = {res.d}, k = {res.k}"
        )
    return EXIT_OK


def _audit(args: argparse.Namespace) -> int:
    """Leakage audit of a window file: subject-disjoint vs record vs random-window splits.

    Models: predict-the-training-mean, ridge and gradient boosting on the per-window
    features, a small 1-D CNN on the windows. Reports MAE, ME ± SD, MASE, AAMI pass/fail and
    the BHS grade (BP only) of the out-of-fold predictions per split.
    """
    import numpy as np

    from ppg.features import window_features
    from ppg.leakage import leakage_audit

    ws = _load(args.windows)
    y = _label(ws, args.label, args.windows)
    keep = np.isfinite(y)
    ws, y = ws.subset(keep), y[keep]
    models = tuple(m.strip() for m in args.models.split(",") if m.strip())
    feats, _ = window_features(ws.raw, ws.fs)
    try:
        res = leakage_audit(
            y,
            subjects=ws.groups,
            records=ws.record_ids,
            features=feats,
            windows=ws.raw,
            models=models,
            n_folds=args.folds,
            cnn_epochs=args.cnn_epochs,
            is_bp=args.label.lower() in ("sbp", "dbp", "map"),
            random_state=0 if args.seed is None else args.seed,
        )
    except ValueError as exc:
        raise CommandError(f"{args.windows}: {exc}") from None
    if args.json:
        print_json({"label": args.label, "n": int(y.size), "rows": res.rows, "notes": res.notes})
    else:
        print(f"{'split':8s} {'model':6s} {'MAE':>7s} {'ME':>7s} {'SD':>7s} {'MASE':>6s} AAMI BHS")
        for r in res.rows:
            print(
                f"{r['split']:8s} {r['model']:6s} {r['mae']:7.2f} {r['me']:7.2f} {r['sd']:7.2f} "
                f"{r['mase']:6.2f} {str(r['aami_pass']):4s} {r['bhs_grade']}"
            )
        for note in res.notes:
            print(note)
    return EXIT_OK


def _analyze(args: argparse.Namespace) -> int:
    """Run windows → MVM → information fraction → leakage audit on a dataset; write a report.

    Writes report.html (tables, overlays of look-alike windows with different labels, MI
    with its subject-bootstrap CI, the leakage table), results.json and config.json to --out.
    """
    from healthsense.config import ConfigError, load_config
    from healthsense.report import to_jsonable
    from ppg.analyze import AnalyzeConfig, analyze

    overrides = [
        f"dataset={args.dataset}",
        f"target={args.target}",
        f"anchor={args.anchor}",
        f"scale={args.scale}",
        f"n_bootstrap={args.bootstrap}",
        f"max_windows={args.max_windows}",
        f"seed={0 if args.seed is None else args.seed}",
        *args.set,
    ]
    try:
        cfg = load_config(AnalyzeConfig, args.config, overrides)
    except ConfigError as exc:
        raise CommandError(str(exc), exit_code=EXIT_USAGE) from None
    try:
        res = analyze(args.data_dir, args.out, cfg)
    except (FileNotFoundError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    if args.json:
        print_json(
            {
                "out": str(args.out),
                "n_windows": res["n_windows"],
                "mvm_fraction": res["mvm"]["fraction"],
                "information": [
                    {k: r.get(k) for k in ("source", "information_fraction", "mi_bits")}
                    for r in res["information"]
                ],
            }
        )
    else:
        print(f"wrote {Path(args.out) / 'report.html'}")
        print(to_jsonable({"mvm_fraction": res["mvm"]["fraction"]}))
    return EXIT_OK


def register(sub) -> None:
    """Add ``mvm``, ``information`` (``info`` where free), ``audit``, ``analyze``."""
    p = add_subcommand(sub, "mvm", doc=_mvm.__doc__)
    p.add_argument("--windows", required=True, metavar="FILE.npz", help="window file")
    p.add_argument("--label", required=True, metavar="NAME", help="label name (label_<NAME>)")
    p.add_argument("--scope", choices=("intra", "inter", "all"), default="all")
    p.add_argument("--corr-threshold", type=float, default=0.9)
    p.add_argument("--dist-threshold", type=float, default=1.0)
    p.add_argument("--label-threshold", type=float, default=8.0)
    p.add_argument("--block-size", type=int, default=2048, help="rows per matrix block")
    p.add_argument("--device", default=None, help="torch device for the products (default numpy)")
    p.add_argument("--pairs-out", default=None, metavar="CSV", help="write colliding pairs")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(_run=_mvm)

    # `ppg info` is taken by the data commands' window-file summary when they load first.
    aliases = [] if "info" in sub.choices else ["info"]
    p = add_subcommand(sub, "information", doc=_information.__doc__, aliases=aliases)
    p.add_argument("--table", required=True, metavar="FILE", help="CSV/TSV (.gz) or NPZ (X, y)")
    p.add_argument("--target", required=True, metavar="NAME", help="target column")
    p.add_argument("--features", default=None, metavar="A,B,...", help="feature columns")
    p.add_argument("--exclude", default=None, metavar="A,B,...", help="columns to leave out")
    p.add_argument("--group", default=None, metavar="COLUMN", help="subject column (bootstrap)")
    p.add_argument("--k", type=int, default=3, help="neighbour order (default 3)")
    p.add_argument("--bootstrap", type=int, default=200, help="bootstrap replicates (0: none)")
    p.add_argument("--resolution", type=float, default=None, help="target recording step")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(_run=_information)

    p = add_subcommand(sub, "audit", doc=_audit.__doc__)
    p.add_argument("--windows", required=True, metavar="FILE.npz")
    p.add_argument("--label", required=True, metavar="NAME")
    p.add_argument("--models", default="mean,ridge,gbm,cnn")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--cnn-epochs", type=int, default=10)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(_run=_audit)

    p = add_subcommand(sub, "analyze", doc=_analyze.__doc__)
    p.add_argument("--dataset", required=True, metavar="NAME", help="mw-ppg-bp, aurora-bp, ...")
    p.add_argument("--data-dir", required=True, metavar="PATH")
    p.add_argument("--target", required=True, choices=("sbp", "dbp", "hr"))
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--anchor", choices=("grid", "onset"), default="grid")
    p.add_argument("--scale", choices=("none", "record"), default="record")
    p.add_argument("--bootstrap", type=int, default=100)
    p.add_argument("--max-windows", type=int, default=0, help="seeded subsample (0: all)")
    p.add_argument("--config", default=None, metavar="TOML", help="AnalyzeConfig TOML file")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(_run=_analyze)
