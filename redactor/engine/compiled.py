"""Compiled stage-2 patterns kept between runs.

The ``regex`` module compiles in Python: all the shipped patterns together take over 100 ms,
and a key-name rule's alone 10 ms or more. Every process pays that on its first dirty
records, and ``scrub`` pays it once per worker. A compiled pattern pickles as the output of
that compiler (the arguments of ``regex``'s C constructor), so loading one takes tens of
microseconds instead of milliseconds.

Each pattern is kept in its own :class:`SealedFiles` file, bound to its source, flags and the
``regex`` version, and written when the pattern is first compiled: the cache fills as lazily
as patterns are compiled. Files are loaded only after their MAC verifies, and unpickled by an
unpickler that can build a ``regex`` pattern and nothing else.
"""

from __future__ import annotations

import io
import pickle
from typing import Any

import regex

from redactor.engine.sealed import SealedFiles

__all__ = ["PatternCache"]

# What a pickled regex pattern names: the C constructor it is rebuilt with.
_CONSTRUCTOR = ("regex._regex", "compile")


class _PatternUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) != _CONSTRUCTOR:
            raise pickle.UnpicklingError(f"not a regex pattern: {module}.{name}")
        return super().find_class(module, name)


class PatternCache:
    """``regex.compile`` with its results kept in ``files`` (kind ``re``)."""

    def __init__(self, files: SealedFiles) -> None:
        self._files = files
        # A pattern that several rules or engines use is loaded once, as regex's own cache
        # would keep it.
        self._loaded: dict[tuple[str, int], regex.Pattern[str]] = {}

    def compile(self, source: str, flags: int) -> regex.Pattern[str]:
        """The compiled pattern: from the cache when it holds one, else compiled and kept."""
        pattern = self._loaded.get((source, flags))
        if pattern is None:
            pattern = self._loaded[(source, flags)] = self._load_or_compile(source, flags)
        return pattern

    def _load_or_compile(self, source: str, flags: int) -> regex.Pattern[str]:
        identity = f"{regex.__version__}\x00{flags}\x00{source}".encode("utf-8", "surrogatepass")
        payload = self._files.load("re", identity)
        if payload is not None:
            pattern = _unpickle(payload, source)
            if pattern is not None:
                return pattern
        pattern = regex.compile(source, flags)
        try:
            payload = pickle.dumps(pattern, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:  # a pattern regex cannot pickle is simply compiled every time
            return pattern
        self._files.store("re", identity, payload)
        return pattern


def _unpickle(payload: bytes, source: str) -> regex.Pattern[str] | None:
    try:
        pattern = _PatternUnpickler(io.BytesIO(payload)).load()
    except Exception:  # made by another regex build, say: compile it instead
        return None
    if not isinstance(pattern, regex.Pattern) or pattern.pattern != source:
        return None
    return pattern
