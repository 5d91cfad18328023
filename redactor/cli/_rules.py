"""``redactor rules test`` / ``redactor rules list``."""

from __future__ import annotations

import argparse
import sys

from redactor.cli._common import add_engine_options, engine_from_args
from redactor.engine.selftest import check_all


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("rules", help="test or list the rule packs")
    rules_sub = parser.add_subparsers(dest="rules_command", metavar="ACTION", required=True)
    test = rules_sub.add_parser(
        "test", help="run every rule's must-match / must-not-match examples"
    )
    add_engine_options(test)
    test.set_defaults(func=_test)
    listing = rules_sub.add_parser("list", help="list the rules in force")
    add_engine_options(listing)
    listing.set_defaults(func=_list)


def _test(args: argparse.Namespace) -> int:
    _, redactor = engine_from_args(args)
    checked, failures = check_all(redactor)
    for failure in failures:
        print(f"FAIL {failure}", file=sys.stderr)
    packs = ", ".join(p.name for p in redactor.ruleset.packs)
    print(
        f"{len(redactor.rules)} rules ({packs}), {checked} examples, "
        f"{len(failures)} failed [{redactor.scanner.name}]"
    )
    return 1 if failures else 0


def _list(args: argparse.Namespace) -> int:
    _, redactor = engine_from_args(args)
    for rule in redactor.rules:
        print(f"{rule.id:40} {rule.category:7} {rule.label:20} {rule.pack}")
    return 0
