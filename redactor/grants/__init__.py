"""Just-in-time grants and the tamper-evident audit log: policy, lifecycle, reveal, notifications.

Embedded use (what the CLI does without ``REDACTOR_SERVER``)::

    service = open_service(settings)            # $REDACTOR_HOME/grants.db + policy
    g = service.request(Identity("alice"), traces=["4bf9..."], categories=["card"],
                        reason="INC-42", duration_s=1800)
    service.approve(Identity("bob"), g.id)
    result = service.reveal(Identity("alice"), reader, trace="4bf9...")
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from redactor.grants.interface import (
    CATEGORIES,
    AuditEntry,
    Decision,
    Grant,
    GrantError,
    GrantNotFound,
    GrantStatus,
    Identity,
    NotAllowed,
    PolicyError,
    RateLimited,
    RecordReader,
    RevealRefused,
    VerifyResult,
)
from redactor.grants.notify import Notifier, WebhookNotifier
from redactor.grants.policy import (
    Policy,
    default_policy,
    load_policy,
    parse_duration_s,
    parse_policy,
)
from redactor.grants.reveal import RevealedRecord, RevealedValue, RevealResult
from redactor.grants.service import GrantService
from redactor.grants.store import GrantStore

__all__ = [
    "CATEGORIES",
    "AuditEntry",
    "Decision",
    "Grant",
    "GrantError",
    "GrantNotFound",
    "GrantService",
    "GrantStatus",
    "GrantStore",
    "Identity",
    "NotAllowed",
    "Notifier",
    "Policy",
    "PolicyError",
    "RateLimited",
    "RecordReader",
    "RevealRefused",
    "RevealResult",
    "RevealedRecord",
    "RevealedValue",
    "VerifyResult",
    "WebhookNotifier",
    "default_policy",
    "load_policy",
    "open_service",
    "parse_duration_s",
    "parse_policy",
    "policy_path",
    "resolve_policy",
]


def policy_path(home: Path, explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The policy file in use.

    ``explicit`` → ``$REDACTOR_POLICY`` → ``$REDACTOR_HOME/policy.toml`` if present.
    """
    if explicit:
        return Path(explicit)
    if env := os.environ.get("REDACTOR_POLICY"):
        return Path(env)
    candidate = home / "policy.toml"
    return candidate if candidate.exists() else None


def resolve_policy(home: Path, explicit: str | os.PathLike[str] | None = None) -> Policy:
    """Load the policy file if there is one (errors propagate), else the default policy."""
    path = policy_path(home, explicit)
    return load_policy(path) if path is not None else default_policy()


def open_service(
    home: Path,
    *,
    policy: Policy | None = None,
    policy_file: str | None = None,
    clock: Callable[[], float] | None = None,
    notifier: Notifier | None = None,
) -> GrantService:
    """A :class:`GrantService` over ``home/grants.db``.

    With webhook notifications from the policy.
    """
    pol = policy if policy is not None else resolve_policy(home, policy_file)
    if notifier is None and pol.webhooks:
        notifier = WebhookNotifier(pol.webhooks)
    kwargs = {"clock": clock} if clock is not None else {}
    return GrantService(GrantStore(home / "grants.db"), pol, notifier=notifier, **kwargs)
