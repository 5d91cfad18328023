"""The OTLP/HTTP front end: ``POST /v1/{logs,traces,metrics}`` and ``GET /healthz``.

A thread per connection (keep-alive), bodies read whole up to the size cap (Content-Length is
required; a chunked body is refused with 411), then handed to :meth:`Gateway.export`. Errors
are ``google.rpc.Status`` messages in the request's encoding, as OTLP/HTTP specifies. Access
logging goes to the ``redactor.gateway`` logger at DEBUG with method, path and status only.
"""

from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import orjson

from redactor.gateway._codec import (
    CONTENT_TYPES,
    JSON,
    PROTOBUF,
    decompress,
    encoding_for,
    to_json_dict,
)
from redactor.gateway.interface import Outcome, PayloadError, Signal, Status

if TYPE_CHECKING:
    from redactor.gateway.server import Gateway

_log = logging.getLogger("redactor.gateway")

# google.rpc.Code numbers for the names an Outcome carries.
_GRPC_CODE_NUMBERS = {
    "OK": 0,
    "CANCELLED": 1,
    "UNKNOWN": 2,
    "INVALID_ARGUMENT": 3,
    "DEADLINE_EXCEEDED": 4,
    "NOT_FOUND": 5,
    "ALREADY_EXISTS": 6,
    "PERMISSION_DENIED": 7,
    "RESOURCE_EXHAUSTED": 8,
    "FAILED_PRECONDITION": 9,
    "ABORTED": 10,
    "OUT_OF_RANGE": 11,
    "UNIMPLEMENTED": 12,
    "INTERNAL": 13,
    "UNAVAILABLE": 14,
    "DATA_LOSS": 15,
    "UNAUTHENTICATED": 16,
}


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _status_body(code: int, message: str, encoding: str) -> bytes:
    """A ``google.rpc.Status`` (code, message), encoded by hand to need no googleapis package."""
    if encoding == JSON:
        return orjson.dumps({"code": code, "message": message})
    text = message.encode()
    return b"\x08" + _varint(code) + b"\x12" + _varint(len(text)) + text


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # idle keep-alive connections must not hold shutdown up
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], gateway: Gateway, max_body_bytes: int) -> None:
        self.gateway = gateway
        self.max_body_bytes = max_body_bytes
        self.draining = False
        self.in_flight = 0
        self.idle = threading.Condition()
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "redactor-gateway"
    sys_version = ""
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        pass  # the base class would print the request line to stderr; see _access below

    def _access(self, status: int) -> None:
        # Only paths the gateway knows are logged: a client could put anything in a URL.
        path = self.path.split("?", 1)[0]
        if path != "/healthz" and Signal.for_path(path) is None:
            path = "<other path>"
        _log.debug("%s %s -> %d", self.command, path, status)

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] == "/healthz":
            status = 503 if self.server.draining else 200
            self._send(status, b"draining\n" if status == 503 else b"ok\n", "text/plain")
        else:
            self._send(404, b"not found\n", "text/plain")

    def do_POST(self) -> None:
        server = self.server
        with server.idle:
            if server.draining:
                self.close_connection = True
                self._error(Outcome(Status.RETRY, "gateway is shutting down"), JSON)
                return
            server.in_flight += 1
        try:
            self._post()
        finally:
            with server.idle:
                server.in_flight -= 1
                server.idle.notify_all()

    def _post(self) -> None:
        signal = Signal.for_path(self.path.split("?", 1)[0])
        content_type = self.headers.get("Content-Type")
        guess = JSON if (content_type or "").lower().startswith("application/json") else PROTOBUF
        if signal is None:
            self.close_connection = True
            self._error(Outcome(Status.INVALID, "unknown path"), guess, http_status=404)
            return
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            self._error(Outcome(Status.INVALID, "Content-Length required"), guess, http_status=411)
            return
        try:
            length = int(self.headers.get("Content-Length", ""))
            if length < 0:
                raise ValueError
        except ValueError:
            self.close_connection = True
            self._error(Outcome(Status.INVALID, "Content-Length required"), guess, http_status=411)
            return
        cap = server_cap = self.server.max_body_bytes
        if length > cap:
            self.close_connection = True  # the body is not read: the connection cannot be reused
            self._error(Outcome(Status.TOO_LARGE, f"body exceeds {server_cap} bytes"), guess)
            return
        body = self.rfile.read(length)
        if len(body) != length:
            self.close_connection = True
            self._error(Outcome(Status.INVALID, "truncated body"), guess)
            return
        try:
            encoding = encoding_for(content_type)
            body = decompress(body, self.headers.get("Content-Encoding"), cap)
        except PayloadError as exc:
            self._error(exc.outcome(), guess)
            return
        outcome = self.server.gateway.export(signal, body, encoding, "http")
        if outcome.status is not Status.OK:
            self._error(outcome, encoding)
            return
        response = signal.response_type()
        if outcome.response:
            try:
                response.ParseFromString(outcome.response)
            except Exception:
                response.Clear()
        data = (
            orjson.dumps(to_json_dict(response))
            if encoding == JSON
            else response.SerializeToString()
        )
        self._send(200, data, CONTENT_TYPES[encoding])

    def _error(self, outcome: Outcome, encoding: str, http_status: int | None = None) -> None:
        status = http_status or outcome.http
        code = _GRPC_CODE_NUMBERS.get(outcome.grpc, 2)
        headers = {"Retry-After": outcome.retry_after} if outcome.retry_after else None
        body = _status_body(code, outcome.message, encoding)
        self._send(status, body, CONTENT_TYPES[encoding], headers)

    def _send(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self._access(status)


class HttpFrontEnd:
    """The HTTP listener, served on its own thread."""

    def __init__(self, gateway: Gateway, host: str, port: int, max_body_bytes: int) -> None:
        self._server = _Server((host, port), gateway, max_body_bytes)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        # A short poll interval: shutdown() waits up to one interval for the serving loop.
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            args=(0.1,),
            name="redactor-gateway-http",
            daemon=True,
        )
        self._thread.start()

    def stop(self, grace_s: float) -> bool:
        """Stop accepting, wait up to ``grace_s`` for requests in flight; True if all finished."""
        server = self._server
        with server.idle:
            server.draining = True
        server.shutdown()
        with server.idle:
            done = server.idle.wait_for(lambda: server.in_flight == 0, timeout=grace_s)
        server.server_close()
        return done
