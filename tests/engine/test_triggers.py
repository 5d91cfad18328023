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

import pytest

from redactor.engine import Redactor
from redactor.engine.linear import quadratic_run
from redactor.engine.prefilter import required_literals

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
# (see redactor/engine/linear.py: user packs are refused at load, the shipped ones checked here)


def test_no_shipped_trigger_is_quadratic_on_a_long_line(engine: Redactor) -> None:
    quadratic = sorted(
        rule.id
        for rule in engine.rules
        for trigger in (rule.trigger, *rule.trigger_parts)
        if quadratic_run(trigger) is not None
    )
    assert not quadratic, f"triggers with an unbounded run that their prefix fits in: {quadratic}"


@pytest.mark.parametrize(
    "trigger",
    [
        "curl[ ][^\\r\\n]*(?:-b|--cookie) ",
        "(?:[Cc]omponent|COMPONENT)[^\\r\\n]*[0-9A-F]{32}",
        "(?i)bearer\\.[^\\s]+ ",
        "-u[A-Za-z0-9_\\-]{20}[A-Za-z0-9_\\-]*:",
        "(?i)TOKEN=.*;",
    ],
)
def test_the_walk_finds_runs_that_their_prefix_fits_in(trigger: str) -> None:
    assert quadratic_run(trigger) is not None


@pytest.mark.parametrize(
    "trigger",
    [
        "ISA\\*[0-9]{2}\\*[^*]+\\*01\\*",  # the run stops at the prefix's "*"
        "invalid user [^\\s]*[!#$]",  # ... at its space
        "curl [^\\r\\n]{0,1210}-b ",  # bounded
        "token=[A-Za-z0-9]+;",  # "=" is no letter or digit
    ],
)
def test_the_walk_passes_runs_their_prefix_cannot_fill(trigger: str) -> None:
    assert quadratic_run(trigger) is None


# -- the regex fallback's prefilter ---------------------------------------------------------
# (see redactor/engine/prefilter.py: a trigger is searched only where one of its literals is)


def test_every_match_of_a_trigger_holds_one_of_its_literals(engine: Redactor) -> None:
    missing = set()
    for rule in engine.rules:
        texts = [ex.text for ex in rule.must_match] + [
            variant(ex.text) for ex in rule.must_match for variant in VARIANTS.values()
        ]
        for expression in rule.trigger_parts or (rule.trigger,):
            literals = required_literals(expression)
            if literals is None:
                continue
            pattern = re.compile(expression.encode(), re.MULTILINE)
            for text in texts:
                data = text.encode("utf-8", "surrogatepass")
                if pattern.search(data) and not any(
                    literal in (data.lower() if folded else data) for literal, folded in literals
                ):
                    missing.add(rule.id)
    assert not missing, f"triggers matching where none of their literals is: {sorted(missing)}"


@pytest.mark.parametrize(
    ("trigger", "literals"),
    [
        ("requirepass[ ]", {(b"requirepass ", False)}),
        ("(?i)(?:Token|api[_-]?key)=", {(b"token", True), (b"api", True)}),
        ("(?:^|[^a-z])(?i:card)[0-9]", {(b"card", True)}),
        ("(?:x?)curl -b", {(b"curl -b", False)}),  # an optional part holds nothing required
    ],
)
def test_required_literals(trigger: str, literals: set[tuple[bytes, bool]]) -> None:
    assert required_literals(trigger) == literals


@pytest.mark.parametrize("trigger", ["[0-9]{13}", "(?:abc|[0-9])x?", "(?:a|)b?"])
def test_a_trigger_without_a_required_literal_has_none(trigger: str) -> None:
    assert required_literals(trigger) is None
