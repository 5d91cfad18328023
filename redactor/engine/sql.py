"""Key-name rules inside SQL statements, where names and values sit apart.

``INSERT INTO users (email, password) VALUES ('a@b.c', 'hunter2')`` puts the key ``password``
in the column list and its value in the VALUES tuple; ORM logs repeat the values as bound
parameters (``args=('a@b.c', 'hunter2')``, ``[["email", ...]]`` is handled by the text rules).
This module pairs columns with values by position so the key-name rules apply to them, in
every row of a multi-row INSERT (``VALUES (...), (...)``) and of a list of parameter tuples
(``params=[(...), (...)]``, as ``executemany`` logs them).

PostgreSQL logs the values bound to ``$n`` placeholders apart from the statement
(``DETAIL:  parameters: $1 = 'a@b.c', $2 = 'hunter2'``), and Entity Framework those bound to
``@p0`` (``[Parameters=[@p0='hunter2' (Size = 7)], ...]``); a placeholder takes the column it
stands for in the INSERT's VALUES or in a ``column = $n`` comparison or assignment. ORMs that
log the values as a list after the statement (Prisma's ``Params: [...]``, Ecto's trailing
``[...]``, Doctrine's ``"params":{"1": ...}``, ``args=(...)``) pair them with the statement's
placeholders by position: ``$n`` is the n-th value, and ``?`` or ``%s`` count in order.
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Callable, Iterator

import regex

from redactor.engine.keynames import KeyNameMatcher
from redactor.engine.rules import KeyNameRule

#: Stage-1 trigger: only lines holding an INSERT, or bound values listed by name, in a list
#: after a keyword, or after Ecto's "QUERY OK", are parsed.
TRIGGER = (
    r"(?i)insert[ \t]+into|parameters:[ \t]*\$[0-9]|parameters=\[@|sp_executesql"
    r"|(?:args|params|parameters|bindings)[\"']?[ \t]*[=:][ \t]*[\[({]|QUERY (?:OK|ERROR)"
)

_INSERT = (
    r"""(?i)insert\s+into\s+[\w."`\[\]]{1,200}\s*\((?P<columns>[^()]{1,4000})\)\s*values\s*\("""
)
# A bound-parameter tuple logged after the statement: args=(...), params=(...), parameters: (...)
# or a list of them: params=[(...), (...)].
_PARAMS = r"""(?i)\b(?:args|params|parameters)\s*[=:]\s*[(\[]\s*\(?"""
# Between one row's tuple and the next.
_NEXT_ROW = r"""\s*\)\s*,\s*\("""
# Listings of bound values by name: PostgreSQL's "parameters: $1 = ...", Entity Framework's
# "[Parameters=[@p0=..." and SQL Server's sp_executesql, whose values follow the string that
# declares them (exec sp_executesql N'… @P0 …', N'@P0 varchar(9)', @P0='…').
_NAMED_PARAMETERS = (
    r"""(?i)\bparameters(?::[ \t]*(?=\$[0-9])|=\[(?=@))|(?<=')\s*,\s*(?=@\w{1,64}\s*=)"""
)
# A statement's placeholders in order, each maybe after "=" (its column is then the name
# right before, found backwards so the search starts at a literal rather than at every
# character of every word): $n, @name, and the positional ? and %s.
_STATEMENT_PLACEHOLDER = (
    r"""(?P<eq>=\s*)?(?:\$(?P<n>[0-9]{1,4})(?![0-9])|@(?P<name>\w{1,64})|(?P<pos>\?|%s))"""
)
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.\"`[]")
_PLACEHOLDER = r"""\$[0-9]{1,4}|@\w{1,64}"""
# One entry of a listing by name, up to its literal: "$2 = ", "@p0=".
_BOUND = r"""\s*(?P<ph>\$[0-9]{1,4}|@\w{1,64})\s*="""
# Entity Framework's notes after a value: (Nullable = false) (Size = 40) (DbType = String)
_ANNOTATIONS = r"""(?:\s*\([^()]{0,80}\))*"""
# Where a statement starts, and a list of values logged after it by position.
_STATEMENT = r"""(?i)\b(?:select|update|delete|insert|with)\b"""
_POSITIONAL = r"""(?i)\b(?:args|params|parameters|bindings)["']?\s*[=:]\s*(?P<open>[\[({])"""
# What a line with values bound apart from its statement holds besides placeholders.
_LISTING_HINT = r"""(?i)args|params|parameters|bindings|QUERY (?:OK|ERROR)|sp_executesql"""
# Doctrine's params object: {"1": value, "2": value} (1-based positions).
_NUMBERED = r"""\s*"(?P<k>[0-9]{1,4})"\s*:"""
# One SQL or Python-repr literal: quoted string (with '' or \' escapes; SQL Server's N'…'),
# number, keyword, placeholder, or a call such as now().
_LITERAL = (
    r"""\s*(?:N?'(?P<sq>(?:[^'\\]|''|\\.){0,4096})'|"(?P<dq>(?:[^"\\]|""|\\.){0,4096})"|(?P<bare>[^,()'"\s][^,()'"]{0,200}(?:\([^()]{0,200}\))?))\s*"""
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
    # Values bound apart from the statement are listed after a keyword, or by Ecto after its
    # "QUERY OK" (a plain C search first: most INSERT lines hold their values inline).
    if placeholders or "$" in text or _compiled(_LISTING_HINT).search(text):
        yield from _bound_parameters(text, keys, placeholders)


def _bound_parameters(
    text: str, keys: KeyNameMatcher, placeholders: dict[str, KeyNameRule]
) -> Iterator[tuple[int, int, KeyNameRule]]:
    """Values bound to placeholders that stand for a covered column (``placeholders`` from
    INSERTs, and ``column = $n`` found here), in a listing by name or a list by position.

    A placeholder is known by its name ("$2", "@p0") and, for ? and %s, by its position in
    its statement ("#0" is the first). A list by position belongs to the statement right
    before it (Doctrine logs the statement twice, then the values).
    """
    listings = list(_compiled(_NAMED_PARAMETERS).finditer(text))
    lists: list[regex.Match[str]] = list(_compiled(_POSITIONAL).finditer(text))
    trailing = _trailing_list(text)
    if trailing is not None:
        lists.append(trailing)
    starts = [m.start() for m in _compiled(_STATEMENT).finditer(text)]
    stops = sorted([m.start() for m in listings] + [m.start() for m in lists] + starts[1:])
    found_by_statement: list[dict[str, KeyNameRule]] = []
    for start in starts:
        after = bisect.bisect_right(stops, start)  # (bisect: a line may hold many statements)
        end = stops[after] if after < len(stops) else len(text)
        found: dict[str, KeyNameRule] = {}
        count = 0
        for m in _compiled(_STATEMENT_PLACEHOLDER).finditer(text, start, end):
            if m.group("pos") is not None:
                key = f"#{count}"
                count += 1
            else:
                key = "$" + m.group("n") if m.group("n") else "@" + m.group("name")
            rule = _column_before(text, m.start(), keys) if m.group("eq") is not None else None
            if rule is not None:
                found.setdefault(key, rule)
                if key[0] != "#":
                    placeholders.setdefault(key, rule)
        found_by_statement.append(found)
    if placeholders:
        for listing in listings:
            yield from _named_values(text, listing.end(), placeholders)
    for values in lists:
        before = bisect.bisect_left(starts, values.start())
        own = found_by_statement[before - 1] if before else {}
        if own or placeholders:
            yield from _positional_values(text, values, {**placeholders, **own})


def _trailing_list(text: str) -> regex.Match[str] | None:
    """The list that ends a line, as Ecto logs its values after the statement
    (``... WHERE "id" = $3 ["a", ~N[2024-05-17 11:57:45]]``): found by walking back over the
    brackets from the end, which is linear however many brackets the line holds."""
    end = len(text.rstrip())
    if end == 0 or text[end - 1] != "]":
        return None
    depth = 0
    for pos in range(end - 1, max(-1, end - 1 - 8192), -1):
        char = text[pos]
        if char == "]":
            depth += 1
        elif char == "[":
            depth -= 1
            if depth == 0:
                opens_list = pos > 0 and text[pos - 1] == " "
                return _compiled(r"\[").match(text, pos) if opens_list else None
    return None


def _column_before(text: str, end: int, keys: KeyNameMatcher) -> KeyNameRule | None:
    """The key-name rule covering the column named right before ``end`` (an "=")."""
    while end > 0 and text[end - 1] in " \t":
        end -= 1
    start = end
    while start > 0 and end - start < 200 and text[start - 1] in _NAME_CHARS:
        start -= 1
    return keys.match(_columns(text[start:end])[0]) if start < end else None


def _named_values(
    text: str, pos: int, placeholders: dict[str, KeyNameRule]
) -> Iterator[tuple[int, int, KeyNameRule]]:
    """The covered values of a listing by name: ``$1 = 'a', $2 = 'b'``, ``@p0='a' (Size = 1)``."""
    return _listed_values(text, pos, _compiled(_BOUND), lambda key: placeholders.get(key["ph"]))


def _positional_values(
    text: str, listing: regex.Match[str], placeholders: dict[str, KeyNameRule]
) -> Iterator[tuple[int, int, KeyNameRule]]:
    """The covered values of a list by position: the n-th is "$n" and "#n-1"."""
    if listing.group() != "[" and listing.group("open") == "{":  # Doctrine's {"1": …, "2": …}
        yield from _listed_values(
            text,
            listing.end(),
            _compiled(_NUMBERED),
            lambda key: placeholders.get(f"${int(key['k'])}")
            or placeholders.get(f"#{int(key['k']) - 1}"),
        )
        return
    spans, _ = _values(text, listing.end())  # a list or tuple, or a trailing list at its bracket
    yield from _by_position(spans, placeholders)


def _listed_values(
    text: str,
    pos: int,
    entry: regex.Pattern[str],
    rule_for: Callable[[regex.Match[str]], KeyNameRule | None],
) -> Iterator[tuple[int, int, KeyNameRule]]:
    """The covered values of a listing of keyed entries from ``pos`` on: ``entry`` matches a
    key up to its literal ("$2 = ", "@p0=", '"2":'), ``rule_for`` names the rule covering it.
    Notes after a value (Entity Framework's "(Size = 40)") are stepped over."""
    literal = _compiled(_LITERAL)
    annotations = _compiled(_ANNOTATIONS)
    while (key := entry.match(text, pos)) is not None:
        value = literal.match(text, key.end())
        if value is None:
            return
        rule = rule_for(key)
        s, e = _literal_span(value)
        if rule is not None and e > s:
            yield s, e, rule
        pos = annotations.match(text, value.end()).end()  # type: ignore[union-attr]
        if pos >= len(text) or text[pos] != ",":
            return
        pos += 1


def _by_position(
    spans: list[tuple[int, int]], placeholders: dict[str, KeyNameRule]
) -> Iterator[tuple[int, int, KeyNameRule]]:
    for index, (s, e) in enumerate(spans):
        rule = placeholders.get(f"${index + 1}") or placeholders.get(f"#{index}")
        if rule is not None and e > s:
            yield s, e, rule
