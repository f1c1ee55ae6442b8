"""Run the main job on embedded, simulated data: every part of the toolkit, offline.

Synthesises small data sets with the toolkit's own simulators (PPG recordings, corneal
topography in two device styles, retinoscopy videos), runs each domain's analysis, trains a
small keratoconus model, runs the clinician screening run on a 6-patient cohort with one
deliberately corrupt input, and writes an index page (``index.html``), ``results.json`` and
the resolved ``config.json`` to the output folder. Real recordings in ``../shared/data`` are
analysed too where present. Deterministic for a given ``--seed``; about 3 minutes on 2 cores.

Sizes can be changed with ``key=value`` overrides, e.g. ``healthsense demo kc_epochs=4``
(keys: ppg_subjects, kc_train_eyes, kc_test_eyes, kc_epochs, screening_patients,
use_shared_data, shared_data).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from healthsense.cli._common import EXIT_FAILURE, EXIT_OK


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("healthsense-demo"),
        help="output folder (default: %(default)s)",
    )
    parser.add_argument(
        "--no-shared-data",
        action="store_true",
        help="do not use the real recordings in ../shared/data even where present",
    )
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="configuration overrides")


def run(args: argparse.Namespace) -> int:
    from healthsense.config import load_config
    from healthsense.demo import DemoConfig, run_demo

    base = [f"out={args.out}", f"seed={0 if args.seed is None else args.seed}"]
    if args.no_shared_data:
        base.append("use_shared_data=false")
    config = load_config(DemoConfig, overrides=base + list(args.overrides))
    results = run_demo(config)
    width = max(len(r.name) for r in results)
    print(f"healthsense demo (seed {config.seed}) — research software, not a medical device")
    for r in results:
        print(f"  {r.name:<{width}}  {r.status:<8} {r.seconds:6.1f} s  {r.summary}")
    print(f"report: {(config.out / 'index.html').resolve()}")
    return EXIT_FAILURE if any(r.status == "failed" for r in results) else EXIT_OK
