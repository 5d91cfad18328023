"""Anchored rules: stage 2 tries such a rule's pattern only where its anchor matches.

That is only sound if every match of the pattern starts at an anchor match. These tests hold
each anchored shipped rule to it: on its own examples, the sample corpus and generated text,
the anchored search finds exactly what a search at every position finds.
"""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import orjson
import pytest
from test_parity import CORPUS

from redactor.engine import Redactor, Rule
from redactor.engine.core import _anchored_matches, _searched_anchor_matches

KEYWORDS = ["password", "pwd", "token", "api_key", "secret", "Bearer", "ssn", "passphrase",
            "client_secret", "aws_secret_access_key", "Authorization", "cookie", "tin", "pass"]
SEPARATORS = ["=", ": ", '":"', "=>", " is ", " ", "', '", ")=(", "\\\":\\\"", ";Password="]


def _generated(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    alphabet = "abcXYZ0123456789+/=_-.;:\"' "
    texts = []
    for _ in range(n):
        parts = []
        for _ in range(rng.randint(1, 4)):
            value = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 48)))
            key = rng.choice(KEYWORDS)
            if rng.random() < 0.5:
                key = rng.choice(["db_", "X-", "my.", "Server=x;"]) + key
            parts.append(key + rng.choice(SEPARATORS) + value)
        texts.append(" ".join(parts))
    return texts


@pytest.fixture(scope="module")
def texts() -> list[str]:
    with Path(CORPUS).open("rb") as fh:
        corpus = [orjson.loads(raw)["line"] for raw in itertools.islice(fh, 4000)]
    return corpus + _generated(3000, 11)


def _anchored_rules(engine: Redactor) -> list[Rule]:
    return [r for r in engine.rules if r.anchor]


def test_shipped_keyword_rules_are_anchored(engines: dict[str, Redactor]) -> None:
    anchored = {r.id for r in _anchored_rules(engines["hyperscan"])}
    assert {"secret.generic.assignment", "keyname.password", "keyname.token", "card.pan"} <= (
        anchored
    )


def test_anchored_search_finds_what_a_full_search_finds(
    engines: dict[str, Redactor], texts: list[str]
) -> None:
    engine = engines["hyperscan"]
    finder = engine._anchors
    assert finder is not None
    differ: list[tuple[str, int]] = []
    for rule in _anchored_rules(engine):
        anchor_id = engine._anchor_ids[rule.id]
        examples = [e.text for e in rule.must_match + rule.must_not_match]
        for i, text in enumerate(examples + texts):
            if not text.isascii():
                continue  # anchors are not used on non-ASCII text
            starts = finder.starts(text.encode()).get(anchor_id, [])
            full = [m.span() for m in rule.pattern.finditer(text)]
            anchored = [m.span() for m in _anchored_matches(rule.pattern, text, starts, None)]
            if full != anchored:
                differ.append((rule.id, i))
    # Names rule and text index only: the texts may hold secrets.
    assert not differ, f"anchored search differs: {differ[:10]} ({len(differ)} in all)"


def test_anchors_searched_with_regex_find_what_a_full_search_finds(
    engines: dict[str, Redactor], texts: list[str]
) -> None:
    """Without Hyperscan's offsets (non-ASCII or long text, no Hyperscan), key-name rules try
    their pattern where a regex search finds their names: the same matches as a full search."""
    engine = engines["regex"]
    searched = [r for r in engine.rules if r.search_anchor]
    assert len(searched) >= 8
    differ: list[tuple[str, int]] = []
    for rule in searched:
        examples = [e.text for e in rule.must_match + rule.must_not_match]
        anchor = engine._anchor_regex(rule)
        for i, text in enumerate(examples + texts + [t.replace(" ", "\u00a0") for t in examples]):
            full = [m.span() for m in rule.pattern.finditer(text)]
            found = [m.span() for m in _searched_anchor_matches(rule.pattern, anchor, text, None)]
            if full != found:
                differ.append((rule.id, i))
    assert not differ, f"anchored search differs: {differ[:10]} ({len(differ)} in all)"


def test_redaction_is_the_same_with_and_without_anchors(
    engines: dict[str, Redactor], texts: list[str]
) -> None:
    engine = engines["hyperscan"]
    with_anchors = [engine.redact(t) for t in texts]
    saved, engine._anchors = engine._anchors, None
    try:
        without = [engine.redact(t) for t in texts]
    finally:
        engine._anchors = saved
    differ = [i for i, (a, b) in enumerate(zip(with_anchors, without, strict=True)) if a != b]
    assert not differ, f"{len(differ)} texts differ, e.g. {differ[:10]}"


def test_non_ascii_text_is_searched_in_full(engine: Redactor) -> None:
    # Anchor offsets are bytes; on non-ASCII text the engine searches every position instead.
    out = engine.redact("naïve café api_key=Fake5diFoNPcbdaKwtgHwIoALtLinxN1 ünd")
    assert "Fake5diFoNPcbdaKwtgHwIoALtLinxN1" not in out
    assert out.startswith("naïve café api_key=[") and out.endswith("] ünd"), out
