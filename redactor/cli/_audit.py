"""``redactor audit verify|tail`` — check the grant audit log's hash chain, read recent entries.

``verify`` recomputes every entry's hash (previous hash + canonical JSON of the entry) and reports
the first edited, deleted or reordered entry, exiting 1. It prints the head hash: keep it
somewhere else (a ticket, a chat message) and a rewritten chain cannot pass for the original.
"""

from __future__ import annotations

import argparse
import json

from redactor.cli._grant import add_common, emit_json, guarded, table
from redactor.grants.client import GrantClient
from redactor.grants.store import GrantStore


@guarded
def cmd_verify(args: argparse.Namespace, client: GrantClient) -> int:
    result = client.audit_verify()
    return _report(args, result)


def _report(args: argparse.Namespace, result: object) -> int:
    from redactor.grants import VerifyResult

    assert isinstance(result, VerifyResult)
    if args.json:
        emit_json(result.to_json())
    elif result.ok:
        print(f"audit chain OK: {result.entries} entries, head {result.head}")
    else:
        print(f"audit chain BROKEN at entry {result.broken_seq}: {result.problem}")
        print(f"({result.entries} entries verified before it; last good hash {result.head})")
    if result.ok and args.expect_head and args.expect_head != result.head:
        if not args.json:
            print(
                f"head {result.head} differs from the expected {args.expect_head}: "
                "the chain was rewritten or extended"
            )
        return 1
    return 0 if result.ok else 1


def cmd_verify_file(args: argparse.Namespace) -> int:
    if args.db:
        store = GrantStore(args.db)
        try:
            return _report(args, store.verify())
        finally:
            store.close()
    return int(cmd_verify(args))


@guarded
def cmd_tail(args: argparse.Namespace, client: GrantClient) -> int:
    entries = client.audit_tail(args.n)
    if args.json:
        for e in entries:
            print(json.dumps(e, sort_keys=True))
        return 0
    rows = []
    for e in entries:
        targets = ",".join(
            [t[:12] for t in e.get("traces", [])] + [f"ref:{r}" for r in e.get("refs", [])]
        )
        detail = e.get("why") or e.get("reason") or ""
        flag = "BREAK-GLASS " if e.get("break_glass") else ""
        rows.append(
            [
                str(e["seq"]),
                str(e.get("time", "")),
                str(e.get("actor", "")),
                str(e.get("action", "")),
                str(e.get("outcome", "")),
                str(e.get("grant") or ",".join(e.get("grants", [])) or "-"),
                ",".join(e.get("categories", [])),
                targets,
                (flag + str(detail))[:60],
            ]
        )
    print(
        table(
            rows,
            [
                "SEQ",
                "TIME",
                "ACTOR",
                "ACTION",
                "OUTCOME",
                "GRANT",
                "CATEGORIES",
                "TARGETS",
                "DETAIL",
            ],
        )
        if rows
        else "audit log is empty"
    )
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``audit``."""
    p = subparsers.add_parser(
        "audit",
        help="verify the audit hash chain; show recent entries",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="audit_command", metavar="ACTION")
    v = sub.add_parser("verify", help="check the hash chain; exit 1 at the first broken link")
    add_common(v)
    v.add_argument(
        "--db", help="verify this grants.db file offline (default: the configured store)"
    )
    v.add_argument(
        "--expect-head", metavar="HASH", help="also require the chain to end at this hash"
    )
    v.set_defaults(func=cmd_verify_file)
    t = sub.add_parser("tail", help="the most recent audit entries")
    add_common(t)
    t.add_argument("-n", type=int, default=20, help="how many entries (default 20)")
    t.set_defaults(func=cmd_tail)
