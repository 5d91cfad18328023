"""Durable grants and the hash-chained audit log, in one SQLite file (``$REDACTOR_HOME/grants.db``).

Grant changes and their audit entries are written in the same transaction, so the log never
claims something the grant table does not show (and vice versa). Each audit entry's hash is
``sha256(prev_hash || canonical_json(entry))``; :meth:`GrantStore.verify` walks the chain and
reports the first entry that was edited, deleted or moved. A ``meta`` row keeps the head, so
cutting entries off the end is caught too — unless the head is forged as well, which is why
``audit verify`` prints the head hash for operators to anchor elsewhere.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from redactor.grants.interface import AuditEntry, Grant, GrantNotFound, VerifyResult

GENESIS_HASH = "0" * 64
_SCHEMA = """
CREATE TABLE IF NOT EXISTS grants (
    id TEXT PRIMARY KEY,
    requester TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS grants_status ON grants(status, expires_at);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def canonical_json(body: dict[str, Any]) -> bytes:
    """The exact bytes an entry's hash covers: sorted keys, no whitespace, UTF-8."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


def chain_hash(prev_hash: str, body_bytes: bytes) -> str:
    """``sha256(prev_hash || body)`` as hex."""
    return hashlib.sha256(prev_hash.encode("ascii") + body_bytes).hexdigest()


class Transaction:
    """Reads and writes inside one ``BEGIN IMMEDIATE`` transaction.

    See :meth:`GrantStore.transaction`.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self.appended: list[AuditEntry] = []

    def get(self, grant_id: str) -> Grant:
        row = self._conn.execute("SELECT doc FROM grants WHERE id = ?", (grant_id,)).fetchone()
        if row is None:
            raise GrantNotFound(f"no grant {grant_id!r}")
        return Grant.from_json(json.loads(row[0]))

    def put(self, grant: Grant) -> None:
        self._conn.execute(
            "INSERT OR REPLACE INTO grants (id, requester, status, created_at, expires_at, doc)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (
                grant.id,
                grant.requester,
                grant.status,
                grant.created_at,
                grant.expires_at,
                json.dumps(grant.to_json(), sort_keys=True),
            ),
        )

    def open_grants_due(self, now: float) -> list[Grant]:
        """Pending or active grants whose window has ended."""
        rows = self._conn.execute(
            "SELECT doc FROM grants WHERE status IN ('pending', 'active') AND expires_at <= ?",
            (now,),
        ).fetchall()
        return [Grant.from_json(json.loads(r[0])) for r in rows]

    def grants(
        self, *, requester: str | None = None, statuses: tuple[str, ...] | None = None
    ) -> list[Grant]:
        sql, params = "SELECT doc FROM grants WHERE 1=1", []
        if requester is not None:
            sql += " AND requester = ?"
            params.append(requester)
        if statuses:
            sql += f" AND status IN ({','.join('?' * len(statuses))})"
            params.extend(statuses)
        sql += " ORDER BY created_at DESC, id"
        return [
            Grant.from_json(json.loads(r[0])) for r in self._conn.execute(sql, params).fetchall()
        ]

    def append_audit(self, body: dict[str, Any]) -> AuditEntry:
        """Add one entry at the head of the chain; ``seq`` is assigned here."""
        row = self._conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        seq, prev = (row[0] + 1, row[1]) if row else (1, GENESIS_HASH)
        full = {"seq": seq, **body}
        data = canonical_json(full)
        digest = chain_hash(prev, data)
        self._conn.execute(
            "INSERT INTO audit (seq, prev_hash, hash, body) VALUES (?, ?, ?, ?)",
            (seq, prev, digest, data.decode("utf-8")),
        )
        self._conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('head', ?)", (f"{seq}:{digest}",)
        )
        entry = AuditEntry(seq=seq, prev_hash=prev, hash=digest, body=full)
        self.appended.append(entry)
        return entry


class GrantStore:
    """SQLite-backed grants + audit chain; safe for threads (one connection, one lock) and for
    several processes (``BEGIN IMMEDIATE`` serialises writers; WAL lets readers proceed)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            # Grants name traces and people: keep the file private to the operator.
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            os.close(fd)
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(
            self.path, timeout=10.0, isolation_level=None, check_same_thread=False
        )
        with self._lock:
            if self.path != ":memory:":
                self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")  # an audit entry must survive a crash
            self._conn.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the connection (safe to call twice)."""
        with self._lock:
            self._conn.close()

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """One atomic unit: commits on success, rolls back on any exception."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            tx = Transaction(self._conn)
            try:
                yield tx
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def audit_entries(
        self, *, after_seq: int = 0, limit: int | None = None, last: int | None = None
    ) -> list[AuditEntry]:
        """Entries after ``after_seq`` in chain order, or the ``last`` N entries."""
        with self._lock:
            if last is not None:
                rows = self._conn.execute(
                    "SELECT seq, prev_hash, hash, body FROM audit ORDER BY seq DESC LIMIT ?",
                    (last,),
                ).fetchall()[::-1]
            else:
                rows = self._conn.execute(
                    "SELECT seq, prev_hash, hash, body FROM audit"
                    " WHERE seq > ? ORDER BY seq LIMIT ?",
                    (after_seq, -1 if limit is None else limit),
                ).fetchall()
        out = []
        for seq, prev, digest, body in rows:
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = {"unparseable": True}
            out.append(AuditEntry(seq=seq, prev_hash=prev, hash=digest, body=parsed))
        return out

    def verify(self) -> VerifyResult:
        """Walk the chain from the start; the first edited, missing or moved entry is reported."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT seq, prev_hash, hash, body FROM audit ORDER BY seq"
            ).fetchall()
            meta = self._conn.execute("SELECT value FROM meta WHERE key = 'head'").fetchone()
        return verify_rows(rows, meta[0] if meta else None)


def verify_rows(rows: list[tuple[int, str, str, str]], head: str | None) -> VerifyResult:
    """Check ``(seq, prev_hash, hash, body)`` rows in ``seq`` order against the chain rules."""
    prev = GENESIS_HASH
    expected = 1
    for seq, prev_hash, digest, body in rows:

        def broken(problem: str, at: int = expected) -> VerifyResult:
            # Only ever called (and returned) within this iteration: the current values are meant.
            return VerifyResult(False, expected - 1, prev, broken_seq=at, problem=problem)  # noqa: B023

        if seq != expected:
            return broken(f"entry {expected} is missing (next stored entry is {seq})")
        try:
            inner_seq = json.loads(body).get("seq")
        except (ValueError, AttributeError):
            return broken(f"entry {seq} is not valid JSON")
        if inner_seq != seq:
            return broken(f"entry {seq} carries seq {inner_seq!r}: entries were moved")
        if prev_hash != prev:
            return broken(f"entry {seq} does not link to entry {seq - 1} (deleted or reordered)")
        if chain_hash(prev, body.encode("utf-8")) != digest:
            return broken(f"entry {seq} was modified (hash mismatch)")
        prev = digest
        expected += 1
    count = expected - 1
    if head is not None and head != f"{count}:{prev}":
        head_seq = head.split(":", 1)[0]
        return VerifyResult(
            False,
            count,
            prev,
            broken_seq=count + 1,
            problem=f"chain ends at entry {count} but the recorded head is entry {head_seq}: "
            "entries were cut off the end",
        )
    if head is None and count:
        return VerifyResult(
            False, count, prev, broken_seq=count + 1, problem="head record is missing"
        )
    return VerifyResult(True, count, prev)
