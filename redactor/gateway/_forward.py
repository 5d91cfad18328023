"""Where redacted requests go: a downstream OTLP/HTTP or OTLP/gRPC endpoint, or a JSON-lines sink.

Downstream results are mapped to :class:`Outcome` so the client sees what OTLP clients expect:
success (with the downstream's response, so partial-success counts get through), a retryable
failure (HTTP 429/502/503/504, gRPC UNAVAILABLE/RESOURCE_EXHAUSTED and the other codes OTLP
lists as retryable; also any connection failure or timeout), or a permanent rejection. Error
texts from the downstream are never relayed: only its status code.
"""

from __future__ import annotations

import http.client
import logging
import sys
import threading
import urllib.parse
from typing import IO, Any

import grpc  # type: ignore[import-untyped,unused-ignore]
import orjson
from google.protobuf import json_format  # type: ignore[import-untyped,unused-ignore]

from redactor.gateway._codec import CONTENT_TYPES, JSON, PROTOBUF, encode, to_json_dict
from redactor.gateway.interface import GatewayError, Outcome, Signal, Status

_log = logging.getLogger("redactor.gateway")

_HTTP_RETRYABLE = frozenset((502, 503, 504))
# OTLP/gRPC: the codes a client may retry (RESOURCE_EXHAUSTED is reported as throttling).
_GRPC_RETRYABLE = frozenset(
    ("CANCELLED", "DEADLINE_EXCEEDED", "ABORTED", "OUT_OF_RANGE", "UNAVAILABLE", "DATA_LOSS")
)
_GRPC_TO_HTTP = {"DEADLINE_EXCEEDED": 504, "UNAVAILABLE": 503}


def _response_bytes(signal: Signal, body: bytes, content_type: str) -> bytes | None:
    """The downstream's Export*ServiceResponse as protobuf bytes (None if unreadable)."""
    if not body:
        return None
    try:
        if content_type.split(";", 1)[0].strip().lower() == "application/json":
            message = signal.response_type()
            json_format.ParseDict(orjson.loads(body), message, ignore_unknown_fields=True)
            return bytes(message.SerializeToString())
        message = signal.response_type()
        message.ParseFromString(body)
        return body
    except Exception:
        return None


class HttpForwarder:
    """POSTs to ``<base_url>/v1/<signal>`` in the encoding the request came in, over one
    keep-alive connection per gateway thread."""

    def __init__(self, base_url: str, *, timeout_s: float = 10.0) -> None:
        parts = urllib.parse.urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise GatewayError(
                f"upstream HTTP URL must be http(s)://host[:port][/path], got {base_url!r}"
            )
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._https else 80)
        self._base_path = parts.path.rstrip("/")
        self._timeout_s = timeout_s
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[http.client.HTTPConnection] = []
        self.url = base_url

    def _connection(self, fresh: bool) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is not None and not fresh:
            return conn
        if conn is not None:
            conn.close()
        kind = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        conn = kind(self._host, self._port, timeout=self._timeout_s)
        self._local.conn = conn
        with self._lock:
            self._connections.append(conn)
        return conn

    def send(self, signal: Signal, message: Any, encoded: bytes | None, encoding: str) -> Outcome:
        body = encoded if encoded is not None else encode(message, encoding)
        headers = {"Content-Type": CONTENT_TYPES[encoding], "Content-Length": str(len(body))}
        path = self._base_path + signal.http_path
        for attempt in (0, 1):
            conn = self._connection(fresh=attempt > 0)
            try:
                conn.request("POST", path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
                status = response.status
                content_type = response.getheader("Content-Type") or ""
                retry_after = response.getheader("Retry-After")
                if response.will_close:
                    conn.close()
                    self._local.conn = None
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                conn.close()
                self._local.conn = None
                if attempt == 0:
                    continue  # a keep-alive connection the downstream had closed: once more
                return Outcome(Status.RETRY, "downstream closed the connection")
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                self._local.conn = None
                return Outcome(Status.RETRY, f"downstream unreachable ({type(exc).__name__})")
        if 200 <= status < 300:
            return Outcome(Status.OK, response=_response_bytes(signal, data, content_type))
        if status == 429:
            return Outcome(Status.THROTTLED, "downstream throttled", retry_after=retry_after)
        if status in _HTTP_RETRYABLE:
            return Outcome(
                Status.RETRY,
                f"downstream unavailable (HTTP {status})",
                http_status=status,
                retry_after=retry_after,
            )
        return Outcome(
            Status.REJECTED, f"downstream rejected the request (HTTP {status})", http_status=status
        )

    def close(self) -> None:
        with self._lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()


class GrpcForwarder:
    """Calls ``Export`` on ``target`` (host:port, plaintext) with the protobuf bytes."""

    def __init__(self, target: str, *, timeout_s: float = 10.0, max_bytes: int = 64 << 20) -> None:
        self._channel = grpc.insecure_channel(
            target,
            options=[
                ("grpc.max_send_message_length", max_bytes),
                ("grpc.max_receive_message_length", max_bytes),
            ],
        )
        # No (de)serialisers: requests go out as the bytes we hold, responses come back raw.
        self._calls = {s: self._channel.unary_unary(s.grpc_method) for s in Signal}
        self._timeout_s = timeout_s
        self.target = target

    def send(self, signal: Signal, message: Any, encoded: bytes | None, encoding: str) -> Outcome:
        if encoded is None or encoding != PROTOBUF:
            encoded = encode(message, PROTOBUF)
        body = encoded
        try:
            response = self._calls[signal](body, timeout=self._timeout_s)
        except grpc.RpcError as exc:
            code = exc.code() if callable(getattr(exc, "code", None)) else None
            name = getattr(code, "name", "UNKNOWN")
            if name == "RESOURCE_EXHAUSTED":
                return Outcome(Status.THROTTLED, "downstream throttled")
            if name in _GRPC_RETRYABLE:
                return Outcome(
                    Status.RETRY,
                    f"downstream unavailable (gRPC {name})",
                    http_status=_GRPC_TO_HTTP.get(name, 503),
                    grpc_code=name,
                )
            return Outcome(
                Status.REJECTED, f"downstream rejected the request (gRPC {name})", grpc_code=name
            )
        except Exception as exc:
            return Outcome(Status.RETRY, f"downstream call failed ({type(exc).__name__})")
        return Outcome(Status.OK, response=bytes(response) if response else None)

    def close(self) -> None:
        self._channel.close()


class JsonLinesSink:
    """Writes each redacted request as one line of OTLP/JSON to a file (appended) or stdout."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._stream: IO[bytes]
        if path == "-":
            self._stream, self._owned = sys.stdout.buffer, False
        else:
            try:
                self._stream, self._owned = open(path, "ab"), True  # noqa: SIM115 - closed in close()
            except OSError as exc:
                raise GatewayError(f"cannot open output {path}: {exc.strerror}") from None
        self._lock = threading.Lock()

    def send(self, signal: Signal, message: Any, encoded: bytes | None, encoding: str) -> Outcome:
        try:
            if encoded is not None and encoding == JSON:
                line = orjson.dumps(orjson.loads(encoded))  # one line, whatever the client sent
            else:
                line = orjson.dumps(to_json_dict(message))
            with self._lock:
                self._stream.write(line + b"\n")
                self._stream.flush()
        except Exception as exc:
            return Outcome(Status.RETRY, f"output write failed ({type(exc).__name__})")
        return Outcome(Status.OK)

    def close(self) -> None:
        with self._lock:
            try:
                self._stream.flush()
            finally:
                if self._owned:
                    self._stream.close()
