"""The gateway's vocabulary: the three OTLP signals, the outcome of one export, its errors.

An export request arrives over OTLP/HTTP or OTLP/gRPC, is decoded, redacted and handed to a
:class:`Forwarder`; whatever happens is an :class:`Outcome`, which each front end turns into its
own protocol's status (HTTP code or gRPC status code). Nothing here ever holds payload text in a
message: outcomes and errors name what went wrong, never a value.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Protocol

from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from redactor.engine.interface import RedactorError

__all__ = [
    "DEFAULT_GRPC_ADDRESS",
    "DEFAULT_HTTP_ADDRESS",
    "DEFAULT_MAX_BODY_BYTES",
    "Forwarder",
    "GatewayError",
    "Outcome",
    "PayloadError",
    "Signal",
    "Status",
]

DEFAULT_HTTP_ADDRESS = "127.0.0.1:4318"
DEFAULT_GRPC_ADDRESS = "127.0.0.1:4317"
DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024


class GatewayError(RedactorError):
    """Base error of the gateway (configuration, start-up)."""


class Signal(enum.Enum):
    """One OTLP signal: its HTTP path, gRPC service and request/response messages."""

    LOGS = (
        "logs",
        "/v1/logs",
        logs_service_pb2.DESCRIPTOR.services_by_name["LogsService"].full_name,
        logs_service_pb2.ExportLogsServiceRequest,
        logs_service_pb2.ExportLogsServiceResponse,
    )
    TRACES = (
        "traces",
        "/v1/traces",
        trace_service_pb2.DESCRIPTOR.services_by_name["TraceService"].full_name,
        trace_service_pb2.ExportTraceServiceRequest,
        trace_service_pb2.ExportTraceServiceResponse,
    )
    METRICS = (
        "metrics",
        "/v1/metrics",
        metrics_service_pb2.DESCRIPTOR.services_by_name["MetricsService"].full_name,
        metrics_service_pb2.ExportMetricsServiceRequest,
        metrics_service_pb2.ExportMetricsServiceResponse,
    )

    def __init__(
        self, label: str, http_path: str, grpc_service: str, request: Any, response: Any
    ) -> None:
        self.label = label
        self.http_path = http_path
        self.grpc_service = grpc_service
        self.request_type = request
        self.response_type = response

    @property
    def grpc_method(self) -> str:
        """The full gRPC method path, e.g. ``/opentelemetry.proto.collector.logs.v1.LogsService/Export``."""  # noqa: E501
        return f"/{self.grpc_service}/Export"

    @classmethod
    def for_path(cls, path: str) -> Signal | None:
        for signal in cls:
            if signal.http_path == path:
                return signal
        return None


class Status(enum.Enum):
    """What became of one export, independent of the protocol it came in on.

    Each member carries its HTTP status and gRPC status-code name; ``RETRY`` and
    ``THROTTLED`` are the ones OTLP clients retry.
    """

    OK = (200, "OK")
    INVALID = (400, "INVALID_ARGUMENT")
    TOO_LARGE = (413, "RESOURCE_EXHAUSTED")
    UNSUPPORTED = (415, "INVALID_ARGUMENT")
    THROTTLED = (429, "RESOURCE_EXHAUSTED")
    RETRY = (503, "UNAVAILABLE")
    REJECTED = (400, "FAILED_PRECONDITION")  # the downstream refused it for good
    INTERNAL = (500, "INTERNAL")

    def __init__(self, http_status: int, grpc_code: str) -> None:
        self.http_status = http_status
        self.grpc_code = grpc_code


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of one export.

    ``message`` is for the client and the gateway's log and never contains payload text;
    ``http_status`` / ``grpc_code`` override the status's defaults when a downstream's own
    code is relayed; ``response`` is the downstream's encoded response message (protobuf),
    relayed so partial-success counts reach the client; ``retry_after`` is the downstream's
    ``Retry-After`` header, if any.
    """

    status: Status
    message: str = ""
    http_status: int | None = None
    grpc_code: str | None = None
    response: bytes | None = None
    retry_after: str | None = None

    @property
    def http(self) -> int:
        return self.http_status if self.http_status is not None else self.status.http_status

    @property
    def grpc(self) -> str:
        return self.grpc_code if self.grpc_code is not None else self.status.grpc_code


class PayloadError(Exception):
    """A request the gateway refuses (unparseable, too large, wrong type): nothing is forwarded.

    The message is safe to return to the client: it describes the problem, never the payload.
    """

    def __init__(self, status: Status, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def outcome(self) -> Outcome:
        return Outcome(self.status, self.message)


class Forwarder(Protocol):
    """Where redacted requests go: a downstream OTLP endpoint or a debug sink.

    ``send`` gets the redacted request message, and ``encoded`` when the gateway already holds
    it encoded as ``encoding`` ("protobuf" or "json": the received bytes of a clean request);
    it returns the downstream's outcome and never raises.
    """

    def send(
        self, signal: Signal, message: Any, encoded: bytes | None, encoding: str
    ) -> Outcome: ...

    def close(self) -> None: ...
