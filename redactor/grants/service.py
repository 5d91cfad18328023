"""Grant lifecycle: request → pending → active (N distinct approvers) / denied → expired or revoked.

:class:`GrantService` is the one place that decides; the embedded CLI and the broker both call
it with an :class:`~redactor.grants.interface.Identity`. Every decision it takes — including
refusals of a reveal — is an audit entry written in the same transaction as the state change,
then emitted on the ``redactor.audit`` logger and handed to the notifier.
"""

from __future__ import annotations

import base64
import builtins
import datetime as dt
import json
import logging
import re
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import Any

from redactor.grants.interface import (
    CATEGORIES,
    AuditEntry,
    Decision,
    Grant,
    GrantError,
    GrantStatus,
    Identity,
    NotAllowed,
    RecordReader,
    RevealRefused,
    VaultRecordLike,
    VerifyResult,
)
from redactor.grants.notify import Notifier
from redactor.grants.policy import Policy
from redactor.grants.reveal import RevealResult, rehydrate_lines, rehydrate_records
from redactor.grants.store import GrantStore, Transaction

audit_logger = logging.getLogger("redactor.audit")

TRACE_RE = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
REF_RE = re.compile(r"^[a-z2-7]{8}$")
USER_RE = re.compile(r"^[A-Za-z0-9._@+\-]{1,128}$")
MAX_TARGETS = 100
MAX_REASON_CHARS = 500


class Conflict(GrantError):
    """The grant is not in a state that allows this (already decided, closed, ...)."""

    status = 409


def _new_grant_id() -> str:
    return "g-" + base64.b32encode(secrets.token_bytes(5)).decode("ascii").lower()


def _iso(ts: float) -> str:
    return (
        dt.datetime.fromtimestamp(ts, dt.UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


class GrantService:
    """Requests, decisions, revocations, expiry, reveal checks and the audit trail."""

    def __init__(
        self,
        store: GrantStore,
        policy: Policy,
        *,
        clock: Callable[[], float] = time.time,
        notifier: Notifier | None = None,
    ) -> None:
        self.store = store
        self.policy = policy
        self.clock = clock
        self.notifier = notifier or Notifier()

    # ------------------------------------------------------------------ lifecycle

    def request(
        self,
        who: Identity,
        *,
        traces: Sequence[str] = (),
        refs: Sequence[str] = (),
        categories: Sequence[str],
        reason: str,
        duration_s: int | None = None,
        break_glass: bool = False,
    ) -> Grant:
        """Ask for access; a break-glass request is active at once, others wait for approval."""
        traces, refs, cats = self._validate_request(who, traces, refs, categories, reason)
        now = self.clock()
        if break_glass:
            bg = self.policy.break_glass
            if not bg.groups or not self.policy.matches(who, bg.groups):
                self._refuse_request(
                    who, traces, refs, cats, now, "not in a break-glass group", True
                )
            if outside := [c for c in cats if c not in bg.categories]:
                raise NotAllowed(f"break-glass does not cover categories: {', '.join(outside)}")
            max_s = bg.max_duration_s
            pattern = bg.reason_pattern
            if pattern is not None and not pattern.search(reason):
                raise GrantError(f"reason must match {pattern.pattern!r}")
        else:
            for c in cats:
                cp = self.policy.category(c)
                if not self.policy.matches(who, cp.requesters):
                    self._refuse_request(
                        who, traces, refs, cats, now, f"not allowed to request {c}", False
                    )
                if cp.reason_pattern is not None and not cp.reason_pattern.search(reason):
                    raise GrantError(
                        f"reason for {c} must match {cp.reason_pattern.pattern!r} "
                        "(e.g. a ticket id)"
                    )
            max_s = min(self.policy.category(c).max_duration_s for c in cats)
        if duration_s is None:
            duration_s = max_s
        if isinstance(duration_s, bool) or not isinstance(duration_s, int) or duration_s <= 0:
            raise GrantError("duration must be a positive number of seconds")
        if duration_s > max_s:
            raise GrantError(
                f"duration {duration_s}s exceeds the policy maximum of {max_s}s "
                f"for {', '.join(cats)}"
                + (" (break-glass)" if break_glass else "")
            )

        required = max(self.policy.category(c).approvals_required for c in cats)
        grant = Grant(
            id=_new_grant_id(),
            requester=who.name,
            traces=traces,
            refs=refs,
            categories=cats,
            reason=reason,
            duration_s=duration_s,
            status=GrantStatus.ACTIVE if break_glass else GrantStatus.PENDING,
            created_at=now,
            expires_at=now + (duration_s if break_glass else self.policy.pending_ttl_s),
            approvals_required=0 if break_glass else required,
            break_glass=break_glass,
            activated_at=now if break_glass else None,
        )
        with self.store.transaction() as tx:
            self._sweep(tx, now)
            tx.put(grant)
            self._audit(
                tx,
                now,
                who,
                "break_glass" if break_glass else "request",
                grant,
                "active" if break_glass else "pending",
                {
                    "duration_s": duration_s,
                    "reason": reason,
                    "approvals_required": grant.approvals_required,
                },
            )
        self._after(tx, "break_glass" if break_glass else "request", who, grant)
        return grant

    def approve(self, who: Identity, grant_id: str, reason: str = "") -> Grant:
        """Record one approval.

        The grant opens when every category has enough distinct approvers.
        """
        now = self.clock()
        refusal: NotAllowed | None = None
        with self.store.transaction() as tx:
            self._sweep(tx, now)
            grant = tx.get(grant_id)
            if grant.status != GrantStatus.PENDING:
                raise Conflict(f"grant {grant_id} is {grant.status}, not pending")
            eligible = tuple(
                c
                for c in grant.categories
                if self.policy.matches(who, self.policy.category(c).approvers)
            )
            if who.name == grant.requester:
                refusal = NotAllowed("you cannot approve your own request")
            elif not eligible:
                refusal = NotAllowed(f"you are not an approver for {', '.join(grant.categories)}")
            elif who.name in grant.approvers:
                raise Conflict(f"you already approved {grant_id}; another approver is needed")
            if refusal is not None:
                # Attempts to self-approve are exactly what an auditor wants to see.
                self._audit(tx, now, who, "approve", grant, "refused", {"why": str(refusal)})
            else:
                decision = Decision(who.name, "approve", now, reason[:MAX_REASON_CHARS], eligible)
                grant = replace(grant, decisions=grant.decisions + (decision,))
                missing = self._missing_approvals(grant)
                if not missing:
                    grant = replace(
                        grant,
                        status=GrantStatus.ACTIVE,
                        activated_at=now,
                        expires_at=now + grant.duration_s,
                    )
                tx.put(grant)
                self._audit(
                    tx,
                    now,
                    who,
                    "approve",
                    grant,
                    grant.status,
                    {"approvals": len(grant.approvers), "missing": missing},
                )
        self._after(tx, None if refusal else "decision", who, grant)
        if refusal is not None:
            raise refusal
        return grant

    def deny(self, who: Identity, grant_id: str, reason: str) -> Grant:
        """Close a pending request; any eligible approver may deny."""
        if not reason or not reason.strip():
            raise GrantError("a reason is required to deny")
        now = self.clock()
        with self.store.transaction() as tx:
            self._sweep(tx, now)
            grant = tx.get(grant_id)
            if grant.status != GrantStatus.PENDING:
                raise Conflict(f"grant {grant_id} is {grant.status}, not pending")
            if who.name == grant.requester or not any(
                self.policy.matches(who, self.policy.category(c).approvers)
                for c in grant.categories
            ):
                raise NotAllowed(
                    "only an approver for this grant may deny it (the requester may revoke it)"
                )
            grant = replace(
                grant,
                status=GrantStatus.DENIED,
                closed_at=now,
                closed_by=who.name,
                close_reason=reason[:MAX_REASON_CHARS],
                decisions=grant.decisions
                + (Decision(who.name, "deny", now, reason[:MAX_REASON_CHARS]),),
            )
            tx.put(grant)
            self._audit(
                tx, now, who, "deny", grant, "denied", {"reason": reason[:MAX_REASON_CHARS]}
            )
        self._after(tx, "decision", who, grant)
        return grant

    def revoke(self, who: Identity, grant_id: str, reason: str = "") -> Grant:
        """End a pending or active grant now: the requester, an approver or an admin may."""
        now = self.clock()
        with self.store.transaction() as tx:
            self._sweep(tx, now)
            grant = tx.get(grant_id)
            if grant.status not in GrantStatus.OPEN:
                raise Conflict(f"grant {grant_id} is already {grant.status}")
            allowed = (
                who.name == grant.requester
                or who.name in grant.approvers
                or any(
                    self.policy.matches(who, self.policy.category(c).approvers)
                    for c in grant.categories
                )
                or self.policy.is_admin(who)
            )
            if not allowed:
                raise NotAllowed(
                    "only the requester, an approver or an admin may revoke this grant"
                )
            grant = replace(
                grant,
                status=GrantStatus.REVOKED,
                closed_at=now,
                closed_by=who.name,
                close_reason=reason[:MAX_REASON_CHARS],
                expires_at=min(grant.expires_at, now),
            )
            tx.put(grant)
            self._audit(
                tx, now, who, "revoke", grant, "revoked", {"reason": reason[:MAX_REASON_CHARS]}
            )
        self._after(tx, "revoke", who, grant)
        return grant

    def sweep(self) -> int:
        """Expire pending and active grants whose time is up; returns how many closed."""
        now = self.clock()
        with self.store.transaction() as tx:
            n = self._sweep(tx, now)
        self._after(tx, None, None, None)
        return n

    def list(
        self, who: Identity, *, mine: bool = False, statuses: tuple[str, ...] | None = None
    ) -> list[Grant]:
        """Grants, newest first (everyone sees every grant: approvers must find pending ones)."""
        now = self.clock()
        with self.store.transaction() as tx:
            self._sweep(tx, now)
            grants = tx.grants(requester=who.name if mine else None, statuses=statuses)
        self._after(tx, None, None, None)
        return grants

    def show(self, who: Identity, grant_id: str) -> Grant:
        """One grant by id."""
        now = self.clock()
        with self.store.transaction() as tx:
            self._sweep(tx, now)
            grant = tx.get(grant_id)
        self._after(tx, None, None, None)
        return grant

    # ------------------------------------------------------------------ reveal

    def reveal(
        self,
        who: Identity,
        reader: RecordReader | Callable[[], RecordReader],
        *,
        trace: str | None = None,
        ref: str | None = None,
        categories: Sequence[str] | None = None,
        lines: Iterable[str] | None = None,
    ) -> RevealResult:
        """Check the caller's active grants, write the audit entry, then fetch and rehydrate.

        Refusals (no grant, category not granted, conditions not met) are audited and raise
        :class:`RevealRefused`. The audit entry is written *before* the vault is read, so a
        reveal that cannot be recorded does not happen.
        """
        if (trace is None) == (ref is None):
            raise GrantError("reveal needs exactly one of a trace id or a ref")
        if trace is not None and not TRACE_RE.match(trace):
            raise GrantError("invalid trace id")
        if ref is not None and not REF_RE.match(ref):
            raise GrantError("invalid ref (8 characters a-z, 2-7)")
        wanted = self._validate_categories(categories) if categories else None
        now = self.clock()
        target = {"traces": [trace] if trace else [], "refs": [ref] if ref else []}
        with self.store.transaction() as tx:
            self._sweep(tx, now)
            held = [
                g
                for g in tx.grants(requester=who.name, statuses=(GrantStatus.ACTIVE,))
                if g.is_active(now)
                and (g.covers_trace(trace) if trace else g.covers_ref(ref or ""))
            ]
            granted: dict[str, list[Grant]] = {}
            for g in held:
                for c in g.categories:
                    granted.setdefault(c, []).append(g)
            why: str | None = None
            levels: dict[str, str] = {}
            if not held:
                why = f"no active grant for {'trace ' + trace if trace else 'ref ' + (ref or '')}"
            elif wanted and (outside := [c for c in wanted if c not in granted]):
                why = f"category not granted: {', '.join(outside)}"
            else:
                reasons = []
                for c in wanted or tuple(granted):
                    cp = self.policy.category(c)
                    bg_only = all(g.break_glass for g in granted[c])
                    cond = cp.conditions
                    if bg_only:  # break-glass is for when the window is wrong; networks still bind
                        cond = replace(cond, weekdays=frozenset(range(7)), hours=())
                    problem = cond.check(now, who.address)
                    if problem:
                        reasons.append(f"{c}: {problem}")
                    else:
                        levels[c] = cp.reveal
                if not levels:
                    why = "; ".join(reasons) or "nothing granted"
            used = sorted({g.id for c in levels for g in granted[c]})
            if why is not None:
                self._audit_raw(
                    tx,
                    now,
                    who,
                    "reveal",
                    "refused",
                    {**target, "why": why, "categories": list(wanted or ())},
                )
            else:
                self._audit_raw(
                    tx,
                    now,
                    who,
                    "reveal",
                    "allowed",
                    {
                        **target,
                        "grants": used,
                        "categories": sorted(levels),
                        "levels": dict(sorted(levels.items())),
                        "apply": lines is not None,
                        "break_glass": any(g.break_glass for c in levels for g in granted[c]),
                    },
                )
        self._after(tx, "reveal_refused" if why else None, who, None)
        if why is not None:
            raise RevealRefused(f"reveal refused: {why}")

        # A factory lets callers open the private key only once the reveal is allowed.
        rdr: RecordReader = reader if hasattr(reader, "records_for_trace") else reader()  # type: ignore[assignment]
        records: Sequence[VaultRecordLike] = (
            rdr.records_for_trace(trace) if trace else rdr.records_for_ref(ref or "")
        )
        only_refs = frozenset({ref}) if ref else None
        if lines is not None:
            out, revealed, withheld = rehydrate_lines(lines, records, levels, only_refs)
            return RevealResult(
                tuple(used), tuple(sorted(levels)), (), tuple(out), revealed, withheld
            )
        recs = rehydrate_records(records, levels, only_refs)
        return RevealResult(
            tuple(used),
            tuple(sorted(levels)),
            tuple(recs),
            None,
            sum(len(r.values) for r in recs),
            sum(r.withheld for r in recs),
        )

    # ------------------------------------------------------------------ audit

    def audit_tail(self, n: int = 20) -> builtins.list[AuditEntry]:
        """The last ``n`` audit entries, oldest first."""
        return self.store.audit_entries(last=n)

    def verify(self) -> VerifyResult:
        """Check the audit hash chain."""
        return self.store.verify()

    # ------------------------------------------------------------------ internals

    def _validate_categories(self, categories: Iterable[str]) -> tuple[str, ...]:
        cats: list[str] = []
        for c in categories:
            if not isinstance(c, str) or c not in CATEGORIES:
                raise GrantError(
                    f"unknown category {str(c)[:20]!r} (expected {', '.join(CATEGORIES)})"
                )
            if c not in cats:
                cats.append(c)
        if not cats:
            raise GrantError("at least one category is required")
        return tuple(cats)

    def _validate_request(
        self,
        who: Identity,
        traces: Sequence[str],
        refs: Sequence[str],
        categories: Sequence[str],
        reason: str,
    ) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
        if not USER_RE.match(who.name):
            raise GrantError("invalid user name")
        if not isinstance(reason, str) or not reason.strip():
            raise GrantError("a reason is required (e.g. the incident ticket)")
        if len(reason) > MAX_REASON_CHARS:
            raise GrantError(f"reason is longer than {MAX_REASON_CHARS} characters")
        t = tuple(dict.fromkeys(traces))
        r = tuple(dict.fromkeys(refs))
        if not t and not r:
            raise GrantError("name at least one trace id or ref")
        if len(t) + len(r) > MAX_TARGETS:
            raise GrantError(f"at most {MAX_TARGETS} traces and refs per grant")
        for x in t:
            if not isinstance(x, str) or not TRACE_RE.match(x):
                raise GrantError("invalid trace id (1-128 characters: letters, digits, . _ : -)")
        for x in r:
            if not isinstance(x, str) or not REF_RE.match(x):
                raise GrantError("invalid ref (8 characters a-z, 2-7)")
        return t, r, self._validate_categories(categories)

    def _refuse_request(
        self,
        who: Identity,
        traces: tuple[str, ...],
        refs: tuple[str, ...],
        cats: tuple[str, ...],
        now: float,
        why: str,
        break_glass: bool,
    ) -> None:
        with self.store.transaction() as tx:
            self._audit_raw(
                tx,
                now,
                who,
                "break_glass" if break_glass else "request",
                "refused",
                {"traces": list(traces), "refs": list(refs), "categories": list(cats), "why": why},
            )
        self._after(tx, None, who, None)
        raise NotAllowed(why)

    def _missing_approvals(self, grant: Grant) -> dict[str, int]:
        """Approvals still needed per category (distinct people eligible for that category)."""
        missing = {}
        for c in grant.categories:
            cp = self.policy.category(c)
            have = len(
                {
                    d.actor
                    for d in grant.decisions
                    if d.verdict == "approve" and c in d.categories and d.actor != grant.requester
                }
            )
            if have < cp.approvals_required:
                missing[c] = cp.approvals_required - have
        return missing

    def _sweep(self, tx: Transaction, now: float) -> int:
        due = tx.open_grants_due(now)
        for g in due:
            closed = replace(
                g,
                status=GrantStatus.EXPIRED,
                closed_at=g.expires_at,
                closed_by=None,
                close_reason="pending request not approved in time"
                if g.status == GrantStatus.PENDING
                else "duration elapsed",
            )
            tx.put(closed)
            self._audit(tx, now, None, "expire", closed, "expired", {"was": g.status})
        return len(due)

    def _audit(
        self,
        tx: Transaction,
        now: float,
        who: Identity | None,
        action: str,
        grant: Grant | None,
        outcome: str,
        detail: dict[str, Any],
    ) -> AuditEntry:
        base: dict[str, Any] = {}
        if grant is not None:
            base = {
                "grant": grant.id,
                "traces": list(grant.traces),
                "refs": list(grant.refs),
                "categories": list(grant.categories),
                "break_glass": grant.break_glass,
                "requester": grant.requester,
            }
        return self._audit_raw(tx, now, who, action, outcome, {**base, **detail})

    def _audit_raw(
        self,
        tx: Transaction,
        now: float,
        who: Identity | None,
        action: str,
        outcome: str,
        detail: dict[str, Any],
    ) -> AuditEntry:
        """One audit entry; ``detail`` names the grant, traces and categories concerned."""
        body: dict[str, Any] = {
            "time": _iso(now),
            "ts": now,
            "actor": who.name if who else "system",
            "via": who.via if who else "system",
            "action": action,
            "outcome": outcome,
            "grant": None,
            "traces": [],
            "refs": [],
            "categories": [],
            "break_glass": False,
        }
        if who is not None and who.address:
            body["address"] = who.address
        body.update(detail)
        return tx.append_audit(body)

    def _after(
        self, tx: Transaction, event: str | None, who: Identity | None, grant: Grant | None
    ) -> None:
        """After commit: emit audit log events, then notify (never before the state is durable)."""
        for entry in tx.appended:
            audit_logger.info(
                "audit %s",
                json.dumps(entry.to_json(), sort_keys=True),
                extra={"audit": entry.to_json()},
            )
            if entry.body.get("action") == "expire":
                self.notifier.notify(
                    {
                        "event": "expire",
                        "actor": "system",
                        "time": entry.body["time"],
                        "grant": _grant_summary_from_entry(entry),
                    }
                )
            if (
                entry.body.get("action") == "reveal"
                and entry.body.get("outcome") == "refused"
                and event == "reveal_refused"
            ):
                self.notifier.notify(
                    {
                        "event": "reveal_refused",
                        "actor": entry.body["actor"],
                        "time": entry.body["time"],
                        "why": entry.body.get("why", ""),
                        "grant": {
                            "traces": entry.body.get("traces", []),
                            "refs": entry.body.get("refs", []),
                        },
                    }
                )
        tx.appended.clear()
        if event and grant is not None and who is not None:
            self.notifier.notify(
                {
                    "event": event,
                    "actor": who.name,
                    "time": _iso(self.clock()),
                    "grant": _grant_summary(grant),
                }
            )


def _grant_summary(g: Grant) -> dict[str, Any]:
    return {
        "id": g.id,
        "requester": g.requester,
        "traces": list(g.traces),
        "refs": list(g.refs),
        "categories": list(g.categories),
        "reason": g.reason,
        "status": g.status,
        "duration_s": g.duration_s,
        "break_glass": g.break_glass,
        "approvers": list(g.approvers),
        "approvals_required": g.approvals_required,
        "expires_at": _iso(g.expires_at),
    }


def _grant_summary_from_entry(entry: AuditEntry) -> dict[str, Any]:
    b = entry.body
    return {
        "id": b.get("grant"),
        "requester": b.get("requester"),
        "traces": b.get("traces", []),
        "refs": b.get("refs", []),
        "categories": b.get("categories", []),
        "status": "expired",
        "break_glass": b.get("break_glass", False),
    }
