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


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser with every subcommand, or with ``command``'s alone.

    Importing a subcommand's module can be costly (the gateway loads gRPC and protobuf, the
    broker its HTTP stack), so ``main`` builds only the one asked for; ``--help`` and unknown
    commands get them all.
    """
    parser = argparse.ArgumentParser(
        prog="redactor",
        description="Mask secrets in logs and telemetry; reveal originals under audited grants.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    wanted = f"_{command}"
    for name in _COMMAND_MODULES if wanted not in _COMMAND_MODULES else (wanted,):
        importlib.import_module(f"redactor.cli.{name}").register(sub)
    return parser


def _command_in(argv: Sequence[str]) -> str | None:
    """The subcommand named in ``argv``: its first argument, when that is not an option."""
    return argv[0] if argv and not argv[0].startswith("-") else None


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(_command_in(arguments))
    args = parser.parse_args(arguments)
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
