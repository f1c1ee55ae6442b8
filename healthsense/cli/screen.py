"""Screen a folder of patients: manifest in, REFER / NO_REFER / UNGRADABLE per eye out.

Reads MANIFEST.csv (one row per eye: patient_id, eye, retinoscopy video(s), topography
inputs, optional reference labels; paths relative to the manifest), runs the refraction and
keratoconus tests on every eye and writes to --out: screening.csv, one HTML page per patient
(patients/), summary.html, audit.jsonl (appended) and config.json.

A bad or missing input makes that eye UNGRADABLE with a reason; the run goes on. The
manifest is checked completely before any work. --resume skips eyes whose inputs and
configuration are unchanged since the last run.

Thresholds come from --config screen.toml (top-level keys or a [screen] table) and key=value
overrides, e.g. refraction.refer_power_d=1.0 keratoconus.refer_suspect=true.

Exit codes: 0 every eye graded; 1 some eyes UNGRADABLE; 2 usage or manifest error.
Research software, not a medical device.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from healthsense.cli._common import EXIT_USAGE, CommandError, print_json


def _intermixed(parser: argparse.ArgumentParser) -> None:
    """Let ``key=value`` overrides come after options (``MANIFEST --out DIR k=v``).

    Plain argparse assigns all positionals at their first stretch, so overrides after an
    option would be "unrecognized"; intermixed parsing (Python ≥ 3.7) collects them.
    """
    base = type(parser)

    class _Intermixed(base):  # type: ignore[misc, valid-type]
        _busy = False

        def parse_known_args(self, args=None, namespace=None):
            if self._busy:  # parse_known_intermixed_args calls back into this method
                return super().parse_known_args(args, namespace)
            self._busy = True
            try:
                return self.parse_known_intermixed_args(args, namespace)
            finally:
                self._busy = False

    parser.__class__ = _Intermixed


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _intermixed(parser)
    parser.add_argument("manifest", type=Path, metavar="MANIFEST.csv", help="the manifest CSV")
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="key=value",
        help="configuration overrides (e.g. refraction.refer_power_d=1.0)",
    )
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument(
        "--kc-model",
        type=Path,
        metavar="CKPT",
        help="keratoconus checkpoint (default: the index rules decide)",
    )
    parser.add_argument(
        "--config", type=Path, metavar="TOML", help="screening thresholds (TOML file)"
    )
    parser.add_argument(
        "--workers", type=int, default=1, metavar="N", help="worker processes (default: 1)"
    )
    parser.add_argument(
        "--executor",
        choices=("local", "dask"),
        default="local",
        help="local process pool (default) or an existing Dask cluster",
    )
    parser.add_argument(
        "--scheduler", metavar="ADDRESS", help="Dask scheduler address (with --executor dask)"
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="reuse stored results of eyes whose inputs and configuration are unchanged",
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object with the counts and paths"
    )


def run(args: argparse.Namespace) -> int:
    from healthsense.config import ConfigError
    from healthsense.runtime import seed_everything
    from healthsense.screening import ManifestError, load_screening_config, run_screening
    from healthsense.screening._common import TestNotAvailable

    if args.workers < 1:
        raise CommandError("--workers must be at least 1", exit_code=EXIT_USAGE)
    if args.executor == "dask" and not args.scheduler:
        raise CommandError("--executor dask needs --scheduler ADDRESS", exit_code=EXIT_USAGE)
    if args.scheduler and args.executor != "dask":
        raise CommandError("--scheduler is only used with --executor dask", exit_code=EXIT_USAGE)
    try:
        config = load_screening_config(args.config, args.overrides)
    except ConfigError as exc:
        raise CommandError(str(exc), exit_code=EXIT_USAGE) from None
    seed = 0 if args.seed is None else args.seed
    seed_everything(seed)
    kc_model = None
    if args.kc_model is not None:
        from healthsense.screening import load_kc_model

        try:
            kc_model = load_kc_model(args.kc_model)
        except (OSError, ValueError, TestNotAvailable) as exc:
            raise CommandError(f"--kc-model: {exc}", exit_code=EXIT_USAGE) from None
    try:
        summary = run_screening(
            args.manifest,
            args.out,
            config=config,
            kc_model=kc_model,
            workers=args.workers,
            executor=args.executor,
            scheduler=args.scheduler,
            resume=args.resume,
            seed=seed,
            command=shlex.join(["healthsense", *sys.argv[1:]]),
        )
    except ManifestError as exc:
        raise CommandError(str(exc), exit_code=EXIT_USAGE) from None
    c = summary.counts
    if args.json:
        print_json(
            {
                "eyes": summary.n_eyes,
                "screened": summary.n_screened,
                "reused": summary.n_reused,
                **{k.lower(): v for k, v in c.items()},
                "exit_code": summary.exit_code,
                "csv": str(summary.csv),
                "summary": str(summary.summary_html),
                "audit": str(summary.audit),
            }
        )
    else:
        print(
            f"screened {summary.n_eyes} eyes ({summary.n_reused} reused): "
            f"REFER {c['REFER']}, NO_REFER {c['NO_REFER']}, UNGRADABLE {c['UNGRADABLE']}"
        )
        for line in summary.ungradable_reasons:
            print(f"  UNGRADABLE {line}")
        print(f"summary: {summary.summary_html.resolve()}")
        print(f"table:   {summary.csv.resolve()}")
        print("research software, not a medical device")
    return summary.exit_code
