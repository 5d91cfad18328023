"""Helpers for tests of code that uses redactor, shipped like structlog's ``capture_logs``.

Assertion messages here never contain the values they look for: a failing test must not
print the secret it was checking for.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from redactor.engine.masks import PLACEHOLDER_RE


def find_leaks(output: str | bytes, originals: Iterable[str]) -> list[int]:
    """Indexes of the ``originals`` that occur verbatim in ``output``.

    Placeholders are looked into only for their mask: their label and ref are redactor's own
    words and letters, which can spell a short value ("credential" in ``[credentials#…]``).
    """
    text = output.decode("utf-8", "surrogateescape") if isinstance(output, bytes) else output
    text = PLACEHOLDER_RE.sub(_mask_only, text)
    return [i for i, original in enumerate(originals) if original and original in text]


def _mask_only(placeholder: re.Match[str]) -> str:
    return f"[{placeholder['mask'] or ''}]"


def assert_no_leak(output: str | bytes, originals: Iterable[str], where: str = "output") -> None:
    """Fail if any original occurs in ``output``; the message names indexes, never values."""
    leaked = find_leaks(output, list(originals))
    if leaked:
        raise AssertionError(f"{len(leaked)} original(s) leaked into {where}: indexes {leaked}")
