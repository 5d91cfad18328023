"""``redactor grant request|approve|deny|revoke|list|show`` — just-in-time access to originals.

Also the plumbing the ``reveal`` and ``audit`` commands share: who the caller is, and whether
to talk to the local store (embedded) or to a broker (``REDACTOR_SERVER`` + ``REDACTOR_TOKEN``).
Embedded mode trusts the local user: ``--as`` is a claim, not a proof. Use the broker when
requester and approver must not be able to impersonate each other.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from redactor.engine.interface import ConfigError
from redactor.grants import CATEGORIES, GrantError, Identity, NotAllowed, RecordReader, open_service
from redactor.grants.client import EmbeddedClient, GrantClient
from redactor.grants.interface import Grant
from redactor.grants.policy import parse_duration_s

#: Time source for embedded commands; tests replace it to move past expiry without sleeping.
CLOCK: Callable[[], float] = time.time


def _default_reader() -> RecordReader:
    # Imported late: the vault (and its private key) is only touched once a reveal is allowed.
    from redactor.settings import resolve_settings
    from redactor.vault import open_reader

    return open_reader(resolve_settings())


#: Opens the vault for reading; tests substitute an in-memory reader.
READER_FACTORY: Callable[[], RecordReader] = _default_reader

EXIT_ERROR = 1
EXIT_REFUSED = 3


def add_common(parser: argparse.ArgumentParser) -> None:
    """``--as``, ``--json`` and ``--policy``, accepted by every grant/reveal/audit command."""
    parser.add_argument(
        "--as",
        dest="as_user",
        metavar="NAME",
        help="who you are in embedded mode (default $REDACTOR_USER); trusted, not verified",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument(
        "--policy",
        metavar="FILE",
        help="policy file (default $REDACTOR_POLICY, else $REDACTOR_HOME/policy.toml if present)",
    )


def open_client(args: argparse.Namespace) -> GrantClient:
    """The broker client when ``REDACTOR_SERVER`` is set, else the embedded store."""
    server = os.environ.get("REDACTOR_SERVER")
    if server:
        token = os.environ.get("REDACTOR_TOKEN")
        if not token:
            raise ConfigError("REDACTOR_SERVER is set but REDACTOR_TOKEN is not")
        from redactor.broker.client import BrokerClient

        return BrokerClient(server, token)
    from redactor.settings import default_home

    name = getattr(args, "as_user", None) or os.environ.get("REDACTOR_USER") or None
    identity = Identity(name, via="local") if name else None
    service = open_service(default_home(), policy_file=getattr(args, "policy", None), clock=CLOCK)
    return EmbeddedClient(service, identity, lambda: READER_FACTORY())


def guarded(
    func: Callable[[argparse.Namespace, GrantClient], int],
) -> Callable[[argparse.Namespace], int]:
    """Open the client, run ``func``, map refusals to exit 3 and other grant errors to exit 1."""

    @functools.wraps(func)
    def run(args: argparse.Namespace) -> int:
        client = open_client(args)
        try:
            return func(args, client)
        except NotAllowed as exc:  # includes RevealRefused
            print(f"redactor: {exc}", file=sys.stderr)
            return EXIT_REFUSED
        except GrantError as exc:
            print(f"redactor: {exc}", file=sys.stderr)
            return EXIT_ERROR
        finally:
            client.close()

    return run


def emit_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=True))


def when(ts: float | None, now: float | None = None) -> str:
    """Relative time for people: ``in 29m``, ``3m ago``."""
    if ts is None:
        return "-"
    delta = ts - (now if now is not None else CLOCK())
    span = abs(delta)
    text = (
        f"{int(span)}s"
        if span < 120
        else f"{int(span // 60)}m"
        if span < 7200
        else f"{span / 3600:.1f}h"
    )
    return f"in {text}" if delta >= 0 else f"{text} ago"


def iso(ts: float | None) -> str:
    if ts is None:
        return "-"
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def table(rows: list[list[str]], headers: list[str]) -> str:
    """A plain, colourless, left-aligned table."""
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=False)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=False)).rstrip()]
    lines += [
        "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=False)).rstrip() for r in rows
    ]
    return "\n".join(lines)


def _targets(g: Grant) -> str:
    items = [t[:16] + ("…" if len(t) > 16 else "") for t in g.traces] + [f"ref:{r}" for r in g.refs]
    return ", ".join(items[:3]) + (f" +{len(items) - 3}" if len(items) > 3 else "")


def grant_rows(grants: list[Grant]) -> str:
    rows = []
    for g in grants:
        approvals = "break-glass" if g.break_glass else f"{len(g.approvers)}/{g.approvals_required}"
        rows.append(
            [
                g.id,
                g.status.upper() if g.break_glass else g.status,
                g.requester,
                ",".join(g.categories),
                _targets(g),
                approvals,
                when(g.expires_at) if g.status in ("pending", "active") else when(g.closed_at),
                "BREAK-GLASS" if g.break_glass else "",
            ]
        )
    return table(
        rows, ["ID", "STATUS", "REQUESTER", "CATEGORIES", "TARGETS", "APPROVALS", "ENDS", "FLAGS"]
    )


def describe(g: Grant) -> str:
    """A grant, in full, for people."""
    lines = [
        f"grant       {g.id}" + ("   ** BREAK-GLASS **" if g.break_glass else ""),
        f"status      {g.status}",
        f"requester   {g.requester}",
        f"categories  {', '.join(g.categories)}",
        f"traces      {', '.join(g.traces) or '-'}",
        f"refs        {', '.join(g.refs) or '-'}",
        f"reason      {g.reason}",
        f"duration    {g.duration_s}s",
        f"approvals   {len(g.approvers)}/{g.approvals_required} "
        f"({', '.join(g.approvers) or 'none yet'})",
        f"created     {iso(g.created_at)}",
    ]
    if g.status in ("pending", "active"):
        label = "active until" if g.status == "active" else "pending until"
        lines.append(f"{label} {iso(g.expires_at)} ({when(g.expires_at)})")
    else:
        lines.append(
            f"closed      {iso(g.closed_at)} by {g.closed_by or 'system'}"
            + (f": {g.close_reason}" if g.close_reason else "")
        )
    for d in g.decisions:
        lines.append(
            f"  {d.verdict:<8} by {d.actor} at {iso(d.at)}" + (f" — {d.reason}" if d.reason else "")
        )
    return "\n".join(lines)


def _print_grant(args: argparse.Namespace, g: Grant, headline: str) -> None:
    if args.json:
        emit_json(g.to_json())
    else:
        print(headline)
        print(describe(g))


def _split_categories(values: list[str]) -> list[str]:
    return [c.strip() for v in values for c in v.split(",") if c.strip()]


@guarded
def cmd_request(args: argparse.Namespace, client: GrantClient) -> int:
    try:
        duration_s = parse_duration_s(args.duration, "--duration") if args.duration else None
    except ConfigError as exc:
        raise GrantError(str(exc)) from None
    g = client.request(
        traces=args.trace or [],
        refs=args.ref or [],
        categories=_split_categories(args.category),
        reason=args.reason,
        duration_s=duration_s,
        break_glass=args.break_glass,
    )
    if g.break_glass:
        headline = f"BREAK-GLASS grant {g.id} is active now; this is recorded and announced."
    else:
        headline = (
            f"requested {g.id}; needs {g.approvals_required} approval(s): "
            f"redactor grant approve {g.id}"
        )
    _print_grant(args, g, headline)
    return 0


@guarded
def cmd_approve(args: argparse.Namespace, client: GrantClient) -> int:
    g = client.approve(args.id, args.reason or "")
    _print_grant(args, g, f"approved {g.id}: now {g.status}")
    return 0


@guarded
def cmd_deny(args: argparse.Namespace, client: GrantClient) -> int:
    g = client.deny(args.id, args.reason)
    _print_grant(args, g, f"denied {g.id}")
    return 0


@guarded
def cmd_revoke(args: argparse.Namespace, client: GrantClient) -> int:
    g = client.revoke(args.id, args.reason or "")
    _print_grant(args, g, f"revoked {g.id}")
    return 0


@guarded
def cmd_list(args: argparse.Namespace, client: GrantClient) -> int:
    statuses = tuple(s.strip() for s in args.status.split(",")) if args.status else None
    if statuses is None and not args.all:
        statuses = ("pending", "active")
    grants = client.list(mine=args.mine, statuses=statuses)
    if args.json:
        emit_json([g.to_json() for g in grants])
    elif not grants:
        print("no grants" + ("" if args.all else " open (use --all for closed ones)"))
    else:
        print(grant_rows(grants))
    return 0


@guarded
def cmd_show(args: argparse.Namespace, client: GrantClient) -> int:
    g = client.show(args.id)
    if args.json:
        emit_json(g.to_json())
    else:
        print(describe(g))
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``grant`` and its subcommands."""
    p = subparsers.add_parser(
        "grant",
        help="request, approve, deny, revoke and list access grants",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="grant_command", metavar="ACTION")
    def show_help(_args: argparse.Namespace) -> int:
        p.print_help(sys.stderr)
        return 2

    p.set_defaults(func=show_help)

    r = sub.add_parser("request", help="ask for access to the originals of traces or refs")
    add_common(r)
    r.add_argument("--trace", action="append", metavar="TRACE_ID", help="trace id (repeatable)")
    r.add_argument(
        "--ref",
        action="append",
        metavar="REF",
        help="ref of a record without trace id (repeatable)",
    )
    r.add_argument(
        "--category",
        action="append",
        required=True,
        help=f"categories, comma-separated: {','.join(CATEGORIES)}",
    )
    r.add_argument("--reason", required=True, help="why; policy may require a ticket id")
    r.add_argument("--duration", help="e.g. 30m, 1h (default: the policy maximum)")
    r.add_argument(
        "--break-glass",
        action="store_true",
        help="activate now without approval (break-glass groups only; loud and audited)",
    )
    r.set_defaults(func=cmd_request)

    for name, fn, help_text in (
        ("approve", cmd_approve, "approve a pending grant"),
        ("deny", cmd_deny, "deny a pending grant"),
        ("revoke", cmd_revoke, "end a pending or active grant now"),
    ):
        a = sub.add_parser(name, help=help_text)
        add_common(a)
        a.add_argument("id", help="grant id (g-…)")
        a.add_argument("--reason", required=(name == "deny"), help="why (required to deny)")
        a.set_defaults(func=fn)

    lst = sub.add_parser("list", help="open grants (pending and active); --all for every grant")
    add_common(lst)
    lst.add_argument(
        "--all", action="store_true", help="include denied, revoked and expired grants"
    )
    lst.add_argument("--mine", action="store_true", help="only grants you requested")
    lst.add_argument("--status", help="comma-separated statuses to show")
    lst.set_defaults(func=cmd_list)

    show = sub.add_parser("show", help="one grant in full")
    add_common(show)
    show.add_argument("id")
    show.set_defaults(func=cmd_show)
