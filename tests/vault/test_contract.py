"""The vault contract, run against every backend: memory, SQLite, Redis and a Redis Cluster."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from redactor.testing import assert_no_leak
from redactor.vault._memory import MemoryVault
from redactor.vault.interface import SealedEntry, SealError, UnknownKeyError, VaultBackend
from redactor.vault.keys import KeyRing, generate_keys, load_keyring, retire_key
from redactor.vault.reader import VaultReader
from redactor.vault.sealing import MAGIC
from redactor.vault.writer import VaultWriter
from tests.vault._vault_helpers import (
    PERSISTENT_BACKENDS,
    card_number,
    make_finding,
    new_trace,
    open_backend_like,
    redacted_line,
    url_for,
)

MakeWriter = Callable[..., VaultWriter]


def _raw_store(
    kind: str, backend: VaultBackend, request: pytest.FixtureRequest, tmp_path: Path
) -> bytes:
    """Every byte the backend keeps, as an operator with direct access would see it."""
    if kind == "memory":
        assert isinstance(backend, MemoryVault)
        return b"".join(e.blob + repr(e).encode() for e in backend.raw_entries())
    if kind == "sqlite":
        return b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("vault.db"))
    if kind == "redis":
        ports = [request.getfixturevalue("redis_server").port]
    else:
        ports = request.getfixturevalue("redis_cluster").ports
    chunks: list[bytes] = []
    for port in ports:
        client = redis.Redis(host="127.0.0.1", port=port)
        for key in client.scan_iter(count=1000):
            chunks.append(key)
            chunks.append(client.dump(key) or b"")
            kind_ = client.type(key)
            if kind_ == b"string":
                chunks.append(client.get(key) or b"")
            elif kind_ == b"hash":
                chunks.extend(k + v for k, v in client.hgetall(key).items())
            elif kind_ == b"zset":
                chunks.extend(client.zrange(key, 0, -1))
        client.close()
    return b"\n".join(chunks)


def _write_trace(writer: VaultWriter, trace_id: str | None, n: int = 3) -> list[str]:
    originals = []
    for i in range(n):
        card, token = card_number(), "ghp_" + os.urandom(12).hex()
        originals += [card, token]
        findings = (
            make_finding(trace_id, card),
            make_finding(trace_id, token, label="github_token", path="extra.auth"),
        )
        writer.submit(
            trace_id, "app.payments", redacted_line(findings), findings, timestamp=1000.0 + i
        )
    return originals


def test_round_trip_by_trace(make_writer: MakeWriter, reader: VaultReader) -> None:
    writer = make_writer()
    trace = new_trace()
    originals = _write_trace(writer, trace)
    other = _write_trace(writer, new_trace())
    assert writer.flush()

    records = reader.records_for_trace(trace)
    assert [r.timestamp for r in records] == [1000.0, 1001.0, 1002.0]
    recovered = [o.original for r in records for o in r.originals]
    assert recovered == originals
    first = records[0]
    assert first.trace_id == trace and first.source == "app.payments"
    assert first.redacted.startswith("paid with [card:****-****-****-")
    assert [(o.rule_id, o.category, o.label, o.path) for o in first.originals] == [
        ("test.card", "card", "card", "msg"),
        ("test.github_token", "secret", "github_token", "extra.auth"),
    ]
    assert len({r.record_id for r in records}) == 3
    assert_no_leak(repr(records), originals + other, "repr of records")
    assert writer.stats()["written"] == 12


def test_records_by_ref_with_and_without_trace(
    make_writer: MakeWriter, reader: VaultReader
) -> None:
    writer = make_writer()
    trace = new_trace()
    shared = card_number()
    traced = (make_finding(trace, shared),)
    writer.submit(trace, "app", redacted_line(traced), traced)
    writer.submit(trace, "app", "other line", (make_finding(trace, card_number()),))
    untraced = (make_finding(None, shared), make_finding(None, card_number()))
    writer.submit(None, "cron", redacted_line(untraced), untraced)
    writer.submit(None, "cron", redacted_line(untraced[:1]), untraced[:1])
    assert writer.flush()

    by_trace_ref = reader.records_for_ref(traced[0].ref)
    assert [r.trace_id for r in by_trace_ref] == [trace]
    assert [o.original for o in by_trace_ref[0].originals] == [shared]

    by_untraced_ref = reader.records_for_ref(untraced[0].ref)
    assert len(by_untraced_ref) == 2
    assert all(r.trace_id is None and r.source == "cron" for r in by_untraced_ref)
    assert reader.records_for_ref(untraced[1].ref)[0].originals[1].original == untraced[1].original
    assert reader.records_for_ref("aaaaaaaa") == []
    assert reader.records_for_trace(new_trace()) == []


def test_nothing_in_the_store_is_plaintext(
    backend_kind: str,
    backend: VaultBackend,
    make_writer: MakeWriter,
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    writer = make_writer()
    originals = _write_trace(writer, new_trace(), n=5) + _write_trace(writer, None, n=2)
    assert writer.flush()
    raw = _raw_store(backend_kind, backend, request, tmp_path)
    assert raw, "the store should hold something"
    assert_no_leak(raw, originals, f"{backend_kind} store")


def test_ttl_is_enforced(
    backend_kind: str,
    backend: VaultBackend,
    make_writer: MakeWriter,
    reader: VaultReader,
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    writer = make_writer(ttl_s=1)
    trace = new_trace()
    finding = make_finding(None, card_number())
    _write_trace(writer, trace, n=2)
    writer.submit(None, "cron", "x", (finding,))
    assert writer.flush()
    assert len(reader.records_for_trace(trace)) == 2
    assert len(reader.records_for_ref(finding.ref)) == 1

    time.sleep(1.25)
    assert reader.records_for_trace(trace) == []
    assert reader.records_for_ref(finding.ref) == []
    # Expired data is gone from the store itself, not just hidden by the reader.
    if backend_kind in ("redis", "cluster"):
        client = (
            redis.Redis.from_url(url_for("redis", request, tmp_path))
            if backend_kind == "redis"
            else None
        )
        if client is None:
            from redis.cluster import RedisCluster

            client = RedisCluster(
                host="127.0.0.1", port=request.getfixturevalue("redis_cluster").ports[0]
            )
        from redactor.vault._redis import RedisVault

        assert isinstance(backend, RedisVault)
        assert client.exists(backend.trace_index_key(trace)) == 0
        assert client.exists(f"rv:rn:{finding.ref}") == 0
        client.close()
    elif backend_kind == "sqlite":
        import sqlite3

        conn = sqlite3.connect(tmp_path / "vault.db")
        assert conn.execute("SELECT COUNT(*) FROM entries").fetchone() == (0,)
        assert conn.execute("SELECT COUNT(*) FROM refs").fetchone() == (0,)
        conn.close()
    else:
        assert isinstance(backend, MemoryVault) and backend.raw_entries() == []


def _entries(backend: VaultBackend, reader: VaultReader, trace: str) -> list[SealedEntry]:
    """The stored entries of ``trace`` rebuilt from their blobs (as an attacker could)."""
    from redactor.vault.sealing import parse_header

    entries = []
    for blob in backend.blobs_for_trace(trace):
        header, _ = parse_header(blob)
        entries.append(SealedEntry(header.entry_id, trace, header.refs, time.time() + 60, blob))
    return entries


def test_blob_swapped_to_another_trace_fails(
    backend: VaultBackend, make_writer: MakeWriter, reader: VaultReader
) -> None:
    writer = make_writer()
    victim, target = new_trace(), new_trace()
    _write_trace(writer, victim, n=1)
    _write_trace(writer, target, n=1)
    assert writer.flush()
    (stolen,) = _entries(backend, reader, victim)
    backend.put([SealedEntry("f" * 20, target, stolen.refs, stolen.expires_at, stolen.blob)])
    with pytest.raises(SealError):
        reader.records_for_trace(target)
    # An untraced index pointed at a blob that does not bind the ref yields nothing, not garbage.
    unrelated = make_finding(None, card_number())
    backend.put([SealedEntry("e" * 20, None, (unrelated.ref,), stolen.expires_at, stolen.blob)])
    assert reader.records_for_ref(unrelated.ref) == []


@pytest.mark.parametrize("where", ["ciphertext", "header", "truncated"])
def test_tampered_blob_fails(
    backend: VaultBackend, make_writer: MakeWriter, reader: VaultReader, where: str
) -> None:
    writer = make_writer()
    trace = new_trace()
    originals = _write_trace(writer, trace, n=1)
    assert writer.flush()
    (entry,) = _entries(backend, reader, trace)
    blob = bytearray(entry.blob)
    if where == "ciphertext":
        blob[-20] ^= 0x01
    elif where == "header":
        # Push the expiry a little later: a valid header, but not the one that was sealed.
        at = bytes(blob).index(b'"x":') + 5
        blob[at] = ord("1") if blob[at] != ord("1") else ord("2")
    else:
        del blob[-5:]
    backend.put([SealedEntry(entry.entry_id, trace, entry.refs, entry.expires_at, bytes(blob))])
    with pytest.raises(SealError) as info:
        reader.records_for_trace(trace)
    assert_no_leak(str(info.value), originals, "SealError message")


def test_wrong_key_cannot_open(
    backend: VaultBackend, make_writer: MakeWriter, tmp_path: Path
) -> None:
    writer = make_writer()
    trace = new_trace()
    _write_trace(writer, trace, n=1)
    assert writer.flush()
    other_dir = tmp_path / "other-keys"
    generate_keys(other_dir)
    with pytest.raises(UnknownKeyError):
        VaultReader(open_backend_like(backend), load_keyring(other_dir)).records_for_trace(trace)


def test_rotation_old_keys_open_until_retired(backend: VaultBackend, keys_dir: Path) -> None:
    from redactor.vault.keys import load_public_key

    old_kid = load_public_key(keys_dir).kid
    trace = new_trace()
    old_writer = VaultWriter(
        open_backend_like(backend), load_public_key(keys_dir), schedule_delay_s=0.02
    )
    _write_trace(old_writer, trace, n=1)
    assert old_writer.shutdown()

    new_kid = generate_keys(keys_dir)
    assert new_kid != old_kid and load_public_key(keys_dir).kid == new_kid
    new_writer = VaultWriter(
        open_backend_like(backend), load_public_key(keys_dir), schedule_delay_s=0.02
    )
    _write_trace(new_writer, trace, n=1)
    assert new_writer.shutdown()

    ring = load_keyring(keys_dir)
    assert ring.kids == {old_kid, new_kid}
    assert len(VaultReader(open_backend_like(backend), ring).records_for_trace(trace)) == 2

    retire_key(keys_dir, old_kid)
    with pytest.raises(UnknownKeyError):
        VaultReader(open_backend_like(backend), load_keyring(keys_dir)).records_for_trace(trace)


def test_flush_and_shutdown_twice(make_writer: MakeWriter, reader: VaultReader) -> None:
    writer = make_writer()
    trace = new_trace()
    _write_trace(writer, trace, n=2)
    assert writer.flush() and writer.flush()
    assert writer.shutdown() and writer.shutdown()
    assert writer.flush()  # nothing left to flush
    finding = make_finding(trace, card_number())
    writer.submit(trace, "app", "late", (finding,))  # after shutdown: counted, never raises
    stats = writer.stats()
    assert stats["written"] == 4 and stats["dropped"] == 1
    assert len(reader.records_for_trace(trace)) == 2


@pytest.mark.parametrize("kind", PERSISTENT_BACKENDS)
def test_fork_reinitialises_the_writer(
    kind: str, keys_dir: Path, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    from redactor.vault.backends import open_backend
    from redactor.vault.keys import load_public_key

    url = url_for(kind, request, tmp_path)
    writer = VaultWriter(open_backend(url), load_public_key(keys_dir), schedule_delay_s=0.02)
    parent_trace, child_trace = new_trace(), new_trace()
    _write_trace(writer, parent_trace, n=1)
    assert writer.flush()  # the parent's connection is in use before the fork

    pid = os.fork()
    if pid == 0:  # child: must not run pytest's teardown, whatever happens
        code = 1
        try:
            assert writer.stats()["enqueued"] == 0
            _write_trace(writer, child_trace, n=2)
            code = 0 if writer.flush(5.0) and writer.stats()["written"] == 4 else 3
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0

    _write_trace(writer, parent_trace, n=1)  # the parent's writer still works too
    assert writer.shutdown()
    with VaultReader(open_backend(url), load_keyring(keys_dir)) as reader:
        assert len(reader.records_for_trace(child_trace)) == 2
        assert len(reader.records_for_trace(parent_trace)) == 2


def test_cluster_keeps_a_trace_in_one_slot(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    from redis.cluster import key_slot

    from redactor.vault._redis import RedisVault

    backend = RedisVault(url_for("cluster", request, tmp_path))
    trace = new_trace()
    slots = {
        key_slot(k.encode())
        for k in (backend.entry_key(trace, "a" * 20), backend.trace_index_key(trace))
    }
    assert len(slots) == 1
    odd = "}{weird{trace}"
    odd_slots = {
        key_slot(k.encode())
        for k in (backend.entry_key(odd, "b" * 20), backend.trace_index_key(odd))
    }
    assert len(odd_slots) == 1
    backend.close()


def test_blob_format_has_a_version_marker(backend: VaultBackend, make_writer: MakeWriter) -> None:
    writer = make_writer()
    trace = new_trace()
    _write_trace(writer, trace, n=1)
    assert writer.flush()
    assert all(blob.startswith(MAGIC) for blob in backend.blobs_for_trace(trace))


def test_keyring_rejects_a_key_filed_under_another_id(keys_dir: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    from redactor.vault.interface import VaultConfigError

    kid = next(iter(load_keyring(keys_dir)))
    with pytest.raises(VaultConfigError):
        KeyRing({kid: X25519PrivateKey.generate()})
