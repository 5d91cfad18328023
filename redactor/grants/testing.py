"""Fakes for testing code that reveals: an in-memory vault reader and a record builder.

The records are the vault's own :class:`~redactor.vault.interface.VaultRecord` and
:class:`~redactor.vault.interface.StoredOriginal`, so a fake reader returns exactly what the
real one does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from redactor.engine.masks import make_ref, mask_text, placeholder
from redactor.vault.interface import StoredOriginal, VaultRecord
from redactor.vault.reader import VaultReader

_MASK_STYLE = {"card": "card", "ssn": "ssn"}


@dataclass(frozen=True, slots=True)
class Secret:
    """One value to mask in :func:`make_record`: where ``{n}`` goes, what it is."""

    category: str
    label: str
    value: str


def make_record(ref_key: bytes, trace_id: str | None, template: str, secrets: Sequence[Secret],
                record_id: str = "r1", source: str = "test", timestamp: float = 0.0) -> VaultRecord:
    """A record whose ``template`` has ``{0}``, ``{1}``… replaced by placeholders of ``secrets``."""
    masks, originals = [], []
    for s in secrets:
        ref = make_ref(ref_key, trace_id, s.label, s.value)
        masks.append(
            placeholder(s.label, mask_text(_MASK_STYLE.get(s.category, "hidden"), s.value), ref)
        )
        originals.append(
            StoredOriginal(
                ref=ref,
                rule_id=f"test.{s.label}",
                category=s.category,
                label=s.label,
                path="",
                original=s.value,
            )
        )
    return VaultRecord(
        trace_id=trace_id,
        record_id=record_id,
        source=source,
        timestamp=timestamp,
        redacted=template.format(*masks),
        originals=tuple(originals),
    )


class FakeVaultReader(VaultReader):
    """An in-memory :class:`VaultReader` (no backend, no keys); counts lookups for assertions."""

    def __init__(self, records: Sequence[VaultRecord] = ()) -> None:  # noqa: D107 - no backend on purpose
        self.records = list(records)
        self.calls = 0

    def add(self, record: VaultRecord) -> None:
        self.records.append(record)

    def records_for_trace(self, trace_id: str) -> list[VaultRecord]:
        self.calls += 1
        return [r for r in self.records if r.trace_id == trace_id]

    def records_for_ref(self, ref: str) -> list[VaultRecord]:
        self.calls += 1
        return [r for r in self.records if any(o.ref == ref for o in r.originals)]

    def close(self) -> None:
        """Nothing to release."""
