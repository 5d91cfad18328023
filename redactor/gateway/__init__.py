"""The standalone OTLP gateway: OTLP/HTTP + OTLP/gRPC in, the engine over every text field,
OTLP out to a downstream (or OTLP/JSON lines to a file for debugging).

Stateless: run as many as needed behind the OpenTelemetry Collector, whose load-balancing
exporter can route by trace id so that one trace's refs and vault entries come from one place.
"""

from __future__ import annotations

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
from redactor.gateway.server import Gateway, GatewayConfig

__all__ = [
    "DEFAULT_GRPC_ADDRESS",
    "DEFAULT_HTTP_ADDRESS",
    "DEFAULT_MAX_BODY_BYTES",
    "Forwarder",
    "Gateway",
    "GatewayConfig",
    "GatewayError",
    "Outcome",
    "PayloadError",
    "Signal",
    "Status",
]
