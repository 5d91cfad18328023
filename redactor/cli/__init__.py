"""The ``redactor`` command. Each subcommand lives in its own ``_<name>`` module with a
``register(subparsers)`` function; this module only assembles them and maps errors to exit codes.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from redactor.engine.interface import RedactorError

# Order here is the order of ``redactor --help``.
_COMMAND_MODULES = (
    "_demo",
    "_scrub",
    "_gateway",
    "_rules",
    "_keys",
    "_grant",
    "_reveal",
    "_audit",
    "_serve",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="redactor",
        description="Mask secrets in logs and telemetry; reveal originals under audited grants.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(f"redactor.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"redactor.cli.{name}":
                raise
            continue  # a command not shipped in this build
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except RedactorError as exc:
        print(f"redactor: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
