"""redactor.testing: what counts as a leak in redacted output."""

from __future__ import annotations

import pytest

from redactor.testing import assert_no_leak, find_leaks


def test_a_value_spelled_by_a_placeholders_label_or_ref_is_no_leak() -> None:
    out = "access_code=[token#afpylgwn] :[credentials#aqwd7jzt]"
    assert find_leaks(out, ["credential", "afpylgwn", "aqwd7"]) == []


def test_a_value_left_in_a_placeholders_mask_is_a_leak() -> None:
    # The mask is the part a rule's configuration could get wrong: it is looked into.
    out = "card=[card:****-****-****-1111#k3fza2xq] pin=[pin:4821#abcdefgh]"
    assert find_leaks(out, ["1111", "4821", "k3fz"]) == [0, 1]


def test_text_outside_placeholders_is_looked_at_as_is() -> None:
    assert find_leaks(b"user=alice password=hunter2 [password#abcdefgh]", ["hunter2"]) == [0]
    with pytest.raises(AssertionError) as failure:
        assert_no_leak("token tok_9Xk2 kept", ["tok_9Xk2"], "the line")
    assert "tok_9Xk2" not in str(failure.value)  # the message never holds the value
