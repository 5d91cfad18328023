"""Options and set-up shared by the subcommands that run the engine."""

from __future__ import annotations

import argparse
from typing import Any

from redactor import create_redactor
from redactor.engine import Redactor
from redactor.settings import Settings, resolve_settings


def add_engine_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="TOML config file (also $REDACTOR_CONFIG)")
    parser.add_argument(
        "--rules", metavar="DIR", help="rules directory (default: the shipped packs)"
    )
    parser.add_argument(
        "--enable",
        metavar="PACK",
        action="append",
        default=[],
        help="switch on an off-by-default pack (e.g. pii); repeatable",
    )
    parser.add_argument(
        "--disable",
        metavar="PACK",
        action="append",
        default=[],
        help="switch off a pack; repeatable",
    )
    parser.add_argument(
        "--scanner",
        choices=("auto", "hyperscan", "regex"),
        default="auto",
        help="stage-1 scanner (default: hyperscan where installed)",
    )


def engine_from_args(args: argparse.Namespace, **overrides: Any) -> tuple[Settings, Redactor]:
    settings = resolve_settings(
        config_file=args.config,
        rules_dir=args.rules,
        enable=",".join(args.enable) or None,
        disable=",".join(args.disable) or None,
        **overrides,
    )
    return settings, create_redactor(settings, scanner=args.scanner)
