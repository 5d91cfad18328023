"""The gateway: receive OTLP, redact with the engine, forward, report the downstream's result.

One :class:`Gateway` holds the engine, the vault writer, the forwarders and both front ends.
Every request, whichever protocol it came in on, goes through :meth:`Gateway.export`: decode
(refusing what cannot be parsed, nothing forwarded) → redact in place → forward the received
bytes if nothing changed, else the re-encoded message → the downstream's outcome.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from redactor.engine import Redactor
from redactor.gateway._codec import decode
from redactor.gateway._forward import GrpcForwarder, HttpForwarder, JsonLinesSink
from redactor.gateway._redact import OtlpRedactor
from redactor.gateway.interface import (
    DEFAULT_GRPC_ADDRESS,
    DEFAULT_HTTP_ADDRESS,
    DEFAULT_MAX_BODY_BYTES,
    Forwarder,
    GatewayError,
    Outcome,
    PayloadError,
    Signal,
    Status,
)

_log = logging.getLogger("redactor.gateway")


def split_address(address: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` too) as a pair; a clear error otherwise."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise GatewayError(f"listen address must be host:port, got {address!r}")
    return host.strip("[]"), int(port)


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """Where to listen, where to forward, and the limits; None turns a listener off.

    With both upstreams configured each request is forwarded over the protocol it came in on;
    with one, everything goes there; with none, ``output`` (a file path, or ``-`` for stdout)
    receives each redacted request as a line of OTLP/JSON.
    """

    http_address: str | None = DEFAULT_HTTP_ADDRESS
    grpc_address: str | None = DEFAULT_GRPC_ADDRESS
    upstream_http: str | None = None
    upstream_grpc: str | None = None
    output: str | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    upstream_timeout_s: float = 10.0
    grpc_workers: int = 16
    shutdown_grace_s: float = 10.0

    def validate(self) -> None:
        if self.http_address is None and self.grpc_address is None:
            raise GatewayError("nothing to listen on: give an HTTP or a gRPC address")
        if not (self.upstream_http or self.upstream_grpc or self.output):
            raise GatewayError("nowhere to forward: give an upstream (HTTP or gRPC) or an output")
        if self.output and (self.upstream_http or self.upstream_grpc):
            raise GatewayError("output is for running without an upstream; give one or the other")
        if self.max_body_bytes <= 0:
            raise GatewayError(f"max_body_bytes must be positive, got {self.max_body_bytes}")
        if self.upstream_timeout_s <= 0 or self.grpc_workers <= 0:
            raise GatewayError("upstream_timeout_s and grpc_workers must be positive")
        for address in (self.http_address, self.grpc_address):
            if address is not None:
                split_address(address)


class Gateway:
    """The OTLP redaction gateway. ``start()`` listens; ``shutdown()`` drains and stops.

    ``engine`` is a :class:`redactor.Redactor`; ``vault`` a vault writer (owned: it is shut
    down, and so flushed, by :meth:`shutdown`) or None.
    """

    def __init__(self, config: GatewayConfig, engine: Redactor, vault: Any = None) -> None:
        config.validate()
        # The engine compiles patterns on first use; a server compiles them all before it
        # listens, so that its first requests are not the ones that wait for it.
        for rule in engine.rules:
            rule.compile()
        self.config = config
        self._vault = vault
        self._redactor = OtlpRedactor(engine, vault)
        self._http_forwarder: Forwarder | None = None
        self._grpc_forwarder: Forwarder | None = None
        if config.upstream_http:
            self._http_forwarder = HttpForwarder(
                config.upstream_http, timeout_s=config.upstream_timeout_s
            )
        if config.upstream_grpc:
            self._grpc_forwarder = GrpcForwarder(
                config.upstream_grpc, timeout_s=config.upstream_timeout_s
            )
        if config.output:
            self._http_forwarder = self._grpc_forwarder = JsonLinesSink(config.output)
        self._http: Any = None
        self._grpc: Any = None
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._shutdown_started = False
        self.counts = {"requests": 0, "refused": 0, "redacted": 0, "forwarded": 0, "failed": 0}

    # -- the request path -------------------------------------------------------------------

    def _route(self, received: str) -> Forwarder:
        same = self._grpc_forwarder if received == "grpc" else self._http_forwarder
        other = self._http_forwarder if received == "grpc" else self._grpc_forwarder
        forwarder = same or other
        assert forwarder is not None  # validate() guarantees one
        return forwarder

    def export(self, signal: Signal, body: bytes, encoding: str, received: str) -> Outcome:
        """Decode, redact and forward one request (``body`` already decompressed); never
        raises. ``received`` is ``"http"`` or ``"grpc"``."""
        try:
            message, reencode = decode(signal, body, encoding)
        except PayloadError as exc:
            self._count("refused")
            _log.info("refused %s request: %s", signal.label, exc.message)
            return exc.outcome()
        except Exception as exc:  # a decoder bug must not become a traceback to the client
            self._count("refused")
            _log.warning("could not decode %s request (%s)", signal.label, type(exc).__name__)
            return Outcome(Status.INVALID, "request could not be decoded")
        try:
            changed = self._redactor.redact(signal, message)
        except Exception as exc:  # fail closed: nothing half-redacted leaves the gateway
            self._count("failed")
            _log.warning(
                "redaction of a %s request failed (%s); nothing was forwarded",
                signal.label,
                type(exc).__name__,
            )
            return Outcome(Status.INTERNAL, "redaction failed; nothing was forwarded")
        if changed:
            self._count("redacted")
        encoded = None if (changed or reencode) else body
        try:
            outcome = self._route(received).send(signal, message, encoded, encoding)
        except Exception as exc:  # forwarders return outcomes; guard the front end anyway
            _log.warning("forwarding failed (%s)", type(exc).__name__)
            outcome = Outcome(Status.RETRY, "forwarding failed")
        if outcome.status is Status.OK:
            self._count("forwarded")
        else:
            _log.info("%s request not delivered: %s", signal.label, outcome.message)
        return outcome

    def _count(self, name: str) -> None:
        with self._lock:
            self.counts[name] += 1
            if name != "refused":
                self.counts["requests"] += 1

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def http_port(self) -> int | None:
        """The bound HTTP port (useful with port 0), None when HTTP is off."""
        return self._http.port if self._http is not None else None

    @property
    def grpc_port(self) -> int | None:
        return self._grpc.port if self._grpc is not None else None

    def start(self) -> None:
        """Bind both listeners and start serving (in background threads)."""
        from redactor.gateway._grpc import GrpcFrontEnd
        from redactor.gateway._http import HttpFrontEnd

        config = self.config
        try:
            if config.http_address is not None:
                host, port = split_address(config.http_address)
                try:
                    self._http = HttpFrontEnd(self, host, port, config.max_body_bytes)
                except OSError as exc:
                    raise GatewayError(
                        f"cannot listen for HTTP on {config.http_address}: {exc.strerror}"
                    ) from None
            if config.grpc_address is not None:
                self._grpc = GrpcFrontEnd(
                    self, config.grpc_address, config.max_body_bytes, config.grpc_workers
                )
        except GatewayError:
            self.shutdown()
            raise
        if self._http is not None:
            self._http.start()
        if self._grpc is not None:
            self._grpc.start()

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until :meth:`shutdown` has completed; True if it did within ``timeout_s``."""
        return self._stopped.wait(timeout_s)

    def shutdown(self, grace_s: float | None = None) -> bool:
        """Stop accepting, finish requests in flight (up to ``grace_s``), close forwarders and
        flush the vault. Safe to call more than once; True when everything drained."""
        with self._lock:
            if self._shutdown_started:
                started = False
            else:
                self._shutdown_started = started = True
        if not started:
            self._stopped.wait()
            return True
        grace = self.config.shutdown_grace_s if grace_s is None else grace_s
        drained = True
        try:
            if self._http is not None:
                drained &= self._http.stop(grace)
            if self._grpc is not None:
                drained &= self._grpc.stop(grace)
            closed: set[int] = set()
            for forwarder in (self._http_forwarder, self._grpc_forwarder):
                if forwarder is not None and id(forwarder) not in closed:
                    closed.add(id(forwarder))
                    try:
                        forwarder.close()
                    except Exception as exc:
                        _log.warning("closing a forwarder raised %s", type(exc).__name__)
            if self._vault is not None:
                try:
                    drained &= bool(self._vault.shutdown(max(grace, 1.0)))
                except Exception as exc:
                    _log.warning("vault shutdown raised %s", type(exc).__name__)
                    drained = False
        finally:
            self._stopped.set()
        return drained
