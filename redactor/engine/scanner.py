"""Stage 1: one pass over the bytes to learn which rules could match at all.

Both scanners compile the same trigger patterns and answer the same two questions:

* :meth:`triggered` — which triggers occur anywhere in a value (for one log record);
* :meth:`dirty_lines` — which lines of a newline-delimited buffer hold a trigger (for
  ``scrub``, which scans megabyte chunks and visits only the lines that need stage 2).

:class:`HyperscanScanner` uses Hyperscan's multi-pattern automaton (about one pass at GB/s);
:class:`RegexScanner` is the portable fallback. Triggers are a superset filter, so the two
give the same final redaction even where their internal match reporting differs.

Both compile triggers in multi-line mode: a chunk (and the joined texts of
``Redactor.is_clean_texts``) holds many lines, and a trigger's ``^`` or ``$`` must hold at
each line's start and end, as it does when stage 2 sees the line alone.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from redactor.engine.prefilter import required_literals
from redactor.engine.sealed import SealedFiles

# (line start, line end, trigger ids seen in the line — or None: unknown, run stage 1 again)
DirtyLine = tuple[int, int, "list[int] | None"]

# Past this many trigger matches in one line, the chunk scan stops reporting that line's
# matches one by one (a Python call each) and lets the line's own stage 1 sort it out.
MAX_MATCHES_PER_LINE = 64

_hs: Any
try:  # python-hyperscan's wheels: x86-64 and ARM64 Linux, macOS, 64-bit Windows (pyproject.toml)
    import hyperscan as _hs
except ImportError:  # pragma: no cover - exercised on platforms without wheels
    _hs = None


ScanFunction = Callable[[bytes, Callable[..., Any], int, list[int], Any], Any]


class InlineScan(NamedTuple):
    """:meth:`Scanner.triggered` taken apart, for the one hot path that inlines it (the engine's
    one-string ``redact``, where a second Python call is a tenth of the cost)::

        hits = []
        try:
            scan, scratch = local.once
        except AttributeError:
            scan, scratch = first_use()
        scan(data, collect, 0, hits, scratch)  # hits: what triggered(data) returns

    ``scan`` has the signature of Hyperscan's ``Database.scan``; ``local.once`` holds it with
    this thread's scratch space, and ``first_use`` sets it (loading the database if need be).
    """

    local: Any
    first_use: Callable[[], tuple[ScanFunction, Any]]
    collect: Callable[[int, int, int, int, list[int]], None]


class Scanner(Protocol):
    name: str

    def triggered(self, data: bytes) -> list[int]: ...

    def dirty_lines(self, data: bytes) -> list[DirtyLine]: ...

    def inline(self) -> InlineScan: ...

    def prepare_chunks(self) -> None: ...


# The regex fallback's literal index: windows of this many bytes, taken from values up to this
# long (a window costs a Python step; a longer value is searched literal by literal in C).
_GRAM = 3
_GRAM_WINDOWS_UP_TO = 4096


class RegexScanner:
    """Fallback: each trigger is searched with ``re`` where one of its required literals occurs
    (``prefilter.required_literals``, a C substring search), and everywhere when it has none.
    Triggers are simple patterns whose runs are bounded (``linear.py``), so every search is
    linear in the input."""

    name = "regex"

    def __init__(
        self, triggers: Sequence[str], parts: Mapping[str, Sequence[str]] | None = None
    ) -> None:
        # Searched as the expressions Hyperscan compiles: a key-name rule's names in groups,
        # each group with literals of its own, so a line holding "user" searches the group
        # with user_pin, not all sixty names.
        # (trigger id, an expression of it, the expression's literals or None: searched
        # everywhere), by expression
        self._plan = [
            (index, re.compile(part.encode(), re.MULTILINE), required_literals(part))
            for index, part in _expressions(triggers, parts)
        ]
        # For short values, the literals by their first three bytes: the value's three-byte
        # windows then find the few literals worth a substring search (one set intersection
        # instead of a search per literal).
        self._always = [k for k, (_, _, literals) in enumerate(self._plan) if literals is None]
        self._short: list[tuple[bytes, bool, int]] = []  # literals of one or two bytes
        self._by_gram: dict[bool, dict[bytes, list[tuple[bytes, int]]]] = {False: {}, True: {}}
        for k, (_, _, literals) in enumerate(self._plan):
            for literal, folded in literals or ():
                if len(literal) < _GRAM:
                    self._short.append((literal, folded, k))
                else:
                    self._by_gram[folded].setdefault(literal[:_GRAM], []).append((literal, k))

    def _candidates(self, data: bytes, lowered: bytes) -> list[int]:
        """The expressions (positions in ``_plan``) that a value could match: one of their
        literals occurs in it."""
        found = set(self._always)
        for literal, folded, i in self._short:
            if i not in found and literal in (lowered if folded else data):
                found.add(i)
        if len(data) <= _GRAM_WINDOWS_UP_TO:
            for folded, haystack in ((False, data), (True, lowered)):
                index = self._by_gram[folded]
                windows = {haystack[k : k + _GRAM] for k in range(len(haystack) - _GRAM + 1)}
                for gram in windows.intersection(index):
                    for literal, i in index[gram]:
                        if i not in found and literal in haystack:
                            found.add(i)
        else:  # a long value: a C substring search per literal costs less than its windows
            for folded, haystack in ((False, data), (True, lowered)):
                for entries in self._by_gram[folded].values():
                    for literal, i in entries:
                        if i not in found and literal in haystack:
                            found.add(i)
        return sorted(found)

    def triggered(self, data: bytes) -> list[int]:
        hits: set[int] = set()
        for k in self._candidates(data, data.lower()):
            index, pattern, _ = self._plan[k]
            if index not in hits and pattern.search(data):
                hits.add(index)
        return sorted(hits)

    def inline(self) -> InlineScan:
        triggered = self.triggered

        def scan(data: bytes, _on_match: object, _flags: int, hits: list[int], _s: None) -> None:
            hits.extend(triggered(data))

        holder = _NoScratch()
        holder.once = (scan, None)
        return InlineScan(holder, lambda: (scan, None), _collect)

    def prepare_chunks(self) -> None:
        pass  # nothing to load

    def dirty_lines(self, data: bytes) -> list[DirtyLine]:
        """The lines where a trigger matches: a trigger with literals is searched only in the
        lines that hold one (a line's own newline included, which a trigger may end on)."""
        size = len(data)
        lowered = data.lower()
        dirty: set[int] = set()  # line starts
        for _, pattern, literals in self._plan:
            if literals is None:
                for m in pattern.finditer(data):  # the line of its last byte, as Hyperscan's
                    dirty.add(data.rfind(b"\n", 0, max(m.end() - 1, m.start())) + 1)
                continue
            for literal, folded in literals:
                haystack = lowered if folded else data
                pos = haystack.find(literal)
                while pos >= 0:
                    start = data.rfind(b"\n", 0, pos) + 1
                    end = data.find(b"\n", pos)
                    end = size if end < 0 else end
                    if start not in dirty and pattern.search(data, start, min(end + 1, size)):
                        dirty.add(start)
                    pos = haystack.find(literal, end)
        lines: list[DirtyLine] = []
        for start in sorted(dirty):
            end = data.find(b"\n", start)
            lines.append((start, size if end < 0 else end, None))
        return lines


def _expressions(
    triggers: Sequence[str], parts: Mapping[str, Sequence[str]] | None
) -> list[tuple[int, str]]:
    """(trigger id, expression) for every trigger: a trigger with parts (Rule.trigger_parts) is
    those expressions, all under its id; any other is itself."""
    return [
        (index, part)
        for index, trigger in enumerate(triggers)
        for part in (parts or {}).get(trigger, (trigger,))
    ]


class _NoScratch:
    once: tuple[ScanFunction, None]  # the fallback needs no scratch space


class HyperscanScanner:
    """Hyperscan block-mode databases: one reporting each trigger once (records), one
    reporting every match in end order (chunks).

    Compiling takes a few hundred milliseconds, which dominates a short ``scrub``; with a
    ``cache`` the serialized databases are kept on disk under a MAC, so a tampered or stale
    file is never loaded (a database missing a trigger would silently skip a rule).

    Each database is loaded on first use: ``scrub`` scans chunks and an application's log
    handler scans records, and neither pays start-up for the other's 2 MB database.
    """

    name = "hyperscan"

    def __init__(
        self,
        triggers: Sequence[str],
        cache: DatabaseCache | None = None,
        parts: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        assert _hs is not None
        # A trigger with parts is compiled as those expressions, all under the trigger's id
        # (Hyperscan reports a single-match id once, however many of its expressions match).
        self._expressions = _expressions(triggers, parts)
        self._key = "\x00".join(part for _, part in self._expressions)
        self._cache = cache
        # (database, scratch space to clone per thread), once loaded
        self._loaded: dict[str, tuple[Any, Any]] = {}
        self._load_lock = threading.Lock()
        # Scratch space is per thread in Hyperscan; threads get their own clone on first use.
        self._local = threading.local()
        self.triggered: Callable[[bytes], list[int]] = self._make_triggered()

    def _database(self, kind: str) -> tuple[Any, Any]:
        """The ``once`` or ``every`` database and its scratch space, loaded on first use."""
        loaded = self._loaded.get(kind)
        if loaded is None:
            assert _hs is not None
            with self._load_lock:  # threads starting together load it once
                loaded = self._loaded.get(kind)
                if loaded is None:
                    db = _database(*self._identity(kind), self._expressions, self._cache)
                    loaded = self._loaded[kind] = (db, _hs.Scratch(db))
        return loaded

    def _identity(self, kind: str) -> tuple[str, int]:
        """The ``kind`` database's identity in the cache, and its extra compile flags."""
        assert _hs is not None
        flags = _hs.HS_FLAG_MULTILINE
        if kind == "once":
            flags |= _hs.HS_FLAG_SINGLEMATCH
        return f"{kind}\x00{self._key}", flags

    def prepare_chunks(self) -> None:
        """Load the chunk database now: before ``scrub`` forks its workers, which then share it.

        A worker needs the record database for a rare line (a PEM block, a line of many
        matches); with a cache, it is made sure to be there, so that a worker loads it instead
        of compiling it (seconds, and in every worker at once)."""
        self._database("every")
        if self._cache is not None and not self._cache.holds(*self._identity("once")):
            self._database("once")

    def _first_use(self) -> tuple[ScanFunction, Any]:
        db, scratch = self._database("once")
        once: tuple[ScanFunction, Any] = (db.scan, scratch.clone())
        self._local.once = once
        return once

    def inline(self) -> InlineScan:
        return InlineScan(self._local, self._first_use, _collect)

    def _make_triggered(self) -> Callable[[bytes], list[int]]:
        # Every log record passes through this once: a closure over the thread-local holder
        # saves the attribute lookups of a method (about a third of the Python overhead around
        # a sub-microsecond scan).
        local, first_use, collect = self.inline()

        def triggered(data: bytes) -> list[int]:
            hits: list[int] = []
            try:
                scan, scratch = local.once
            except AttributeError:
                scan, scratch = first_use()
            scan(data, collect, 0, hits, scratch)
            return hits

        return triggered

    def dirty_lines(self, data: bytes) -> list[DirtyLine]:
        assert _hs is not None
        lines: list[DirtyLine] = []
        size = len(data)
        try:
            every, scratch = self._local.every
        except AttributeError:
            db, shared = self._database("every")
            every, scratch = self._local.every = (db, shared.clone())
        base = 0
        while base < size:
            state = [-1, 0]  # end of the current dirty line, matches counted in it

            # scan() below calls on_match synchronously, within this iteration: reading the loop's
            # base and state from the closure is intended (B023 is a false positive here).
            def on_match(
                pattern_id: int, _from: int, to: int, _flags: int, _ctx: object
            ) -> bool | None:
                end = base + to  # noqa: B023
                # Matches arrive in end order. A match is in the current line when its last byte
                # is, and that byte may be the line's own newline (a trigger ending in \s).
                if end - 1 <= state[0]:  # noqa: B023
                    ids = lines[-1][2]
                    assert ids is not None
                    if pattern_id not in ids:
                        ids.append(pattern_id)
                    state[1] += 1  # noqa: B023
                    if state[1] > MAX_MATCHES_PER_LINE:  # noqa: B023
                        lines[-1] = (lines[-1][0], lines[-1][1], None)
                        return True
                    return None
                hit = end - 1
                line_end = data.find(b"\n", hit)
                if line_end < 0:
                    line_end = size
                lines.append((data.rfind(b"\n", 0, hit) + 1, line_end, [pattern_id]))
                state[0], state[1] = line_end, 1  # noqa: B023
                return None

            view = memoryview(data)[base:] if base else data
            try:
                every.scan(view, on_match, 0, None, scratch)
                break
            except _hs.ScanTerminated:  # a line with too many matches: resume after it
                base = state[0] + 1
        return lines


def _collect(pattern_id: int, _from: int, _to: int, _flags: int, hits: list[int]) -> None:
    hits.append(pattern_id)


def _collect_start(
    anchor_id: int, start: int, end: int, _flags: int, context: tuple[list[Any], dict[int, int]]
) -> None:
    hits, tails = context
    tail = tails.get(anchor_id)
    hits.append((anchor_id, start if tail is None else end - tail))


class AnchorFinder:
    """Where rules' anchors match: one Hyperscan pass reporting the start of every match.

    Stage 2 uses it to try an anchored rule's pattern only at those positions (see
    ``Rule.anchor``). Hyperscan only: without it, patterns are searched at every position,
    which gives the same matches. ``tails``: anchor id -> ``Rule.anchor_tail``, for anchors
    whose matches say where a pattern's match starts by where they end.
    """

    def __init__(
        self,
        anchors: Sequence[str],
        cache: DatabaseCache | None = None,
        tails: Mapping[int, int] | None = None,
    ) -> None:
        assert _hs is not None
        key = "anchors\x00" + "\x00".join(anchors)
        self._db = _database(key, _hs.HS_FLAG_SOM_LEFTMOST, list(enumerate(anchors)), cache)
        self._tails = dict(tails or {})
        self._scratch = _hs.Scratch(self._db)
        self._local = threading.local()

    def starts(self, data: bytes) -> dict[int, list[int]]:
        """Anchor id -> byte offsets where it matches, ascending, without repeats."""
        local = self._local
        try:
            scratch = local.scratch
        except AttributeError:
            scratch = local.scratch = self._scratch.clone()
        hits: list[tuple[int, int]] = []
        self._db.scan(data, _collect_start, 0, (hits, self._tails), scratch)
        found: dict[int, list[int]] = {}
        if not hits:
            return found
        # Reports come in end order: a longer match may report an earlier start later.
        hits.sort()
        for anchor_id, start in hits:
            starts = found.get(anchor_id)
            if starts is None:
                found[anchor_id] = [start]
            elif starts[-1] != start:  # one start can end several alternatives
                starts.append(start)
        return found


def make_anchor_finder(
    anchors: Sequence[str],
    prefer: str = "auto",
    cache: DatabaseCache | None = None,
    tails: Mapping[int, int] | None = None,
) -> AnchorFinder | None:
    """An :class:`AnchorFinder` when Hyperscan is used, else None (patterns search as usual)."""
    if not anchors or prefer == "regex" or _hs is None:
        return None
    return AnchorFinder(anchors, cache, tails)


class DatabaseCache:
    """Serialized Hyperscan databases kept as :class:`SealedFiles`: a database is loaded only
    if it was built, under the same key, from the same triggers and Hyperscan version."""

    def __init__(self, directory: Path, hmac_key: bytes) -> None:
        self._files = SealedFiles(directory, hmac_key)

    def holds(self, identity: str, extra_flags: int) -> bool:
        """Whether a database is kept for ``identity`` (checked when it is loaded, not here)."""
        assert _hs is not None
        return self._files.holds("hs", self._bound_to(f"{extra_flags}\x00{identity}"))

    @staticmethod
    def _bound_to(identity: str) -> bytes:
        assert _hs is not None
        return f"{_hs.__version__}\x00{identity}".encode()

    def load_or_build(self, identity: str, build: Callable[[], Any]) -> Any:
        assert _hs is not None
        bound_to = self._bound_to(identity)
        payload = self._files.load("hs", bound_to)
        if payload is not None:
            try:
                return _hs.loadb(payload, _hs.HS_MODE_BLOCK)
            except _hs.error:
                pass
        db = build()
        try:
            self._files.store("hs", bound_to, _hs.dumpb(db))
        except _hs.error:
            pass  # a cache we cannot write only costs start-up time
        return db


def _database(
    identity: str,
    extra_flags: int,
    patterns: Sequence[tuple[int, str]],
    cache: DatabaseCache | None,
) -> Any:
    """A block-mode database of ``patterns`` (id, expression), from ``cache`` if it holds one
    built from the same ``identity`` and flags."""

    def build() -> Any:
        assert _hs is not None
        db = _hs.Database(mode=_hs.HS_MODE_BLOCK)
        db.compile(
            expressions=[_hyperscan_syntax(p) for _, p in patterns],
            ids=[i for i, _ in patterns],
            elements=len(patterns),
            flags=[_hyperscan_flags(p) | extra_flags for _, p in patterns],
        )
        return db

    return cache.load_or_build(f"{extra_flags}\x00{identity}", build) if cache else build()


def _hyperscan_syntax(trigger: str) -> bytes:
    return (trigger[4:] if trigger.startswith("(?i)") else trigger).encode()


def _hyperscan_flags(trigger: str) -> int:
    assert _hs is not None
    return _hs.HS_FLAG_CASELESS if trigger.startswith("(?i)") else 0


def make_scanner(
    triggers: Sequence[str],
    prefer: str = "auto",
    cache: DatabaseCache | None = None,
    *,
    parts: Mapping[str, Sequence[str]] | None = None,
) -> Scanner:
    """A Hyperscan scanner where it is installed (unless ``prefer='regex'``), else the fallback.

    ``parts``: triggers that both scanners take as several expressions (see Rule.trigger_parts).
    """
    if prefer not in ("auto", "hyperscan", "regex"):
        raise ValueError(f"unknown scanner {prefer!r}")
    if prefer != "regex" and _hs is not None:
        return HyperscanScanner(triggers, cache, parts)
    if prefer == "hyperscan":
        raise RuntimeError("hyperscan is not installed")
    return RegexScanner(triggers, parts)
