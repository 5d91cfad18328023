"""A rule's trigger must fire wherever its pattern matches: stage 2 only runs where stage 1
fired, so a trigger narrower than its pattern hides secrets the pattern would mask.

Checked on every rule's examples and on the variants of them that logs hold: Unicode and
control spaces where the example has spaces (the patterns' ``\\s`` accepts them, a trigger's
``[ \\t]`` did not), spaced and arrow separators, numbered keys, URL encoding, other case.
Failures name the rule and the variant, never the text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from re import _constants as sre
from re import _parser as sre_parse

import pytest

from redactor.engine import Redactor

VARIANTS: dict[str, Callable[[str], str]] = {
    "as written": lambda t: t,
    "no-break spaces": lambda t: t.replace(" ", "\u00a0"),
    "ideographic spaces": lambda t: t.replace(" ", "\u3000"),
    "tabs": lambda t: t.replace(" ", "\t"),
    "unit separators": lambda t: t.replace(" ", "\x1f"),
    "double spaces": lambda t: t.replace(" ", "  "),
    "spaced =": lambda t: t.replace("=", " = "),
    "spaced :": lambda t: t.replace(":", ": "),
    "arrow for =": lambda t: t.replace("=", " -> "),
    "numbered key": lambda t: t.replace("=", "_2="),
    "%20 for spaces": lambda t: t.replace(" ", "%20"),
    "%3D for =": lambda t: t.replace("=", "%3D"),
    "upper case": str.upper,
    "lower case": str.lower,
    "single quotes": lambda t: t.replace('"', "'"),
    "a letter before": lambda t: "x" + t,
}


def test_triggers_fire_wherever_their_patterns_match(engine: Redactor) -> None:
    misses: set[tuple[str, str]] = set()
    for rule in engine.rules:
        for example in rule.must_match:
            for name, variant in VARIANTS.items():
                text = variant(example.text)
                if engine.rule_spans(rule, text) and not engine.trigger_fires(rule, text):
                    misses.add((rule.id, name))
    assert not misses, f"triggers narrower than their patterns: {sorted(misses)}"


@pytest.mark.parametrize(
    "text",
    [
        "config token -> Zk8vN2pLx4Rt9q",
        "access_token_2=Zk8vN2pLx4Rt9q",
        "customer_tin: 234567891",
        "Social\u00a0Security Number: 634711926",
        "GET /verify?ssn%3D234-56-7891&ok=1",
        "CREATE USER bob IDENTIFIED WITH auth_pam BY 'Zk8vN2pLx4Rt9q'",
        "Authorization:\u00a0Bearer\u00a0Fake5diFoNPcbdaKwtgHwIoALtLinxN1",
    ],
)
def test_forms_that_once_slipped_past_stage_one_are_masked(engine: Redactor, text: str) -> None:
    assert engine.redact(text) != text, "a known form came back unredacted"


@pytest.mark.parametrize("rule_id", ["keyname.password", "card.cvv", "ssn.keyname"])
def test_a_trigger_in_parts_fires_once_for_either_part(engine: Redactor, rule_id: str) -> None:
    # Key-name rules hand Hyperscan their names of up to three letters (pw, cvv, ssn) as an
    # expression apart from the longer ones (in groups of 16); all stay one trigger, reported
    # once per value.
    rule = next(r for r in engine.rules if r.id == rule_id)
    assert len(rule.trigger_parts) >= 2
    short_name = next(n for n in ("pin", "cvv", "ssn") if n in rule.trigger_parts[-1])
    for text in (f"{short_name}=4821", f"x=1 {short_name}: 4821 {rule_id}=2 {short_name}=3"):
        hits = engine.scanner.triggered(text.encode())
        gating = [i for i in hits if rule in engine._gated[i]]
        assert len(gating) == 1, (rule_id, text, hits)
    long_name = {
        "keyname.password": "password",
        "card.cvv": "card_verification",
        "ssn.keyname": "social_security_number",
    }[rule_id]
    assert engine.trigger_fires(rule, f"{long_name}=4821")
    if rule_id == "keyname.password":  # a name from each group of longer names
        for name in ("passwort", "lozinka", "пароль", "mật khẩu", "root_pw"):
            assert engine.trigger_fires(rule, f"{name}=4821"), name
    assert engine.trigger_fires(rule, f"{short_name}=4821")


# Lines of a typical service log without a secret: stage 1 must let every one of them through
# untouched, or each costs a stage-2 pass (a trigger once matched the "7Z " of every ISO
# timestamp and sent 80 % of a clean log to stage 2).
CLEAN_SERVICE_LINES = [
    '10.0.3.17 - - [07/May/2024:06:00:41 +0000] "GET /api/v2/orders/8812 HTTP/1.1" 200 4100 "-" '
    '"Mozilla/5.0 (X11; Linux x86_64)" rt=0.041',
    '{"ts":"2024-05-07T06:00:41.017Z","level":"info","logger":"app.http","msg":"request completed",'
    '"method":"GET","path":"/api/v1/users/17","status":200,"duration_ms":41,'
    '"trace_id":"0af7651916cd43dd8448eb211c80319c","span_id":"b7ad6b7169203331"}',
    'time=2024-05-07T06:00:41.017Z level=info msg="job finished" job=reindex-7 items=123 '
    "duration=41ms worker=worker-3 trace_id=0af7651916cd43dd8448eb211c80319c",
    "2024-05-07T06:00:41.017Z INFO [celery.worker] Task app.tasks.sync_inventory"
    "[0af76519-16cd-43dd-8448-eb211c80319c] succeeded in 0.0410s: None",
    "2024-05-07 06:00:41,017 WARNING [app.payments] retrying charge attempt=2 order=8812 "
    "amount=19.99 currency=EUR region=eu-west-1",
]


@pytest.mark.parametrize("line", CLEAN_SERVICE_LINES, ids=range(len(CLEAN_SERVICE_LINES)))
def test_typical_clean_lines_fire_no_trigger(engine: Redactor, line: str) -> None:
    fired = sorted(r.id for i in engine.scanner.triggered(line.encode()) for r in engine._gated[i])
    assert not fired, f"triggers fired on a clean service log line: {fired}"


# -- linear stage 1 without Hyperscan ---------------------------------------------------------
#
# The regex fallback's stage 1 searches each trigger over the whole value, with no timeout (the
# standard library's `re` has none). A trigger whose unbounded run can hold everything before
# it ("curl[ ][^\\r\\n]*-b", "Component[^\\r\\n]*<hex>") tries that run from every place the
# prefix repeats: a 100 KB line of "Component " took 11 s, a megabyte minutes. Such runs are
# bounded by what the rule's pattern allows (in bytes: four per character). The walk below
# follows each path through a trigger, noting what every byte before a run must be; a run of
# unbounded length whose set takes a byte of each is quadratic on that prefix repeated.

_PATHS_KEPT = 256
_CATEGORIES = {
    sre.CATEGORY_DIGIT: rb"\d",
    sre.CATEGORY_NOT_DIGIT: rb"\D",
    sre.CATEGORY_SPACE: rb"\s",
    sre.CATEGORY_NOT_SPACE: rb"\S",
    sre.CATEGORY_WORD: rb"\w",
    sre.CATEGORY_NOT_WORD: rb"\W",
}
Path = tuple[frozenset[int], ...]  # what each byte before this point must be, in order


def _with_case(values: set[int], ignorecase: bool) -> frozenset[int]:
    if ignorecase:
        values |= {ord(chr(b).swapcase()) for b in values if chr(b).isascii() and chr(b).isalpha()}
    return frozenset(values)


def _byte_set(op: object, av: object, ignorecase: bool) -> frozenset[int] | None:
    """The bytes a one-byte node takes, or None for any other node."""
    if op is sre.LITERAL:
        return _with_case({av}, ignorecase)  # type: ignore[arg-type]
    if op is sre.NOT_LITERAL:
        return frozenset(range(256)) - _with_case({av}, ignorecase)  # type: ignore[arg-type]
    if op is sre.ANY:
        return frozenset(range(256)) - {10}
    if op is not sre.IN:
        return None
    negated, taken = False, set()
    for item, value in av:  # type: ignore[attr-defined]
        if item is sre.NEGATE:
            negated = True
        elif item is sre.LITERAL:
            taken.add(value)
        elif item is sre.RANGE:
            taken.update(range(value[0], value[1] + 1))
        elif item is sre.CATEGORY:
            category = re.compile(_CATEGORIES[value])
            taken.update(b for b in range(256) if category.fullmatch(bytes([b])))
    members = _with_case(taken, ignorecase)
    return frozenset(range(256)) - members if negated else members


def _quadratic_runs(
    nodes: object, paths: set[Path], ignorecase: bool, found: list[str]
) -> set[Path]:
    """The paths after ``nodes``; a run found quadratic is added to ``found``."""
    for op, av in nodes:  # type: ignore[attr-defined]
        one_byte = _byte_set(op, av, ignorecase)
        if one_byte is not None:
            paths = {path + (one_byte,) for path in paths}
        elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT):
            least, most, body = av
            run = _byte_set(*body[0], ignorecase) if len(body) == 1 else None
            if (
                most == sre.MAXREPEAT
                and run is not None
                and any(path and all(need & run for need in path) for path in paths)
            ):
                found.append(bytes(sorted(run))[:12].decode("latin-1"))
            after_one = _quadratic_runs(body, paths, ignorecase, found)
            paths = after_one if least >= 1 else paths | after_one
        elif op is sre.SUBPATTERN:
            flags = av[1]
            paths = _quadratic_runs(av[3], paths, ignorecase or bool(flags & re.I), found)
        elif op is sre.BRANCH:
            paths = set().union(*(_quadratic_runs(alt, paths, ignorecase, found) for alt in av[1]))
        elif op is sre.ATOMIC_GROUP:
            paths = _quadratic_runs(av, paths, ignorecase, found)
        if len(paths) > _PATHS_KEPT:  # the shortest paths are the easiest to repeat
            paths = set(sorted(paths, key=len)[:_PATHS_KEPT])
    return paths


def test_no_trigger_is_quadratic_on_a_long_line(engine: Redactor) -> None:
    quadratic = []
    for rule in engine.rules:
        for trigger in (rule.trigger, *rule.trigger_parts):
            parsed = sre_parse.parse(trigger.encode(), re.MULTILINE)
            found: list[str] = []
            _quadratic_runs(parsed, {()}, bool(parsed.state.flags & re.I), found)
            if found:
                quadratic.append(rule.id)
    assert not quadratic, f"triggers with an unbounded run that their prefix fits in: {quadratic}"


@pytest.mark.parametrize(
    "trigger",
    [
        "curl[ ][^\\r\\n]*(?:-b|--cookie) ",
        "(?:[Cc]omponent|COMPONENT)[^\\r\\n]*[0-9A-F]{32}",
        "(?i)bearer\\.[^\\s]+ ",
        "-u[A-Za-z0-9_\\-]{20}[A-Za-z0-9_\\-]*:",
    ],
)
def test_the_walk_finds_the_runs_that_were_quadratic(trigger: str) -> None:
    parsed = sre_parse.parse(trigger.encode(), re.MULTILINE)
    found: list[str] = []
    _quadratic_runs(parsed, {()}, bool(parsed.state.flags & re.I), found)
    assert found


@pytest.mark.parametrize(
    "trigger",
    ["ISA\\*[0-9]{2}\\*[^*]+\\*01\\*", "invalid user [^\\s]*[!#$]", "curl [^\\r\\n]{0,1210}-b "],
)
def test_the_walk_passes_runs_their_prefix_cannot_fill(trigger: str) -> None:
    parsed = sre_parse.parse(trigger.encode(), re.MULTILINE)
    found: list[str] = []
    _quadratic_runs(parsed, {()}, bool(parsed.state.flags & re.I), found)
    assert not found
