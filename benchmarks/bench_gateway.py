"""OTLP gateway throughput on loopback: batches of 100 log records, clean and dirty.

    .venv/bin/python benchmarks/bench_gateway.py [--seconds 3] [--runs 3]

Prints, as medians of several timed runs: parse + redact alone (batches/s) and requests through
the gateway's OTLP/HTTP listener to a downstream receiver in another process (requests/s), with
the embedded SQLite vault on. Needs the gateway extra (opentelemetry-proto, protobuf, grpcio).
"""

from __future__ import annotations

import argparse
import http.client
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from opentelemetry.proto.collector.logs.v1 import logs_service_pb2  # noqa: E402

from redactor import create_redactor, resolve_settings  # noqa: E402
from redactor.gateway import Gateway, GatewayConfig, Signal  # noqa: E402
from redactor.gateway._redact import OtlpRedactor  # noqa: E402
from redactor.vault import generate_keys, open_writer  # noqa: E402

DOWNSTREAM = """
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


def batch(dirty: bool, records: int = 100) -> bytes:
    request = logs_service_pb2.ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add()
    attr = resource_logs.resource.attributes.add()
    attr.key, attr.value.string_value = "service.name", "checkout"
    scope_logs = resource_logs.scope_logs.add()
    for i in range(records):
        record = scope_logs.log_records.add()
        record.trace_id, record.span_id = os.urandom(16), os.urandom(8)
        record.time_unix_nano = 1_700_000_000_000_000_000 + i
        record.severity_number = 9
        record.body.string_value = (
            f"payment accepted for order {i} card 4111 1111 1111 1111 amount 12.50"
            if dirty
            else f"payment accepted for order {i} by customer 8812 amount 12.50 EUR ok"
        )
        attributes = (("http.method", "POST"), ("http.route", "/api/pay"), ("user.id", f"u-{i}"))
        for key, value in attributes:
            a = record.attributes.add()
            a.key, a.value.string_value = key, value
    return request.SerializeToString()


def rate(step: object, seconds: float) -> float:
    """Calls of ``step`` per second over ``seconds`` (a bounded, timed loop)."""
    assert callable(step)
    start = time.perf_counter()
    count = 0
    while time.perf_counter() - start < seconds:
        step()
        count += 1
    return count / (time.perf_counter() - start)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="length of one timed run")
    parser.add_argument("--runs", type=int, default=3, help="timed runs (median printed)")
    args = parser.parse_args()

    home = tempfile.mkdtemp(prefix="redactor-bench-")
    settings = resolve_settings(home=home, environ={})
    generate_keys(settings.keys_dir)
    engine = create_redactor(settings)
    port = free_port()
    downstream = subprocess.Popen([sys.executable, "-c", DOWNSTREAM, str(port)])
    writer = open_writer(settings)
    gateway = Gateway(
        GatewayConfig(
            http_address="127.0.0.1:0",
            grpc_address=None,
            upstream_http=f"http://127.0.0.1:{port}",
        ),
        engine,
        writer,
    )
    try:
        time.sleep(0.5)  # the downstream process binds its port
        gateway.start()
        conn = http.client.HTTPConnection("127.0.0.1", gateway.http_port)
        redactor = OtlpRedactor(engine, None)
        headers = {"Content-Type": "application/x-protobuf"}
        for dirty in (False, True):
            body = batch(dirty)
            message = logs_service_pb2.ExportLogsServiceRequest()

            def alone(body: bytes = body, message: Any = message) -> None:
                message.ParseFromString(body)
                redactor.redact(Signal.LOGS, message)

            def through(body: bytes = body) -> None:
                conn.request("POST", "/v1/logs", body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    raise SystemExit(f"gateway answered {response.status}")

            runs = range(args.runs)
            alone_rate = statistics.median(rate(alone, args.seconds) for _ in runs)
            through_rate = statistics.median(rate(through, args.seconds) for _ in runs)
            kind = "dirty (a card in every record)" if dirty else "clean"
            print(
                f"{kind:32} {len(body):6} B/batch  parse+redact {alone_rate:7,.0f} batches/s "
                f"({alone_rate * 100:9,.0f} records/s)  "
                f"through the gateway {through_rate:6,.0f} req/s "
                f"({through_rate * 100:8,.0f} records/s)"
            )
    finally:
        gateway.shutdown()
        downstream.kill()
        downstream.wait()
    stats = writer.stats() if writer is not None else {}
    print(f"vault writer: {stats}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
