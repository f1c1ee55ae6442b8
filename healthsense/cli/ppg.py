"""PPG data and informativeness: windows from real datasets, simulation, window files.

Data commands (dataset → window file, simulated cohorts, window-file summaries) live in
:mod:`healthsense.cli.ppg_data`; the informativeness commands, where installed, in
:mod:`healthsense.cli.ppg_info`. Run ``healthsense ppg SUBCOMMAND --help``.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util

from healthsense.cli._common import EXIT_USAGE, HealthsenseArgumentParser

_PARTS = ("healthsense.cli.ppg_data", "healthsense.cli.ppg_info")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(
        dest="ppg_command", metavar="SUBCOMMAND", parser_class=HealthsenseArgumentParser
    )
    for name in _PARTS:
        if importlib.util.find_spec(name) is not None:
            importlib.import_module(name).register(sub)


def run(args: argparse.Namespace) -> int:
    # Reached only when no sub-command was given (each sub-command sets its own _run).
    print("usage: healthsense ppg SUBCOMMAND ...  (see 'healthsense ppg --help')")
    return EXIT_USAGE
