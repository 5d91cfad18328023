"""Rule packs: TOML files in ``rules/`` turned into frozen :class:`Rule` objects.

Everything is checked here, at load time. Patterns from user packs are compiled here too; the
shipped packs' stage-2 patterns are compiled on first use (see :attr:`Rule.pattern`, and
``compiled.py`` for how the engine keeps them between runs), which is the only change a rule
ever sees after loading.
The file format is documented in ``rules/README.md``.
"""

from __future__ import annotations

import hashlib
import marshal
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import regex

from redactor.engine.compiled import PatternCache
from redactor.engine.interface import RuleError
from redactor.engine.linear import quadratic_run
from redactor.engine.masks import MASK_STYLES
from redactor.engine.sealed import SealedFiles
from redactor.engine.validators import VALIDATORS, Validator

CATEGORIES = frozenset({"card", "ssn", "secret", "pii"})

#: The packs shipped with redactor. Their patterns are reviewed for linear matching and the test
#: suite compiles them all and runs them over 10 MB adversarial lines, so they are compiled on
#: first use; rules from anywhere else are compiled at load and always guarded by the match
#: timeout (see ``Rule.guarded``). They live in the project's top-level ``rules/``;
#: ``redactor/_packs`` links there, so a wheel carries them as package data and a checkout or
#: an editable install reads the directory itself.
SHIPPED_RULES_DIR = (Path(__file__).resolve().parent.parent / "_packs").resolve()
# Plain re for these: compiling with regex at import costs milliseconds of every start-up.
_LABEL_RE = re.compile(r"[a-z][a-z0-9_]{0,39}")
_ID_RE = re.compile(r"[a-z0-9][a-z0-9_.\-]{1,80}")
# Key names start with a letter of any script (пароль, パスワード), as keys in localised apps do.
# A key name: a word, or up to four words joined by single spaces (mot de passe).
# The combining marks of the Indic and Southeast Asian scripts are not \w, but their words
# are spelled with them (पासवर्ड, รหัสผ่าน).
_MARKS = "\u0300-\u036f\u0900-\u0dff\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff"
_KEY_NAME_RE = re.compile(rf"[^\W\d_][\w\-{_MARKS}]{{0,39}}(?: [\w\-{_MARKS}]{{1,39}}){{0,3}}")


@dataclass(frozen=True, slots=True)
class Example:
    """An inline example: ``text`` must (or must not) yield a finding.

    ``secret`` is the masked span.
    """

    text: str = field(repr=False)
    secret: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Rule:
    """One detector. ``trigger`` feeds stage 1, everything else stage 2.

    The stage-2 pattern is kept as source and flags and compiled on first use of
    :attr:`pattern`: compiling them all is most of the start-up time of a short run, and a
    run meets few of them.
    """

    id: str
    pack: str
    category: str
    label: str
    trigger: str
    pattern_source: str
    pattern_flags: int = 0
    # Where every match of the pattern starts (a stage-1-syntax regex). When set, stage 2 tries
    # the pattern only at the anchor's match starts, found by Hyperscan, instead of at every
    # position of the text: the same matches, far fewer attempts for keyword-led patterns.
    anchor: str | None = None
    # With an anchor: 0, the pattern's matches start where the anchor's matches start; n > 0,
    # they start n bytes before the anchor's matches end, so that the anchor can also say what
    # comes before a match ("not a digit, or a URL escape"), which Hyperscan cannot look behind
    # for. Only a fixed-length end of the anchor gives one start per match.
    anchor_tail: int = 0
    # Hyperscan only: the trigger as several expressions whose union it is, scanned under one
    # id. Key-name rules set it (keynames._text_rule); everywhere else it is the trigger alone.
    trigger_parts: tuple[str, ...] = ()
    # Where Hyperscan gives no anchor offsets (no Hyperscan, long or non-ASCII text), find the
    # anchor with ``regex`` and try the pattern only at its matches, rather than at every
    # position. Set on key-name rules (keynames._text_rule): tried at every position, their
    # value grammar of up to 4 KiB costs milliseconds per kilobyte of a value full of names.
    search_anchor: bool = False
    validator_name: str | None = None
    validator: Validator | None = None
    keywords: tuple[str, ...] = ()
    keyword_window: int = 64
    min_entropy: float = 0.0
    mask: str = "hidden"
    # Where a match holds several values (a cookie header's pairs), the spans within it that
    # are masked, each as a finding of its own; None: the whole match.
    mask_spans: Callable[[str], list[tuple[int, int]]] | None = None
    priority: int = 50
    shrink: bool = False  # on a validator reject, retry shorter matches at the same start
    # "base64": the match is base64 of text, masked whole only when the engine finds a secret
    # in that text (a JSON document sent as base64); None: the match is the value itself.
    decoded: str | None = None
    guarded: bool = True  # arm the match timeout on every value, not only on long ones
    must_match: tuple[Example, ...] = ()
    must_not_match: tuple[Example, ...] = ()
    # init=False: dataclasses.replace() must not carry a compiled pattern over to a new source.
    _compiled: regex.Pattern[str] | None = field(
        default=None, init=False, repr=False, compare=False
    )
    _pattern_cache: PatternCache | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def pattern(self) -> regex.Pattern[str]:
        """The compiled stage-2 pattern (on the hot path: one slot read once compiled)."""
        compiled = self._compiled
        return compiled if compiled is not None else self.compile()

    @property
    def is_compiled(self) -> bool:
        """Whether :attr:`pattern` has been compiled yet."""
        return self._compiled is not None

    def compile(self) -> regex.Pattern[str]:
        """The compiled pattern, compiled now if need be; ``regex.error`` if it does not compile."""
        compiled = self._compiled
        if compiled is None:
            # No lock: threads racing here each compile an equal pattern and the last store
            # wins. The slot only ever holds None or a finished pattern.
            cache = self._pattern_cache
            if cache is not None:
                compiled = cache.compile(self.pattern_source, self.pattern_flags)
            else:
                compiled = regex.compile(self.pattern_source, self.pattern_flags)
            object.__setattr__(self, "_compiled", compiled)
        return compiled

    def keep_compiled_in(self, cache: PatternCache) -> None:
        """Compile :attr:`pattern`, when it comes to that, through ``cache`` (kept between runs)."""
        object.__setattr__(self, "_pattern_cache", cache)


@dataclass(frozen=True, slots=True)
class KeyNameRule:
    """Masks whatever value sits under a key whose name matches ``names``."""

    id: str
    pack: str
    category: str
    label: str
    names: tuple[str, ...]  # matched as the whole key or as the key's last word(s)
    exact_names: tuple[str, ...] = ()  # matched only as the whole key ("pass", "pw")
    not_names: tuple[str, ...] = ()  # longer keys ending in a name that are not covered
    # "token": up to a delimiter; "line": to the end of the line or quote; "cookies": as
    # "line", each name=value pair's value masked apart (Cookie and Set-Cookie headers)
    value: str = "token"
    validator_name: str | None = None  # default: reject empty/placeholder-like values only
    validator: Validator | None = None
    mask: str = "hidden"
    must_match: tuple[Example, ...] = ()
    must_not_match: tuple[Example, ...] = ()


@dataclass(frozen=True, slots=True)
class Pack:
    name: str
    description: str
    enabled_by_default: bool
    path: Path


@dataclass(frozen=True, slots=True)
class RuleSet:
    """The rules in force: pattern rules and key-name rules from the enabled packs."""

    rules: tuple[Rule, ...]
    keynames: tuple[KeyNameRule, ...]
    packs: tuple[Pack, ...]


def _examples(raw: Any, where: str) -> tuple[Example, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise RuleError(f"{where}: examples must be a list")
    out = []
    for item in raw:
        if isinstance(item, str):
            out.append(Example(item))
        elif isinstance(item, dict) and isinstance(item.get("text"), str):
            secret = item.get("secret")
            if secret is not None and (not isinstance(secret, str) or secret not in item["text"]):
                raise RuleError(f"{where}: example 'secret' must be a substring of its 'text'")
            out.append(Example(item["text"], secret))
        else:
            raise RuleError(f"{where}: an example is a string or {{ text = ..., secret = ... }}")
    return tuple(out)


def _str(table: dict[str, Any], key: str, where: str, default: str | None = None) -> str:
    value = table.get(key, default)
    if not isinstance(value, str) or not value:
        raise RuleError(f"{where}: '{key}' must be a non-empty string")
    return value


def _validator(raw: dict[str, Any], where: str) -> tuple[str | None, Validator | None]:
    name = raw.get("validator")
    if name is None:
        return None, None
    validator = VALIDATORS.get(name)
    if validator is None:
        raise RuleError(f"{where}: unknown validator {name!r}; known: {sorted(VALIDATORS)}")
    return name, validator


def _mask(raw: dict[str, Any], where: str) -> str:
    mask = raw.get("mask", "hidden")
    if mask not in MASK_STYLES:
        raise RuleError(f"{where}: unknown mask {mask!r}; known: {sorted(MASK_STYLES)}")
    return str(mask)


def _compile_rule(
    raw: dict[str, Any], pack: str, pack_category: str | None, where: str, guarded: bool = True
) -> Rule:
    rule_id = _str(raw, "id", where)
    if not _ID_RE.fullmatch(rule_id):
        raise RuleError(f"{where}: invalid rule id {rule_id!r}")
    where = f"{where} ({rule_id})"
    category = _str(raw, "category", where, pack_category)
    if category not in CATEGORIES:
        raise RuleError(f"{where}: category must be one of {sorted(CATEGORIES)}")
    label = _str(raw, "label", where)
    if not _LABEL_RE.fullmatch(label):
        raise RuleError(f"{where}: label must match [a-z][a-z0-9_]*, got {label!r}")
    trigger = _str(raw, "trigger", where)
    anchor = raw.get("anchor")
    if anchor is not None and (not isinstance(anchor, str) or not anchor):
        raise RuleError(f"{where}: 'anchor' must be a non-empty string")
    anchor_tail = raw.get("anchor_tail", 0)
    if type(anchor_tail) is not int or anchor_tail < 0 or (anchor_tail and anchor is None):
        raise RuleError(f"{where}: 'anchor_tail' must be a byte count >= 0, with an anchor")
    # Triggers and anchors must also compile for the portable scanner, which uses the re
    # module, and search a long line in linear time there (see linear.py). The shipped packs'
    # are checked by their tests and by `redactor rules test --scanner regex`; checking them
    # again here would cost every start-up.
    if guarded:
        for kind, source in (("trigger", trigger), ("anchor", anchor)):
            try:
                if source is not None:
                    re.compile(source.encode())
            except re.error as exc:
                raise RuleError(f"{where}: {kind} does not compile: {exc}") from None
        run = quadratic_run(trigger)
        if run is not None:
            raise RuleError(
                f"{where}: trigger has an unbounded run {run} that its own prefix fits in, "
                "which makes stage 1 quadratic on a long line without Hyperscan: bound it by "
                "what the pattern allows (four bytes a character), e.g. {0,400}"
            )
    flags = regex.VERSION1 if raw.get("version1") else 0
    for flag in raw.get("flags", []):
        if flag == "ignorecase":
            flags |= regex.IGNORECASE
        else:
            raise RuleError(f"{where}: unknown flag {flag!r}")
    source = _str(raw, "pattern", where)
    decoded = raw.get("decoded")
    if decoded not in (None, "base64"):
        raise RuleError(f"{where}: 'decoded' must be \"base64\"")
    validator_name, validator = _validator(raw, where)
    mask = _mask(raw, where)
    keywords = tuple(k.lower() for k in raw.get("keywords", []))
    known = {
        "id",
        "category",
        "label",
        "trigger",
        "pattern",
        "flags",
        "validator",
        "keywords",
        "keyword_window",
        "min_entropy",
        "mask",
        "priority",
        "must_match",
        "must_not_match",
        "description",
        "version1",
        "shrink",
        "anchor",
        "anchor_tail",
        "decoded",
    }
    unknown = set(raw) - known
    if unknown:
        raise RuleError(f"{where}: unknown field(s) {sorted(unknown)}")
    rule = Rule(
        id=rule_id,
        pack=pack,
        category=category,
        label=label,
        trigger=trigger,
        pattern_source=source,
        pattern_flags=flags,
        validator_name=validator_name,
        validator=validator,
        keywords=keywords,
        keyword_window=int(raw.get("keyword_window", 64)),
        min_entropy=float(raw.get("min_entropy", 0.0)),
        mask=mask,
        priority=int(raw.get("priority", 50)),
        shrink=bool(raw.get("shrink", False)),
        decoded=decoded,
        anchor=anchor,
        anchor_tail=anchor_tail,
        guarded=guarded,
        must_match=_examples(raw.get("must_match"), where),
        must_not_match=_examples(raw.get("must_not_match"), where),
    )
    if guarded:  # a user's pattern is compiled now, so that a bad one fails the load
        try:
            rule.compile()
        except regex.error as exc:
            raise RuleError(f"{where}: pattern does not compile: {exc}") from None
    return rule


def _compile_keyname(
    raw: dict[str, Any], pack: str, pack_category: str | None, where: str
) -> KeyNameRule:
    rule_id = _str(raw, "id", where)
    where = f"{where} ({rule_id})"
    category = _str(raw, "category", where, pack_category or "secret")
    if category not in CATEGORIES:
        raise RuleError(f"{where}: category must be one of {sorted(CATEGORIES)}")
    label = _str(raw, "label", where)
    if not _LABEL_RE.fullmatch(label):
        raise RuleError(f"{where}: label must match [a-z][a-z0-9_]*, got {label!r}")
    names = tuple(raw.get("names", []))
    exact = tuple(raw.get("exact_names", []))
    not_names = tuple(raw.get("not_names", []))
    for name in names + exact + not_names:
        if not isinstance(name, str) or not _KEY_NAME_RE.fullmatch(name):
            raise RuleError(
                f"{where}: key name {name!r} must be up to four words of letters (any script), "
                "digits, _ or -, with single spaces between"
            )
    if not names and not exact:
        raise RuleError(f"{where}: a key-name rule needs 'names' or 'exact_names'")
    for not_name in not_names:
        if not any(normal_key_name(not_name).endswith(normal_key_name(n)) for n in names):
            raise RuleError(f"{where}: not_names entry {not_name!r} ends in none of the names")
    value = raw.get("value", "token")
    if value not in ("token", "line", "cookies"):
        raise RuleError(f"{where}: 'value' must be 'token', 'line' or 'cookies'")
    validator_name, validator = _validator(raw, where)
    mask = _mask(raw, where)
    unknown = set(raw) - {
        "id",
        "category",
        "label",
        "names",
        "exact_names",
        "not_names",
        "value",
        "validator",
        "mask",
        "must_match",
        "must_not_match",
        "description",
    }
    if unknown:
        raise RuleError(f"{where}: unknown field(s) {sorted(unknown)}")
    return KeyNameRule(
        id=rule_id,
        pack=pack,
        category=category,
        label=label,
        names=names,
        exact_names=exact,
        not_names=not_names,
        value=value,
        validator_name=validator_name,
        validator=validator,
        mask=mask,
        must_match=_examples(raw.get("must_match"), where),
        must_not_match=_examples(raw.get("must_not_match"), where),
    )


def normal_key_name(name: str) -> str:
    """A key name as key-name rules compare them: lower case, without _ - . and space."""
    return "".join(c for c in name.lower() if c not in "_-. ")


def _parse_pack_file(path: Path, cache: SealedFiles | None) -> dict[str, Any]:
    """The TOML document in ``path``; with a ``cache``, kept parsed between runs.

    Parsing the shipped packs is a sizeable part of a short run's start-up (``scrub`` on a
    small file, each CLI call, each application process). The cache holds only the parsed
    document, keyed by a hash of the file's bytes: every check below runs on it as on a fresh
    parse, and an edited file is parsed again.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise RuleError(f"{path}: cannot read: {exc.strerror or type(exc).__name__}") from None
    identity = b"%d.%d\x00%d\x00" % (*sys.version_info[:2], marshal.version)
    identity += hashlib.sha256(raw).digest()
    if cache is not None:
        payload = cache.load("pack", identity)
        if payload is not None:
            try:
                data = marshal.loads(payload)
                if isinstance(data, dict):
                    return data
            except (EOFError, ValueError, TypeError):
                pass
    import tomllib  # here, not at the top: a start-up served from the cache never needs it

    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise RuleError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise RuleError(f"{path}: invalid TOML: {exc}") from None
    if cache is not None:
        try:
            cache.store("pack", identity, marshal.dumps(data))
        except ValueError:
            pass  # a value marshal cannot hold (a TOML date): parse it again next time
    return data


def load_pack(
    path: Path, guarded: bool = True, cache: SealedFiles | None = None
) -> tuple[Pack, list[Rule], list[KeyNameRule]]:
    """Parse and compile one pack file; any problem is a :class:`RuleError` naming the file.

    ``cache`` keeps the parsed file between runs (see :func:`_parse_pack_file`).
    """
    data = _parse_pack_file(path, cache)
    meta = data.get("pack", {})
    name = meta.get("name", path.stem)
    pack = Pack(
        name=name,
        description=meta.get("description", ""),
        enabled_by_default=bool(meta.get("enabled_by_default", True)),
        path=path,
    )
    category = meta.get("category")
    rules = [
        _compile_rule(r, name, category, f"{path.name} rule #{i}", guarded)
        for i, r in enumerate(data.get("rules", []))
    ]
    keynames = [
        _compile_keyname(r, name, category, f"{path.name} keyname #{i}")
        for i, r in enumerate(data.get("keynames", []))
    ]
    return pack, rules, keynames


def load_ruleset(
    dirs: Iterable[Path],
    enabled: Iterable[str] = (),
    disabled: Iterable[str] = (),
    cache: SealedFiles | None = None,
) -> RuleSet:
    """Load every pack in ``dirs``; packs on by default unless disabled, others only if enabled.

    ``cache`` keeps parsed pack files between runs (see :func:`_parse_pack_file`)."""
    enabled, disabled = set(enabled), set(disabled)
    packs: list[Pack] = []
    rules: list[Rule] = []
    keynames: list[KeyNameRule] = []
    seen_ids: dict[str, Path] = {}
    known_packs: set[str] = set()
    for directory in dirs:
        files = sorted(Path(directory).glob("*.toml"))
        if not files:
            raise RuleError(f"no rule packs (*.toml) in {directory}")
        for path in files:
            guarded = Path(directory).resolve() != SHIPPED_RULES_DIR
            pack, pack_rules, pack_keynames = load_pack(path, guarded, cache)
            known_packs.add(pack.name)
            on = (pack.enabled_by_default or pack.name in enabled) and pack.name not in disabled
            pack_ids: list[str] = [r.id for r in pack_rules] + [k.id for k in pack_keynames]
            for rule_id in pack_ids:
                if rule_id in seen_ids:
                    raise RuleError(
                        f"{path}: rule id {rule_id!r} already defined in {seen_ids[rule_id]}"
                    )
                seen_ids[rule_id] = path
            if on:
                packs.append(pack)
                rules.extend(pack_rules)
                keynames.extend(pack_keynames)
    unknown = (enabled | disabled) - known_packs
    if unknown:
        raise RuleError(f"unknown rule pack(s) {sorted(unknown)}; available: {sorted(known_packs)}")
    return RuleSet(rules=tuple(rules), keynames=tuple(keynames), packs=tuple(packs))
