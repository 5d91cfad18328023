"""The reading side: fetch sealed entries by trace or ref and open them with the private keys.

Every blob is authenticated before anything in it is used. A blob found under a trace must be
bound to that trace; one found for a ref must list that ref in its authenticated header (a blob
that does not is skipped for that ref: the Redis ref index points at whole traces). Anything
that fails raises a :class:`~redactor.vault.interface.SealError`; nothing half-opened is returned.
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any

from redactor.vault.interface import SealError, StoredOriginal, VaultBackend, VaultRecord
from redactor.vault.keys import KeyRing
from redactor.vault.sealing import SealHeader, Unsealer, loads_payload, parse_header


class VaultReader:
    """Opens vault entries; needs the vault's private key(s).

    Closes ``backend`` on :meth:`close`.
    """

    def __init__(self, backend: VaultBackend, keyring: KeyRing) -> None:
        self._backend = backend
        self._unsealer = Unsealer(keyring)

    def records_for_trace(self, trace_id: str) -> list[VaultRecord]:
        """Every unexpired record of ``trace_id``, oldest first."""
        if not trace_id:
            raise ValueError("trace_id must be a non-empty string")
        now = time.time()
        records: list[VaultRecord] = []
        seen: set[str] = set()
        for blob in self._backend.blobs_for_trace(trace_id):
            header, payload = self._unsealer.open(blob)
            if header.trace_id != trace_id:
                raise SealError("a blob stored under this trace is bound to another trace")
            if header.entry_id in seen or header.expired(now):
                continue
            seen.add(header.entry_id)
            records.extend(_decode(header, payload))
        records.sort(key=lambda r: (r.timestamp, r.record_id))
        return records

    def records_for_ref(self, ref: str) -> list[VaultRecord]:
        """Every unexpired record that has an original with ``ref`` (others are not returned)."""
        now = time.time()
        records: list[VaultRecord] = []
        seen: set[str] = set()
        for blob in self._backend.blobs_for_ref(ref):
            # The clear header is checked only to skip entries cheaply; the decision to return
            # anything is taken after authentication, on the authenticated header.
            if ref not in parse_header(blob)[0].refs:
                continue
            header, payload = self._unsealer.open(blob)
            if ref not in header.refs or header.entry_id in seen or header.expired(now):
                continue
            seen.add(header.entry_id)
            records.extend(
                r for r in _decode(header, payload) if any(o.ref == ref for o in r.originals)
            )
        records.sort(key=lambda r: (r.timestamp, r.record_id))
        return records

    def close(self) -> None:
        """Close the backend."""
        self._backend.close()

    def __enter__(self) -> VaultReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _decode(header: SealHeader, payload: bytes) -> list[VaultRecord]:
    """Records of an authenticated payload. Record ids are ``<entry id>-<index>``, so they are
    bound to the blob through the entry id in the associated data."""
    try:
        rows: Any = loads_payload(payload)
        if not isinstance(rows, list) or len(rows) != header.count:
            raise SealError("sealed payload does not match its header")
        records = []
        allowed = set(header.refs)
        for index, (timestamp, source, redacted, found) in enumerate(rows):
            originals = tuple(
                StoredOriginal(
                    ref=str(ref),
                    rule_id=str(rule_id),
                    category=str(category),
                    label=str(label),
                    path=str(path),
                    original=str(original),
                )
                for ref, rule_id, category, label, path, original in found
            )
            if any(o.ref not in allowed for o in originals):
                raise SealError("sealed payload holds a ref its header does not bind")
            records.append(
                VaultRecord(
                    trace_id=header.trace_id,
                    record_id=f"{header.entry_id}-{index}",
                    source=str(source),
                    timestamp=float(timestamp),
                    redacted=str(redacted),
                    originals=originals,
                )
            )
        return records
    except SealError:
        raise
    except (ValueError, TypeError):
        # Authenticated but unreadable: written by an incompatible version. Say so without
        # echoing the payload, which holds originals.
        raise SealError("sealed payload has an unknown layout") from None
