"""``redactor demo`` runs end to end from a fresh state directory, as a user would run it."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

from redactor.testing import assert_no_leak

DEMO_ORIGINALS = [
    "4111 1111 1111 1111",
    "5500 0000 0000 0004",
    "536-22-1234",
    "Zx81kQ0pL2mN4bV6cX8z",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJwYXJ0bmVyIn0.c2lnbmF0dXJl",
]
REPO = Path(__file__).resolve().parents[2]


def test_demo_end_to_end(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDACTOR_")}
    proc = subprocess.run(
        [sys.executable, "-m", "redactor", "demo", "--home", str(home)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    masked, rest = out.split("== 3.", 1)
    # What reaches the log backend is masked ...
    assert_no_leak(masked, DEMO_ORIGINALS, "demo log output")
    assert "[card:****-****-****-1111#" in masked
    # ... the approved reveal restores the granted values (SSN only to its last 4 by policy) ...
    reveal = rest.split("== 5.", 1)[1].split("== 6.", 1)[0]
    assert (
        "4111 1111 1111 1111" in reveal
        and "Zx81kQ0pL2mN4bV6cX8z" in reveal
        and "****1234" in reveal
    )
    assert_no_leak(
        reveal, ["536-22-1234", "5500 0000 0000 0004"], "reveal of another trace / partial level"
    )
    assert "you cannot approve your own request" in out
    assert len(re.findall(r"reveal refused", out)) == 2
    assert "audit chain OK" in out
    # ... and nothing revealed is in the audit log or the grants database.
    conn = sqlite3.connect(home / "grants.db")
    audit = "\n".join(row[0] for row in conn.execute("SELECT body FROM audit"))
    conn.close()
    assert audit.count('"action":"reveal"') == 3
    assert_no_leak(audit, DEMO_ORIGINALS, "audit log")
    assert_no_leak((home / "grants.db").read_bytes(), DEMO_ORIGINALS, "grants.db")


def test_demo_in_temporary_home_cleans_up(tmp_path: Path, monkeypatch, capsys) -> None:
    from redactor.cli import main

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert main(["demo"]) == 0
    assert "audit chain OK" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []
