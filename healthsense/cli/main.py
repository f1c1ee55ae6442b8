"""healthsense: wearable and smartphone health sensing (research software, not a medical device).

Run ``healthsense COMMAND --help`` for the options of a command.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from healthsense._version import __version__
from healthsense.cli._common import (
    EXIT_FAILURE,
    EXIT_USAGE,
    CommandError,
    HealthsenseArgumentParser,
    add_common_options,
    add_subcommand,
)

#: Sub-command name → module (each with add_arguments(parser) and run(args) -> int).
COMMANDS: dict[str, str] = {
    "ppg": "healthsense.cli.ppg",
    "retino": "healthsense.cli.retino",
    "kc": "healthsense.cli.kc",
    "screen": "healthsense.cli.screen",
    "demo": "healthsense.cli.demo",
    "sys-info": "healthsense.cli.sys_info",
}


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (every available sub-command registered)."""
    parser = HealthsenseArgumentParser(
        prog="healthsense",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Exit codes: 0 success; 1 failed input or some cases ungradable; 2 usage error.",
    )
    parser.add_argument("--version", action="version", version=f"healthsense {__version__}")
    add_common_options(parser, suppress=False)
    subparsers = parser.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=HealthsenseArgumentParser
    )
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        sub = add_subcommand(subparsers, name, doc=module.__doc__)
        module.add_arguments(sub)
        sub.set_defaults(_run=module.run, _command=name)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``healthsense`` console script; returns the exit code."""
    from healthsense.runtime import get_logger, setup_logging

    parser = build_parser()
    args = parser.parse_args(argv)
    verbosity = -1 if getattr(args, "quiet", False) else int(getattr(args, "verbose", 0) or 0)
    setup_logging(verbosity)
    log = get_logger("cli")
    run = getattr(args, "_run", None)
    if run is None:
        if args.command is None:
            parser.print_help(sys.stderr)
            return EXIT_USAGE
        # A group command (e.g. `healthsense ppg`) given without its sub-command.
        parser.parse_args([args.command, "--help"])
        return EXIT_USAGE
    try:
        code = run(args)
    except CommandError as exc:
        log.debug("command error", exc_info=True)
        sys.stderr.write(f"healthsense: error: {exc}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("healthsense: interrupted\n")
        return 130
    except Exception as exc:  # one line for the user; the traceback with -v
        from healthsense.config import ConfigError

        if log.isEnabledFor(logging.DEBUG):
            log.exception("unhandled error")
        kind = "usage error" if isinstance(exc, ConfigError) else "error"
        sys.stderr.write(
            f"healthsense: {kind}: {exc}"
            + ("" if verbosity > 0 else " (run with -v for details)")
            + "\n"
        )
        return EXIT_USAGE if isinstance(exc, ConfigError) else EXIT_FAILURE
    return int(code or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
