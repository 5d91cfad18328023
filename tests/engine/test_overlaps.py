"""Overlapping candidates: the longest span wins, then priority, and a rule's filters
(validator, entropy, keywords) run only on a candidate that would otherwise be chosen.

Checking late must choose exactly what checking every candidate first would: a longer
candidate that fails its filter gives way to the shorter ones under it.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from redactor.engine import Redactor, core, load_ruleset
from redactor.engine import validators as validators_module
from redactor.engine.core import _Candidate
from redactor.engine.rules import Rule

from _engine_helpers import REF_KEY

PACK = """
[pack]
name = "overlap"
category = "secret"

[[rules]]
id = "test.long"
label = "long"
priority = 60
trigger = 'id='
pattern = '''id=(?P<secret>[0-9]{16})'''
validator = "luhn"

[[rules]]
id = "test.tail"
label = "tail"
priority = 50
trigger = '[0-9]{4}'
pattern = '''(?P<secret>[0-9]{4})(?![0-9])'''

[[rules]]
id = "test.keyword"
label = "kw"
priority = 40
trigger = 'ref-'
pattern = '''ref-(?P<secret>[A-Za-z0-9]{8})'''
keywords = ["order"]
"""


@pytest.fixture
def engine(tmp_path: Path) -> Redactor:
    (tmp_path / "overlap.toml").write_text(PACK, encoding="utf-8")
    return Redactor(load_ruleset([tmp_path]), ref_key=REF_KEY)


def _labels(text: str) -> list[str]:
    return [part.split("#")[0] for part in text.split("[")[1:]]


def test_the_longest_valid_span_wins(engine: Redactor) -> None:
    out = engine.redact("id=4111111111111111 ok")  # Luhn-valid: the long rule takes it all
    assert _labels(out) == ["long"] and "1111 ok" not in out


def test_a_longer_candidate_that_fails_its_validator_gives_way(engine: Redactor) -> None:
    out = engine.redact("id=4111111111111112 ok")  # not Luhn-valid
    assert _labels(out) == ["tail"]
    assert out.startswith("id=411111111111[tail#")


def test_a_keyword_filter_still_applies(engine: Redactor) -> None:
    assert engine.redact("see ref-AbCdEfGh now") == "see ref-AbCdEfGh now"
    assert _labels(engine.redact("order ref-AbCdEfGh now")) == ["kw"]


def test_a_losing_candidate_is_never_validated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The tail rule matches twice: under the long rule's winning span, and on its own. Only
    # the second is ever shown to its validator.
    calls: list[str] = []

    def counting(value: str) -> bool:
        calls.append(value)
        return True

    monkeypatch.setitem(validators_module.VALIDATORS, "counting", counting)
    tail = "(?![0-9])'''\n"
    pack = PACK.replace(tail, tail + 'validator = "counting"\n', 1)
    assert pack.count("counting") == 1
    (tmp_path / "overlap.toml").write_text(pack, encoding="utf-8")
    engine = Redactor(load_ruleset([tmp_path]), ref_key=REF_KEY)
    out = engine.redact("id=4111111111111111 and 5555")
    assert _labels(out) == ["long", "tail"]
    assert calls == ["5555"]


def test_many_spans_resolve_as_few_do(monkeypatch: pytest.MonkeyPatch) -> None:
    # Past core._MANY_SPANS overlaps are found in a map of taken positions: the same choice
    # as comparing with every span taken, on random candidates and placeholders.
    rules = {p: Rule("r", "p", "secret", "r", "x", "x", priority=p) for p in (30, 40, 50)}
    rng = random.Random(3)
    for _ in range(300):
        candidates = []
        for _ in range(rng.randint(1, 80)):
            start = rng.randrange(0, 400)
            cand = _Candidate(start, start + rng.randint(1, 30), rules[rng.choice([30, 40, 50])])
            cand.checked = rng.random() < 0.5
            candidates.append(cand)
        protected = sorted({(s, s + rng.randint(1, 20)) for s in rng.sample(range(0, 400, 25), 3)})
        failing = {id(c) for c in candidates if rng.random() < 0.2}
        passes = lambda c, failing=failing: id(c) not in failing  # noqa: E731
        results = []
        for threshold in (0, 10**9):
            monkeypatch.setattr(core, "_MANY_SPANS", threshold)
            chosen = core._resolve_overlaps(list(candidates), protected, passes)
            results.append([(c.start, c.end, c.rule.priority) for c in chosen])
        assert results[0] == results[1]


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        # the cookie's match runs on past its last value: the key after it is still judged
        ("Set-Cookie: sid=s1d7Qx9Lm2Kp; Path=/; access_code=00000001", "00000001"),
        # a small number is a setting inside a cookie header, not under a password key; and a
        # cookie header that masks nothing hides nothing after it
        ("cookie=theme=dark; lang=en ; password=00000001", "00000001"),
    ],
)
def test_a_match_masked_in_parts_leaves_its_gaps_to_other_rules(
    engines: dict[str, Redactor], text: str, secret: str
) -> None:
    for engine in engines.values():
        once = engine.redact(text)
        assert secret not in once, "a value after the cookie's values stayed readable"
        assert engine.redact(once) == once
