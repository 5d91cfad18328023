"""The gateway on the wire, with hand-made requests: OTLP/JSON, metrics, the clean path,
refusals (nothing forwarded, no 500), downstream failures relayed as retryable statuses."""

from __future__ import annotations

import gzip
import http.client
import json
import os
from typing import Any

import grpc
import orjson
import pytest
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from redactor.gateway import Signal
from redactor.testing import assert_no_leak

from .conftest import AWS_KEY, MASTERCARD, PASSWORD, SECRETS, SSN, VISA, vault_originals

TRACE = os.urandom(16)
SPAN = os.urandom(8)


def post(
    running: Any,
    path: str,
    body: bytes,
    content_type: str = "application/x-protobuf",
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes, dict[str, str]]:
    conn = http.client.HTTPConnection("127.0.0.1", running.gateway.http_port, timeout=10)
    try:
        conn.request(
            "POST", path, body=body, headers={"Content-Type": content_type, **(headers or {})}
        )
        response = conn.getresponse()
        return response.status, response.read(), dict(response.getheaders())
    finally:
        conn.close()


def grpc_call(running: Any, signal: Signal, body: bytes, **kwargs: Any) -> bytes:
    with grpc.insecure_channel(running.grpc_target) as channel:
        return bytes(channel.unary_unary(signal.grpc_method)(body, timeout=10, **kwargs))


def dirty_logs(trace: bytes = TRACE) -> logs_service_pb2.ExportLogsServiceRequest:
    request = logs_service_pb2.ExportLogsServiceRequest()
    record = request.resource_logs.add().scope_logs.add().log_records.add()
    record.trace_id, record.span_id = trace, SPAN
    record.time_unix_nano = 1_700_000_000_123_456_789
    record.severity_number = 13
    record.body.string_value = f"card {VISA} ssn {SSN}"
    kv = record.attributes.add()
    kv.key, kv.value.string_value = "password", PASSWORD
    kv = record.attributes.add()
    kv.key, kv.value.int_value = "pan", int(MASTERCARD)  # a card number sent as an integer
    return request


def clean_traces() -> trace_service_pb2.ExportTraceServiceRequest:
    request = trace_service_pb2.ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id, span.span_id, span.name = TRACE, SPAN, "GET /health"
    kv = span.attributes.add()
    kv.key, kv.value.string_value = "http.route", "/health"
    return request


def test_json_logs_keep_hex_ids_and_are_redacted(
    start_gateway: Any, fresh_downstream: Any, reader: Any
) -> None:
    running = start_gateway("http")
    trace_hex = os.urandom(16).hex()
    document = {
        "resourceLogs": [
            {
                "resource": {"attributes": [{"key": "host", "value": {"stringValue": "web-1"}}]},
                "scopeLogs": [
                    {
                        "scope": {"name": "app"},
                        "logRecords": [
                            {
                                "timeUnixNano": "1700000000000000001",
                                "severityNumber": 17,
                                "traceId": trace_hex,
                                "spanId": SPAN.hex(),
                                "body": {"stringValue": f"aws {AWS_KEY}"},
                                "attributes": [
                                    {"key": "db_password", "value": {"stringValue": PASSWORD}},
                                    {"key": "n", "value": {"intValue": "7"}},
                                ],
                            }
                        ],
                    }
                ],
            }
        ]
    }
    status, body, _ = post(running, "/v1/logs", orjson.dumps(document), "application/json")
    assert status == 200 and json.loads(body) == {}
    (got,) = fresh_downstream.of(Signal.LOGS)
    assert got.content_type == "application/json"
    assert_no_leak(got.body, SECRETS, "downstream JSON")
    sent = json.loads(got.body)
    record = sent["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]
    assert record["traceId"] == trace_hex and record["spanId"] == SPAN.hex()
    assert record["timeUnixNano"] == "1700000000000000001"
    assert record["severityNumber"] == 17
    assert record["body"]["stringValue"].startswith("aws [aws")
    running.flush_vault()
    assert PASSWORD in vault_originals(reader, trace_hex)


def test_metrics_data_point_and_exemplar_attributes(
    start_gateway: Any, fresh_downstream: Any, reader: Any
) -> None:
    running = start_gateway("grpc")
    request = metrics_service_pb2.ExportMetricsServiceRequest()
    metric = request.resource_metrics.add().scope_metrics.add().metrics.add()
    metric.name = "payments"
    point = metric.sum.data_points.add()
    point.as_int = 5
    kv = point.attributes.add()
    kv.key, kv.value.string_value = "card", VISA
    exemplar = point.exemplars.add()
    exemplar.trace_id, exemplar.as_double = TRACE, 1.5
    kv = exemplar.filtered_attributes.add()
    kv.key, kv.value.string_value = "client_secret", PASSWORD
    histogram = request.resource_metrics[0].scope_metrics[0].metrics.add()
    histogram.histogram.data_points.add().attributes.add().key = "empty"
    assert grpc_call(running, Signal.METRICS, request.SerializeToString()) == b""
    (got,) = fresh_downstream.of(Signal.METRICS)
    assert_no_leak(got.as_json(), SECRETS, "downstream metrics")
    point = got.message.resource_metrics[0].scope_metrics[0].metrics[0].sum.data_points[0]
    assert point.as_int == 5 and point.attributes[0].value.string_value.startswith("[card:")
    assert point.exemplars[0].filtered_attributes[0].value.string_value.startswith("[secret#")
    assert point.exemplars[0].as_double == 1.5
    running.flush_vault()
    assert PASSWORD in vault_originals(reader, TRACE.hex())


def test_anyvalue_shapes_and_duplicate_keys(start_gateway: Any, fresh_downstream: Any) -> None:
    running = start_gateway("http")
    request = dirty_logs()
    record = request.resource_logs[0].scope_logs[0].log_records[0]
    record.body.Clear()
    inner = record.body.kvlist_value.values.add()
    inner.key = "nested"
    deep = inner.value.array_value.values.add().kvlist_value.values.add()
    deep.key, deep.value.string_value = "authorization", f"Bearer {AWS_KEY}"
    blob = record.body.kvlist_value.values.add()
    blob.key, blob.value.bytes_value = "raw", f"ssn={SSN}".encode()
    # Two attributes with the same key: both must be redacted, not just the last.
    for value in (f"first {SSN}", "second"):
        kv = record.attributes.add()
        kv.key, kv.value.string_value = "dup", value
    status, _, _ = post(running, "/v1/logs", request.SerializeToString())
    assert status == 200
    (got,) = fresh_downstream.of(Signal.LOGS)
    assert_no_leak(got.body, SECRETS, "downstream bytes")
    out = got.message.resource_logs[0].scope_logs[0].log_records[0]
    attrs = [(kv.key, kv.value) for kv in out.attributes]
    assert attrs[1][1].string_value.startswith("[card:")  # the integer became a placeholder
    assert [v.string_value for k, v in attrs if k == "dup"][1] == "second"
    assert out.trace_id == TRACE and out.time_unix_nano == 1_700_000_000_123_456_789


@pytest.mark.parametrize("upstream", ["http", "grpc"])
def test_clean_request_is_forwarded_byte_for_byte(
    upstream: str, start_gateway: Any, fresh_downstream: Any
) -> None:
    running = start_gateway(upstream)
    body = clean_traces().SerializeToString()
    assert post(running, "/v1/traces", body)[0] == 200
    grpc_call(running, Signal.TRACES, body)
    got = fresh_downstream.of(Signal.TRACES)
    assert [g.body for g in got] == [body, body]


def test_both_upstreams_keep_the_protocol(start_gateway: Any, fresh_downstream: Any) -> None:
    running = start_gateway("both")
    body = dirty_logs().SerializeToString()
    assert post(running, "/v1/logs", body)[0] == 200
    grpc_call(running, Signal.LOGS, body)
    assert [r.protocol for r in fresh_downstream.of(Signal.LOGS)] == ["http", "grpc"]


def test_unknown_fields_are_dropped_not_forwarded(
    start_gateway: Any, fresh_downstream: Any
) -> None:
    running = start_gateway("http")
    # Field 99 (length-delimited, tag bytes 9a 06) is unknown to this OTLP version: it might
    # hold anything, so it is not passed through.
    secret = SSN.encode()
    body = clean_traces().SerializeToString() + b"\x9a\x06" + bytes([len(secret)]) + secret
    assert post(running, "/v1/traces", body)[0] == 200
    (got,) = fresh_downstream.of(Signal.TRACES)
    assert_no_leak(got.body, [SSN], "downstream bytes")


def _rpc_status(body: bytes) -> str:
    """The message of a google.rpc.Status (protobuf field 2)."""
    assert body[0] == 0x08
    index = 2
    while body[index - 1] & 0x80:
        index += 1
    assert body[index] == 0x12
    return body[index + 2 : index + 2 + body[index + 1]].decode()


@pytest.mark.parametrize(
    ("path", "body", "content_type", "headers", "status"),
    [
        ("/v1/logs", b"\xff\xff\xff\xff", "application/x-protobuf", {}, 400),
        ("/v1/logs", b"\x0a\x05\x0a\x03\x0a", "application/x-protobuf", {}, 400),
        ("/v1/traces", b'{"resourceSpans": [', "application/json", {}, 400),
        ("/v1/traces", b'{"resourceSpans": 5}', "application/json", {}, 400),
        ("/v1/traces", b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}',
         "application/json", {}, 400),
        ("/v1/logs", b"[]", "application/json", {}, 400),
        ("/v1/logs", b"hello", "text/plain", {}, 415),
        ("/v1/logs", b"", "application/x-protobuf", {"Content-Encoding": "br"}, 415),
        ("/v1/logs", b"\x1f\x8b not gzip", "application/x-protobuf",
         {"Content-Encoding": "gzip"}, 400),
        ("/v1/logs", b"x" * (70 * 1024), "application/x-protobuf", {}, 413),
        ("/v1/logs", gzip.compress(b"\x00" * (4 << 20)), "application/x-protobuf",
         {"Content-Encoding": "gzip"}, 413),
        ("/v1/nothing", b"", "application/x-protobuf", {}, 404),
    ],
    ids=["garbage", "bad-wire-type", "truncated-json", "json-wrong-type", "json-bad-hex",
         "json-array", "text-plain", "brotli", "bad-gzip", "oversized", "gzip-bomb",
         "unknown-path"],
)  # fmt: skip
def test_refused_requests_forward_nothing(
    path: str,
    body: bytes,
    content_type: str,
    headers: dict[str, str],
    status: int,
    start_gateway: Any,
    fresh_downstream: Any,
) -> None:
    running = start_gateway("http", max_body_bytes=64 * 1024)
    got_status, reply, _ = post(running, path, body, content_type, headers)
    assert got_status == status
    assert b"Traceback" not in reply
    if content_type == "application/x-protobuf" and status != 404:
        assert _rpc_status(reply)  # a google.rpc.Status with a message
    assert fresh_downstream.received == []


@pytest.mark.parametrize(
    ("body", "compression", "code"),
    [
        (b"\xff\xff\xff\xff", None, grpc.StatusCode.INVALID_ARGUMENT),
        (b"\x0a" + b"\x80" * 9, None, grpc.StatusCode.INVALID_ARGUMENT),
        (b"\x00" * (100 * 1024), None, grpc.StatusCode.RESOURCE_EXHAUSTED),
        (b"\x00" * (4 << 20), grpc.Compression.Gzip, grpc.StatusCode.RESOURCE_EXHAUSTED),
    ],
    ids=["garbage", "bad-varint", "oversized", "gzip-bomb"],
)
def test_grpc_refusals(
    body: bytes, compression: Any, code: Any, start_gateway: Any, fresh_downstream: Any
) -> None:
    running = start_gateway("grpc", max_body_bytes=64 * 1024)
    with pytest.raises(grpc.RpcError) as caught:
        grpc_call(running, Signal.LOGS, body, compression=compression)
    assert caught.value.code() == code
    assert "Traceback" not in (caught.value.details() or "")
    assert fresh_downstream.received == []


@pytest.mark.parametrize("upstream", ["http", "grpc"])
def test_downstream_unavailable_is_retryable_for_the_client(
    upstream: str, start_gateway: Any, fresh_downstream: Any
) -> None:
    running = start_gateway(upstream)
    fresh_downstream.http_status = 503
    fresh_downstream.grpc_code = grpc.StatusCode.UNAVAILABLE
    body = dirty_logs().SerializeToString()
    status, _, headers = post(running, "/v1/logs", body)
    assert status == 503
    if upstream == "http":
        assert headers.get("Retry-After") == "1"
    with pytest.raises(grpc.RpcError) as caught:
        grpc_call(running, Signal.LOGS, body)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    fresh_downstream.http_status = 429
    fresh_downstream.grpc_code = grpc.StatusCode.RESOURCE_EXHAUSTED
    assert post(running, "/v1/logs", body)[0] == 429
    with pytest.raises(grpc.RpcError) as caught:
        grpc_call(running, Signal.LOGS, body)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    for item in fresh_downstream.received:  # what was attempted was redacted all the same
        assert_no_leak(item.body, SECRETS, "downstream bytes")


def test_unreachable_downstream_is_retryable(start_gateway: Any, fresh_downstream: Any) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = sock.getsockname()[1]  # bound, never listening: connection refused
        running = start_gateway(None, upstream_http=f"http://127.0.0.1:{dead}")
        assert post(running, "/v1/logs", dirty_logs().SerializeToString())[0] == 503


def test_output_file_and_healthz(start_gateway: Any, tmp_path: Any) -> None:
    out = tmp_path / "otlp.jsonl"
    running = start_gateway(None, output=str(out))
    conn = http.client.HTTPConnection("127.0.0.1", running.gateway.http_port, timeout=5)
    conn.request("GET", "/healthz")
    assert conn.getresponse().status == 200
    conn.close()
    assert post(running, "/v1/logs", dirty_logs().SerializeToString())[0] == 200
    grpc_call(running, Signal.TRACES, clean_traces().SerializeToString())
    lines = out.read_bytes().splitlines()
    assert len(lines) == 2
    assert_no_leak(out.read_bytes(), SECRETS, "output file")
    first = json.loads(lines[0])
    record = first["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]
    assert record["traceId"] == TRACE.hex()
    assert json.loads(lines[1])["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["name"] == (
        "GET /health"
    )
