"""Placeholders and refs: how a masked value is written, and how it is found again.

A placeholder is ``[<label>:<mask>#<ref>]`` or ``[<label>#<ref>]``. Its alphabet avoids
quotes, backslashes, whitespace, ``&``, ``=``, ``,`` and ``;`` so it stays valid inside JSON
strings, logfmt values, query strings and header lists. ``reveal --apply`` finds it again with
:data:`PLACEHOLDER_RE`.
"""

from __future__ import annotations

import base64
import hmac

import regex

REF_LENGTH = 8

#: Finds placeholders in redacted text. Groups: label, mask (may be None), ref.
PLACEHOLDER_RE = regex.compile(
    r"\[(?P<label>[a-z][a-z0-9_]{0,39})(?::(?P<mask>[*0-9a-zA-Z.@_+\-]{1,64}))?#(?P<ref>[a-z2-7]{8})\]"
)

FAILED_PLACEHOLDER = "[redaction-failed]"


def make_ref(ref_key: bytes, trace_id: str | None, label: str, value: str) -> str:
    """The keyed, deterministic ref of a value: equal inside a trace, unlinkable across traces.

    40 bits of HMAC-SHA256 in lowercase RFC 4648 base32. The key makes a ref of a 9-digit
    SSN impossible to brute-force, unlike an unkeyed hash.
    """
    message = b"\x1f".join(
        ((trace_id or "").encode(), label.encode(), value.encode("utf-8", "surrogatepass"))
    )
    return base64.b32encode(hmac.digest(ref_key, message, "sha256")[:5]).decode("ascii").lower()


_NON_DIGIT = regex.compile(r"[^0-9]+")


def _last4_digits(value: str) -> str:
    return _NON_DIGIT.sub("", value)[-4:]


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
