"""Keratoconus screening from corneal topography: maps, indices, synthetic cohorts, the CNN.

Topography commands (elevation → curvature maps, clinical indices, heatmaps, device imports,
synthetic two-domain cohorts, dataset checks) live in :mod:`healthsense.cli.kc_topography`;
the dual-head classifier commands (train, evaluate, predict, cv) in
:mod:`healthsense.cli.kc_model`. Run ``healthsense kc SUBCOMMAND --help``.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util

from healthsense.cli._common import EXIT_USAGE, HealthsenseArgumentParser

_PARTS = ("healthsense.cli.kc_topography", "healthsense.cli.kc_model")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(
        dest="kc_command", metavar="SUBCOMMAND", parser_class=HealthsenseArgumentParser
    )
    for name in _PARTS:
        if importlib.util.find_spec(name) is not None:
            importlib.import_module(name).register(sub)


def run(args: argparse.Namespace) -> int:
    # Reached only when no sub-command was given (each sub-command sets its own _run).
    print("usage: healthsense kc SUBCOMMAND ...  (see 'healthsense kc --help')")
    return EXIT_USAGE
