"""The engine: stage 1 (which rules could match) → stage 2 (exact match and validation) → mask.

:meth:`Redactor.redact` is the one entry point: ``str``, ``bytes`` and nested
``dict``/``list``/``tuple`` in, the same object back when nothing was found, otherwise a redacted
copy. It is fail-closed: a detector error, a timeout, an oversized value or a structure too
deep becomes a placeholder, never the raw value, and no exception reaches the caller.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeAlias

import regex

from redactor.engine import sql
from redactor.engine.compiled import PatternCache
from redactor.engine.interface import Finding
from redactor.engine.keynames import VALUE_SPANS, KeyNameMatcher, text_rules
from redactor.engine.masks import (
    FAILED_PLACEHOLDER,
    PLACEHOLDER_RE,
    RefMaker,
    mask_text,
    placeholder,
)
from redactor.engine.rules import KeyNameRule, Rule, RuleSet
from redactor.engine.scanner import DatabaseCache, Scanner, make_anchor_finder, make_scanner
from redactor.engine.validators import (
    decode_base64_text,
    entropy_at_least,
    is_other_tools_mask,
    not_placeholder_like,
)

OVERSIZED_PLACEHOLDER = "[redacted:oversized]"
_TIMEOUT_FROM_CHARS = 4096
#: Integers at least this long (9 digits: an SSN is the shortest all-digit secret) are scanned
#: as text when they appear in structured values; shorter ones never are.
SHORTEST_NUMBER_SECRET = 10**8
MAX_DEPTH = 64


class LazyTraceId:
    """A trace id looked up only if a value turns out to need a ref.

    Refs are keyed by trace id, but most records are clean: integrations pass one of these
    (shared by every field of a record) so finding the trace id — from the active span,
    record attributes or context variables — costs nothing on the clean path.
    """

    __slots__ = ("_lookup", "_value", "_resolved")

    def __init__(self, lookup: Callable[[], str | None]) -> None:
        self._lookup = lookup
        self._value: str | None = None
        self._resolved = False

    def get(self) -> str | None:
        """The trace id, looked up on first use (a failing lookup counts as no trace id)."""
        if not self._resolved:
            self._resolved = True
            try:
                self._value = self._lookup()
            except Exception:
                self._value = None
        return self._value

    @property
    def resolved(self) -> bool:
        return self._resolved


# What every internal method passes along: a trace id, a lazy one, or none.
TraceIdArg: TypeAlias = "str | LazyTraceId | None"


def _utf8(text: str) -> bytes:
    """The UTF-8 bytes stage 1 scans; lone surrogates (from surrogateescape) pass through."""
    try:
        return text.encode()
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


def _trace_value(trace_id: str | LazyTraceId | None) -> str | None:
    return trace_id.get() if isinstance(trace_id, LazyTraceId) else trace_id


class _Candidate:
    """A span of one rule, before overlaps are resolved (a plain slots class: one is built per
    match on the dirty path, where a frozen dataclass's ``__init__`` shows).

    ``match_start`` is where the whole match began (the keyword window ends there). A candidate
    not yet ``checked`` still has its rule's filters to pass (validator, entropy, keywords):
    they run only if it would be chosen, since most candidates of the catch-all rules lose to
    a longer or stronger one on the same span anyway.
    """

    __slots__ = ("start", "end", "rule", "match_start", "checked")

    def __init__(
        self, start: int, end: int, rule: Rule, match_start: int = 0, checked: bool = True
    ) -> None:
        self.start = start
        self.end = end
        self.rule = rule
        self.match_start = match_start
        self.checked = checked


class Redactor:
    """Compiled rules plus the ref key: the whole detection engine, safe to share across threads.

    ``max_value_bytes`` caps one string (longer strings are replaced whole, fail-closed);
    ``match_timeout_s`` bounds one pattern over one value (the ``regex`` module's timeout, a
    last guard behind bounded patterns) and grows by ``match_timeout_s`` per MiB of input.
    """

    def __init__(
        self,
        ruleset: RuleSet,
        *,
        ref_key: bytes,
        max_value_bytes: int = 16 * 1024 * 1024,
        match_timeout_s: float = 0.5,
        scanner: str = "auto",
        scanner_cache: DatabaseCache | None = None,
        pattern_cache: PatternCache | None = None,
    ) -> None:
        if len(ref_key) < 16:
            raise ValueError("ref_key must be at least 16 bytes")
        self.ruleset = ruleset
        self._ref_key = ref_key
        self._make_ref = RefMaker(ref_key)
        self._max_value_bytes = max_value_bytes  # read-only: the redact closure holds it
        self.match_timeout_s = match_timeout_s
        self.rules: tuple[Rule, ...] = tuple(
            self._checked_when_decoded(rule) if rule.decoded else rule
            for rule in ruleset.rules + text_rules(ruleset.keynames)
        )
        self._decoding = threading.local()  # see _holds_secret
        if pattern_cache is not None:
            for rule in self.rules:
                rule.keep_compiled_in(pattern_cache)
        # Identical triggers share one stage-1 pattern; each maps to the rules it gates.
        trigger_ids: dict[str, int] = {}
        trigger_parts: dict[str, tuple[str, ...]] = {}
        gated: list[list[Rule]] = []
        for rule in self.rules:
            index = trigger_ids.setdefault(rule.trigger, len(trigger_ids))
            if rule.trigger_parts:
                trigger_parts[rule.trigger] = rule.trigger_parts
            if index == len(gated):
                gated.append([])
            gated[index].append(rule)
        self._keys = KeyNameMatcher(ruleset.keynames)
        # Key-name rules inside SQL INSERTs pair columns with values by position (sql.py).
        keyname_ids = {k.id for k in ruleset.keynames}
        self._keyname_text_rules = {r.id: r for r in self.rules if r.id in keyname_ids}
        self._sql_trigger = (
            trigger_ids.setdefault(sql.TRIGGER, len(trigger_ids)) if ruleset.keynames else -1
        )
        if len(gated) < len(trigger_ids):
            gated.append([])
        self._gated: tuple[tuple[Rule, ...], ...] = tuple(tuple(g) for g in gated)
        # The triggers that gate a rule needing keyword proximity (and so a lowered text).
        self._keyworded = frozenset(
            i for i, gated_rules in enumerate(self._gated) if any(r.keywords for r in gated_rules)
        )
        self.scanner: Scanner = make_scanner(
            list(trigger_ids), scanner, scanner_cache, parts=trigger_parts
        )
        self._triggered = self.scanner.triggered
        anchored = [r for r in self.rules if r.anchor]
        self._anchor_ids = {r.id: i for i, r in enumerate(anchored)}
        self._anchors = make_anchor_finder(
            [r.anchor for r in anchored if r.anchor],
            scanner,
            scanner_cache,
            tails={i: r.anchor_tail for i, r in enumerate(anchored) if r.anchor_tail},
        )
        self._has_secret_group: dict[str, bool] = {}  # rule id -> pattern has (?P<secret>)
        # Anchors of rules with Rule.search_anchor as regex patterns, compiled on first use:
        # where Hyperscan's byte offsets cannot serve (long or non-ASCII text, no Hyperscan).
        self._pattern_cache = pattern_cache
        self._anchor_regexes: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.failures = 0  # values replaced by FAILED_PLACEHOLDER (errors and timeouts)
        self.oversized = 0
        self.redactions: Counter[str] = Counter()  # findings per rule id
        self._redact_closure = self._bind_redact()
        if type(self).redact is Redactor.redact:  # a subclass's own redact() stays in charge
            self.redact = self._redact_closure  # type: ignore[method-assign]

    def _checked_when_decoded(self, rule: Rule) -> Rule:
        """``rule`` (Rule.decoded) with a validator that decodes a match and passes it only
        when the engine finds a secret in what it decodes to."""
        validator = rule.validator

        def holds_secret(value: str) -> bool:
            if validator is not None and validator(value) is False:
                return False
            decoded = decode_base64_text(value)
            return decoded is not None and self._holds_secret(decoded)

        return dataclasses.replace(rule, validator=holds_secret)

    def _holds_secret(self, text: str) -> bool:
        """Whether stage 1 and 2 find anything in ``text`` (counted nowhere). Not from inside
        another such check: base64 inside base64 is left alone, so one value costs at most two
        passes."""
        local = self._decoding
        if getattr(local, "active", False):
            return False
        local.active = True
        try:
            data = _utf8(text)
            triggered = self._triggered(data)
            if not triggered:
                return False
            findings: list[Finding] = []
            self._stage2(text, triggered, None, findings, "", data)
            for finding in findings:  # a check, not a redaction: take back its counts
                left = self.redactions[finding.rule_id] - 1
                if left:
                    self.redactions[finding.rule_id] = left
                else:
                    del self.redactions[finding.rule_id]
            return bool(findings)
        finally:
            local.active = False

    # -- public API ---------------------------------------------------------------------------

    @property
    def max_value_bytes(self) -> int:
        return self._max_value_bytes

    def redact(
        self,
        value: Any,
        *,
        trace_id: str | LazyTraceId | None = None,
        findings: list[Finding] | None = None,
        path: str = "",
    ) -> Any:
        """Redact ``value``; append a :class:`Finding` per masked original to ``findings``.

        Returns ``value`` itself (same object) when nothing was found. Values that are not
        ``str``/``bytes``/containers (numbers, None, ...) are returned as they are.
        ``trace_id`` keys the refs; a :class:`LazyTraceId` is only resolved on a finding.
        """
        # Instances of Redactor itself call the closure directly (see __init__); this method
        # is what subclasses reach through super().
        return self._redact_closure(value, trace_id=trace_id, findings=findings, path=path)

    def _bind_redact(self) -> Callable[..., Any]:
        """:meth:`redact` as a closure. Nearly every call is one clean log message, where the
        whole cost is a sub-microsecond scan plus Python overhead: reading collaborators from
        closure cells rather than attributes, running stage 1 inline rather than through a
        second call, and taking its options positionally takes about 10% off."""
        local, first_use, collect = self.scanner.inline()
        max_value_bytes = self._max_value_bytes
        stage2 = self._stage2
        redact_str = self._redact_str
        redact_any = self._redact_any
        count_failure = self._count_failure

        # Not keyword-only like the method: CPython fills missing keyword-only arguments from
        # a dict, about 25 ns a call. Callers still pass them by keyword (the documented API).
        def redact(
            value: Any,
            trace_id: str | LazyTraceId | None = None,
            findings: list[Finding] | None = None,
            path: str = "",
        ) -> Any:
            try:
                if type(value) is str:
                    if len(value) <= max_value_bytes:
                        try:
                            data = value.encode()
                        except UnicodeEncodeError:
                            data = value.encode("utf-8", "surrogatepass")
                        triggered: list[int] = []
                        try:
                            scan, scratch = local.once
                        except AttributeError:
                            scan, scratch = first_use()
                        scan(data, collect, 0, triggered, scratch)
                        if not triggered:
                            return value
                        return stage2(value, triggered, trace_id, findings, path, data)
                    return redact_str(value, trace_id, findings, path)
                return redact_any(value, trace_id, findings, path, 0)
            except Exception:  # fail closed: the caller gets a placeholder, never the raw value
                count_failure("redact")
                return (
                    FAILED_PLACEHOLDER
                    if not isinstance(value, bytes)
                    else FAILED_PLACEHOLDER.encode()
                )

        return redact

    def redact_line(
        self,
        line: bytes,
        triggered: list[int] | None,
        *,
        trace_id: TraceIdArg = None,
        findings: list[Finding] | None = None,
    ) -> bytes:
        """Stage 2 for one line whose stage-1 triggers are already known (from a chunk scan);
        ``triggered=None`` runs stage 1 on the line itself."""
        try:
            return self._redact_bytes(line, trace_id, findings, "", triggered)
        except Exception:
            self._count_failure("redact_line")
            return FAILED_PLACEHOLDER.encode()

    def is_clean(self, data: bytes) -> bool:
        """Stage 1 alone: True when no rule could match in ``data`` (UTF-8 bytes)."""
        return not self.scanner.triggered(data)

    def is_clean_text(self, text: str) -> bool:
        """Stage 1 over one string: True only when no rule could match in it (the one-scan
        test of a plain log message; False when unsure, as :meth:`is_clean_texts`)."""
        try:
            try:
                data = text.encode()
            except UnicodeEncodeError:
                data = text.encode("utf-8", "surrogatepass")
            return len(data) <= self._max_value_bytes and not self._triggered(data)
        except Exception:
            return False

    def is_clean_texts(self, texts: Sequence[str | bytes]) -> bool:
        """Stage 1 over several texts in one scan: True only when no rule could match in any.

        The texts are joined with newlines. That is sound because no trigger matches a newline
        or is anchored to the start of a value, so a trigger that fires in one text fires in the
        joined buffer too (``scrub`` relies on the same for whole chunks). False when unsure:
        too long for ``max_value_bytes``, or the scan failed.
        """
        if not texts:
            return True
        try:
            data = "\n".join(texts).encode()  # type: ignore[arg-type]  # all str: the usual case
        except (TypeError, UnicodeEncodeError):  # bytes among them, or lone surrogates
            parts = [t if isinstance(t, bytes) else _utf8(t) for t in texts]
            data = b"\n".join(parts)
        try:
            return len(data) <= self._max_value_bytes and not self._triggered(data)
        except Exception:  # "not known clean": redact() meets the same trouble and fails closed
            return False

    def covers_key(self, key: str) -> bool:
        """Whether a key-name rule covers ``key``: its value is masked whatever it looks like."""
        return bool(self._keys) and self._keys.match(key) is not None

    def covers_named_value(self, mapping: dict[Any, Any]) -> bool:
        """Whether ``mapping`` is a name/value pair whose name a key-name rule covers
        (``{"name": "DB_PASSWORD", "value": ...}``): its value is masked whatever it is."""
        return bool(self._keys) and self._keys.named_value(mapping) is not None

    # -- dispatch -----------------------------------------------------------------------------

    def _redact_any(
        self,
        value: Any,
        trace_id: TraceIdArg,
        findings: list[Finding] | None,
        path: str,
        depth: int,
    ) -> Any:
        if isinstance(value, str):
            return self._redact_str(value, trace_id, findings, path)
        if isinstance(value, bytes):
            return self._redact_bytes(value, trace_id, findings, path)
        if isinstance(value, dict):
            return self._redact_dict(value, trace_id, findings, path, depth)
        if isinstance(value, (list, tuple)):
            return self._redact_sequence(value, trace_id, findings, path, depth)
        if type(value) is int and not -SHORTEST_NUMBER_SECRET < value < SHORTEST_NUMBER_SECRET:
            # A card number or SSN can arrive as a JSON number; a masked one becomes a string.
            text = str(value)
            out = self._redact_str(text, trace_id, findings, path)
            return value if out is text else out
        return value

    def _redact_dict(
        self,
        value: dict[Any, Any],
        trace_id: TraceIdArg,
        findings: list[Finding] | None,
        path: str,
        depth: int,
    ) -> Any:
        if depth >= MAX_DEPTH:
            self._count_failure("depth")
            return FAILED_PLACEHOLDER
        out: dict[Any, Any] | None = None
        # {"name": "DB_PASSWORD", "value": "..."}: the value field counts as the named key.
        named = self._keys.named_value(value) if self._keys else None
        for key, item in value.items():
            child = f"{path}.{key}" if path else str(key)
            keyname = self._keys.match(key) if (self._keys and isinstance(key, str)) else None
            if named is not None and key == named[0]:
                keyname = named[1]
            if keyname is None or isinstance(item, dict):
                new = self._redact_any(item, trace_id, findings, child, depth + 1)
            elif isinstance(item, (list, tuple)):
                new = self._mask_each(item, keyname, trace_id, findings, child, depth + 1)
            else:
                new = self._mask_whole(item, keyname, trace_id, findings, child)
                if new is item:  # the rule's validator declined it: redact it like any value
                    new = self._redact_any(item, trace_id, findings, child, depth + 1)
            if new is not item:
                if out is None:
                    out = dict(value)
                out[key] = new
        return value if out is None else out

    def _redact_sequence(
        self,
        value: list[Any] | tuple[Any, ...],
        trace_id: TraceIdArg,
        findings: list[Finding] | None,
        path: str,
        depth: int,
    ) -> Any:
        if depth >= MAX_DEPTH:
            self._count_failure("depth")
            return FAILED_PLACEHOLDER
        out: list[Any] | None = None
        for i, item in enumerate(value):
            new = self._redact_any(item, trace_id, findings, f"{path}[{i}]", depth + 1)
            if new is not item:
                if out is None:
                    out = list(value)
                out[i] = new
        if out is None:
            return value
        return tuple(out) if isinstance(value, tuple) else out

    def _mask_each(
        self,
        items: list[Any] | tuple[Any, ...],
        rule: KeyNameRule,
        trace_id: TraceIdArg,
        findings: list[Finding] | None,
        path: str,
        depth: int,
    ) -> Any:
        """``{"password": ["a", "b"]}``: every scalar under a sensitive key is its value."""
        if depth >= MAX_DEPTH:
            self._count_failure("depth")
            return FAILED_PLACEHOLDER
        out = [
            self._redact_any(v, trace_id, findings, f"{path}[{i}]", depth + 1)
            if isinstance(v, (dict, list, tuple))
            else self._mask_whole(v, rule, trace_id, findings, f"{path}[{i}]")
            for i, v in enumerate(items)
        ]
        if all(a is b for a, b in zip(out, items, strict=False)):
            return items
        return tuple(out) if isinstance(items, tuple) else out

    def _mask_whole(
        self,
        item: Any,
        rule: KeyNameRule,
        trace_id: TraceIdArg,
        findings: list[Finding] | None,
        path: str,
    ) -> Any:
        """The value under a sensitive key: masked entire, whatever its type or shape."""
        if item is None or isinstance(item, bool):
            return item
        text = item.decode("utf-8", "surrogateescape") if isinstance(item, bytes) else str(item)
        if not text or PLACEHOLDER_RE.fullmatch(text) or text == FAILED_PLACEHOLDER:
            return item
        if rule.validator is not None and rule.validator(text) is False:
            return item  # not this rule's kind of value; the caller redacts it as usual
        if is_other_tools_mask(text):
            return item  # "[FILTERED]", "REDACTED", "***": masked before it reached us
        # A cookie header's values are masked one by one, its names and attributes kept.
        split = VALUE_SPANS.get(rule.value)
        if split is None:
            spans = [(0, len(text), rule)]
        else:
            spans = [
                (start, end, rule)
                for start, end in split(text)
                if not PLACEHOLDER_RE.fullmatch(text, start, end)  # masked before
            ]
            if not spans:
                return item  # a cookie being cleared, or one masked before: no value
        out = "".join(self._mask_spans(text, spans, trace_id, findings, path))
        return out.encode("utf-8", "surrogateescape") if isinstance(item, bytes) else out

    def _mask_spans(
        self,
        text: str,
        spans: Iterable[tuple[int, int, Rule | KeyNameRule]],
        trace_id: TraceIdArg,
        findings: list[Finding] | None,
        path: str,
    ) -> list[str]:
        """``text`` with each span (sorted, non-overlapping) masked by its rule, counted and
        reported: the pieces to join, text and placeholders in turn (``[1::2]`` are the
        placeholders)."""
        pieces: list[str] = []
        cursor = 0
        for start, end, rule in spans:
            original = text[start:end]
            ref = self._make_ref(_trace_value(trace_id), rule.label, original)
            masked = placeholder(rule.label, mask_text(rule.mask, original), ref)
            pieces.append(text[cursor:start])
            pieces.append(masked)
            cursor = end
            self.redactions[rule.id] += 1
            if findings is not None:
                findings.append(
                    Finding(
                        rule.id, rule.category, rule.label, ref, masked, path, start, end, original
                    )
                )
        pieces.append(text[cursor:])
        return pieces

    def _redact_bytes(
        self,
        value: bytes,
        trace_id: TraceIdArg,
        findings: list[Finding] | None,
        path: str,
        triggered: list[int] | None = None,
    ) -> bytes:
        if len(value) > self._max_value_bytes:
            self.oversized += 1
            return OVERSIZED_PLACEHOLDER.encode()
        if triggered is None:
            triggered = self.scanner.triggered(value)
        if not triggered:
            return value
        text = value.decode("utf-8", "surrogateescape")
        out = self._stage2(text, triggered, trace_id, findings, path, value)
        return value if out is text else out.encode("utf-8", "surrogateescape")

    def _redact_str(
        self, text: str, trace_id: TraceIdArg, findings: list[Finding] | None, path: str
    ) -> str:
        if len(text) > self._max_value_bytes:  # characters ≤ bytes, so this is a lower bound
            self.oversized += 1
            return OVERSIZED_PLACEHOLDER
        data = _utf8(text)
        triggered = self._triggered(data)
        if not triggered:
            return text
        return self._stage2(text, triggered, trace_id, findings, path, data)

    # -- stage 2 ------------------------------------------------------------------------------

    def _stage2(
        self,
        text: str,
        triggered: Iterable[int],
        trace_id: TraceIdArg,
        findings: list[Finding] | None,
        path: str,
        data: bytes,
    ) -> str:
        """Stage 2 over ``text``, whose stage-1 bytes ``data`` (what ``triggered`` came from)
        the anchor scan reuses."""
        timeout_s = self.match_timeout_s * (1 + len(text) / (1 << 20))
        findings_before = len(findings) if findings is not None else 0
        candidates: list[_Candidate] = []
        lowered = text if self._keyworded.isdisjoint(triggered) else text.lower()
        # Anchor starts are byte offsets: they index the str only when it is ASCII. Long texts
        # are searched in full, under the match timeout, as always.
        anchors = self._anchors if len(text) <= _TIMEOUT_FROM_CHARS and text.isascii() else None
        anchor_starts: dict[int, list[int]] | None = None
        # Trigger order, not report order: Hyperscan reports triggers in match order, and
        # candidates that tie on length and priority are settled by the order they come in.
        for index in sorted(triggered):
            for rule in self._gated[index]:
                starts: Sequence[int] | None = None
                if anchors is not None and rule.anchor is not None:
                    if anchor_starts is None:
                        anchor_starts = anchors.starts(data)  # ASCII: the same as text's
                    starts = anchor_starts.get(self._anchor_ids[rule.id], ())
                try:
                    candidates.extend(self._candidates(rule, text, timeout_s, starts))
                except TimeoutError:
                    self._count_failure(f"timeout in rule {rule.id}")
                    return FAILED_PLACEHOLDER
            if index == self._sql_trigger:
                candidates.extend(self._sql_candidates(text))
        if not candidates:
            return text
        protected = _protected_spans(text)
        passes = lambda c: self._passes(c, text, lowered)  # noqa: E731
        chosen = _resolve_overlaps(candidates, protected, passes)
        if any(c.rule.mask_spans is not None for c in chosen):
            chosen = _split_and_refill(text, candidates, chosen, protected, passes)
        if not chosen:
            return text
        if len(chosen) <= _REPEATS_UP_TO:
            chosen = _with_repeats(text, chosen)
        pieces = self._mask_spans(
            text, ((c.start, c.end, c.rule) for c in chosen), trace_id, findings, path
        )
        out = "".join(pieces)
        return self._keep_json_valid(
            text, out, chosen, pieces, trace_id, findings, path, findings_before
        )

    def _candidates(
        self,
        rule: Rule,
        text: str,
        timeout_s: float,
        starts: Sequence[int] | None = None,
    ) -> list[_Candidate]:
        """Stage 2 for one rule: a candidate per match (its ``secret`` group, if any).

        ``starts``: where the rule's anchor matched; the pattern is tried only there. A rule
        that can shrink a rejected match is checked here, as the shorter match is another
        candidate; every other rule's filters are left to :meth:`_passes`.
        """
        pattern = rule.pattern
        has_secret_group = self._has_secret_group.get(rule.id)
        if has_secret_group is None:  # groupindex builds a dict on every access: ask once
            has_secret_group = self._has_secret_group[rule.id] = "secret" in pattern.groupindex
        # Arming the regex timeout costs more than matching a log line. The shipped rules are
        # reviewed and tested for linear matching, so on short text they run without it; rules
        # from other packs, and every rule on long text, run under it.
        guard = rule.guarded or len(text) > _TIMEOUT_FROM_CHARS
        matches: Iterable[Any]
        if starts is not None:
            matches = _anchored_matches(pattern, text, starts, timeout_s if guard else None)
        elif rule.search_anchor:
            matches = _searched_anchor_matches(
                pattern, self._anchor_regex(rule), text, timeout_s if guard else None
            )
        elif guard:
            matches = pattern.finditer(text, timeout=timeout_s)
        else:
            matches = pattern.finditer(text)
        found: list[_Candidate] = []
        if not rule.shrink:
            for m in matches:
                start, end = m.span("secret") if has_secret_group else m.span()
                if start >= 0 and start != end:
                    found.append(_Candidate(start, end, rule, m.start(), False))
            return found
        limit = timeout_s if guard else None
        for m in matches:
            cand = self._checked(rule, text, m, limit, has_secret_group)
            # "%224111...": a URL escape's hex digits began a longer number that failed and
            # swallowed the card; try again right after the escape.
            escape = -1 if cand is not None else text.find("%", max(0, m.start() - 2), m.start())
            if escape >= 0:
                inner = pattern.match(text, escape + 3, timeout=limit)
                if inner is not None:
                    cand = self._checked(rule, text, inner, limit, has_secret_group)
            if cand is not None:
                found.append(cand)
        return found

    def _checked(
        self, rule: Rule, text: str, m: Any, timeout_s: float | None, has_secret_group: bool
    ) -> _Candidate | None:
        """A shrinking rule's candidate for match ``m`` (or the longest shorter match at its
        start that passes), with every filter checked; None when none passes."""
        start, end = m.span("secret") if has_secret_group else m.span()
        if start < 0 or start == end:
            return None
        if rule.validator is not None and rule.validator(text[start:end]) is False:
            # "4111 1111 1111 1111 123 cvv": the longest shape failed the checksum; a
            # shorter one ending earlier (a group less) may be the card.
            m = self._shrink(rule, text, m, timeout_s, has_secret_group)
            if m is None:
                return None
            start, end = m.span("secret") if has_secret_group else m.span()
        cand = _Candidate(start, end, rule, m.start())
        if rule.min_entropy or rule.keywords:
            return cand if self._passes(cand, text, None, validated=True) else None
        return cand

    def _anchor_regex(self, rule: Rule) -> Any:
        """``rule``'s anchor as a compiled regex pattern."""
        anchor = self._anchor_regexes.get(rule.id)
        if anchor is None:
            assert rule.anchor is not None  # Rule.search_anchor is only set with an anchor
            cache = self._pattern_cache
            anchor = cache.compile(rule.anchor, 0) if cache else regex.compile(rule.anchor)
            self._anchor_regexes[rule.id] = anchor
        return anchor

    @staticmethod
    def _passes(cand: _Candidate, text: str, lowered: str | None, validated: bool = False) -> bool:
        """Whether ``cand`` passes its rule's validator, entropy and keyword filters
        (``lowered``: ``text.lower()``, or None to lower the keyword window here)."""
        rule = cand.rule
        secret = text[cand.start : cand.end]
        if not validated and rule.validator is not None and rule.validator(secret) is False:
            return False
        if rule.min_entropy and not entropy_at_least(secret, rule.min_entropy):
            return False
        if rule.keywords:
            begin = max(0, cand.match_start - rule.keyword_window)
            if lowered is None:
                window = text[begin : cand.match_start].lower()
            else:
                window = lowered[begin : cand.match_start]
            if not any(k in window for k in rule.keywords):
                return False
        return True

    @staticmethod
    def _shrink(
        rule: Rule, text: str, m: Any, timeout_s: float | None, has_secret_group: bool
    ) -> Any:
        """The longest shorter match of ``rule`` at ``m``'s start that its validator accepts
        (``timeout_s`` None: unguarded, as the search that found ``m``)."""
        assert rule.validator is not None
        matched = m.group()
        if matched.isalnum():
            return None  # one unbroken run: a shorter match would end inside it
        start = m.start()
        endpos = m.end() - 1
        for _ in range(8):
            shorter = rule.pattern.match(text, start, endpos, timeout=timeout_s)
            if shorter is None:
                return None
            end = shorter.end()
            # Cutting the text short hides what follows from the pattern's lookahead: a shorter
            # match must still end at a word boundary of the real text (a group, not a digit
            # run). One that ends inside a run is retried before the whole run: a group less.
            if _word_char(text[end : end + 1]):
                while end > start and _word_char(text[end - 1]):
                    end -= 1
                endpos = end
                continue
            span = shorter.span("secret") if has_secret_group else shorter.span()
            if rule.validator(text[span[0] : span[1]]) is not False:
                return shorter
            endpos = end - 1
        return None

    def _sql_candidates(self, text: str) -> Iterator[_Candidate]:
        for start, end, keyname in sql.sql_value_spans(text, self._keys):
            value = text[start:end]
            validator = keyname.validator
            if validator is not None and validator(value) is False:
                continue
            if validator is None and not not_placeholder_like(value):
                continue
            yield _Candidate(start, end, self._keyname_text_rules[keyname.id])

    def rule_spans(self, rule: Rule, text: str) -> list[tuple[int, int]]:
        """What ``rule`` alone finds in ``text`` (for rule tests; no masking, no stage 1)."""
        lowered = text.lower()
        found = [
            c
            for c in self._candidates(rule, text, self.match_timeout_s)
            if c.checked or self._passes(c, text, lowered)
        ]
        if rule.mask_spans is not None:
            found = _split_into_masked_spans(text, found)
        return [(c.start, c.end) for c in found]

    def trigger_fires(self, rule: Rule, text: str) -> bool:
        """Whether stage 1 lets ``rule`` run on ``text``."""
        data = text.encode("utf-8", "surrogatepass")
        return any(rule in self._gated[i] for i in self.scanner.triggered(data))

    def _keep_json_valid(
        self,
        before: str,
        after: str,
        replaced: list[_Candidate],
        pieces: list[str],
        trace_id: TraceIdArg,
        findings: list[Finding] | None,
        path: str,
        findings_before: int,
    ) -> str:
        """JSON in, JSON out: if text redaction broke a JSON document, mend it or, failing
        that, redact the document structurally."""
        head = before[:1]
        if head not in ("{", "[") and (not head.isspace() or before.lstrip()[:1] not in ("{", "[")):
            return after  # not JSON (checked without copying the text, as nearly always)
        if "\\" not in before and _all_inside_strings(before, replaced):
            # Without backslashes every quote delimits a string, so an odd count before a span
            # puts it inside one; a placeholder (no quotes, backslashes or control characters)
            # in place of part of a string leaves valid JSON valid and invalid JSON invalid.
            return after
        import orjson  # here, not at the top: most processes never get this far

        try:
            orjson.loads(after)
            return after
        except orjson.JSONDecodeError:
            pass
        # {"pan":4111111111111111}: a number masked in place is a placeholder outside any
        # string. Quoted, it is a string value, and the decision stays the text's, which saw the
        # number's key and neighbours (the structural pass sees a bare number alone).
        quoted = _quote_masked_numbers(before, replaced, pieces)
        if quoted is not None:
            try:
                orjson.loads(quoted)
                return quoted
            except orjson.JSONDecodeError:
                pass
        try:
            document = orjson.loads(before)
        except orjson.JSONDecodeError:
            return after  # it was not JSON to begin with
        if findings is not None:
            del findings[findings_before:]  # the structural pass reports them again, with paths
        redacted = self._redact_any(document, trace_id, findings, path, 0)
        return orjson.dumps(redacted).decode()

    def _count_failure(self, where: str) -> None:
        with self._lock:
            self.failures += 1
            first = self.failures == 1
        if first:  # log once; never with the value
            import logging  # here: a process that never fails a value does without it

            logging.getLogger("redactor.internal").warning(
                "redaction failed (%s); value replaced by %s", where, FAILED_PLACEHOLDER
            )


def _word_char(char: str) -> bool:
    return char.isalnum() or char == "_"


def _anchored_matches(
    pattern: Any, text: str, starts: Iterable[int], timeout_s: float | None
) -> Iterator[Any]:
    """What ``pattern.finditer(text)`` yields, when every match starts at one of ``starts``
    (ascending): a match tried at each start, skipping starts inside the last match.
    ``timeout_s`` bounds all the tries together, as it bounds one ``finditer``."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    end = 0
    for start in starts:
        if start < end:
            continue
        if deadline is None:
            m = pattern.match(text, start)
        else:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("anchored search timed out")
            m = pattern.match(text, start, timeout=remaining)
        if m is not None:
            end = max(m.end(), start + 1)
            yield m


def _searched_anchor_matches(
    pattern: Any, anchor: Any, text: str, timeout_s: float | None
) -> Iterator[Any]:
    """What ``pattern.finditer(text)`` yields, for a pattern whose every match starts where
    ``anchor`` matches, without byte offsets from Hyperscan: the pattern is tried only at the
    anchor's matches (an overlapped search: "access_token" holds "token"). The search for
    the anchor runs under ``timeout_s`` too: on megabytes without a key name it is most of
    the work."""
    starts = (m.start() for m in anchor.finditer(text, overlapped=True, timeout=timeout_s))
    return _anchored_matches(pattern, text, starts, timeout_s)


def _protected_spans(text: str) -> list[tuple[int, int]]:
    """Existing placeholders: never matched into, so redaction is idempotent."""
    if "#" not in text or "[" not in text:
        return []
    return [m.span() for m in PLACEHOLDER_RE.finditer(text)]


#: Past this many candidates and placeholders, overlaps are found in a map of taken positions
#: instead of by comparing with every span taken so far (quadratic: a 64 KB value of short
#: secrets spent a second there).
_MANY_SPANS = 32


class _TakenPositions:
    """One byte per position of a text, set where a span was taken: a span overlaps a taken
    one exactly when a set byte lies in its range. Linear in the spans' lengths, where
    comparing each span with every one taken so far is quadratic in their number."""

    __slots__ = ("_at",)

    def __init__(self, length: int, spans: Iterable[tuple[int, int]]) -> None:
        self._at = bytearray(length)
        for start, end in spans:
            self.take(start, end)

    def take(self, start: int, end: int) -> None:
        self._at[start:end] = b"\x01" * (end - start)

    def free(self, start: int, end: int) -> bool:
        return self._at.find(1, start, end) < 0


def _resolve_overlaps(
    candidates: list[_Candidate],
    protected: list[tuple[int, int]],
    passes: Callable[[_Candidate], bool],
) -> list[_Candidate]:
    """Longest span wins, then priority; the result is sorted and non-overlapping.

    A candidate not yet checked is checked (``passes``) only when it would be taken; one that
    fails is dropped as if it had never matched, which is what checking them all first gives.
    """
    if len(candidates) == 1 and not protected:
        cand = candidates[0]
        return candidates if cand.checked or passes(cand) else []
    ordered = sorted(candidates, key=lambda c: (-(c.end - c.start), -c.rule.priority, c.start))
    chosen: list[_Candidate] = []
    if len(candidates) + len(protected) > _MANY_SPANS:
        taken_map = _TakenPositions(
            max(max(c.end for c in candidates), max((e for _, e in protected), default=0)),
            protected,
        )
        for cand in ordered:
            if taken_map.free(cand.start, cand.end) and (cand.checked or passes(cand)):
                taken_map.take(cand.start, cand.end)
                chosen.append(cand)
    else:
        taken: list[tuple[int, int]] = list(protected)
        for cand in ordered:
            start, end = cand.start, cand.end
            for s, e in taken:
                if start < e and s < end:
                    break
            else:
                if cand.checked or passes(cand):
                    taken.append((start, end))
                    chosen.append(cand)
    chosen.sort(key=lambda c: c.start)
    return chosen


#: A secret found once is masked wherever else the same text repeats it as a whole word:
#: ORMs log a statement with its values in and then the values again (args=(...)), JSON logs
#: repeat the message in a field. Only values this long count (a short one, such as a PIN,
#: is a common number elsewhere in the line), and only up to this many findings per text
#: (each is one search of the text).
_REPEAT_MIN_CHARS = 8
_REPEATS_UP_TO = 16
#: More repeats than this of one value is no log line but a flood: the value fails closed
#: (masked whole) rather than costing a placeholder and a finding per repeat.
_REPEATS_MAX = 1000


class _TooManyRepeats(Exception):
    """A found secret repeats more than _REPEATS_MAX times in one value."""


def _with_repeats(text: str, chosen: list[_Candidate]) -> list[_Candidate]:
    """``chosen`` with every other whole-word occurrence of a chosen span's text, masked by the
    same rule, where no span is taken yet; sorted. A number written with separators is looked
    for as its digits too: a rejected CSV record repeats "348-74-4802" as 348744802. And a
    number is looked for digit by digit, as a voice platform logs what a caller keyed or said
    beside what it understood ("4 1 4 7 2 0 …" and 414720…). Linear in the text however often
    a value repeats."""
    taken: _TakenPositions | None = None
    extra: list[_Candidate] = []
    seen: set[str] = set()
    for cand in chosen:
        value = text[cand.start : cand.end]
        digits = _digits_of_number(value)  # 348-74-4802 -> 348744802; None for digits alone
        number = digits or (value if value.isdigit() and len(value) >= 9 else None)
        spelled = " ".join(number) if number else None
        # The value must be there again; its digits alone, or one by one, once anywhere.
        for form, least in ((value, 2), (digits, 1), (spelled, 1)):
            if (
                form is None
                or len(form) < _REPEAT_MIN_CHARS
                or form in seen
                or text.count(form) < least
            ):
                continue  # nearly always: the value is there once
            seen.add(form)
            if taken is None:
                taken = _TakenPositions(len(text), [(c.start, c.end) for c in chosen])
            pos = text.find(form)
            while pos >= 0:
                end = pos + len(form)
                if (
                    not (pos > 0 and _word_char(text[pos - 1]))
                    and not (end < len(text) and _word_char(text[end]))
                    and taken.free(pos, end)
                ):
                    taken.take(pos, end)
                    extra.append(_Candidate(pos, end, cand.rule, pos))
                    if len(extra) > _REPEATS_MAX:
                        raise _TooManyRepeats
                pos = text.find(form, end)
    if not extra:
        return chosen
    return sorted(chosen + extra, key=lambda c: c.start)


_NUMBER_SEPARATORS = frozenset(" -./")


def _digits_of_number(value: str) -> str | None:
    """The digits of a card number or SSN written with separators (4111 1111 1111 1111,
    348-74-4802); None for anything else."""
    if value.isdigit() or not value[:1].isdigit():
        return None
    digits = "".join(c for c in value if c.isdigit())
    if len(digits) < 9 or any(not c.isdigit() and c not in _NUMBER_SEPARATORS for c in value):
        return None
    return digits


def _split_into_masked_spans(text: str, chosen: list[_Candidate]) -> list[_Candidate]:
    """``chosen`` with each candidate whose rule masks parts of a match (Rule.mask_spans)
    replaced by a candidate per part, in order; a match without parts drops out."""
    spans: list[_Candidate] = []
    for cand in chosen:
        split = cand.rule.mask_spans
        if split is None:
            spans.append(cand)
            continue
        for start, end in split(text[cand.start : cand.end]):
            spans.append(
                _Candidate(cand.start + start, cand.start + end, cand.rule, cand.match_start)
            )
    return spans


def _split_and_refill(
    text: str,
    candidates: list[_Candidate],
    chosen: list[_Candidate],
    protected: list[tuple[int, int]],
    passes: Callable[[_Candidate], bool],
) -> list[_Candidate]:
    """``chosen`` split into masked parts (:func:`_split_into_masked_spans`), plus the
    candidates that lost only to the whole of a split match, where they fit between its parts.

    A cookie header's match runs to the end of the line, but only some of its values are
    masked: a credential after it under its own key ("Set-Cookie: sid=…; access_code=0001")
    would otherwise stay readable on the first pass and be masked on the second, once the
    cookie's value is a placeholder and its match no longer covers the rest."""
    split = _split_into_masked_spans(text, chosen)
    chosen_ids = {id(c) for c in chosen}
    losers = [c for c in candidates if id(c) not in chosen_ids]
    if not losers:
        return split
    # the split parts and every other chosen span (split passes those through) stay taken
    taken = protected + [(c.start, c.end) for c in split]
    refill = _resolve_overlaps(losers, taken, passes)
    if not refill:
        return split
    return sorted(split + refill, key=lambda c: c.start)


def _quote_masked_numbers(text: str, spans: list[_Candidate], pieces: list[str]) -> str | None:
    """``pieces`` (``text`` with each span masked: text and placeholders in turn) joined, with
    the placeholders of spans that were whole JSON numbers (digits between a ``:``, ``[`` or
    ``,`` and a ``,``, ``}`` or ``]``) in quotes; None when no span was such a number."""
    quoted = list(pieces)
    quoted_any = False
    for i, span in enumerate(spans):
        if (
            text[span.start : span.end].isdigit()
            and _next_token(text, span.start, -1) in (":", "[", ",")
            and _next_token(text, span.end, 1) in (",", "}", "]")
        ):
            quoted[2 * i + 1] = f'"{quoted[2 * i + 1]}"'
            quoted_any = True
    return "".join(quoted) if quoted_any else None


def _next_token(text: str, index: int, step: int) -> str:
    """The first character other than JSON whitespace from ``index`` on (``step`` 1) or
    before it (``step`` -1); empty at either end of ``text``."""
    i = index if step > 0 else index - 1
    while 0 <= i < len(text) and text[i] in " \t\r\n":
        i += step
    return text[i] if 0 <= i < len(text) else ""


def _all_inside_strings(text: str, spans: list[_Candidate]) -> bool:
    """Whether each span (sorted, non-overlapping) lies inside one string of ``text``, JSON
    without backslashes: no quote in the span and an odd number of quotes before it."""
    quotes = 0
    counted_to = 0
    for span in spans:
        if text.find('"', span.start, span.end) >= 0:
            return False
        quotes += text.count('"', counted_to, span.start)
        counted_to = span.start
        if quotes % 2 == 0:
            return False
    return True
