"""The vault's types: what a backend stores, what a reader returns, and the vault's errors.

A backend only ever sees :class:`SealedEntry` objects: ciphertext plus the few clear fields it
needs to index and expire them (trace id, refs, expiry). Plaintext exists only on the writing
side before sealing and on the reading side after opening, in :class:`StoredOriginal`, whose
``repr`` hides it.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import ClassVar

from redactor.engine.interface import ConfigError, RedactorError


class VaultError(RedactorError):
    """Base class of every error the vault raises on purpose."""


class VaultUnavailable(VaultError):
    """The backend cannot be reached or refused the operation (network, disk, cluster down)."""


class VaultConfigError(VaultError, ConfigError):
    """A vault URL, key file or writer setting is missing or invalid (raised at construction)."""


class SealError(VaultError):
    """A blob cannot be opened: wrong key, tampered bytes, or moved to another trace or ref."""


class UnknownKeyError(SealError):
    """A blob names a key id whose private key is not loaded (never issued here, or retired)."""


@dataclass(frozen=True, slots=True)
class StoredOriginal:
    """One original value recovered from the vault, with where and why it was masked."""

    ref: str
    rule_id: str
    category: str
    label: str
    path: str
    original: str = field(repr=False)

    def __str__(self) -> str:
        return (
            f"StoredOriginal({self.label}#{self.ref} rule={self.rule_id} "
            f"at {self.path or '<value>'})"
        )


@dataclass(frozen=True, slots=True)
class VaultRecord:
    """One redacted record as stored: its redacted form and the originals of its refs."""

    trace_id: str | None
    record_id: str
    source: str
    timestamp: float
    redacted: str
    originals: tuple[StoredOriginal, ...]


@dataclass(frozen=True, slots=True)
class SealedEntry:
    """What a backend stores: one sealed blob and the clear fields needed to index and expire it.

    An entry holds the records of one trace from one writer batch (or a single record without a
    trace id). ``refs`` are the refs of every original inside it; they are bound into the blob's
    associated data, so an index that points a ref at the wrong entry cannot make it open.
    """

    entry_id: str
    trace_id: str | None
    refs: tuple[str, ...]
    expires_at: float  # Unix time, seconds
    blob: bytes = field(repr=False)


class VaultBackend(abc.ABC):
    """Where sealed entries live. Implementations must expire entries at ``expires_at``.

    Backends never see plaintext and never open blobs; they index by trace id and by ref.
    Every method may raise :class:`VaultUnavailable`; none may block forever.
    """

    #: URL schemes this backend is selected by (``sqlite``, ``redis``, ...).
    schemes: ClassVar[tuple[str, ...]] = ()

    @abc.abstractmethod
    def put(self, entries: Sequence[SealedEntry]) -> None:
        """Store ``entries`` (idempotent: writing the same entry twice stores it once)."""

    @abc.abstractmethod
    def blobs_for_trace(self, trace_id: str) -> list[bytes]:
        """The unexpired blobs stored under ``trace_id``."""

    @abc.abstractmethod
    def blobs_for_ref(self, ref: str) -> list[bytes]:
        """Unexpired blobs that may contain ``ref`` (a superset: readers check each blob's refs)."""

    def close(self) -> None:  # noqa: B027 - optional hook; a backend with nothing to release skips it
        """Release connections and files. Safe to call twice."""

    def __enter__(self) -> VaultBackend:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
