"""The broker over HTTP on 127.0.0.1: authentication, the grant workflow, reveal, audit."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from redactor.broker import BrokerClient, RateLimiter
from redactor.broker.auth import AuthError
from redactor.cli import main
from redactor.grants import NotAllowed, RevealRefused
from redactor.testing import assert_no_leak

from _broker_helpers import CARD, ORIGINALS, SSN, T1, T2, TOKEN, call


def client(broker: dict[str, Any], user: str) -> BrokerClient:
    return BrokerClient(broker["url"], broker["tokens"][user])


def test_rejects_bad_credentials(broker, idp):
    url, now = broker["url"], broker["clock"].now
    assert call(url, "GET", "/healthz")[0] == 200
    assert call(url, "GET", "/v1/grants")[0] == 401
    assert call(url, "GET", "/v1/grants", headers={"Authorization": "Basic YTpi"})[0] == 401
    assert call(url, "GET", "/v1/grants", token="rdx_wrong")[0] == 401
    assert call(url, "GET", "/v1/grants", token=broker["tokens"]["alice"])[0] == 200
    good = idp.claims("frank", now)
    assert call(url, "GET", "/v1/grants", token=idp.token(good))[0] == 200
    assert call(url, "GET", "/v1/grants", token=idp.token(good, alg="ES256"))[0] == 200
    bad = {
        "expired": idp.token(idp.claims("frank", now, exp=now - 120)),
        "wrong audience": idp.token(idp.claims("frank", now, aud="someone-else")),
        "wrong issuer": idp.token(idp.claims("frank", now, iss="https://evil.test")),
        "no expiry": idp.token({k: v for k, v in good.items() if k != "exp"}),
        "alg none": idp.token(good, header={"alg": "none", "kid": "r1"}, alg="none"),
        "unknown kid": idp.token(good, kid="zz"),
        "alg/key mismatch": idp.token(good, alg="ES256", kid="r1"),
        "tampered": idp.token(good)[:-4] + "AAAA",
    }
    for why, tok in bad.items():
        status, _, body = call(url, "GET", "/v1/grants", token=tok)
        assert status == 401, why
        assert body["error"]["code"] == "unauthenticated"


def test_oidc_groups_from_claims_can_approve(broker, idp):
    now = broker["clock"].now
    g = client(broker, "alice").request(traces=[T1], refs=[], categories=["card"], reason="INC-1",
                                        duration_s=600, break_glass=False)
    ok = call(broker["url"], "POST", f"/v1/grants/{g.id}/approve", b"{}",
              token=idp.token(idp.claims("zed", now, groups=["security"])))
    assert ok[0] == 200 and ok[2]["grant"]["status"] == "pending"
    with pytest.raises(NotAllowed, match="not an approver"):
        client(broker, "bob").approve(g.id)
    assert client(broker, "carol").approve(g.id).status == "active"


def test_workflow_over_http(broker, caplog):
    caplog.set_level(logging.DEBUG)
    alice, bob, carol, dave = (client(broker, u) for u in ("alice", "bob", "carol", "dave"))
    g = alice.request(
        traces=[T1],
        refs=[],
        categories=["card", "ssn"],
        reason="INC-9",
        duration_s=600,
        break_glass=False,
    )
    with pytest.raises(NotAllowed, match="own request"):
        alice.approve(g.id)
    assert bob.approve(g.id).status == "pending"  # bob may approve ssn, not card
    assert carol.approve(g.id).status == "pending"  # card needs two from security
    with pytest.raises(RevealRefused):
        alice.reveal(trace=T1, ref=None, categories=None, lines=None)
    assert dave.approve(g.id).status == "active"

    status, headers, body = call(
        broker["url"],
        "POST",
        "/v1/reveal",
        json.dumps({"trace": T1}).encode(),
        token=broker["tokens"]["alice"],
    )
    assert status == 200 and headers["cache-control"] == "no-store"
    text = body["records"][0]["text"]
    assert CARD in text and SSN in text
    assert_no_leak(text, [TOKEN], "reveal without the secret category")

    with pytest.raises(RevealRefused, match="category not granted"):
        alice.reveal(trace=T1, ref=None, categories=["secret"], lines=None)
    with pytest.raises(RevealRefused):
        alice.reveal(trace=T2, ref=None, categories=None, lines=None)
    with pytest.raises(RevealRefused):
        bob.reveal(trace=T1, ref=None, categories=None, lines=None)

    broker["clock"].now += 601
    with pytest.raises(RevealRefused, match="no active grant"):
        alice.reveal(trace=T1, ref=None, categories=None, lines=None)
    assert alice.show(g.id).status == "expired"

    g2 = alice.request(
        traces=[T1], refs=[], categories=["ssn"], reason="INC-9", duration_s=600, break_glass=False
    )
    bob.approve(g2.id)
    assert SSN in alice.reveal(trace=T1, ref=None, categories=None, lines=None).records[0].text
    bob.revoke(g2.id, "done")
    with pytest.raises(RevealRefused):
        alice.reveal(trace=T1, ref=None, categories=None, lines=None)

    entries = alice.audit_tail(200)
    refused = [e for e in entries if e["action"] == "reveal" and e["outcome"] == "refused"]
    assert len(refused) == 6 and all(
        e["via"] == "token" and e["address"] == "127.0.0.1" for e in refused
    )
    assert alice.audit_verify().ok
    assert_no_leak(json.dumps(entries), ORIGINALS, "audit entries")
    assert_no_leak(caplog.text, ORIGINALS, "server and audit logs")
    assert any(r.name == "redactor.broker" for r in caplog.records)
    assert any(r.name == "redactor.audit" for r in caplog.records)


def test_cli_through_broker(broker, monkeypatch, capsys):
    monkeypatch.setenv("REDACTOR_SERVER", broker["url"])

    def as_user(user: str, *argv: str) -> tuple[int, str, str]:
        monkeypatch.setenv("REDACTOR_TOKEN", broker["tokens"][user])
        rc = main(list(argv))
        out, err = capsys.readouterr()
        return rc, out, err

    rc, out, err = as_user(
        "alice",
        "grant",
        "request",
        "--trace",
        T1,
        "--category",
        "ssn",
        "--reason",
        "INC-3",
        "--duration",
        "5m",
        "--json",
    )
    assert rc == 0, err
    gid = json.loads(out)["id"]
    assert as_user("alice", "grant", "approve", gid)[0] == 3
    assert as_user("bob", "grant", "approve", gid)[0] == 0
    rc, out, err = as_user("alice", "reveal", T1)
    assert rc == 0 and SSN in out
    assert_no_leak(out, [CARD, TOKEN], "CLI reveal via broker")
    rc, out, err = as_user("carol", "reveal", T1)
    assert rc == 3 and "refused" in err and out == ""
    rc, out, _ = as_user("bob", "grant", "list")
    assert gid in out
    rc, out, _ = as_user("bob", "audit", "verify")
    assert rc == 0 and "OK" in out
    monkeypatch.setenv("REDACTOR_TOKEN", "rdx_not-a-token")
    assert main(["grant", "list"]) == 1
    assert "rejected the token" in capsys.readouterr().err


def test_break_glass_is_flagged(broker):
    erin = client(broker, "erin")
    with pytest.raises(NotAllowed):
        client(broker, "alice").request(
            traces=[T1],
            refs=[],
            categories=["secret"],
            reason="fire",
            duration_s=None,
            break_glass=True,
        )
    g = erin.request(
        traces=[T1],
        refs=[],
        categories=["secret"],
        reason="fire",
        duration_s=None,
        break_glass=True,
    )
    assert g.status == "active" and g.break_glass
    assert TOKEN in erin.reveal(trace=T1, ref=None, categories=None, lines=None).records[0].text
    assert [x.break_glass for x in erin.list()] == [True]
    assert any(e["action"] == "break_glass" and e["break_glass"] for e in erin.audit_tail(20))


def test_reveal_rate_limit(broker):
    broker["app"].rate_limiter = RateLimiter(per_minute=1, burst=2)
    body = json.dumps({"trace": T1}).encode()
    statuses = [
        call(broker["url"], "POST", "/v1/reveal", body, token=broker["tokens"]["alice"])[:2]
        for _ in range(3)
    ]
    assert [s for s, _ in statuses] == [403, 403, 429]
    assert int(statuses[2][1]["retry-after"]) >= 1
    # another identity has its own bucket
    assert call(broker["url"], "POST", "/v1/reveal", body, token=broker["tokens"]["bob"])[0] == 403


def test_oversized_and_malformed_bodies(broker):
    tok = broker["tokens"]["alice"]
    url = broker["url"]
    status, _, body = call(url, "POST", "/v1/grants", b"x" * (200 * 1024), token=tok)
    assert status == 413 and body["error"]["code"] == "too_large"
    for raw in (
        b"{",
        b"[]",
        b"\xff\xfe",
        b'{"categories": "card", "reason": 1}',
        b"null",
        b'{"traces": [1], "categories": ["card"], "reason": "x"}',
        b'{"traces": ["t"], "categories": ["card"], "reason": "x", "duration_s": true}',
        b"[" * 100_000,
    ):
        status, _, body = call(url, "POST", "/v1/grants", raw, token=tok)
        assert 400 <= status < 500 and "error" in body, raw[:40]
    assert (
        call(url, "POST", "/v1/reveal", b'{"trace": "a", "ref": "abcdefgh"}', token=tok)[0] == 400
    )
    assert call(url, "DELETE", "/v1/grants", token=tok)[0] == 405
    assert call(url, "GET", "/v1/nope", token=tok)[0] == 404
    assert call(url, "GET", "/v1/audit?last=zz", token=tok)[0] == 400
    assert call(url, "GET", "/v1/grants/g-aaaaaaaa", token=tok)[0] == 404


def test_client_maps_auth_error(broker):
    with pytest.raises(AuthError):
        BrokerClient(broker["url"], "nope").list()
