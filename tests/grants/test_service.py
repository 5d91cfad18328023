from __future__ import annotations

import logging

import pytest

from redactor.grants import (
    GrantError,
    GrantService,
    GrantStore,
    Identity,
    NotAllowed,
    RevealRefused,
    default_policy,
    parse_policy,
)
from redactor.grants.service import Conflict
from redactor.grants.testing import FakeVaultReader, Secret, make_record
from redactor.testing import assert_no_leak

KEY = b"k" * 32
CARD = "4111111111111111"
SSN = "123-45-6789"
TOKEN = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
T1, T2 = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b700f067aa0ba902b7"
ALICE, BOB, CAROL, DAVE = (Identity(n) for n in ("alice", "bob", "carol", "dave"))


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def reader() -> FakeVaultReader:
    return FakeVaultReader(
        [
            make_record(
                KEY,
                T1,
                "pay card={0} ssn={1} token={2}",
                [
                    Secret("card", "card", CARD),
                    Secret("ssn", "ssn", SSN),
                    Secret("secret", "github_token", TOKEN),
                ],
            ),
            make_record(
                KEY,
                T2,
                "other card={0}",
                [Secret("card", "card", "5500000000000004")],
                record_id="r2",
            ),
        ]
    )


def svc(clock: Clock, policy=None) -> GrantService:
    return GrantService(GrantStore(":memory:"), policy or default_policy(), clock=clock)


def test_default_policy_request_approve_reveal(clock, reader):
    s = svc(clock)
    g = s.request(ALICE, traces=[T1], categories=["card"], reason="INC-1", duration_s=600)
    assert g.status == "pending"
    with pytest.raises(NotAllowed, match="own request"):
        s.approve(ALICE, g.id)
    g = s.approve(BOB, g.id)
    assert g.status == "active" and g.expires_at == clock.now + 600
    r = s.reveal(ALICE, reader, trace=T1)
    text = r.records[0].text
    assert CARD in text
    assert_no_leak(text, [SSN, TOKEN], "reveal of a card-only grant")
    assert r.revealed == 1 and r.withheld == 2
    # The audit log never holds a revealed value.
    dump = "\n".join(str(e.to_json()) for e in s.audit_tail(100))
    assert_no_leak(dump, [CARD, SSN, TOKEN], "audit log")
    assert s.verify().ok


def test_refusals_are_audited(clock, reader):
    s = svc(clock)
    with pytest.raises(RevealRefused, match="no active grant"):
        s.reveal(ALICE, reader, trace=T1)
    g = s.request(ALICE, traces=[T1], categories=["card"], reason="INC-1", duration_s=60)
    s.approve(BOB, g.id)
    with pytest.raises(RevealRefused):
        s.reveal(ALICE, reader, trace=T2)  # another trace
    with pytest.raises(RevealRefused, match="category not granted: ssn"):
        s.reveal(ALICE, reader, trace=T1, categories=["ssn"])
    with pytest.raises(RevealRefused):
        s.reveal(CAROL, reader, trace=T1)  # someone else's grant
    assert reader.calls == 0  # refused reveals never touch the vault
    clock.now += 61
    with pytest.raises(RevealRefused):
        s.reveal(ALICE, reader, trace=T1)
    actions = [(e.body["action"], e.body["outcome"]) for e in s.audit_tail(100)]
    assert actions.count(("reveal", "refused")) == 5
    assert ("expire", "expired") in actions
    assert s.show(ALICE, g.id).status == "expired"


def test_revoke_closes_window(clock, reader):
    s = svc(clock)
    g = s.request(ALICE, traces=[T1], categories=["secret"], reason="INC-2", duration_s=600)
    s.approve(BOB, g.id)
    assert TOKEN in s.reveal(ALICE, reader, trace=T1).records[0].text
    s.revoke(BOB, g.id, "done")
    with pytest.raises(RevealRefused):
        s.reveal(ALICE, reader, trace=T1)
    with pytest.raises(Conflict):
        s.revoke(ALICE, g.id)


POLICY = {
    "pending_ttl": "10m",
    "admin_groups": ["security"],
    "groups": {
        "oncall": ["alice", "erin"],
        "security": ["carol", "dave", "frank"],
        "leads": ["bob"],
    },
    "break_glass": {"groups": ["oncall"], "max_duration": "5m"},
    "category": {
        "card": {
            "requesters": ["oncall"],
            "approvers": ["security"],
            "approvals_required": 2,
            "max_duration": "30m",
            "reason_pattern": "^INC-[0-9]+",
            "reveal": "last4",
        },
        "secret": {"approvers": ["leads", "security"]},
    },
}


def test_two_approvers_and_partial_reveal(clock, reader):
    s = svc(clock, parse_policy(POLICY))
    with pytest.raises(NotAllowed):
        s.request(BOB, traces=[T1], categories=["card"], reason="INC-3")
    with pytest.raises(GrantError, match="reason"):
        s.request(ALICE, traces=[T1], categories=["card"], reason="because")
    with pytest.raises(GrantError, match="exceeds"):
        s.request(ALICE, traces=[T1], categories=["card"], reason="INC-3", duration_s=3600)
    g = s.request(ALICE, traces=[T1], categories=["card"], reason="INC-3 fraud", duration_s=900)
    with pytest.raises(NotAllowed, match="not an approver"):
        s.approve(BOB, g.id)
    assert s.approve(CAROL, g.id).status == "pending"
    with pytest.raises(Conflict, match="already approved"):
        s.approve(CAROL, g.id)
    g = s.approve(DAVE, g.id)
    assert g.status == "active" and g.approvers == ("carol", "dave")
    text = s.reveal(ALICE, reader, trace=T1).records[0].text
    assert_no_leak(text, [CARD], "last4 reveal")
    assert "****1111" in text


def test_pending_expires(clock):
    s = svc(clock, parse_policy(POLICY))
    g = s.request(ALICE, traces=[T1], categories=["secret"], reason="x")
    clock.now += 601
    with pytest.raises(Conflict, match="expired"):
        s.approve(BOB, g.id)


def test_break_glass(clock, reader, caplog):
    s = svc(clock, parse_policy(POLICY))
    with pytest.raises(NotAllowed):
        s.request(BOB, traces=[T1], categories=["secret"], reason="fire", break_glass=True)
    with pytest.raises(GrantError, match="exceeds"):
        s.request(
            ALICE,
            traces=[T1],
            categories=["secret"],
            reason="fire",
            duration_s=3600,
            break_glass=True,
        )
    with caplog.at_level(logging.INFO, logger="redactor.audit"):
        g = s.request(ALICE, traces=[T1], categories=["secret"], reason="fire", break_glass=True)
        assert g.status == "active" and g.break_glass and g.duration_s == 300
        assert TOKEN in s.reveal(ALICE, reader, trace=T1).records[0].text
    assert any(getattr(r, "audit", {}).get("action") == "break_glass" for r in caplog.records)
    assert all(getattr(r, "audit", {}).get("break_glass") for r in caplog.records)
    assert_no_leak(caplog.text, [TOKEN, CARD, SSN], "audit log events")
    # admins may revoke any grant
    s.revoke(CAROL, g.id)


def test_ref_grant_reveals_only_that_ref(clock, reader):
    s = svc(clock)
    ref = reader.records[0].originals[1].ref  # the ssn
    g = s.request(ALICE, refs=[ref], categories=["ssn", "card"], reason="INC-4")
    s.approve(BOB, g.id)
    r = s.reveal(ALICE, reader, ref=ref)
    assert SSN in r.records[0].text
    assert_no_leak(r.records[0].text, [CARD, TOKEN], "ref reveal")
    with pytest.raises(RevealRefused):
        s.reveal(ALICE, reader, trace=T1)


def test_apply_lines(clock, reader):
    s = svc(clock)
    g = s.request(ALICE, traces=[T1], categories=["card", "ssn"], reason="INC-5")
    s.approve(BOB, g.id)
    lines = [reader.records[0].redacted, reader.records[1].redacted, "no placeholders"]
    r = s.reveal(ALICE, reader, trace=T1, lines=lines)
    assert r.lines is not None
    assert CARD in r.lines[0] and SSN in r.lines[0]
    assert_no_leak("\n".join(r.lines), [TOKEN, "5500000000000004"], "apply output")
    assert r.lines[2] == "no placeholders"


def test_input_validation(clock):
    s = svc(clock)
    for kwargs in [
        dict(traces=[], refs=[]),
        dict(traces=["bad trace"]),
        dict(refs=["UPPER123"]),
        dict(traces=[T1], categories=["nope"]),
        dict(traces=[T1], reason=" "),
    ]:
        args = dict(categories=["card"], reason="r") | kwargs
        with pytest.raises(GrantError):
            s.request(ALICE, **args)


def test_conditions_refuse_outside_window_but_not_break_glass(clock, reader):
    import datetime as dt

    policy = parse_policy(
        {
            "groups": {"oncall": ["alice"]},
            "break_glass": {"groups": ["oncall"]},
            "category": {"secret": {"conditions": {"hours": ["09:00-17:00"], "timezone": "UTC"}}},
        }
    )
    s = svc(clock, policy)
    clock.now = dt.datetime(2024, 1, 1, 20, 0, tzinfo=dt.UTC).timestamp()
    g = s.request(ALICE, traces=[T1], categories=["secret"], reason="INC-6")
    s.approve(BOB, g.id)
    with pytest.raises(RevealRefused, match="not usable at 20:00"):
        s.reveal(ALICE, reader, trace=T1)
    s.revoke(ALICE, g.id)
    s.request(ALICE, traces=[T1], categories=["secret"], reason="outage", break_glass=True)
    assert TOKEN in s.reveal(ALICE, reader, trace=T1).records[0].text
