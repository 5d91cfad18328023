"""``redactor reveal <trace-id>`` — show a trace's records with the originals your grant allows.

Only categories (and the reveal level, e.g. last4) your active grant allows are restored; the
rest stays masked. ``--apply FILE|-`` instead rehydrates log lines exported from a log backend:
placeholders whose ref belongs to the granted trace are replaced, everything else is untouched.
Without an active grant the reveal is refused (exit 3) and the refusal is audited.
"""

from __future__ import annotations

import argparse
import sys

from redactor.cli._grant import add_common, emit_json, guarded, iso
from redactor.grants import GrantError
from redactor.grants.client import GrantClient

MAX_APPLY_BYTES = 64 * 1024 * 1024


@guarded
def cmd_reveal(args: argparse.Namespace, client: GrantClient) -> int:
    if (args.trace is None) == (args.ref is None):
        raise GrantError("give a trace id, or --ref REF for a record without a trace id")
    categories = [
        c.strip() for v in (args.category or []) for c in v.split(",") if c.strip()
    ] or None
    lines = None
    if args.apply is not None:
        if args.apply == "-":
            data = sys.stdin.read(MAX_APPLY_BYTES + 1)
        else:
            try:
                with open(args.apply, encoding="utf-8", errors="surrogateescape") as fh:
                    data = fh.read(MAX_APPLY_BYTES + 1)
            except OSError as exc:
                raise GrantError(f"cannot read {args.apply}: {exc.strerror}") from None
        if len(data) > MAX_APPLY_BYTES:
            raise GrantError(
                f"--apply input is larger than {MAX_APPLY_BYTES // (1024 * 1024)} MiB; split it"
            )
        lines = data.splitlines()
    result = client.reveal(trace=args.trace, ref=args.ref, categories=categories, lines=lines)
    if args.json:
        emit_json(result.to_json())
    elif result.lines is not None:
        sys.stdout.write("".join(line + "\n" for line in result.lines))
    else:
        if not result.records:
            print(
                "no records stored for "
                f"{'trace ' + args.trace if args.trace else 'ref ' + args.ref}"
                " (the vault keeps them only for its TTL)",
                file=sys.stderr,
            )
        for rec in result.records:
            print(
                f"── {iso(rec.timestamp)}  {rec.source}  "
                f"record {rec.record_id}  trace {rec.trace_id or '-'}"
            )
            print(rec.text)
            for v in rec.values:
                if not v.in_text:  # from another field of the record (extras, attributes)
                    print(f"   {v.path or '-'} [{v.category}/{v.label}]: {v.value}")
    # The summary goes to stderr so stdout stays exactly the rehydrated data.
    print(
        f"revealed {result.revealed} value(s) [{', '.join(result.categories)}] under "
        f"{', '.join(result.grant_ids)}; {result.withheld} left masked",
        file=sys.stderr,
    )
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``reveal``."""
    p = subparsers.add_parser(
        "reveal",
        help="show a trace's originals under an active grant",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_common(p)
    p.add_argument("trace", nargs="?", help="trace id")
    p.add_argument("--ref", help="reveal by ref instead (records without a trace id)")
    p.add_argument("--category", action="append", help="only these categories (must be granted)")
    p.add_argument(
        "--apply", metavar="FILE", help="rehydrate exported log lines from FILE ('-' for stdin)"
    )
    p.set_defaults(func=cmd_reveal)
