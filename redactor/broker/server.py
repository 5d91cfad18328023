"""The reveal broker: an HTTP API over :class:`~redactor.grants.GrantService`. Only it holds the
vault's private key; callers authenticate with bearer tokens or OIDC JWTs.

Endpoints (JSON in, JSON out; errors are ``{"error": {"code", "message"}}`` with a 4xx status)::

    GET  /healthz                       no auth
    POST /v1/grants                     {traces, refs, categories, reason, duration_s, break_glass}
    GET  /v1/grants?mine=1&status=a,b
    GET  /v1/grants/<id>
    POST /v1/grants/<id>/approve        {reason?}
    POST /v1/grants/<id>/deny           {reason}
    POST /v1/grants/<id>/revoke         {reason?}
    POST /v1/reveal                     {trace | ref, categories?, lines?}   Cache-Control: no-store
    GET  /v1/audit?last=N
    GET  /v1/audit/verify

Bodies are capped (413), must be JSON objects (400), fields are type-checked (400 naming the
field). An unexpected exception becomes a 500 with a fixed message — never a stack trace, never
a value — and is logged by type only.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from redactor.broker.auth import Authenticator, AuthError
from redactor.grants.interface import GrantError, RateLimited, RecordReader, RevealRefused
from redactor.grants.service import GrantService
from redactor.vault.interface import VaultError

log = logging.getLogger("redactor.broker")

DEFAULT_MAX_BODY_BYTES = 1024 * 1024
_GRANT_PATH = re.compile(r"^/v1/grants/(g-[a-z2-7]{8})(?:/(approve|deny|revoke))?$")


class BadRequest(GrantError):
    """The request body or query is malformed."""

    status = 400


class RateLimiter:
    """A token bucket per identity: ``per_minute`` reveals, bursting up to ``burst``."""

    def __init__(
        self, per_minute: float = 30.0, burst: int = 10, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate_per_s = per_minute / 60.0
        self.burst = float(burst)
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, who: str) -> None:
        """Consume one token or raise :class:`RateLimited`."""
        with self._lock:
            now = self.clock()
            tokens, last = self._buckets.get(who, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate_per_s)
            if tokens < 1.0:
                self._buckets[who] = (tokens, now)
                raise RateLimited(
                    "too many reveals; slow down", retry_after_s=(1.0 - tokens) / self.rate_per_s
                )
            self._buckets[who] = (tokens - 1.0, now)


@dataclass
class BrokerApp:
    """What the request handler needs: the grant service, authentication, the vault reader."""

    service: GrantService
    authenticator: Authenticator
    reader_factory: Callable[[], RecordReader]
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    rate_limiter: RateLimiter = field(default_factory=RateLimiter)
    _reader: RecordReader | None = None
    _reader_lock: threading.Lock = field(default_factory=threading.Lock)

    def reader(self) -> RecordReader:
        # Opened once, on first allowed reveal: the private key stays in this process only.
        with self._reader_lock:
            if self._reader is None:
                self._reader = self.reader_factory()
            return self._reader


def _field(
    body: dict[str, Any], name: str, kind: type, default: Any = None, *, required: bool = False
) -> Any:
    if name not in body or body[name] is None:
        if required:
            raise BadRequest(f"missing field {name!r}")
        return default
    value = body[name]
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise BadRequest(f"field {name!r} must be an integer")
    if kind is bool and not isinstance(value, bool):
        raise BadRequest(f"field {name!r} must be true or false")
    if kind is str and not isinstance(value, str):
        raise BadRequest(f"field {name!r} must be a string")
    if kind is list and (not isinstance(value, list) or not all(isinstance(x, str) for x in value)):
        raise BadRequest(f"field {name!r} must be a list of strings")
    return value


class _Handler(BaseHTTPRequestHandler):
    server_version = "redactor-broker/1"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    # Unparseable request lines would otherwise get an HTTP/0.9 answer: no status line, no JSON.
    default_request_version = "HTTP/1.0"
    app: BrokerApp  # set on the subclass made by make_server

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The stdlib's protocol-level errors (bad request line, oversized headers) as JSON, too."""
        self.close_connection = True
        try:
            self._error(code, "bad_request" if code < 500 else "internal", message or "bad request")
        except OSError:
            pass
        self._status = code
        log.info("protocol error %s", code)

    # --- plumbing -------------------------------------------------------------------------

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # replaced by the one structured line in _finish; never log bodies

    def _send(
        self,
        status: int,
        payload: Any,
        *,
        no_store: bool = False,
        headers: dict[str, str] | None = None,
    ) -> None:
        data = json.dumps(payload, sort_keys=True).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Content-Type-Options", "nosniff")
        if no_store:
            self.send_header("Cache-Control", "no-store")
            self.send_header("Pragma", "no-cache")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)
        self._status = status

    def _error(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        self._send(
            status, {"error": {"code": code, "message": message}}, no_store=True, headers=headers
        )

    def _body(self) -> dict[str, Any]:
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            raise _HTTPError(
                411, "length_required", "chunked bodies are not accepted; send Content-Length"
            )
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            return {}
        try:
            length = int(length_header)
        except ValueError:
            self.close_connection = True
            raise _HTTPError(400, "bad_request", "invalid Content-Length") from None
        if length < 0:
            self.close_connection = True
            raise _HTTPError(400, "bad_request", "invalid Content-Length")
        if length > self.app.max_body_bytes:
            self.close_connection = True  # the unread body must not be parsed as the next request
            raise _HTTPError(413, "too_large", f"body larger than {self.app.max_body_bytes} bytes")
        raw = self.rfile.read(length)
        if not raw:
            return {}
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise _HTTPError(400, "bad_json", "body is not valid JSON") from None
        if not isinstance(body, dict):
            raise _HTTPError(400, "bad_json", "body must be a JSON object")
        return body

    def _identity(self) -> Any:
        header = self.headers.get("Authorization", "")
        scheme, _, credential = header.partition(" ")
        if scheme.lower() != "bearer" or not credential.strip():
            raise _HTTPError(
                401,
                "unauthenticated",
                "missing bearer token",
                {"WWW-Authenticate": 'Bearer realm="redactor"'},
            )
        try:
            who = self.app.authenticator.authenticate(credential.strip(), self.client_address[0])
        except AuthError as exc:
            raise _HTTPError(
                401,
                "unauthenticated",
                str(exc),
                {"WWW-Authenticate": 'Bearer realm="redactor", error="invalid_token"'},
            ) from None
        self._who = who.name
        return who

    def _dispatch(self, method: str) -> None:
        self._status = 0
        self._who = "-"
        started = time.monotonic()
        parts = urlsplit(self.path)
        path = parts.path
        try:
            self._route(method, path, parse_qs(parts.query))
        except _HTTPError as exc:
            self._error(exc.status, exc.code, exc.message, exc.headers)
        except RateLimited as exc:
            self._error(
                429,
                "rate_limited",
                str(exc),
                {"Retry-After": str(max(1, int(exc.retry_after_s + 0.999)))},
            )
        except RevealRefused as exc:
            self._error(403, "reveal_refused", str(exc))
        except GrantError as exc:
            self._error(exc.status, type(exc).__name__.lower(), str(exc))
        except VaultError as exc:
            # Vault messages name keys and backends, never values; still, keep details in our log.
            log.warning("vault error on %s %s: %s", method, path, type(exc).__name__)
            self._error(503, "vault_unavailable", "the vault could not be read; try again")
        except Exception as exc:  # noqa: BLE001 - the boundary: no stack traces, no values to callers
            log.error("internal error handling %s %s: %s", method, path, type(exc).__name__)
            self.close_connection = True
            self._error(500, "internal", "internal error")
        finally:
            # One structured access line: no query strings or bodies (they carry trace ids, lines).
            log.info(
                "%s %s %s who=%s %.1fms",
                method,
                path[:200],
                self._status,
                self._who,
                (time.monotonic() - started) * 1000,
            )

    # --- routes ---------------------------------------------------------------------------

    def _route(self, method: str, path: str, query: dict[str, list[str]]) -> None:
        if path == "/healthz" and method == "GET":
            self._send(200, {"ok": True})
            return
        if not path.startswith("/v1/"):
            raise _HTTPError(404, "not_found", "no such endpoint")
        if method not in ("GET", "POST"):
            raise _HTTPError(405, "method_not_allowed", "use GET or POST")
        who = self._identity()
        svc = self.app.service
        body = self._body() if method == "POST" else {}

        if path == "/v1/grants":
            if method == "POST":
                g = svc.request(
                    who,
                    traces=_field(body, "traces", list, []),
                    refs=_field(body, "refs", list, []),
                    categories=_field(body, "categories", list, required=True),
                    reason=_field(body, "reason", str, required=True),
                    duration_s=_field(body, "duration_s", int),
                    break_glass=_field(body, "break_glass", bool, False),
                )
                self._send(201, {"grant": g.to_json()})
                return
            statuses = None
            if query.get("status"):
                statuses = tuple(s for s in query["status"][0].split(",") if s)
            grants = svc.list(
                who, mine=query.get("mine", ["0"])[0] in ("1", "true"), statuses=statuses
            )
            self._send(200, {"grants": [g.to_json() for g in grants]})
            return
        if m := _GRANT_PATH.match(path):
            gid, action = m.group(1), m.group(2)
            if action is None and method == "GET":
                self._send(200, {"grant": svc.show(who, gid).to_json()})
            elif action and method == "POST":
                reason = _field(body, "reason", str, "")
                if action == "approve":
                    g = svc.approve(who, gid, reason)
                elif action == "deny":
                    g = svc.deny(who, gid, reason)
                else:
                    g = svc.revoke(who, gid, reason)
                self._send(200, {"grant": g.to_json()})
            else:
                raise _HTTPError(405, "method_not_allowed", "wrong method for this endpoint")
            return
        if path == "/v1/reveal" and method == "POST":
            self.app.rate_limiter.take(who.name)
            lines = _field(body, "lines", list)
            result = svc.reveal(
                who,
                self.app.reader,
                trace=_field(body, "trace", str),
                ref=_field(body, "ref", str),
                categories=_field(body, "categories", list),
                lines=lines,
            )
            self._send(200, result.to_json(), no_store=True)
            return
        if path == "/v1/audit" and method == "GET":
            try:
                last = int(query.get("last", ["20"])[0])
            except ValueError:
                raise BadRequest("last must be an integer") from None
            if not 1 <= last <= 10_000:
                raise BadRequest("last must be between 1 and 10000")
            self._send(200, {"entries": [e.to_json() for e in svc.audit_tail(last)]})
            return
        if path == "/v1/audit/verify" and method == "GET":
            self._send(200, svc.verify().to_json())
            return
        raise _HTTPError(404, "not_found", "no such endpoint")

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch("DELETE")

    def do_PATCH(self) -> None:  # noqa: N802
        self._dispatch("PATCH")


class _HTTPError(Exception):
    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


class BrokerServer(ThreadingHTTPServer):
    """The HTTP server plus a background sweeper that expires grants on time."""

    daemon_threads = True
    request_queue_size = 64

    def __init__(
        self, app: BrokerApp, host: str = "127.0.0.1", port: int = 0, sweep_interval_s: float = 30.0
    ) -> None:
        handler = type("Handler", (_Handler,), {"app": app, "timeout": 30})
        super().__init__((host, port), handler)
        self.app = app
        self._stop = threading.Event()
        self._sweeper = threading.Thread(
            target=self._sweep_loop,
            args=(sweep_interval_s,),
            name="redactor-broker-sweep",
            daemon=True,
        )
        self._sweeper.start()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        if isinstance(host, bytes):  # socketserver types it loosely; ours is always text
            host = host.decode()
        return f"http://{host}:{port}"

    def _sweep_loop(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            try:
                self.app.service.sweep()
            except Exception as exc:  # noqa: BLE001 - keep sweeping; a locked DB is retried next round
                log.warning("grant sweep failed: %s", type(exc).__name__)

    def server_close(self) -> None:
        self._stop.set()
        super().server_close()
        self.app.service.notifier.shutdown(timeout_s=2.0)


def make_server(
    app: BrokerApp, host: str = "127.0.0.1", port: int = 0, sweep_interval_s: float = 30.0
) -> BrokerServer:
    """A ready :class:`BrokerServer`; call ``serve_forever()`` (e.g. on a thread)."""
    return BrokerServer(app, host, port, sweep_interval_s)
