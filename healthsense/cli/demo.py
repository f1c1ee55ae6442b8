"""Run the main job on embedded, simulated data: every part of the toolkit, offline.

Synthesises small data sets with the toolkit's own simulators, runs each domain's analysis,
and writes an index page (``index.html``), ``results.json`` and the resolved ``config.json``
to the output folder. Parts of the toolkit that are not built yet are listed as skipped.
Deterministic for a given ``--seed``.
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


def run(args: argparse.Namespace) -> int:
    from healthsense.demo import DemoConfig, run_demo

    config = DemoConfig(
        out=args.out,
        seed=0 if args.seed is None else args.seed,
        use_shared_data=not args.no_shared_data,
    )
    results = run_demo(config)
    width = max(len(r.name) for r in results)
    print(f"healthsense demo (seed {config.seed}) — research software, not a medical device")
    for r in results:
        print(f"  {r.name:<{width}}  {r.status:<8} {r.seconds:6.1f} s  {r.summary}")
    print(f"report: {(config.out / 'index.html').resolve()}")
    return EXIT_FAILURE if any(r.status == "failed" for r in results) else EXIT_OK
