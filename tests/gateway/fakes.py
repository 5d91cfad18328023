"""A fake downstream: an OTLP/HTTP receiver and an OTLP/gRPC receiver (the generated servicers of
opentelemetry-proto) that keep every request they get and answer with a configurable status."""

from __future__ import annotations

import threading
from concurrent import futures
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from redactor.gateway import Signal


@dataclass
class Received:
    """One request as the downstream saw it."""

    signal: Signal
    protocol: str  # "http" or "grpc"
    content_type: str
    body: bytes  # exactly the bytes on the wire (protobuf or JSON)
    message: Any  # decoded with opentelemetry-proto

    def as_json(self) -> str:
        """Everything in the request as text, for leak checks over every field."""
        return json_format.MessageToJson(self.message)


@dataclass
class Downstream:
    """Both fake receivers, sharing one list of what arrived and one configured answer."""

    received: list[Received] = field(default_factory=list)
    http_status: int = 200
    grpc_code: grpc.StatusCode | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    http_port: int = 0
    grpc_port: int = 0

    def keep(self, item: Received) -> None:
        with self.lock:
            self.received.append(item)

    def of(self, signal: Signal) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.signal is signal]


def _decode(signal: Signal, body: bytes, content_type: str) -> Any:
    message = signal.request_type()
    if content_type.startswith("application/json"):
        import orjson

        from redactor.gateway._codec import _ids_to_base64

        document = orjson.loads(body)
        _ids_to_base64(document, 0)
        json_format.ParseDict(document, message)
    else:
        message.ParseFromString(body)
    return message


def start_http(downstream: Downstream) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            signal = Signal.for_path(self.path)
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            content_type = self.headers.get("Content-Type", "")
            if signal is not None:
                message = _decode(signal, body, content_type)
                downstream.keep(Received(signal, "http", content_type, body, message))
            status = downstream.http_status if signal is not None else 404
            reply = b"" if content_type != "application/json" else b"{}"
            self.send_response(status)
            self.send_header("Content-Type", content_type or "application/x-protobuf")
            self.send_header("Content-Length", str(len(reply)))
            if status in (429, 503):
                self.send_header("Retry-After", "1")
            self.end_headers()
            self.wfile.write(reply)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    downstream.http_port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def start_grpc(downstream: Downstream) -> grpc.Server:
    def answer(signal: Signal, request: Any, context: Any, response: Any) -> Any:
        downstream.keep(
            Received(
                signal, "grpc", "application/grpc", request.SerializeToString(), request
            )
        )
        if downstream.grpc_code is not None:
            context.abort(downstream.grpc_code, "fake downstream says no")
        return response

    class Logs(logs_service_pb2_grpc.LogsServiceServicer):
        def Export(self, request: Any, context: Any) -> Any:  # noqa: N802 - generated name
            return answer(
                Signal.LOGS, request, context, logs_service_pb2.ExportLogsServiceResponse()
            )

    class Traces(trace_service_pb2_grpc.TraceServiceServicer):
        def Export(self, request: Any, context: Any) -> Any:  # noqa: N802
            return answer(
                Signal.TRACES, request, context, trace_service_pb2.ExportTraceServiceResponse()
            )

    class Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):
        def Export(self, request: Any, context: Any) -> Any:  # noqa: N802
            return answer(
                Signal.METRICS, request, context, metrics_service_pb2.ExportMetricsServiceResponse()
            )

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    logs_service_pb2_grpc.add_LogsServiceServicer_to_server(Logs(), server)
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Traces(), server)
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(Metrics(), server)
    downstream.grpc_port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server
