"""Stage-2 patterns of the shipped packs compile on first use; user packs' compile at load.

Laziness must be invisible: the same redaction as with every pattern compiled up front, a
pattern that never fails to compile at run time, rules that stay immutable from the outside,
and a bad pattern in a user pack still refused at load time.
"""

from __future__ import annotations

import dataclasses
import re
import threading
from pathlib import Path

import pytest
import regex

from redactor import RuleError, create_redactor, load_ruleset
from redactor.engine import Finding, Redactor, Rule
from redactor.engine.keynames import text_rules
from redactor.settings import DEFAULT_RULES_DIR, Settings

USER_PACK = """
[pack]
name = "widgets"
category = "secret"

[[rules]]
id = "test.widget"
label = "widget"
trigger = 'wdg_'
pattern = '''(?P<secret>wdg_[a-z0-9]{8})'''
must_match = ["key wdg_a1b2c3d4 here"]
"""

SAMPLES = [
    "nothing to see here",
    "aws AKIAFAKEA7LQSAJ2XUID in the log",
    "login ok DB_PASSWORD=Tr0ub4dor&3 next",
    "paid with 4111 1111 1111 1111 today",
    "INSERT INTO users (email, password) VALUES ('a@b.c', 'hunter2xyz')",
    '{"user": "ana", "token": "tok_9f8e7d6c5b4a39281706", "card": "4111111111111111"}',
]


def _all_shipped_rules(settings: Settings) -> tuple[Rule, ...]:
    """Every shipped rule, off-by-default packs included, and the key-name text rules."""
    names = [p.stem for p in DEFAULT_RULES_DIR.glob("*.toml")]
    ruleset = load_ruleset([DEFAULT_RULES_DIR], enabled=names)
    assert {p.name for p in ruleset.packs} >= {"cards", "keynames", "secrets"}
    return ruleset.rules + text_rules(ruleset.keynames)


def _example_texts(redactor: Redactor) -> list[str]:
    texts = list(SAMPLES)
    for rule in redactor.rules:
        texts.extend(e.text for e in rule.must_match + rule.must_not_match)
    return texts


def test_shipped_patterns_are_not_compiled_at_load(redactor: Redactor) -> None:
    assert redactor.rules and not any(r.guarded for r in redactor.rules)
    assert not any(r.is_compiled for r in redactor.rules)
    assert redactor.redact("nothing to see here") == "nothing to see here"
    assert not any(r.is_compiled for r in redactor.rules), "a clean value compiled a pattern"


@pytest.mark.parametrize("text", SAMPLES[1:])
def test_a_value_compiles_only_the_rules_its_triggers_gate(
    any_redactor: Redactor, text: str
) -> None:
    out = any_redactor.redact(text)
    assert out != text
    compiled = {r.id for r in any_redactor.rules if r.is_compiled}
    fired = {r.id for r in any_redactor.rules if any_redactor.trigger_fires(r, text)}
    assert compiled == fired
    assert 0 < len(compiled) < len(any_redactor.rules) // 2


def test_lazy_and_eager_engines_redact_alike(settings: Settings) -> None:
    lazy = create_redactor(settings)
    eager = create_redactor(settings)
    for rule in eager.rules:
        rule.compile()
    texts = _example_texts(eager)
    assert len(texts) > 200
    for text in texts:
        lazy_findings: list[Finding] = []
        eager_findings: list[Finding] = []
        assert lazy.redact(text, trace_id="t", findings=lazy_findings) == eager.redact(
            text, trace_id="t", findings=eager_findings
        )
        assert lazy_findings == eager_findings
    assert lazy.redactions == eager.redactions and lazy.failures == eager.failures == 0


def test_every_shipped_pattern_and_trigger_compiles(settings: Settings) -> None:
    # Load time no longer checks them for the shipped packs: this test does.
    rules = _all_shipped_rules(settings)
    for rule in rules:
        assert isinstance(rule.compile(), regex.Pattern), rule.id
        re.compile(rule.trigger.encode())
    assert all(r.is_compiled for r in rules)


def test_pattern_is_compiled_once_and_stays(redactor: Redactor) -> None:
    rule = redactor.rules[0]
    first = rule.pattern
    assert rule.is_compiled and rule.pattern is first and rule.compile() is first
    assert first.pattern == rule.pattern_source


def test_racing_threads_all_get_a_working_pattern(settings: Settings) -> None:
    rules = _all_shipped_rules(settings)
    barrier = threading.Barrier(8)
    seen: list[list[regex.Pattern[str]]] = [[] for _ in range(8)]

    def worker(out: list[regex.Pattern[str]]) -> None:
        barrier.wait()
        out.extend(r.pattern for r in rules)

    threads = [threading.Thread(target=worker, args=(seen[i],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, rule in enumerate(rules):
        assert {out[i].pattern for out in seen} == {rule.pattern_source}, rule.id


def test_rules_stay_immutable(redactor: Redactor) -> None:
    rule = redactor.rules[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        rule._compiled = regex.compile("x")  # type: ignore[misc]
    # Not a field: Python 3.11's frozen-slots __setattr__ raises TypeError, later ones
    # FrozenInstanceError; either way the assignment is refused.
    with pytest.raises((dataclasses.FrozenInstanceError, TypeError)):
        rule.pattern = regex.compile("x")  # type: ignore[misc]
    compiled = rule.pattern
    other = dataclasses.replace(rule, pattern_source="wdg_[0-9]+")
    assert not other.is_compiled and other.pattern.pattern == "wdg_[0-9]+"
    assert rule.pattern is compiled
    twin = dataclasses.replace(rule)
    assert twin == rule and hash(twin) == hash(rule)  # compiled or not, the same rule


def test_user_pack_patterns_compile_at_load(tmp_path: Path) -> None:
    (tmp_path / "widgets.toml").write_text(USER_PACK, encoding="utf-8")
    ruleset = load_ruleset([DEFAULT_RULES_DIR, tmp_path])
    user = [r for r in ruleset.rules if r.pack == "widgets"]
    assert [r.id for r in user] == ["test.widget"]
    assert all(r.guarded and r.is_compiled for r in user)
    assert not any(r.is_compiled for r in ruleset.rules if r.pack != "widgets")


def test_a_bad_user_pattern_fails_at_load(tmp_path: Path, settings: Settings) -> None:
    bad = USER_PACK.replace("{8})'''", "{8}'''")
    (tmp_path / "widgets.toml").write_text(bad, encoding="utf-8")
    with pytest.raises(RuleError, match=r"widgets\.toml.*pattern does not compile"):
        load_ruleset([DEFAULT_RULES_DIR, tmp_path])
    with pytest.raises(RuleError, match=r"widgets\.toml"):
        create_redactor(settings.with_overrides(extra_rules_dirs=(tmp_path,)))


def test_the_gateway_compiles_every_pattern_before_it_serves(
    redactor: Redactor, tmp_path: Path
) -> None:
    gateway_module = pytest.importorskip("redactor.gateway")
    config = gateway_module.GatewayConfig(
        http_address="127.0.0.1:0", grpc_address=None, output=str(tmp_path / "out.jsonl")
    )
    gateway = gateway_module.Gateway(config, redactor)
    try:
        assert all(r.is_compiled for r in redactor.rules)
    finally:
        gateway.shutdown()
