"""The grant subsystem's data types and errors: who asks, what a grant is, what an audit entry is.

Everything here is frozen so grants and audit entries can cross threads (broker workers,
the notifier thread) without copying. Nothing here holds a revealed value: reveal results
live in :mod:`redactor.grants.reveal` and are never logged or audited.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from redactor.engine.interface import ConfigError, RedactorError

CATEGORIES: tuple[str, ...] = ("card", "ssn", "secret", "pii")


class GrantError(RedactorError):
    """A grant operation was refused or failed; the message is safe to show the caller."""

    #: HTTP status the broker answers with; the CLI maps every GrantError to exit code 1.
    status = 400


class PolicyError(ConfigError):
    """The policy file is malformed; the message names the file and the field."""


class NotAllowed(GrantError):
    """The caller is not allowed to do this under the policy (or is not the right person)."""

    status = 403


class GrantNotFound(GrantError):
    """No grant with that id."""

    status = 404


class RevealRefused(NotAllowed):
    """No active grant covers this reveal; an audit entry has been written."""

    status = 403


class RateLimited(GrantError):
    """Too many reveals for this identity; retry later."""

    status = 429

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass(frozen=True, slots=True)
class Identity:
    """An authenticated caller: a user name plus the groups the token or policy puts them in.

    ``address`` is the caller's network address in broker mode, or ``None`` in embedded
    mode, where the local user is trusted and network conditions treat the caller as local.
    """

    name: str
    groups: frozenset[str] = frozenset()
    via: str = "local"  # local | token | oidc
    address: str | None = None


class GrantStatus:
    """The states of a grant. Plain strings so they serialise as themselves."""

    PENDING = "pending"
    ACTIVE = "active"
    DENIED = "denied"
    REVOKED = "revoked"
    EXPIRED = "expired"

    OPEN = frozenset({PENDING, ACTIVE})


@dataclass(frozen=True, slots=True)
class Decision:
    """One approval or denial by one person."""

    actor: str
    verdict: str  # approve | deny
    at: float
    reason: str = ""
    #: categories this person was eligible to approve at decision time (token groups may lapse)
    categories: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Grant:
    """A request to see the originals of some traces/refs, and its current state.

    ``expires_at`` is the end of the pending window while pending, the end of the access
    window once active, and stays as it was once the grant is closed.
    """

    id: str
    requester: str
    traces: tuple[str, ...]
    refs: tuple[str, ...]
    categories: tuple[str, ...]
    reason: str
    duration_s: int
    status: str
    created_at: float
    expires_at: float
    approvals_required: int
    decisions: tuple[Decision, ...] = ()
    break_glass: bool = False
    activated_at: float | None = None
    closed_at: float | None = None
    closed_by: str | None = None
    close_reason: str = ""

    @property
    def approvers(self) -> tuple[str, ...]:
        """Distinct people who approved, in order."""
        seen: list[str] = []
        for d in self.decisions:
            if d.verdict == "approve" and d.actor not in seen:
                seen.append(d.actor)
        return tuple(seen)

    def is_active(self, now: float) -> bool:
        """Open for reveals at ``now``."""
        return self.status == GrantStatus.ACTIVE and now < self.expires_at

    def covers_trace(self, trace_id: str) -> bool:
        return trace_id in self.traces

    def covers_ref(self, ref: str) -> bool:
        return ref in self.refs

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (the broker's and ``--json``'s representation)."""
        return {
            "id": self.id,
            "requester": self.requester,
            "traces": list(self.traces),
            "refs": list(self.refs),
            "categories": list(self.categories),
            "reason": self.reason,
            "duration_s": self.duration_s,
            "status": self.status,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "approvals_required": self.approvals_required,
            "decisions": [
                {"actor": d.actor, "verdict": d.verdict, "at": d.at, "reason": d.reason,
                 "categories": list(d.categories)}
                for d in self.decisions
            ],
            "break_glass": self.break_glass,
            "activated_at": self.activated_at,
            "closed_at": self.closed_at,
            "closed_by": self.closed_by,
            "close_reason": self.close_reason,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Grant:
        """Inverse of :meth:`to_json` (raises ``KeyError``/``TypeError`` on a bad document)."""
        return cls(
            id=str(data["id"]),
            requester=str(data["requester"]),
            traces=tuple(str(t) for t in data["traces"]),
            refs=tuple(str(r) for r in data["refs"]),
            categories=tuple(str(c) for c in data["categories"]),
            reason=str(data["reason"]),
            duration_s=int(data["duration_s"]),
            status=str(data["status"]),
            created_at=float(data["created_at"]),
            expires_at=float(data["expires_at"]),
            approvals_required=int(data["approvals_required"]),
            decisions=tuple(
                Decision(
                    str(d["actor"]),
                    str(d["verdict"]),
                    float(d["at"]),
                    str(d.get("reason", "")),
                    tuple(str(c) for c in d.get("categories", ())),
                )
                for d in data.get("decisions", ())
            ),
            break_glass=bool(data.get("break_glass", False)),
            activated_at=data.get("activated_at"),
            closed_at=data.get("closed_at"),
            closed_by=data.get("closed_by"),
            close_reason=str(data.get("close_reason") or ""),
        )


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One link of the audit chain. ``body`` is the canonical JSON the hash covers."""

    seq: int
    prev_hash: str
    hash: str
    body: dict[str, Any] = field(hash=False)

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "prev_hash": self.prev_hash, "hash": self.hash, **self.body}


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """Outcome of checking the audit chain: ``ok``, entries checked, head, first broken link."""

    ok: bool
    entries: int
    head: str
    broken_seq: int | None = None
    problem: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "head": self.head,
            "broken_seq": self.broken_seq,
            "problem": self.problem,
        }


# --- What reveal needs from the vault. Structural, so the grant code does not import the
# --- vault (and its key handling) at all; the CLI and broker wire ``redactor.vault`` in.


class StoredOriginalLike(Protocol):
    """The shape of ``redactor.vault.StoredOriginal``."""

    @property
    def ref(self) -> str: ...
    @property
    def rule_id(self) -> str: ...
    @property
    def category(self) -> str: ...
    @property
    def label(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def original(self) -> str: ...


class VaultRecordLike(Protocol):
    """The shape of ``redactor.vault.VaultRecord``."""

    @property
    def trace_id(self) -> str | None: ...
    @property
    def record_id(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def timestamp(self) -> float: ...
    @property
    def redacted(self) -> str: ...
    @property
    def originals(self) -> Sequence[StoredOriginalLike]: ...


class RecordReader(Protocol):
    """The shape of ``redactor.vault.VaultReader`` that reveal uses."""

    def records_for_trace(self, trace_id: str) -> Sequence[VaultRecordLike]: ...
    def records_for_ref(self, ref: str) -> Sequence[VaultRecordLike]: ...
