"""The OTLP/gRPC front end: ``Export`` of the Logs, Trace and Metrics services.

The services and method paths are those of opentelemetry-proto's generated ``*_pb2_grpc``
modules, registered through generic handlers without deserialisers: the gateway gets the
request bytes itself, so an unparseable request is answered INVALID_ARGUMENT with a clear
message (grpcio's own deserialisation would answer INTERNAL) and a clean request is forwarded
as the very bytes received. The message size cap is grpcio's receive limit, which it applies
after decompression, so gzip bombs get RESOURCE_EXHAUSTED too.
"""

from __future__ import annotations

from concurrent import futures
from typing import TYPE_CHECKING, Any

import grpc  # type: ignore[import-untyped,unused-ignore]

from redactor.gateway._codec import PROTOBUF
from redactor.gateway.interface import GatewayError, Signal, Status

if TYPE_CHECKING:
    from redactor.gateway.server import Gateway


def _handler(gateway: Gateway, signal: Signal) -> Any:
    def export(request: bytes, context: Any) -> bytes:
        outcome = gateway.export(signal, request, PROTOBUF, "grpc")
        if outcome.status is Status.OK:
            return outcome.response or b""
        code = getattr(grpc.StatusCode, outcome.grpc, grpc.StatusCode.UNKNOWN)
        context.abort(code, outcome.message)
        raise AssertionError("unreachable: abort raises")  # pragma: no cover

    return grpc.unary_unary_rpc_method_handler(export)


class GrpcFrontEnd:
    """The gRPC server on ``address`` (host:port; port 0 picks a free one)."""

    def __init__(self, gateway: Gateway, address: str, max_body_bytes: int, workers: int) -> None:
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="redactor-gw-grpc"),
            options=[
                ("grpc.max_receive_message_length", max_body_bytes),
                ("grpc.max_send_message_length", 64 << 20),
            ],
        )
        self._server.add_generic_rpc_handlers(
            tuple(
                grpc.method_handlers_generic_handler(
                    signal.grpc_service, {"Export": _handler(gateway, signal)}
                )
                for signal in Signal
            )
        )
        try:
            self.port = int(self._server.add_insecure_port(address))
        except RuntimeError:
            self.port = 0
        if not self.port:
            raise GatewayError(f"cannot listen for gRPC on {address}")

    def start(self) -> None:
        self._server.start()

    def stop(self, grace_s: float) -> bool:
        """Refuse new calls, let those in flight finish within ``grace_s``."""
        done = self._server.stop(grace_s)
        return bool(done.wait(grace_s + 1.0))
