"""Triggers that would make the regex fallback's stage 1 quadratic on a long line.

Without Hyperscan, stage 1 searches each trigger over the whole value with the standard
library's ``re``, which has no timeout. A trigger whose unbounded run can hold everything
before it (``curl [^\\r\\n]*-b ``) retries that run from every place its prefix repeats: a
100 KB line of "Component " took 11 s against such a trigger, a megabyte minutes, inside a
logging call. :func:`quadratic_run` finds such runs by walking each path through the trigger's
parse tree, noting what every byte before a run must be: a run of unbounded length whose byte
set takes a byte of each is quadratic on that prefix repeated. Bounding the run by what the
rule's pattern allows (``{0,1210}`` for 300 characters) makes the search linear again.

The walk reads ``re``'s parse tree (``re._parser``), which the standard library keeps private;
where it is missing the check is skipped, and the shipped packs are checked by the test suite.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

sre: Any
sre_parse: Any
try:
    sre = importlib.import_module("re._constants")
    sre_parse = importlib.import_module("re._parser")
except ImportError:  # pragma: no cover - a Python without the private modules
    sre = sre_parse = None

# What each byte before a point of the trigger must be, in order: one set of bytes per byte.
_Path = tuple[frozenset[int], ...]
# Paths kept per point: a trigger's alternations multiply them, and the shortest paths are the
# easiest to repeat, so those are the ones kept.
_PATHS_KEPT = 256
_ALL_BYTES = frozenset(range(256))


def quadratic_run(trigger: str) -> str | None:
    """The bytes of the first unbounded run in ``trigger`` that the trigger's own prefix fits
    in (a short description, for an error message), or None when there is none."""
    if sre_parse is None:  # pragma: no cover
        return None
    parsed = sre_parse.parse(trigger.encode(), re.MULTILINE)
    found: list[frozenset[int]] = []
    _walk(parsed, {()}, bool(parsed.state.flags & re.IGNORECASE), found)
    if not found:
        return None
    return _describe(found[0])


def _walk(
    nodes: Any, paths: set[_Path], ignorecase: bool, found: list[frozenset[int]]
) -> set[_Path]:
    """The paths after ``nodes``, given the ``paths`` before them; a run found quadratic is
    added to ``found``."""
    for op, av in nodes:
        one_byte = _byte_set(op, av, ignorecase)
        if one_byte is not None:
            paths = {path + (one_byte,) for path in paths}
        elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT):
            least, most, body = av
            run = _byte_set(body[0][0], body[0][1], ignorecase) if len(body) == 1 else None
            if (
                most == sre.MAXREPEAT
                and run is not None
                and any(path and all(need & run for need in path) for path in paths)
            ):
                found.append(run)
            after_one = _walk(body, paths, ignorecase, found)
            paths = after_one if least >= 1 else paths | after_one
        elif op is sre.SUBPATTERN:
            paths = _walk(av[3], paths, ignorecase or bool(av[1] & re.IGNORECASE), found)
        elif op is sre.BRANCH:
            paths = set().union(*(_walk(alt, paths, ignorecase, found) for alt in av[1]))
        elif op is sre.ATOMIC_GROUP:
            paths = _walk(av, paths, ignorecase, found)
        # anything else (^, $, lookarounds) takes no byte: the paths go on as they are
        if len(paths) > _PATHS_KEPT:
            paths = set(sorted(paths, key=len)[:_PATHS_KEPT])
    return paths


_CATEGORIES = {
    "CATEGORY_DIGIT": rb"\d",
    "CATEGORY_NOT_DIGIT": rb"\D",
    "CATEGORY_SPACE": rb"\s",
    "CATEGORY_NOT_SPACE": rb"\S",
    "CATEGORY_WORD": rb"\w",
    "CATEGORY_NOT_WORD": rb"\W",
}


def _byte_set(op: Any, av: Any, ignorecase: bool) -> frozenset[int] | None:
    """The bytes a node of one byte takes, or None for any other node."""
    if op is sre.LITERAL:
        return _with_case({av}, ignorecase)
    if op is sre.NOT_LITERAL:
        return _ALL_BYTES - _with_case({av}, ignorecase)
    if op is sre.ANY:
        return _ALL_BYTES - {10}
    if op is not sre.IN:
        return None
    negated, taken = False, set()
    for item, value in av:
        if item is sre.NEGATE:
            negated = True
        elif item is sre.LITERAL:
            taken.add(value)
        elif item is sre.RANGE:
            taken.update(range(value[0], value[1] + 1))
        elif item is sre.CATEGORY:
            category = re.compile(_CATEGORIES[str(value)])
            taken.update(b for b in range(256) if category.fullmatch(bytes([b])))
    members = _with_case(taken, ignorecase)
    return _ALL_BYTES - members if negated else members


def _with_case(values: set[int], ignorecase: bool) -> frozenset[int]:
    if ignorecase:
        values |= {ord(chr(b).swapcase()) for b in values if chr(b).isascii() and chr(b).isalpha()}
    return frozenset(values)


def _describe(run: frozenset[int]) -> str:
    if len(run) > 128:
        missing = "".join(_shown(b) for b in sorted(_ALL_BYTES - run))
        return f"[^{missing}]"
    return "[" + "".join(_shown(b) for b in sorted(run))[:40] + "]"


def _shown(byte: int) -> str:
    return chr(byte) if 0x21 <= byte < 0x7F else f"\\x{byte:02x}"
