"""End-to-end through ``redactor.cli.main`` in embedded mode, with a temporary REDACTOR_HOME."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest

from redactor.cli import _grant, main
from redactor.grants.testing import FakeVaultReader, Secret, make_record
from redactor.testing import assert_no_leak

KEY = b"k" * 32
CARD, SSN = "4111111111111111", "123-45-6789"
TOKEN = "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc"
T1, T2 = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b700f067aa0ba902b7"
ORIGINALS = [CARD, SSN, TOKEN]

POLICY = """
pending_ttl = "1h"
[groups]
oncall = ["alice", "erin"]
security = ["carol", "dave"]
[category.card]
approvers = ["security"]
approvals_required = 2
reason_pattern = '^INC-[0-9]+'
"""


class Clock:
    now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("REDACTOR_HOME", str(tmp_path))
    monkeypatch.delenv("REDACTOR_SERVER", raising=False)
    monkeypatch.delenv("REDACTOR_USER", raising=False)
    monkeypatch.delenv("REDACTOR_POLICY", raising=False)
    (tmp_path / "policy.toml").write_text(POLICY)
    clock = Clock()
    monkeypatch.setattr(_grant, "CLOCK", clock)
    reader = FakeVaultReader(
        [
            make_record(
                KEY,
                T1,
                "checkout card={0} ssn={1} key={2}",
                [
                    Secret("card", "card", CARD),
                    Secret("ssn", "ssn", SSN),
                    Secret("secret", "stripe_key", TOKEN),
                ],
            ),
            make_record(
                KEY, T2, "other ssn={0}", [Secret("ssn", "ssn", "987-65-4329")], record_id="r2"
            ),
        ]
    )
    monkeypatch.setattr(_grant, "READER_FACTORY", lambda: reader)
    return tmp_path, clock, reader


def run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def request(capsys, *extra: str) -> str:
    rc, out, err = run(capsys, "grant", "request", "--as", "alice", "--trace", T1, "--json", *extra)
    assert rc == 0, err
    return json.loads(out)["id"]


def test_workflow_and_refusals(env, capsys):
    home, clock, reader = env
    gid = request(
        capsys, "--category", "card,ssn", "--reason", "INC-7 chargeback", "--duration", "30m"
    )
    rc, _, err = run(capsys, "grant", "approve", gid, "--as", "alice")
    assert rc == 3 and "own request" in err
    rc, out, _ = run(capsys, "grant", "approve", gid, "--as", "carol")
    assert rc == 0 and "now pending" in out
    rc, _, err = run(capsys, "reveal", T1, "--as", "alice")
    assert rc == 3 and "no active grant" in err  # one of two approvals is not enough
    rc, out, _ = run(capsys, "grant", "approve", gid, "--as", "dave")
    assert "now active" in out

    rc, out, err = run(capsys, "reveal", T1, "--as", "alice")
    assert rc == 0 and CARD in out and SSN in out
    assert_no_leak(out, [TOKEN], "reveal stdout (secret not granted)")
    rc, _, err = run(capsys, "reveal", T1, "--as", "alice", "--category", "secret")
    assert rc == 3 and "category not granted" in err
    rc, _, err = run(capsys, "reveal", T2, "--as", "alice")
    assert rc == 3
    rc, _, err = run(capsys, "reveal", T1, "--as", "bob")
    assert rc == 3

    rc, out, _ = run(capsys, "grant", "list", "--as", "bob")
    assert gid in out and "active" in out
    rc, out, _ = run(capsys, "grant", "show", gid, "--as", "bob")
    assert "carol, dave" in out

    clock.now += 31 * 60
    rc, _, err = run(capsys, "reveal", T1, "--as", "alice")
    assert rc == 3 and "no active grant" in err
    rc, out, _ = run(capsys, "grant", "show", gid, "--json")
    assert json.loads(out)["status"] == "expired"

    rc, out, _ = run(capsys, "audit", "tail", "-n", "50", "--json")
    entries = [json.loads(line) for line in out.splitlines()]
    assert sum(1 for e in entries if e["action"] == "reveal" and e["outcome"] == "refused") == 5
    assert any(e["action"] == "expire" for e in entries)
    assert_no_leak(out, ORIGINALS, "audit tail")
    assert_no_leak((home / "grants.db").read_bytes(), ORIGINALS, "grants.db")
    rc, out, _ = run(capsys, "audit", "verify")
    assert rc == 0 and "OK" in out


def test_revoke_and_apply(env, capsys, tmp_path):
    home, clock, reader = env
    gid = request(capsys, "--category", "secret", "--reason", "debugging", "--duration", "10m")
    assert run(capsys, "grant", "approve", gid, "--as", "bob")[0] == 0
    exported = tmp_path / "export.log"
    exported.write_text(reader.records[0].redacted + "\n" + reader.records[1].redacted + "\n")
    rc, out, err = run(capsys, "reveal", T1, "--as", "alice", "--apply", str(exported))
    assert rc == 0 and TOKEN in out.splitlines()[0]
    assert out.splitlines()[1] == reader.records[1].redacted  # other trace untouched
    assert_no_leak(out, [CARD, SSN], "apply output")
    rc, out, _ = run(capsys, "grant", "revoke", gid, "--as", "alice", "--reason", "fixed")
    assert rc == 0
    rc, out, err = run(capsys, "reveal", T1, "--as", "alice")
    assert rc == 3 and out == ""


def test_policy_errors_fail_closed(env, capsys):
    home, _, _ = env
    (home / "policy.toml").write_text("[category.card]\napprovals_required = 0\n")
    rc, _, err = run(capsys, "grant", "list", "--as", "alice")
    assert rc == 2 and "category.card.approvals_required" in err
    (home / "policy.toml").write_text('[category.card]\napprovers = ["nobody-group"]\n')
    rc, _, err = run(capsys, "grant", "list", "--as", "alice")
    assert rc == 2 and "nobody-group" in err


def test_missing_identity(env, capsys):
    rc, _, err = run(
        capsys, "grant", "request", "--trace", T1, "--category", "ssn", "--reason", "x"
    )
    assert rc == 1 and "--as" in err


def _tamper(db: Path, sql: str) -> None:
    conn = sqlite3.connect(db)
    conn.execute(sql)
    conn.commit()
    conn.close()


@pytest.mark.parametrize(
    "sql, broken",
    [
        ("UPDATE audit SET body = replace(body, '\"alice\"', '\"mallory\"') WHERE seq = 2", 2),
        ("DELETE FROM audit WHERE seq = 2", 2),
        ("UPDATE audit SET seq = seq + 100 WHERE seq = 2", 2),
        ("DELETE FROM audit WHERE seq = (SELECT max(seq) FROM audit)", 4),
    ],
)
def test_audit_verify_finds_tampering(env, capsys, sql, broken):
    home, _, _ = env
    for _ in range(2):
        gid = request(capsys, "--category", "ssn", "--reason", "x")
        run(capsys, "grant", "approve", gid, "--as", "bob")
    _tamper(home / "grants.db", sql)
    rc, out, _ = run(capsys, "audit", "verify")
    assert rc == 1
    assert re.search(rf"BROKEN at entry {broken}\b", out), out
    rc, out, _ = run(capsys, "audit", "verify", "--json", "--db", str(home / "grants.db"))
    assert rc == 1 and json.loads(out)["broken_seq"] == broken
