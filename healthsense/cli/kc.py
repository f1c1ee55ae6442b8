"""Keratoconus screening from corneal topography: maps, indices, synthetic cohorts, the CNN.

Topography commands (elevation → curvature maps, clinical indices, heatmaps, device imports,
synthetic two-domain cohorts, dataset checks) live in :mod:`healthsense.cli.kc_topography`;
the dual-head classifier commands (train, evaluate, predict, cv) in
:mod:`healthsense.cli.kc_model`. Run ``healthsense kc SUBCOMMAND --help``.
"""

from __future__ import annotations

import argparse

from healthsense.cli._common import add_group, group_usage

_PARTS = ("healthsense.cli.kc_topography", "healthsense.cli.kc_model")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_group(parser, "kc_command", _PARTS)


def run(args: argparse.Namespace) -> int:
    # Reached only when no sub-command was given (each sub-command sets its own _run).
    return group_usage("kc")
