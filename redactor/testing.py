"""Helpers for tests of code that uses redactor, shipped like structlog's ``capture_logs``.

Assertion messages here never contain the values they look for: a failing test must not
print the secret it was checking for.
"""

from __future__ import annotations

from collections.abc import Iterable


def find_leaks(output: str | bytes, originals: Iterable[str]) -> list[int]:
    """Indexes of the ``originals`` that occur verbatim in ``output``."""
    text = output.decode("utf-8", "surrogateescape") if isinstance(output, bytes) else output
    return [i for i, original in enumerate(originals) if original and original in text]


def assert_no_leak(output: str | bytes, originals: Iterable[str], where: str = "output") -> None:
    """Fail if any original occurs in ``output``; the message names indexes, never values."""
    leaked = find_leaks(output, list(originals))
    if leaked:
        raise AssertionError(f"{len(leaked)} original(s) leaked into {where}: indexes {leaked}")
