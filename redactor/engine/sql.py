"""Key-name rules inside SQL statements, where names and values sit apart.

``INSERT INTO users (email, password) VALUES ('a@b.c', 'hunter2')`` puts the key ``password``
in the column list and its value in the VALUES tuple; ORM logs repeat the values as bound
parameters (``args=('a@b.c', 'hunter2')``, ``[["email", ...]]`` is handled by the text rules).
This module pairs columns with values by position so the key-name rules apply to them, in
every row of a multi-row INSERT (``VALUES (...), (...)``) and of a list of parameter tuples
(``params=[(...), (...)]``, as ``executemany`` logs them).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

import regex

from redactor.engine.keynames import KeyNameMatcher
from redactor.engine.rules import KeyNameRule

#: Stage-1 trigger: only lines holding an INSERT are parsed.
TRIGGER = r"(?i)insert[ \t]+into"

_INSERT = (
    r"""(?i)insert\s+into\s+[\w."`\[\]]{1,200}\s*\((?P<columns>[^()]{1,4000})\)\s*values\s*\("""
)
# A bound-parameter tuple logged after the statement: args=(...), params=(...), parameters: (...)
# or a list of them: params=[(...), (...)].
_PARAMS = r"""(?i)\b(?:args|params|parameters)\s*[=:]\s*[(\[]\s*\(?"""
# Between one row's tuple and the next.
_NEXT_ROW = r"""\s*\)\s*,\s*\("""
# One SQL or Python-repr literal: quoted string (with '' or \' escapes), number, keyword,
# placeholder, or a call such as now().
_LITERAL = (
    r"""\s*(?:'(?P<sq>(?:[^'\\]|''|\\.){0,4096})'|"(?P<dq>(?:[^"\\]|""|\\.){0,4096})"|(?P<bare>[^,()'"\s][^,()'"]{0,200}(?:\([^()]{0,200}\))?))\s*"""
)


@functools.cache
def _compiled(source: str) -> regex.Pattern[str]:
    """Compiled on first use: most runs meet no INSERT, and compiling at import would cost
    every start-up a few milliseconds."""
    return regex.compile(source)


def _columns(text: str) -> list[str]:
    return [c.strip().strip('"`[]').rsplit(".", 1)[-1] for c in text.split(",")]


def _values(text: str, pos: int) -> tuple[list[tuple[int, int]], int]:
    """Spans of the literals of a tuple starting at ``pos`` (just after its '('), and where
    the tuple's literals end."""
    spans: list[tuple[int, int]] = []
    literal = _compiled(_LITERAL)
    while True:
        m = literal.match(text, pos)
        if m is None:
            return spans, pos
        for group in ("sq", "dq", "bare"):
            if m.group(group) is not None:
                spans.append(m.span(group))
                break
        pos = m.end()
        if pos >= len(text) or text[pos] != ",":
            return spans, pos
        pos += 1


def _rows(text: str, pos: int) -> Iterator[list[tuple[int, int]]]:
    """The literals' spans of each row: the tuple starting at ``pos`` and those after it."""
    next_row = _compiled(_NEXT_ROW)
    while True:
        spans, end = _values(text, pos)
        yield spans
        following = next_row.match(text, end)
        if following is None:
            return
        pos = following.end()


def sql_value_spans(text: str, keys: KeyNameMatcher) -> Iterator[tuple[int, int, KeyNameRule]]:
    """(start, end, rule) for each value whose column a key-name rule covers."""
    for insert in _compiled(_INSERT).finditer(text):
        columns = _columns(insert.group("columns"))
        covered = {i: rule for i, c in enumerate(columns) if (rule := keys.match(c)) is not None}
        if not covered:
            continue
        tuples = [insert.end()]
        params = _compiled(_PARAMS).search(text, insert.end())
        if params is not None:
            tuples.append(params.end())
        for start in tuples:
            for row in _rows(text, start):
                for index, (s, e) in enumerate(row):
                    rule = covered.get(index)
                    if rule is not None and e > s:
                        yield s, e, rule
