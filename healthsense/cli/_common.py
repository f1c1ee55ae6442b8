"""Helpers shared by the sub-command modules: options every command takes, errors, output."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

__all__ = [
    "EXIT_FAILURE",
    "EXIT_OK",
    "EXIT_USAGE",
    "CommandError",
    "HealthsenseArgumentParser",
    "add_common_options",
    "add_group",
    "add_subcommand",
    "group_usage",
    "docstring_help",
    "print_json",
]

#: Exit codes (documented in the README): success, a failure in the data or some cases
#: ungradable, and a usage error (bad option, unknown command, bad config or manifest).
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


class CommandError(Exception):
    """An error a command reports as one line, with the exit code it should end with."""

    def __init__(self, message: str, *, exit_code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class HealthsenseArgumentParser(argparse.ArgumentParser):
    """ArgumentParser whose errors are one line on stderr and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def docstring_help(module_doc: str | None) -> tuple[str, str]:
    """Split a module docstring into (one-line help, full description)."""
    text = (module_doc or "").strip()
    first = text.splitlines()[0].strip() if text else ""
    return first.rstrip("."), text


def add_common_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """Add ``-v``, ``--quiet`` and ``--seed`` to a parser.

    With ``suppress`` the defaults are :data:`argparse.SUPPRESS`, so a sub-command's copy of
    the options only overrides the top-level value when the user actually gives it (both
    ``healthsense -v demo`` and ``healthsense demo -v`` work).
    """
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=argparse.SUPPRESS if suppress else 0,
        help="more output (-v: debug messages)",
    )
    parser.add_argument(
        "--quiet",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="only warnings and errors; no progress bars",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=default,
        metavar="N",
        help="random seed for everything the command draws (default: 0 where the command "
        "is stochastic)",
    )


def add_subcommand(
    subparsers: Any,
    name: str,
    *,
    doc: str | None = None,
    help: str | None = None,
    aliases: Sequence[str] = (),
) -> argparse.ArgumentParser:
    """Add a sub-command parser with the common options and a help text from ``doc``."""
    short, description = docstring_help(doc)
    parser = subparsers.add_parser(
        name,
        help=help or short,
        description=description or help,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        aliases=list(aliases),
    )
    add_common_options(parser, suppress=True)
    return parser


def print_json(obj: Any, *, stream=None) -> None:
    """Print one JSON object on one line (numpy types and NaN made JSON-safe)."""
    from healthsense.report import to_jsonable

    out = stream or sys.stdout
    out.write(json.dumps(to_jsonable(obj), allow_nan=False) + "\n")
    out.flush()


def add_group(parser: argparse.ArgumentParser, dest: str, parts: Sequence[str] = ()) -> Any:
    """Give a command group its sub-parsers; each module in ``parts`` adds its sub-commands.

    A group's sub-commands may live in several modules (e.g. topography and classifier
    commands of ``kc``); each exposes ``register(subparsers)``. Returns the sub-parsers for
    the group module's own sub-commands.
    """
    sub = parser.add_subparsers(
        dest=dest, metavar="SUBCOMMAND", parser_class=HealthsenseArgumentParser
    )
    for name in parts:
        importlib.import_module(name).register(sub)
    return sub


def group_usage(group: str) -> int:
    """What a group command does when no sub-command is given: a usage line and exit code 2."""
    sys.stderr.write(
        f"usage: healthsense {group} SUBCOMMAND ...  (see 'healthsense {group} --help')\n"
    )
    return EXIT_USAGE
