"""The embedded vault: one SQLite file (WAL mode, mode 0600), for single-host use.

Expiry is enforced here: every read first deletes expired rows, and writes purge at most every
``purge_interval_s``. ``secure_delete`` zeroes freed pages, so expired ciphertext does not
linger in the file either (it was sealed anyway; this is for tidiness, not secrecy).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from redactor.vault.interface import SealedEntry, VaultBackend, VaultUnavailable

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    entry_id   TEXT PRIMARY KEY,
    trace_id   TEXT,
    expires_at REAL NOT NULL,
    blob       BLOB NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS entries_by_trace ON entries (trace_id);
CREATE INDEX IF NOT EXISTS entries_by_expiry ON entries (expires_at);
CREATE TABLE IF NOT EXISTS refs (
    ref        TEXT NOT NULL,
    entry_id   TEXT NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (ref, entry_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS refs_by_expiry ON refs (expires_at);
"""


class SQLiteVault(VaultBackend):
    """Sealed entries in a local SQLite file, selected by ``sqlite:///path``."""

    schemes = ("sqlite",)

    def __init__(self, path: str | os.PathLike[str], *, purge_interval_s: float = 60.0) -> None:
        self._path = str(path)
        self._purge_interval_s = purge_interval_s
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._pid = 0
        self._last_purge = 0.0
        self._closed = False

    @classmethod
    def from_url(cls, url: str) -> SQLiteVault:
        """``sqlite:///relative.db`` or ``sqlite:////absolute/path.db``.

        SQLAlchemy's convention.
        """
        return cls(url[len("sqlite:///") :])

    def _connect(self) -> sqlite3.Connection:
        # A connection must not cross fork(): the child opens its own.
        if self._conn is not None and self._pid == os.getpid():
            return self._conn
        if self._closed:
            raise VaultUnavailable("vault is closed")
        try:
            if self._path != ":memory:":
                path = Path(self._path)
                path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                # Create the file 0600 before SQLite does (SQLite would honour the umask).
                os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
            conn = sqlite3.connect(
                self._path, timeout=5.0, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA secure_delete=ON")
            conn.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise VaultUnavailable(f"sqlite vault {self._path}: {exc}") from exc
        self._conn, self._pid = conn, os.getpid()
        return conn

    def _purge(self, conn: sqlite3.Connection, now: float) -> None:
        conn.execute("DELETE FROM entries WHERE expires_at <= ?", (now,))
        conn.execute("DELETE FROM refs WHERE expires_at <= ?", (now,))
        self._last_purge = now

    def put(self, entries: Sequence[SealedEntry]) -> None:
        """Insert ``entries`` in one transaction (replacing any with the same id)."""
        now = time.time()
        rows = [
            (e.entry_id, e.trace_id, e.expires_at, e.blob) for e in entries if e.expires_at > now
        ]
        refs = [
            (r, e.entry_id, e.expires_at) for e in entries if e.expires_at > now for r in e.refs
        ]
        with self._lock:
            try:
                conn = self._connect()
                conn.execute("BEGIN IMMEDIATE")
                try:
                    conn.executemany("INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?)", rows)
                    conn.executemany("INSERT OR REPLACE INTO refs VALUES (?, ?, ?)", refs)
                    if now - self._last_purge >= self._purge_interval_s:
                        self._purge(conn, now)
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise VaultUnavailable(f"sqlite vault write failed: {exc}") from exc

    def _select(self, sql: str, key: str) -> list[bytes]:
        now = time.time()
        with self._lock:
            try:
                conn = self._connect()
                self._purge(conn, now)
                return [bytes(row[0]) for row in conn.execute(sql, (key, now))]
            except sqlite3.Error as exc:
                raise VaultUnavailable(f"sqlite vault read failed: {exc}") from exc

    def blobs_for_trace(self, trace_id: str) -> list[bytes]:
        """Unexpired blobs of ``trace_id``, oldest expiry first."""
        return self._select(
            "SELECT blob FROM entries WHERE trace_id = ? AND expires_at > ? ORDER BY expires_at",
            trace_id,
        )

    def blobs_for_ref(self, ref: str) -> list[bytes]:
        """Unexpired blobs indexed under ``ref``."""
        return self._select(
            "SELECT e.blob FROM refs r JOIN entries e ON e.entry_id = r.entry_id"
            " WHERE r.ref = ? AND e.expires_at > ? ORDER BY e.expires_at",
            ref,
        )

    def close(self) -> None:
        """Close the connection (only if this process opened it)."""
        with self._lock:
            self._closed = True
            conn, self._conn = self._conn, None
            if conn is not None and self._pid == os.getpid():
                conn.close()

    def __repr__(self) -> str:
        return f"SQLiteVault({self._path!r})"
