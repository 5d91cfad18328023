from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from redactor.grants import (
    Identity,
    PolicyError,
    default_policy,
    load_policy,
    parse_duration_s,
    parse_policy,
)
from redactor.grants.policy import CATEGORIES


def test_default_policy() -> None:
    p = default_policy()
    for c in CATEGORIES:
        cp = p.category(c)
        assert cp.requesters == ("*",) and cp.approvers == ("*",)
        assert cp.approvals_required == 1 and cp.max_duration_s == 3600 and cp.reveal == "full"
    assert not p.break_glass.groups


@pytest.mark.parametrize(
    "doc, field",
    [
        ({"nope": 1}, "nope"),
        ({"version": 2}, "version"),
        ({"category": {"cards": {}}}, "category.cards"),
        ({"category": {"card": {"approvals_required": 0}}}, "category.card.approvals_required"),
        ({"category": {"card": {"approvals_required": "2"}}}, "category.card.approvals_required"),
        ({"category": {"card": {"max_duration": "forever"}}}, "category.card.max_duration"),
        ({"category": {"card": {"max_duration": "30d"}}}, "category.card.max_duration"),
        ({"category": {"card": {"reason_pattern": "([a-"}}}, "category.card.reason_pattern"),
        ({"category": {"card": {"reveal": "some"}}}, "category.card.reveal"),
        ({"category": {"card": {"approvers": ["ghosts"]}}}, "category.card.approvers"),
        (
            {
                "groups": {"sec": ["a"]},
                "category": {"card": {"approvers": ["sec"], "approvals_required": 2}},
            },
            "category.card.approvals_required",
        ),
        (
            {"category": {"ssn": {"conditions": {"hours": ["9-17"]}}}},
            "category.ssn.conditions.hours",
        ),
        (
            {"category": {"ssn": {"conditions": {"weekdays": ["funday"]}}}},
            "category.ssn.conditions.weekdays",
        ),
        (
            {"category": {"ssn": {"conditions": {"timezone": "Mars/Olympus"}}}},
            "category.ssn.conditions.timezone",
        ),
        (
            {"category": {"ssn": {"conditions": {"networks": ["10.0.0.0/33"]}}}},
            "category.ssn.conditions.networks",
        ),
        ({"break_glass": {"groups": ["x"]}}, "break_glass.groups"),
        ({"notify": {"webhook": [{"url": "ftp://x"}]}}, "notify.webhook[0].url"),
        (
            {"notify": {"webhook": [{"url": "http://127.0.0.1/", "events": ["lunch"]}]}},
            "notify.webhook[0].events",
        ),
    ],
)
def test_errors_name_the_field(doc, field) -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy(doc, source="p.toml")
    assert f"p.toml: {field}" in str(info.value)


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="not found"):
        load_policy(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[category.card\n")
    with pytest.raises(PolicyError, match="invalid TOML"):
        load_policy(bad)


def test_durations() -> None:
    assert (
        parse_duration_s("90s") == 90
        and parse_duration_s("1h30m") == 5400
        and parse_duration_s("2d") == 172800
    )
    assert parse_duration_s(45) == 45 and parse_duration_s("45") == 45
    for bad in ("", "0", "-5m", "1x", True, 1.5):
        with pytest.raises(PolicyError):
            parse_duration_s(bad)


def test_conditions_and_membership() -> None:
    p = parse_policy(
        {
            "groups": {"sec": ["carol"], "claims": []},
            "category": {
                "card": {
                    "approvers": ["sec", "claims", "user:zed"],
                    "conditions": {
                        "weekdays": ["mon", "tue", "wed", "thu", "fri"],
                        "hours": ["22:00-06:00"],
                        "timezone": "UTC",
                        "networks": ["10.0.0.0/8"],
                    },
                }
            },
        }
    )
    cp = p.category("card")
    assert p.matches(Identity("carol"), cp.approvers)
    assert p.matches(Identity("zed"), cp.approvers)
    assert p.matches(Identity("x", frozenset({"claims"})), cp.approvers)
    assert not p.matches(Identity("x"), cp.approvers)
    monday_23h = dt.datetime(2024, 1, 1, 23, 0, tzinfo=dt.UTC).timestamp()
    monday_noon = dt.datetime(2024, 1, 1, 12, 0, tzinfo=dt.UTC).timestamp()
    saturday_23h = dt.datetime(2024, 1, 6, 23, 0, tzinfo=dt.UTC).timestamp()
    assert cp.conditions.check(monday_23h, "10.1.2.3") is None
    assert "not usable at" in (cp.conditions.check(monday_noon, "10.1.2.3") or "")
    assert "not usable on sat" in (cp.conditions.check(saturday_23h, "10.1.2.3") or "")
    assert "not usable from" in (cp.conditions.check(monday_23h, "192.168.1.1") or "")
    assert "not usable from 127.0.0.1" in (
        cp.conditions.check(monday_23h, None) or ""
    )  # embedded = loopback
