"""The Redis vault: standalone (``redis://``, ``rediss://``) or Cluster (``redis+cluster://``).

Key layout (prefix ``rv``; ``{T}`` is the trace id as a hash tag, so all of a trace's keys live in
one Cluster slot and can be fetched with one MGET)::

    rv:{T}:e:<entry>   string  sealed blob                      PX = entry TTL
    rv:{T}:t           zset    entry ids of T, score = expiry ms   PX, only ever extended
    rv:r:<ref>         string  trace id the ref belongs to      PX = entry TTL
    rv:n:<entry>       string  sealed blob without a trace id   PX = entry TTL
    rv:rn:<ref>        zset    entry ids without a trace id, score = expiry ms

A ref is a keyed hash of (trace id, label, value), so a traced ref belongs to exactly one trace:
``rv:r:<ref>`` maps it there in one command instead of a set per ref. Untraced refs (equal for
equal values across records) need the sorted set. Expiry is Redis's own; readers also ignore
index members whose score has passed, and trim them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import redis
import redis.cluster
from redis.backoff import NoBackoff
from redis.retry import Retry

from redactor.vault.interface import SealedEntry, VaultBackend, VaultConfigError, VaultUnavailable

DEFAULT_PREFIX = "rv"

# Writes entries in one script call. Per entry, ARGV holds 6 values (blob, px, expiry ms, entry
# id, trace id or "" when untraced, n) and KEYS holds n keys: the entry key, the trace index (if
# traced), then ref keys. Traced refs map to their trace id; untraced refs are sorted sets.
# Index TTLs only ever grow: a late (retried) batch must not shorten the life of entries written
# after it; PTTL is -1 for a new key, so the first write sets it.
_PUT_SCRIPT = """
local function index(key, px, score, member)
  redis.call('ZADD', key, score, member)
  if redis.call('PTTL', key) < px then redis.call('PEXPIRE', key, px) end
end
local k, a = 1, 1
while a <= #ARGV do
  local px, trace, n = tonumber(ARGV[a + 1]), ARGV[a + 4], tonumber(ARGV[a + 5])
  local score, member = ARGV[a + 2], ARGV[a + 3]
  redis.call('SET', KEYS[k], ARGV[a], 'PX', px)
  local first = k + 1
  if trace ~= '' then
    index(KEYS[k + 1], px, score, member)
    first = k + 2
  end
  for i = first, k + n - 1 do
    if trace ~= '' then redis.call('SET', KEYS[i], trace, 'PX', px)
    else index(KEYS[i], px, score, member) end
  end
  k, a = k + n, a + 6
end
return 1
"""

# Entries per script call on a standalone server: large enough that packing and parsing are
# per-batch costs, small enough that one call holds Redis for about a millisecond.
_ENTRIES_PER_CALL = 128


def _tag(trace_id: str) -> str:
    # A brace inside the tag would change which bytes Redis hashes (and "{}" hashes the whole
    # key), so such trace ids are hex-encoded; the "~" marker keeps the mapping injective.
    if "{" in trace_id or "}" in trace_id or trace_id.startswith("~"):
        return "~" + trace_id.encode("utf-8", "surrogatepass").hex()
    return trace_id


class RedisVault(VaultBackend):
    """Sealed entries in Redis or Redis Cluster, with Redis enforcing each entry's TTL."""

    schemes = ("redis", "rediss", "redis+cluster", "rediss+cluster")

    def __init__(
        self,
        url: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        connect_timeout_s: float = 1.0,
        socket_timeout_s: float = 5.0,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in self.schemes:
            raise VaultConfigError(f"not a redis vault URL scheme: {parts.scheme!r}")
        if not parts.hostname:
            raise VaultConfigError("redis vault URL needs a host")
        self._cluster = parts.scheme.endswith("+cluster")
        self._url = url.replace("+cluster://", "://", 1)
        self._display = f"{parts.scheme}://{parts.hostname}:{parts.port or 6379}"
        self._prefix = prefix
        self._connect_timeout_s = connect_timeout_s
        self._socket_timeout_s = socket_timeout_s
        self._client: Any = None
        self._lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str) -> RedisVault:
        """A backend for ``redis://``, ``rediss://`` or ``redis+cluster://`` URLs."""
        return cls(url)

    def _get_client(self) -> Any:
        # Created lazily: a Cluster client connects in its constructor, and an application must
        # start even while the vault is down. redis-py pools reconnect after fork by themselves.
        client = self._client
        if client is not None:
            return client
        with self._lock:
            if self._client is None:
                common: dict[str, Any] = {
                    "socket_connect_timeout": self._connect_timeout_s,
                    "socket_timeout": self._socket_timeout_s,
                }
                try:
                    if self._cluster:
                        self._client = redis.cluster.RedisCluster.from_url(
                            self._url, retry=Retry(NoBackoff(), 1), **common
                        )
                    else:
                        # No client-side retries: the vault writer has its own back-off, and a
                        # reader should fail fast rather than hang an incident responder.
                        self._client = redis.Redis.from_url(
                            self._url, retry=Retry(NoBackoff(), 0), **common
                        )
                except redis.exceptions.RedisError as exc:
                    raise VaultUnavailable(f"{self._display}: {type(exc).__name__}: {exc}") from exc
                except ValueError as exc:
                    raise VaultConfigError(f"{self._display}: bad URL: {exc}") from None
            return self._client

    def _run(self, fn: Any, *args: Any) -> Any:
        try:
            return fn(self._get_client(), *args)
        except redis.exceptions.RedisError as exc:
            raise VaultUnavailable(f"{self._display}: {type(exc).__name__}: {exc}") from exc
        except OSError as exc:
            raise VaultUnavailable(f"{self._display}: {type(exc).__name__}: {exc}") from exc

    # --- keys -------------------------------------------------------------------------------

    def entry_key(self, trace_id: str | None, entry_id: str) -> str:
        """The key an entry's blob is stored under (public for tests and tooling)."""
        if trace_id:
            return f"{self._prefix}:{{{_tag(trace_id)}}}:e:{entry_id}"
        return f"{self._prefix}:n:{entry_id}"

    def trace_index_key(self, trace_id: str) -> str:
        """The sorted set listing a trace's entries."""
        return f"{self._prefix}:{{{_tag(trace_id)}}}:t"

    # --- writes -----------------------------------------------------------------------------

    def put(self, entries: Sequence[SealedEntry]) -> None:
        """Write ``entries`` in one non-transactional pipeline (one round trip per node).

        On a standalone server, every :data:`_ENTRIES_PER_CALL` entries (blobs, indexes, ref
        keys, TTLs) are one EVAL: the Python client's cost is per command, not per byte. A
        Cluster cannot run a script across slots, so there each entry is one EVAL over its
        trace's slot, and its ref keys are written apart.
        """

        def write(client: Any) -> None:
            now = time.time()
            pipe = client.pipeline(transaction=False)
            p = self._prefix
            cluster = self._cluster
            keys: list[Any] = []
            argv: list[Any] = []
            pending = 0
            queued = False
            for e in entries:
                px = int((e.expires_at - now) * 1000)
                if px <= 0:
                    continue  # expired while waiting (e.g. during an outage): nothing to keep
                score = int(e.expires_at * 1000)
                if e.trace_id:
                    tag = _tag(e.trace_id)
                    own = [f"{p}:{{{tag}}}:e:{e.entry_id}", f"{p}:{{{tag}}}:t"]
                    ref_keys = [f"{p}:r:{ref}" for ref in e.refs]
                else:
                    own = [f"{p}:n:{e.entry_id}"]
                    ref_keys = [f"{p}:rn:{ref}" for ref in e.refs]
                trace = e.trace_id or ""
                if cluster:
                    pipe.execute_command(
                        "EVAL",
                        _PUT_SCRIPT,
                        len(own),
                        *own,
                        e.blob,
                        px,
                        score,
                        e.entry_id,
                        trace,
                        len(own),
                    )
                    for key in ref_keys:
                        # Each ref key is its own slot: a one-key call of the same script (an
                        # "entry" whose blob slot is the ref key would be wrong, so no blob).
                        if trace:
                            pipe.execute_command("SET", key, trace, "PX", px)
                        else:
                            pipe.execute_command("ZADD", key, score, e.entry_id)
                            pipe.execute_command("PEXPIRE", key, px, "NX")
                            pipe.execute_command("PEXPIRE", key, px, "GT")
                    queued = True
                    continue
                keys += own
                keys += ref_keys
                argv += (e.blob, px, score, e.entry_id, trace, len(own) + len(ref_keys))
                pending += 1
                if pending == _ENTRIES_PER_CALL:
                    pipe.execute_command("EVAL", _PUT_SCRIPT, len(keys), *keys, *argv)
                    keys, argv, pending, queued = [], [], 0, True
            if pending:
                pipe.execute_command("EVAL", _PUT_SCRIPT, len(keys), *keys, *argv)
                queued = True
            if queued:
                pipe.execute()

        self._run(write)

    # --- reads ------------------------------------------------------------------------------

    def _trace_blobs(self, client: Any, trace_id: str) -> list[bytes]:
        now_ms = int(time.time() * 1000)
        index = self.trace_index_key(trace_id)
        entry_ids = client.zrangebyscore(index, f"({now_ms}", "+inf")
        if not entry_ids:
            return []
        keys = [self.entry_key(trace_id, eid.decode("ascii", "replace")) for eid in entry_ids]
        # All keys share the trace's hash tag, so this is one slot even on a Cluster.
        blobs = client.execute_command("MGET", *keys)
        client.zremrangebyscore(index, "-inf", now_ms)
        return [b for b in blobs if b is not None]

    def blobs_for_trace(self, trace_id: str) -> list[bytes]:
        """Unexpired blobs of ``trace_id``."""
        return list(self._run(self._trace_blobs, trace_id))

    def blobs_for_ref(self, ref: str) -> list[bytes]:
        """Blobs of the trace the ref belongs to, plus untraced entries indexed under it."""

        def read(client: Any) -> list[bytes]:
            now_ms = int(time.time() * 1000)
            trace = client.get(f"{self._prefix}:r:{ref}")
            blobs = (
                self._trace_blobs(client, trace.decode("utf-8", "surrogatepass")) if trace else []
            )
            index = f"{self._prefix}:rn:{ref}"
            entry_ids = client.zrangebyscore(index, f"({now_ms}", "+inf")
            if entry_ids:
                pipe = client.pipeline(transaction=False)
                for eid in entry_ids:
                    pipe.get(self.entry_key(None, eid.decode("ascii", "replace")))
                blobs.extend(b for b in pipe.execute() if b is not None)
            return blobs

        return list(self._run(read))

    def close(self) -> None:
        """Close the client's connections."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            try:
                client.close()
            except (redis.exceptions.RedisError, OSError):
                pass  # closing a connection to a dead server has nothing left to release

    def __repr__(self) -> str:
        return f"RedisVault({self._display!r})"
