"""Put originals back into redacted text — only for the refs, categories and level a grant allows.

Placeholders are found with :data:`redactor.engine.masks.PLACEHOLDER_RE`; a placeholder whose
ref is not among the granted originals (another trace, another category) is left as it was.
The types here hold plaintext, so none of them prints it in ``repr``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from redactor.engine.masks import PLACEHOLDER_RE, placeholder
from redactor.grants.interface import StoredOriginalLike, VaultRecordLike


@dataclass(frozen=True, slots=True)
class RevealedValue:
    """One restored value and what it was (the value itself is hidden from ``repr``)."""

    ref: str
    category: str
    label: str
    path: str
    level: str  # full | last4
    value: str = field(repr=False)
    in_text: bool = True  # False: from another field of the record, with no placeholder in its text

    def to_json(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "category": self.category,
            "label": self.label,
            "path": self.path,
            "level": self.level,
            "value": self.value,
            "in_text": self.in_text,
        }


@dataclass(frozen=True, slots=True)
class RevealedRecord:
    """A vault record with the granted originals restored in ``text``."""

    trace_id: str | None
    record_id: str
    source: str
    timestamp: float
    text: str = field(repr=False)
    values: tuple[RevealedValue, ...] = ()
    withheld: int = 0  # placeholders left masked (category or ref not granted)

    def to_json(self) -> dict[str, Any]:
        return {
            "trace_id": self.trace_id,
            "record_id": self.record_id,
            "source": self.source,
            "timestamp": self.timestamp,
            "text": self.text,
            "values": [v.to_json() for v in self.values],
            "withheld": self.withheld,
        }


@dataclass(frozen=True, slots=True)
class RevealResult:
    """What a reveal returns.

    The records (or the rehydrated ``--apply`` lines) and the grants used.
    """

    grant_ids: tuple[str, ...]
    categories: tuple[str, ...]
    records: tuple[RevealedRecord, ...] = ()
    lines: tuple[str, ...] | None = field(default=None, repr=False)
    revealed: int = 0
    withheld: int = 0

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "grants": list(self.grant_ids),
            "categories": list(self.categories),
            "records": [r.to_json() for r in self.records],
            "revealed": self.revealed,
            "withheld": self.withheld,
        }
        if self.lines is not None:
            out["lines"] = list(self.lines)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RevealResult:
        records = tuple(
            RevealedRecord(
                trace_id=r.get("trace_id"),
                record_id=str(r["record_id"]),
                source=str(r["source"]),
                timestamp=float(r["timestamp"]),
                text=str(r["text"]),
                values=tuple(RevealedValue(**v) for v in r.get("values", ())),
                withheld=int(r.get("withheld", 0)),
            )
            for r in data.get("records", ())
        )
        lines = data.get("lines")
        return cls(
            tuple(data["grants"]),
            tuple(data["categories"]),
            records,
            tuple(lines) if lines is not None else None,
            int(data.get("revealed", 0)),
            int(data.get("withheld", 0)),
        )


def partial(value: str, level: str) -> str:
    """The shown form of ``value`` at a reveal level."""
    if level == "full":
        return value
    if level == "last4":
        digits = [c for c in value if c.isdigit()]
        # Cards and SSNs show their last four digits; secrets their last four characters.
        tail = "".join(digits[-4:]) if len(digits) >= 4 else value.strip()[-4:]
        return "****" + tail
    raise ValueError(f"unknown reveal level {level!r}")


class Rehydrator:
    """Replaces placeholders whose ref is in ``originals`` and whose category is in ``levels``."""

    def __init__(
        self,
        originals: Iterable[StoredOriginalLike],
        levels: Mapping[str, str],
        only_refs: frozenset[str] | None = None,
    ) -> None:
        self._by_ref: dict[str, StoredOriginalLike] = {}
        for o in originals:
            if o.category in levels and (only_refs is None or o.ref in only_refs):
                self._by_ref.setdefault(o.ref, o)
        self._levels = dict(levels)

    def apply(self, text: str) -> tuple[str, list[RevealedValue], int]:
        """``(new_text, values restored, placeholders withheld)``."""
        values: list[RevealedValue] = []
        withheld = 0

        def swap(m: Any) -> str:
            nonlocal withheld
            original = self._by_ref.get(m.group("ref"))
            if original is None:
                withheld += 1
                return str(m.group(0))
            level = self._levels[original.category]
            shown = partial(original.original, level)
            values.append(
                RevealedValue(
                    original.ref, original.category, original.label, original.path, level, shown
                )
            )
            if level == "full":
                return shown
            return placeholder(m.group("label"), shown, original.ref)

        return PLACEHOLDER_RE.sub(swap, text), values, withheld


def rehydrate_records(
    records: Sequence[VaultRecordLike],
    levels: Mapping[str, str],
    only_refs: frozenset[str] | None = None,
) -> list[RevealedRecord]:
    """Each record's ``redacted`` text with its own granted originals restored."""
    out = []
    for rec in records:
        text, values, withheld = Rehydrator(rec.originals, levels, only_refs).apply(rec.redacted)
        # Originals from other fields of the record (extras, attributes) have no placeholder in
        # ``redacted``; list them with their path so the reveal is complete.
        seen = {v.ref for v in values}
        for o in rec.originals:
            if (
                o.ref in seen
                or o.category not in levels
                or (only_refs is not None and o.ref not in only_refs)
            ):
                continue
            seen.add(o.ref)
            values.append(
                RevealedValue(
                    o.ref,
                    o.category,
                    o.label,
                    o.path,
                    levels[o.category],
                    partial(o.original, levels[o.category]),
                    in_text=False,
                )
            )
        out.append(
            RevealedRecord(
                rec.trace_id,
                rec.record_id,
                rec.source,
                rec.timestamp,
                text,
                tuple(values),
                withheld,
            )
        )
    return out


def rehydrate_lines(
    lines: Iterable[str],
    records: Sequence[VaultRecordLike],
    levels: Mapping[str, str],
    only_refs: frozenset[str] | None = None,
) -> tuple[list[str], int, int]:
    """Lines exported from a log backend, with placeholders of the granted records restored."""
    originals = [o for rec in records for o in rec.originals]
    hydrator = Rehydrator(originals, levels, only_refs)
    out, revealed, withheld = [], 0, 0
    for line in lines:
        text, values, held = hydrator.apply(line)
        out.append(text)
        revealed += len(values)
        withheld += held
    return out, revealed, withheld
