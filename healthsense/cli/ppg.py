"""PPG data and informativeness: windows from real datasets, simulation, window files.

Data commands (dataset → window file, simulated cohorts, window-file summaries) live in
:mod:`healthsense.cli.ppg_data`; the informativeness commands, where installed, in
:mod:`healthsense.cli.ppg_info`. Run ``healthsense ppg SUBCOMMAND --help``.
"""

from __future__ import annotations

import argparse

from healthsense.cli._common import add_group, group_usage

_PARTS = ("healthsense.cli.ppg_data", "healthsense.cli.ppg_info")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_group(parser, "ppg_command", _PARTS)


def run(args: argparse.Namespace) -> int:
    # Reached only when no sub-command was given (each sub-command sets its own _run).
    return group_usage("ppg")
