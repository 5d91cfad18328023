"""The one-scan clean check that integrations and the gateway run before calling the engine."""

from __future__ import annotations

import pytest

from redactor.engine import Redactor

CARD = "4111 1111 1111 1111"


def test_no_texts_are_clean(any_redactor: Redactor) -> None:
    assert any_redactor.is_clean_texts([])


def test_clean_texts_are_clean(any_redactor: Redactor) -> None:
    texts = ["GET /healthz 200", "user=alice region=eu-west-1", b"span 5a80394529593d1b"]
    assert any_redactor.is_clean_texts(texts)


@pytest.mark.parametrize("position", [0, 1, 2])
def test_one_dirty_text_among_clean_ones_is_not_clean(
    any_redactor: Redactor, position: int
) -> None:
    texts = ["first clean text", "second clean text", "third clean text"]
    texts[position] = CARD  # at the very start of its text: "^" no longer holds once joined
    assert not any_redactor.is_clean_texts(texts)
    assert any_redactor.redact(texts[position]) != texts[position], "the engine masks it alone"


def test_a_trigger_is_never_made_up_by_joining(any_redactor: Redactor) -> None:
    # Each half is clean; joined with a newline they must still be clean (no trigger matches
    # across the newline), or the check would send clean records to the engine for nothing.
    assert any_redactor.is_clean_texts(["order 4111", "1111 shipped"])


def test_over_the_size_cap_is_not_known_clean(any_redactor: Redactor) -> None:
    too_long = "a" * (any_redactor.max_value_bytes + 1)
    assert not any_redactor.is_clean_texts([too_long])


def test_covers_key_follows_the_key_name_rules(any_redactor: Redactor) -> None:
    assert any_redactor.covers_key("db_password")
    assert any_redactor.covers_key("X-Api-Key")
    assert any_redactor.covers_key("access_token_2")
    assert not any_redactor.covers_key("token_type")
    assert not any_redactor.covers_key("user")
