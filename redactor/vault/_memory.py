"""An in-process vault for tests and demos (``memory://``): sealed blobs in a dict, with TTL.

It holds only sealed entries, like every backend, and is lost with the process (a forked child
writes into its own copy).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from redactor.vault.interface import SealedEntry, VaultBackend


class MemoryVault(VaultBackend):
    """Sealed entries in memory; expired entries are dropped on read."""

    schemes = ("memory",)

    def __init__(self) -> None:
        self._entries: dict[str, SealedEntry] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str) -> MemoryVault:
        """A fresh, empty vault (the URL carries nothing)."""
        return cls()

    def put(self, entries: Sequence[SealedEntry]) -> None:
        """Store ``entries``."""
        with self._lock:
            for entry in entries:
                self._entries[entry.entry_id] = entry

    def _live(self) -> list[SealedEntry]:
        now = time.time()
        with self._lock:
            for eid in [eid for eid, e in self._entries.items() if e.expires_at <= now]:
                del self._entries[eid]
            return sorted(self._entries.values(), key=lambda e: e.expires_at)

    def blobs_for_trace(self, trace_id: str) -> list[bytes]:
        """Unexpired blobs of ``trace_id``."""
        return [e.blob for e in self._live() if e.trace_id == trace_id]

    def blobs_for_ref(self, ref: str) -> list[bytes]:
        """Unexpired blobs whose entry lists ``ref``."""
        return [e.blob for e in self._live() if ref in e.refs]

    def raw_entries(self) -> list[SealedEntry]:
        """Everything stored, for tests that tamper with or inspect entries."""
        with self._lock:
            return list(self._entries.values())
