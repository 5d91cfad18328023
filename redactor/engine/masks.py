"""Placeholders and refs: how a masked value is written, and how it is found again.

A placeholder is ``[<label>:<mask>#<ref>]`` or ``[<label>#<ref>]``. Its alphabet avoids
quotes, backslashes, whitespace, ``&``, ``=``, ``,`` and ``;`` so it stays valid inside JSON
strings, logfmt values, query strings and header lists. ``reveal --apply`` finds it again with
:data:`PLACEHOLDER_RE`.
"""

from __future__ import annotations

import hashlib
import re

from redactor.engine.validators import digits_of

REF_LENGTH = 8

#: Finds placeholders in redacted text. Groups: label, mask (may be None), ref.
# The standard re module: simple enough for it, and compiling it with regex at import costs
# milliseconds of every start-up.
PLACEHOLDER_RE = re.compile(
    r"\[(?P<label>[a-z][a-z0-9_]{0,39})(?::(?P<mask>[*0-9a-zA-Z.@_+\-]{1,64}))?#(?P<ref>[a-z2-7]{8})\]"
)

FAILED_PLACEHOLDER = "[redaction-failed]"


# Lowercase RFC 4648 base32 of every 10-bit value: a 40-bit ref is four lookups.
_B32 = "abcdefghijklmnopqrstuvwxyz234567"
_B32_PAIRS = tuple(a + b for a in _B32 for b in _B32)


def make_ref(ref_key: bytes, trace_id: str | None, label: str, value: str) -> str:
    """The keyed, deterministic ref of a value: equal inside a trace, unlinkable across traces.

    40 bits of HMAC-SHA256 of ``trace id \x1f label \x1f value`` in lowercase RFC 4648
    base32. The key makes a ref of a 9-digit SSN impossible to brute-force, unlike an unkeyed
    hash. The engine keeps one :class:`RefMaker` per key.
    """
    return RefMaker(ref_key)(trace_id, label, value)


class RefMaker:
    """:func:`make_ref` under one key: HMAC-SHA256 (RFC 2104) over two SHA-256 states keyed
    once, each copied per ref. Four C calls on hash objects cost a third of what the
    ``hmac`` module's Python-level copy and digest do, for the same MAC."""

    __slots__ = ("_inner", "_outer")

    def __init__(self, ref_key: bytes) -> None:
        block = 64  # SHA-256's block size
        key = hashlib.sha256(ref_key).digest() if len(ref_key) > block else ref_key
        key = key.ljust(block, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))

    def __call__(self, trace_id: str | None, label: str, value: str) -> str:
        inner = self._inner.copy()
        inner.update(f"{trace_id or ''}\x1f{label}\x1f{value}".encode("utf-8", "surrogatepass"))
        outer = self._outer.copy()
        outer.update(inner.digest())
        n = int.from_bytes(outer.digest()[:5], "big")
        pairs = _B32_PAIRS
        return pairs[n >> 30] + pairs[(n >> 20) & 1023] + pairs[(n >> 10) & 1023] + pairs[n & 1023]


def _last4_digits(value: str) -> str:
    return digits_of(value)[-4:]


def mask_text(style: str, value: str) -> str:
    """The visible part of a placeholder for a mask style ("" means label only)."""
    if style == "card":
        return "****-****-****-" + _last4_digits(value)
    if style == "ssn":
        return "***-**-" + _last4_digits(value)
    if style == "last4":
        return "****" + _last4_digits(value)
    if style == "email":
        local, _, domain = value.partition("@")
        return (local[:1] + "***@" + domain) if domain else ""
    return ""


def placeholder(label: str, mask: str, ref: str) -> str:
    return f"[{label}:{mask}#{ref}]" if mask else f"[{label}#{ref}]"


MASK_STYLES = frozenset({"card", "ssn", "last4", "email", "hidden"})
