"""One interface for the CLI, two ways to reach grants: the local store, or the broker over HTTP.

:class:`EmbeddedClient` trusts the local user's claimed name (``--as`` / ``REDACTOR_USER``) and
opens ``$REDACTOR_HOME`` directly — including the vault's private key on reveal. The broker's
client (:mod:`redactor.broker.client`) sends a bearer token instead and never sees a key.
"""

from __future__ import annotations

import abc
import builtins
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from redactor.grants.interface import Grant, Identity, RecordReader, VerifyResult
from redactor.grants.reveal import RevealResult
from redactor.grants.service import GrantService


class GrantClient(abc.ABC):
    """What the ``grant``, ``reveal`` and ``audit`` commands need, wherever the grants live."""

    @abc.abstractmethod
    def request(self, *, traces: Sequence[str], refs: Sequence[str], categories: Sequence[str],
                reason: str, duration_s: int | None, break_glass: bool) -> Grant:
        """Ask for a grant."""

    @abc.abstractmethod
    def approve(self, grant_id: str, reason: str = "") -> Grant:
        """Approve a pending grant."""

    @abc.abstractmethod
    def deny(self, grant_id: str, reason: str) -> Grant:
        """Deny a pending grant."""

    @abc.abstractmethod
    def revoke(self, grant_id: str, reason: str = "") -> Grant:
        """End a pending or active grant now."""

    @abc.abstractmethod
    def list(self, *, mine: bool = False, statuses: tuple[str, ...] | None = None) -> list[Grant]:
        """Grants, newest first."""

    @abc.abstractmethod
    def show(self, grant_id: str) -> Grant:
        """One grant."""

    @abc.abstractmethod
    def reveal(self, *, trace: str | None, ref: str | None, categories: Sequence[str] | None,
               lines: Iterable[str] | None) -> RevealResult:
        """Originals of a trace (or ref) the caller holds an active grant for."""

    @abc.abstractmethod
    def audit_tail(self, n: int) -> builtins.list[dict[str, Any]]:
        """The last ``n`` audit entries as JSON dicts, oldest first."""

    @abc.abstractmethod
    def audit_verify(self) -> VerifyResult:
        """Check the audit chain."""

    def close(self) -> None:  # noqa: B027 - optional hook; a client with nothing to release skips it
        """Release resources (flush notifications, close the store)."""


class EmbeddedClient(GrantClient):
    """Grants in the local SQLite store, acting as ``identity``."""

    def __init__(self, service: GrantService, identity: Identity | None,
                 reader_factory: Callable[[], RecordReader]) -> None:
        self.service = service
        self._identity = identity
        self._reader_factory = reader_factory

    @property
    def identity(self) -> Identity:
        if self._identity is None:
            from redactor.grants.interface import GrantError

            raise GrantError("no identity: pass --as NAME or set REDACTOR_USER")
        return self._identity

    def request(self, *, traces: Sequence[str], refs: Sequence[str], categories: Sequence[str],
                reason: str, duration_s: int | None, break_glass: bool) -> Grant:
        return self.service.request(self.identity, traces=traces, refs=refs, categories=categories,
                                    reason=reason, duration_s=duration_s, break_glass=break_glass)

    def approve(self, grant_id: str, reason: str = "") -> Grant:
        return self.service.approve(self.identity, grant_id, reason)

    def deny(self, grant_id: str, reason: str) -> Grant:
        return self.service.deny(self.identity, grant_id, reason)

    def revoke(self, grant_id: str, reason: str = "") -> Grant:
        return self.service.revoke(self.identity, grant_id, reason)

    def list(self, *, mine: bool = False, statuses: tuple[str, ...] | None = None) -> list[Grant]:
        return self.service.list(self.identity if mine else (self._identity or Identity("-")),
                                 mine=mine, statuses=statuses)

    def show(self, grant_id: str) -> Grant:
        return self.service.show(self._identity or Identity("-"), grant_id)

    def reveal(self, *, trace: str | None, ref: str | None, categories: Sequence[str] | None,
               lines: Iterable[str] | None) -> RevealResult:
        opened: list[RecordReader] = []

        def open_reader() -> RecordReader:
            opened.append(self._reader_factory())
            return opened[-1]

        try:
            return self.service.reveal(self.identity, open_reader, trace=trace, ref=ref,
                                       categories=categories, lines=lines)
        finally:
            for reader in opened:
                close = getattr(reader, "close", None)
                if close is not None:
                    close()

    def audit_tail(self, n: int) -> builtins.list[dict[str, Any]]:
        return [e.to_json() for e in self.service.audit_tail(n)]

    def audit_verify(self) -> VerifyResult:
        return self.service.verify()

    def close(self) -> None:
        self.service.notifier.shutdown(timeout_s=5.0)
        self.service.store.close()
