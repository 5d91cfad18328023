"""Literals that a trigger's every match holds: the regex fallback's prefilter.

Python's ``re`` tries an alternation of hundreds of triggers, or a case-insensitive list of
key names, branch by branch at every position: 0.9 ms for a 170-byte log line, where Hyperscan
takes a microsecond. Most triggers hold a literal that any match must contain ("requirepass",
one of a key-name rule's names, "@"). :func:`required_literals` finds a set of them from the
trigger's parse tree, so the fallback searches a trigger only where one of its literals occurs
(a C substring search); a trigger with no such literal (a card number's digits) is searched
everywhere, as before. The literals are a necessary condition, never a sufficient one: the
trigger itself still decides.

The walk reads ``re``'s parse tree (``re._parser``, private to the standard library); where
it is missing, no trigger gets literals and every trigger is searched, as before.
"""

from __future__ import annotations

import re
from typing import Any

from redactor.engine.linear import sre, sre_parse  # re's parse tree, or None without it

#: (literal, folded): folded literals are lower-case and looked for in the lower-cased text (a
#: trigger's ``(?i)`` folds ASCII letters only, as ``bytes.lower`` does).
Literal = tuple[bytes, bool]


def required_literals(trigger: str) -> frozenset[Literal] | None:
    """Literals of which every match of ``trigger`` holds at least one, or None when the
    trigger has no such set (or the parse tree cannot be read)."""
    if sre_parse is None:  # pragma: no cover
        return None
    parsed = sre_parse.parse(trigger.encode(), re.MULTILINE)
    return _required(parsed, bool(parsed.state.flags & re.IGNORECASE))


def _required(nodes: Any, folded: bool) -> frozenset[Literal] | None:
    """The best set of literals that every match of the sequence ``nodes`` holds one of."""
    candidates: list[frozenset[Literal]] = []
    run = bytearray()

    def end_run() -> None:
        if run:
            literal = bytes(run).lower() if folded else bytes(run)
            candidates.append(frozenset({(literal, folded)}))
            run.clear()

    for op, av in nodes:
        if op is sre.LITERAL:
            run.append(av)
            continue
        end_run()
        found: frozenset[Literal] | None = None
        if op is sre.SUBPATTERN:
            found = _required(av[3], folded or bool(av[1] & re.IGNORECASE))
        elif op is sre.ATOMIC_GROUP:
            found = _required(av, folded)
        elif op is sre.BRANCH:
            found = _union(_required(alternative, folded) for alternative in av[1])
        elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT) and av[0] >= 1:
            found = _required(av[2], folded)
        # any other node (a class, ^, $, a lookaround) holds no literal a match must contain
        if found:
            candidates.append(found)
    end_run()
    return max(candidates, key=_selectivity, default=None)


def _union(sets: Any) -> frozenset[Literal] | None:
    """Every alternative must hold a literal for the branch to have a set."""
    union: set[Literal] = set()
    for literals in sets:
        if literals is None:
            return None
        union |= literals
    return frozenset(union)


def _selectivity(literals: frozenset[Literal]) -> tuple[int, int]:
    """Longer literals first (rarer in text), then fewer of them (fewer searches)."""
    return (min(len(literal) for literal, _ in literals), -len(literals))
