"""The writer under pressure: overflow, a Redis outage mid-stream, bad input, quiet logging."""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from redactor.testing import assert_no_leak
from redactor.vault._internal import LOGGER_NAME
from redactor.vault.backends import open_backend
from redactor.vault.interface import SealedEntry, VaultBackend, VaultConfigError, VaultUnavailable
from redactor.vault.keys import load_keyring, load_public_key
from redactor.vault.reader import VaultReader
from redactor.vault.writer import VaultWriter
from tests._redis_servers import RedisServer
from tests.vault._vault_helpers import card_number, make_finding, new_trace


class _BlockingVault(VaultBackend):
    """Holds every write until released, so the queue fills up."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.stored: list[SealedEntry] = []

    def put(self, entries: Sequence[SealedEntry]) -> None:
        self.release.wait(10)
        self.stored.extend(entries)

    def blobs_for_trace(self, trace_id: str) -> list[bytes]:
        return [e.blob for e in self.stored if e.trace_id == trace_id]

    def blobs_for_ref(self, ref: str) -> list[bytes]:
        return [e.blob for e in self.stored if ref in e.refs]


class _FailingVault(_BlockingVault):
    """Always unavailable, with an error message that (wrongly) echoes what it was given."""

    def put(self, entries: Sequence[SealedEntry]) -> None:
        raise VaultUnavailable("down")


@pytest.fixture
def internal_log() -> Iterator[io.StringIO]:
    """Everything the internal logger writes during the test."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger(LOGGER_NAME)
    logger.addHandler(handler)
    from redactor.vault import _internal

    with _internal._seen_lock:
        saved = set(_internal._seen)
        _internal._seen.clear()
    yield stream
    logger.removeHandler(handler)
    with _internal._seen_lock:
        _internal._seen.update(saved)


def test_overflow_drops_originals_and_counts_them(keys_dir: Path) -> None:
    backend = _BlockingVault()
    writer = VaultWriter(backend, load_public_key(keys_dir), max_queue_size=10, max_batch_size=4,
                         schedule_delay_s=0.01)
    trace = new_trace()
    for _ in range(50):
        finding = make_finding(trace, card_number())
        writer.submit(trace, "app", "line", (finding, finding))
    stats = writer.stats()
    assert stats["enqueued"] + stats["dropped"] == 100
    assert stats["dropped"] >= 100 - 2 * (10 + 4)  # at most queue + one in-flight batch kept
    backend.release.set()
    assert writer.flush()
    stats = writer.stats()
    assert stats["written"] == stats["enqueued"] and stats["queued"] == 0
    assert stats["written"] + stats["dropped"] == 100
    assert writer.shutdown()


def test_submit_never_raises_and_never_blocks(keys_dir: Path, internal_log: io.StringIO) -> None:
    backend = _BlockingVault()  # never released: every write hangs
    writer = VaultWriter(
        backend, load_public_key(keys_dir), max_queue_size=100, schedule_delay_s=0.01
    )
    secret = card_number()
    good = make_finding("t", secret)
    worst_s = 0.0
    for findings in [(good,), None, 42, ("not a finding",), (good,) * 3] * 100:
        start = time.perf_counter()
        writer.submit("t", "app", "line", findings)  # type: ignore[arg-type]
        worst_s = max(worst_s, time.perf_counter() - start)
    assert worst_s < 0.05
    backend.release.set()
    assert writer.flush()
    stats = writer.stats()
    assert stats["errors"] >= 1 and stats["dropped"] > 0
    assert writer.shutdown()
    assert_no_leak(internal_log.getvalue(), [secret], "internal log")


def test_write_failures_are_counted_logged_once_and_given_up(
    keys_dir: Path, internal_log: io.StringIO
) -> None:
    writer = VaultWriter(
        _FailingVault(),
        load_public_key(keys_dir),
        schedule_delay_s=0.01,
        retry_limit_s=0.3,
        max_backoff_s=0.05,
    )
    secrets_ = []
    for _ in range(3):
        secret = card_number()
        secrets_.append(secret)
        writer.submit("t", "app", "line", (make_finding("t", secret),))
    assert writer.flush(timeout_s=3.0)  # resolved by giving up after retry_limit_s
    stats = writer.stats()
    assert stats["dropped"] == 3 and stats["written"] == 0 and stats["errors"] >= 2
    log = internal_log.getvalue()
    assert log.count("write to") == 1, "an outage is reported once, not once per retry"
    assert_no_leak(log, secrets_, "internal log")
    assert writer.shutdown()


def test_internal_logger_does_not_propagate() -> None:
    assert logging.getLogger(LOGGER_NAME).propagate is False


def test_writer_survives_redis_killed_and_restarted(tmp_path: Path, keys_dir: Path) -> None:
    server = RedisServer.start(tmp_path / "redis")  # our own: this test kills it
    try:
        url = server.url
        writer = VaultWriter(
            open_backend(url),
            load_public_key(keys_dir),
            schedule_delay_s=0.02,
            max_backoff_s=0.1,
            max_queue_size=100_000,
        )
        before, during, after = new_trace(), new_trace(), new_trace()

        def burst(trace: str, n: int) -> float:
            worst = 0.0
            for _ in range(n):
                finding = make_finding(trace, card_number())
                start = time.perf_counter()
                writer.submit(trace, "app", finding.mask, (finding,))
                worst = max(worst, time.perf_counter() - start)
            return worst

        burst(before, 50)
        assert writer.flush()
        server.kill()
        worst_during = burst(during, 200)
        time.sleep(0.3)  # the worker hits the outage and starts backing off
        assert writer.stats()["errors"] >= 1
        assert not writer.flush(timeout_s=0.2)  # cannot complete while Redis is down
        server.restart()  # same port, empty (no persistence): what was written before is gone
        worst_after = burst(after, 50)
        assert writer.flush(timeout_s=10.0)
        stats = writer.stats()
        assert max(worst_during, worst_after) < 0.05, "submit blocked during the outage"
        assert stats["enqueued"] == 300
        assert stats["written"] + stats["dropped"] == 300
        assert stats["written"] >= 250  # the retried batch and everything after it

        with VaultReader(open_backend(url), load_keyring(keys_dir)) as reader:
            assert len(reader.records_for_trace(after)) == 50
            assert len(reader.records_for_trace(during)) == 200
        assert writer.shutdown()
    finally:
        server.stop()


def test_shutdown_while_backend_down_counts_losses(keys_dir: Path) -> None:
    writer = VaultWriter(
        _FailingVault(), load_public_key(keys_dir), schedule_delay_s=0.01, max_backoff_s=0.05
    )
    for _ in range(5):
        writer.submit("t", "app", "line", (make_finding("t", card_number()),))
    assert writer.shutdown(timeout_s=0.3) is False
    time.sleep(0.1)
    stats = writer.stats()
    assert stats["dropped"] == 5 and stats["written"] == 0
    assert writer.shutdown() is True  # second call: nothing to do


def test_records_without_findings_are_not_stored(keys_dir: Path) -> None:
    backend = _BlockingVault()
    backend.release.set()
    writer = VaultWriter(backend, load_public_key(keys_dir), schedule_delay_s=0.01)
    writer.submit("t", "app", "clean line", ())
    assert writer.flush() and backend.stored == []
    writer.shutdown()


@pytest.mark.parametrize(
    "kwargs", [{"ttl_s": 0}, {"max_queue_size": 0}, {"max_batch_size": 0}, {"schedule_delay_s": 0}]
)
def test_bad_settings_fail_at_construction(keys_dir: Path, kwargs: dict[str, Any]) -> None:
    with pytest.raises(VaultConfigError):
        VaultWriter(_BlockingVault(), load_public_key(keys_dir), **kwargs)


class _SlowVault(_BlockingVault):
    """Each write takes a while and records the size of the batch it was given."""

    def __init__(self) -> None:
        super().__init__()
        self.release.set()
        self.batch_records: list[int] = []

    def put(self, entries: Sequence[SealedEntry]) -> None:
        time.sleep(0.02)
        self.batch_records.append(len(entries))
        super().put(entries)


def test_records_arriving_during_a_write_wait_for_a_full_batch(keys_dir: Path) -> None:
    # Steady traffic must not be cut into tiny batches (each costs a key agreement and a
    # write): between timer ticks the worker only takes full batches.
    backend = _SlowVault()
    writer = VaultWriter(
        backend, load_public_key(keys_dir), max_batch_size=50, schedule_delay_s=30.0
    )
    for i in range(200):
        trace = f"{i:032x}"  # one entry per record, so entries count records
        writer.submit(trace, "app", "line", (make_finding(trace, card_number()),))
        time.sleep(0.001)  # records keep arriving while a batch is being written
    assert writer.flush()
    assert sum(backend.batch_records) == 200
    assert all(size == 50 for size in backend.batch_records[:-1]), backend.batch_records
    assert writer.stats()["written"] == 200
    assert writer.shutdown()
