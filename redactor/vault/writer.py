"""The vault writer: a hot path that only enqueues, and a worker that seals and writes.

``submit`` appends one tuple to a deque and returns; it takes no lock, does no I/O, never blocks
and never raises. A background thread wakes every ``schedule_delay_s`` (or as soon as a batch's
worth is queued), takes up to ``max_batch_size`` records, groups them by trace, seals the batch
under one ephemeral key agreement and writes it in one pipeline.

Overflow policy: the queue holds at most ``max_queue_size`` records. When it is full, a submitted
record's originals are dropped and counted in ``dropped``; its log line was already redacted and
goes out as usual. Nothing is evicted to make room, so what is queued stays in order.

Backend trouble: a failed write is kept and retried with back-off (the queue keeps accepting
until full, then drops) for up to ``retry_limit_s``; then its originals are counted as dropped.
Every failed attempt counts in ``errors`` and the first of each kind is logged once on the
non-propagating ``redactor.internal`` logger — never with a value in it.

Counters (``stats()``), all in originals (findings) except ``errors``:
``enqueued`` accepted by ``submit``; ``written`` stored in the backend; ``dropped`` lost (full
queue, retries exhausted, submitted after shutdown, unsealable record); ``queued`` waiting now;
``errors`` failed write attempts and records that could not be sealed.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from redactor.engine.interface import Finding
from redactor.settings import DEFAULT_VAULT_TTL_S
from redactor.vault._internal import forget, log_once
from redactor.vault.interface import SealedEntry, VaultBackend, VaultConfigError
from redactor.vault.keys import VaultPublicKey
from redactor.vault.sealing import BatchSealer, dumps_payload

_now = time.time  # bound once: the hot path should not look it up on every call

_Item = tuple[str | None, str, str, Sequence[Finding], float]


class _FlushToken:
    """Placed in the queue by ``flush``; set once every record queued before it is handled."""

    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Event()


class _Pending:
    """A sealed batch not yet written, with the flush tokens waiting behind it."""

    __slots__ = ("entries", "originals", "tokens", "first_failure")

    def __init__(
        self, entries: list[SealedEntry], originals: int, tokens: list[_FlushToken]
    ) -> None:
        self.entries = entries
        self.originals = originals
        self.tokens = tokens
        self.first_failure: float | None = None


def _new_entry_id() -> str:
    return os.urandom(10).hex()


class VaultWriter:
    """Seals the originals of redacted records into a vault backend, off the caller's thread.

    The writer owns ``backend`` and closes it on shutdown. ``submit`` is safe from any thread.
    """

    def __init__(
        self,
        backend: VaultBackend,
        public_key: VaultPublicKey,
        *,
        ttl_s: int = DEFAULT_VAULT_TTL_S,
        max_queue_size: int = 20_000,
        max_batch_size: int = 2_048,
        schedule_delay_s: float = 0.2,
        retry_limit_s: float = 60.0,
        max_backoff_s: float = 1.0,
    ) -> None:
        if ttl_s <= 0:
            raise VaultConfigError(f"ttl_s must be positive, got {ttl_s}")
        if max_queue_size <= 0 or max_batch_size <= 0:
            raise VaultConfigError("max_queue_size and max_batch_size must be positive")
        if schedule_delay_s <= 0 or max_backoff_s <= 0 or retry_limit_s < 0:
            raise VaultConfigError("schedule_delay_s and max_backoff_s must be positive")
        self._backend = backend
        self._public_key = public_key
        self._ttl_s = ttl_s
        self._max_queue_size = max_queue_size
        self._max_batch_size = max_batch_size
        self._schedule_delay_s = schedule_delay_s
        self._retry_limit_s = retry_limit_s
        self._max_backoff_s = max_backoff_s
        self._shutdown_started = False
        self._init_state()

        # Weak references so that registering does not keep a discarded writer alive.
        self_ref = weakref.ref(self)

        def _at_exit() -> None:
            writer = self_ref()
            if writer is not None:
                writer.shutdown()

        def _after_fork() -> None:
            writer = self_ref()
            if writer is not None:
                writer._at_fork_reinit()

        self._atexit_hook: Callable[[], None] = _at_exit
        atexit.register(_at_exit)
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=_after_fork)

    def _init_state(self) -> None:
        """Fresh queue, locks, counters and worker thread (at start and in a forked child)."""
        self._queue: deque[_Item | _FlushToken] = deque()
        # ``_capacity`` is what submit compares against; shutdown sets it to 0 so late submits
        # take the counted drop path without the hot path testing a separate flag.
        self._capacity = 0 if self._shutdown_started else self._max_queue_size
        self._wake_at = self._max_batch_size
        self._flushes_waiting = 0  # flush tokens in the queue: drain partial batches for them
        self._wake = threading.Event()
        self._state_lock = threading.Lock()  # guards counters and popping; never taken by submit
        self._drop_lock = threading.Lock()
        self._drained = 0  # originals taken off the queue by the worker
        self._written = 0
        self._dropped = 0
        self._errors = 0  # worker-side, under _state_lock
        self._submit_errors = 0  # caller-side, under _drop_lock
        self._pending: _Pending | None = None
        self._backoff_s = 0.0
        self._stopping = False
        self._abandon = False
        self._worker: threading.Thread | None = None
        if not self._shutdown_started:
            self._worker = threading.Thread(
                target=self._run, name="redactor-vault-writer", daemon=True
            )
            self._worker.start()

    def _at_fork_reinit(self) -> None:
        # The parent flushes what it queued; the child starts empty with its own thread. The
        # backend reconnects by itself (redis-py pools and the SQLite backend check the pid).
        self._init_state()

    # --- hot path ---------------------------------------------------------------------------

    def submit(
        self,
        trace_id: str | None,
        source: str,
        redacted: str,
        findings: Sequence[Finding],
        timestamp: float | None = None,
    ) -> None:
        """Queue the originals of one redacted record. Never blocks, never raises.

        The writer keeps a reference to ``findings`` until the record is written; pass an
        immutable sequence (the engine's tuples) or do not mutate it afterwards.
        """
        try:
            queue = self._queue
            size = len(queue)
            if size < self._capacity:
                queue.append(
                    (
                        trace_id,
                        source,
                        redacted,
                        findings,
                        _now() if timestamp is None else timestamp,
                    )
                )
                if size == self._wake_at:
                    self._wake.set()
            else:
                self._overflow(findings)
        except Exception:
            self._count_submit_error(findings)

    def _overflow(self, findings: Sequence[Finding]) -> None:
        with self._drop_lock:
            self._dropped += len(findings)
        if self._shutdown_started:
            log_once(
                "vault.after-shutdown", "redactor vault: submit after shutdown; originals dropped"
            )
        else:
            log_once(
                "vault.overflow",
                "redactor vault: writer queue full (%d records); "
                "dropping originals, log lines unaffected",
                self._max_queue_size,
            )

    def _count_submit_error(self, findings: Sequence[Finding]) -> None:
        try:
            with self._drop_lock:
                self._submit_errors += 1
                self._dropped += len(findings)
            log_once("vault.submit-error", "redactor vault: submit failed; originals dropped")
        except Exception:  # last line of defence of the host's thread
            pass

    # --- control ----------------------------------------------------------------------------

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until everything submitted before this call is written (or given up on).

        Returns False if that did not happen within ``timeout_s``.
        """
        worker = self._worker
        if worker is None or not worker.is_alive():
            return not self._queue and self._pending is None
        token = _FlushToken()
        with self._state_lock:
            self._flushes_waiting += 1
        self._queue.append(token)  # bypasses the capacity check on purpose: tokens are tiny
        self._wake.set()
        return token.done.wait(timeout_s)

    def shutdown(self, timeout_s: float = 5.0) -> bool:
        """Flush, stop the worker and close the backend. Safe to call twice.

        What cannot be written within ``timeout_s`` is counted as dropped. Returns True when
        everything was written (or definitively handled) in time.
        """
        with self._drop_lock:
            first = not self._shutdown_started
            self._shutdown_started = True
            self._capacity = 0
        if not first:
            return True
        try:
            atexit.unregister(self._atexit_hook)
        except Exception:
            pass  # interpreter teardown: nothing to unregister from
        deadline = time.monotonic() + timeout_s
        self._stopping = True
        self._wake.set()
        worker = self._worker
        clean = True
        if worker is not None and worker is not threading.current_thread():
            worker.join(max(0.0, deadline - time.monotonic()))
            if worker.is_alive():
                clean = False
                self._abandon = True  # the worker drops what is left and exits
                self._wake.set()
                worker.join(1.0)
        try:
            self._backend.close()
        except Exception as exc:
            log_once(
                "vault.close", "redactor vault: closing backend failed: %s", type(exc).__name__
            )
        return clean

    def stats(self) -> dict[str, int]:
        """Counters in originals: enqueued, written, dropped, queued; and errors."""
        with self._state_lock:
            queued = 0
            for item in list(self._queue):  # list() copies atomically under the GIL
                if type(item) is tuple:
                    try:
                        queued += len(item[3])
                    except Exception:
                        pass  # counted as an error when the worker reaches it
            pending = self._pending.originals if self._pending is not None else 0
            with self._drop_lock:
                dropped, submit_errors = self._dropped, self._submit_errors
            return {
                "enqueued": self._drained + queued,
                "written": self._written,
                "dropped": dropped,
                "errors": self._errors + submit_errors,
                "queued": queued + pending,
            }

    # --- worker -----------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            delay = self._backoff_s if self._pending is not None else self._schedule_delay_s
            self._wake.wait(delay)
            self._wake.clear()
            stopping = self._stopping
            try:
                self._work()
            except Exception as exc:  # a bug here must not kill the thread silently
                with self._state_lock:
                    self._errors += 1
                log_once(
                    "vault.worker", "redactor vault: writer worker error: %s", type(exc).__name__
                )
            if self._abandon:
                self._drop_everything()
                return
            if stopping and not self._queue and self._pending is None:
                return

    def _pop_batch(self) -> tuple[list[_Item], list[_FlushToken]]:
        batch: list[_Item] = []
        tokens: list[_FlushToken] = []
        queue = self._queue
        with self._state_lock:
            while queue and len(batch) < self._max_batch_size:
                item = queue.popleft()
                if type(item) is tuple:
                    batch.append(item)
                    continue
                assert isinstance(item, _FlushToken)
                tokens.append(item)
                # Stop at a flush point so the token is released right after this batch.
                while queue and type(queue[0]) is _FlushToken:
                    tokens.append(queue.popleft())  # type: ignore[arg-type]
                break
            self._flushes_waiting -= len(tokens)
            for item in batch:
                try:
                    self._drained += len(item[3])
                except Exception:
                    pass  # an unsized findings object is counted as an error when sealed
        return batch, tokens

    def _work(self) -> None:
        # One wake-up takes what is queued; after that only full batches, unless a flush or
        # shutdown waits. Records that keep arriving while a batch is sealed would otherwise be
        # taken a few at a time, each small batch paying for a key agreement and a write.
        first = True
        while True:
            if self._pending is not None and not self._write_pending():
                return  # backend still failing: wait for the back-off
            if (
                not first
                and len(self._queue) < self._max_batch_size
                and not self._flushes_waiting
                and not self._stopping
            ):
                return
            first = False
            batch, tokens = self._pop_batch()
            if not batch and not tokens:
                return
            entries, originals = self._seal(batch) if batch else ([], 0)
            self._pending = _Pending(entries, originals, tokens)

    def _write_pending(self) -> bool:
        """Try the pending batch once; True when it is resolved (written or given up on)."""
        pending = self._pending
        assert pending is not None
        try:
            if pending.entries:
                self._backend.put(pending.entries)
        except Exception as exc:
            now = time.monotonic()
            with self._state_lock:
                self._errors += 1
            log_once(
                f"vault.write.{type(exc).__name__}",
                "redactor vault: write to %r failed (%s); "
                "retrying, originals are dropped if the queue fills",
                self._backend,
                type(exc).__name__,
            )
            if pending.first_failure is None:
                pending.first_failure = now
            if not self._abandon and now - pending.first_failure < self._retry_limit_s:
                self._backoff_s = min(self._max_backoff_s, max(0.05, self._backoff_s * 2))
                return False
            with self._drop_lock:
                self._dropped += pending.originals
        else:
            with self._state_lock:
                self._written += pending.originals
            if pending.first_failure is not None:
                # Recovered: let the next outage be reported again.
                for key in ("VaultUnavailable", "ConnectionError", "TimeoutError"):
                    forget(f"vault.write.{key}")
        self._backoff_s = 0.0
        self._pending = None
        for token in pending.tokens:
            token.done.set()
        return True

    def _seal(self, batch: list[_Item]) -> tuple[list[SealedEntry], int]:
        """Group ``batch`` by trace and seal it under one ephemeral key agreement."""
        by_trace: dict[str, list[_Item]] = {}
        untraced: list[_Item] = []
        for item in batch:
            if item[0]:
                group = by_trace.get(item[0])
                if group is None:
                    by_trace[item[0]] = group = []
                group.append(item)
            else:
                untraced.append(item)
        sealer = BatchSealer(self._public_key)
        expires_at = time.time() + self._ttl_s
        entries: list[SealedEntry] = []
        originals = 0
        groups: list[tuple[str | None, list[_Item]]] = list(by_trace.items())
        if untraced:
            # Records without a trace share one blob per batch too; it is indexed under each
            # of its refs, and readers return only the records that hold the ref asked for.
            groups.append((None, untraced))
        for trace_id, items in groups:
            rows: list[list[Any]] = []
            refs: set[str] = set()
            for item in items:
                try:
                    row: list[Any] = [
                        float(item[4]),
                        str(item[1]),
                        str(item[2]),
                        [
                            [f.ref, f.rule_id, f.category, f.label, f.path, f.original]
                            for f in item[3]
                        ],
                    ]
                except Exception:
                    self._count_unsealable(item)
                    continue
                if not row[3]:
                    continue  # nothing masked: nothing to recover
                rows.append(row)
                refs.update(str(f[0]) for f in row[3])
            if not rows:
                continue
            entry_id = _new_entry_id()
            ordered_refs = tuple(sorted(refs))
            try:
                blob = sealer.seal(
                    trace_id=trace_id,
                    entry_id=entry_id,
                    refs=ordered_refs,
                    expires_at=expires_at,
                    count=len(rows),
                    payload=dumps_payload(rows),
                )
            except Exception:
                for item in items:
                    self._count_unsealable(item)
                continue
            entries.append(SealedEntry(entry_id, trace_id, ordered_refs, expires_at, blob))
            originals += sum(len(row[3]) for row in rows)
        return entries, originals

    def _count_unsealable(self, item: _Item) -> None:
        try:
            lost = len(item[3])
        except Exception:
            lost = 0
        with self._drop_lock:
            self._dropped += lost
        with self._state_lock:
            self._errors += 1
        log_once(
            "vault.seal", "redactor vault: a record could not be sealed; its originals are dropped"
        )

    def _drop_everything(self) -> None:
        lost = self._pending.originals if self._pending is not None else 0
        tokens = list(self._pending.tokens) if self._pending is not None else []
        self._pending = None
        while self._queue:
            item = self._queue.popleft()
            if type(item) is tuple:
                try:
                    lost += len(item[3])
                    with self._state_lock:
                        self._drained += len(item[3])
                except Exception:
                    pass
            else:
                tokens.append(item)  # type: ignore[arg-type]
        with self._state_lock:
            self._flushes_waiting = 0
        with self._drop_lock:
            self._dropped += lost
        if lost:
            log_once(
                "vault.shutdown-drop",
                "redactor vault: shutdown timed out; %d originals dropped",
                lost,
            )
        for token in tokens:
            token.done.set()

    def __repr__(self) -> str:
        return f"VaultWriter({self._backend!r}, kid={self._public_key.kid})"
