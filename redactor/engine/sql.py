"""Key-name rules inside SQL statements, where names and values sit apart.

``INSERT INTO users (email, password) VALUES ('a@b.c', 'hunter2')`` puts the key ``password``
in the column list and its value in the VALUES tuple; ORM logs repeat the values as bound
parameters (``args=('a@b.c', 'hunter2')``, ``[["email", ...]]`` is handled by the text rules).
This module pairs columns with values by position so the key-name rules apply to them, in
every row of a multi-row INSERT (``VALUES (...), (...)``) and of a list of parameter tuples
(``params=[(...), (...)]``, as ``executemany`` logs them).

PostgreSQL logs the values bound to ``$n`` placeholders apart from the statement
(``DETAIL:  parameters: $1 = 'a@b.c', $2 = 'hunter2'``); a placeholder takes the column it
stands for in the INSERT's VALUES or in a ``column = $n`` comparison or assignment.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

import regex

from redactor.engine.keynames import KeyNameMatcher
from redactor.engine.rules import KeyNameRule

#: Stage-1 trigger: only lines holding an INSERT or PostgreSQL's bound parameters are parsed.
TRIGGER = r"(?i)insert[ \t]+into|parameters:[ \t]*\$[0-9]"

_INSERT = (
    r"""(?i)insert\s+into\s+[\w."`\[\]]{1,200}\s*\((?P<columns>[^()]{1,4000})\)\s*values\s*\("""
)
# A bound-parameter tuple logged after the statement: args=(...), params=(...), parameters: (...)
# or a list of them: params=[(...), (...)].
_PARAMS = r"""(?i)\b(?:args|params|parameters)\s*[=:]\s*[(\[]\s*\(?"""
# Between one row's tuple and the next.
_NEXT_ROW = r"""\s*\)\s*,\s*\("""
# PostgreSQL's bound values, and the columns their placeholders stand for outside an INSERT.
_PG_PARAMETERS = r"""(?i)\bparameters:[ \t]*(?=\$[0-9])"""
# "= $n": the column is the name right before it (found backwards, so the search starts at a
# literal rather than at every character of every word).
_EQUALS_PLACEHOLDER = r"""=\s*\$(?P<n>[0-9]{1,4})(?![0-9])"""
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.\"`[]")
_PLACEHOLDER = r"""\$(?P<n>[0-9]{1,4})"""
# One entry of PostgreSQL's listing, up to its literal: "$2 = ".
_BOUND = r"""\s*\$(?P<n>[0-9]{1,4})\s*="""
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


def _literal_span(m: regex.Match[str]) -> tuple[int, int]:
    """The span of what a ``_LITERAL`` match holds: a quoted string's content, or the bare
    literal."""
    for group in ("sq", "dq"):
        if m.group(group) is not None:
            return m.span(group)
    return m.span("bare")


def _values(text: str, pos: int) -> tuple[list[tuple[int, int]], int]:
    """Spans of the literals of a tuple starting at ``pos`` (just after its '('), and where
    the tuple's literals end."""
    spans: list[tuple[int, int]] = []
    literal = _compiled(_LITERAL)
    while True:
        m = literal.match(text, pos)
        if m is None:
            return spans, pos
        spans.append(_literal_span(m))
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
    placeholders: dict[str, KeyNameRule] = {}  # "$2" -> the rule covering its column
    placeholder = _compiled(_PLACEHOLDER)
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
                    if rule is None or e <= s:
                        continue
                    if placeholder.fullmatch(text, s, e):
                        placeholders[text[s:e]] = rule
                    else:
                        yield s, e, rule
    if "$" in text:
        yield from _bound_parameters(text, keys, placeholders)


def _bound_parameters(
    text: str, keys: KeyNameMatcher, placeholders: dict[str, KeyNameRule]
) -> Iterator[tuple[int, int, KeyNameRule]]:
    """Values in PostgreSQL's ``parameters: $1 = '...', $2 = '...'`` whose placeholder stands
    for a covered column (``placeholders`` from INSERTs, and ``column = $n`` found here)."""
    for m in _compiled(_EQUALS_PLACEHOLDER).finditer(text):
        end = m.start()
        while end > 0 and text[end - 1] in " \t":
            end -= 1
        start = end
        while start > 0 and end - start < 200 and text[start - 1] in _NAME_CHARS:
            start -= 1
        rule = keys.match(_columns(text[start:end])[0]) if start < end else None
        if rule is not None:
            placeholders.setdefault("$" + m.group("n"), rule)
    if not placeholders:
        return
    literal = _compiled(_LITERAL)
    bound = _compiled(_BOUND)
    for listing in _compiled(_PG_PARAMETERS).finditer(text):
        pos = listing.end()
        while True:
            name = bound.match(text, pos)
            value = literal.match(text, name.end()) if name is not None else None
            if name is None or value is None:
                break
            rule = placeholders.get("$" + name.group("n"))
            s, e = _literal_span(value)
            if rule is not None and e > s:
                yield s, e, rule
            pos = value.end()
            if pos >= len(text) or text[pos] != ",":
                break
            pos += 1
