"""``redactor keys``: generate, list and retire the vault's key sets."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from redactor.settings import load_or_create_ref_key, resolve_settings


def _keys_dir(args: argparse.Namespace) -> Path:
    if args.dir:
        return Path(args.dir).expanduser()
    return resolve_settings().keys_dir


def _generate(args: argparse.Namespace) -> int:
    from redactor.vault.keys import generate_keys

    keys_dir = _keys_dir(args)
    kid = generate_keys(keys_dir)
    load_or_create_ref_key(keys_dir)
    print(f"generated vault key {kid} in {keys_dir} (now current)")
    print(f"  public:  {keys_dir / f'vault-{kid}.pub'}  (give this to redacting processes)")
    print(f"  private: {keys_dir / f'vault-{kid}.key'}  (mode 0600; reveal side only)")
    return 0


def _list(args: argparse.Namespace) -> int:
    from redactor.vault.keys import list_keys

    keys_dir = _keys_dir(args)
    rows = list_keys(keys_dir) if keys_dir.is_dir() else []
    if not rows:
        print(f"no vault keys in {keys_dir}")
        return 1
    for kid, has_private, is_current in rows:
        flags = ", ".join(
            f for f, on in (("current", is_current), ("private key", has_private)) if on
        )
        print(f"{kid}  {flags or 'public only'}")
    return 0


def _retire(args: argparse.Namespace) -> int:
    from redactor.vault.keys import retire_key

    keys_dir = _keys_dir(args)
    retire_key(keys_dir, args.kid)
    print(f"retired {args.kid}: blobs sealed to it can no longer be opened")
    return 0


def register(subparsers: Any) -> None:
    """Add ``keys generate|list|retire`` to the ``redactor`` command."""
    parser = subparsers.add_parser("keys", help="manage the vault's X25519 key sets")
    sub = parser.add_subparsers(dest="keys_command", metavar="ACTION")

    def with_dir(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--dir", help="key directory (default: $REDACTOR_HOME/keys)")
        return p

    gen = with_dir(sub.add_parser("generate", help="create a new key set and make it current"))
    gen.set_defaults(func=_generate)
    lst = with_dir(sub.add_parser("list", help="show key sets and which one is current"))
    lst.set_defaults(func=_list)
    ret = with_dir(
        sub.add_parser("retire", help="delete an old private key (its blobs stop opening)")
    )
    ret.add_argument("kid")
    ret.set_defaults(func=_retire)

    def _usage(_args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    parser.set_defaults(func=_usage)
