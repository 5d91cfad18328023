"""End to end: the real OpenTelemetry SDK with its OTLP/HTTP and OTLP/gRPC exporters sends dirty
logs and spans to a gateway on loopback; a fake downstream receives what the gateway forwards.

Nothing original reaches the downstream (checked over the wire bytes and every decoded field),
placeholders do, the fields that carry no secret arrive unchanged, and the vault holds the
originals under each record's trace id."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogs
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpans
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogs
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpans
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, Status, StatusCode

from redactor.gateway import Signal
from redactor.testing import assert_no_leak

from .conftest import (
    AWS_KEY,
    GITHUB,
    MASTERCARD,
    PASSWORD,
    SECRETS,
    SSN,
    VISA,
    assert_in_vault,
    vault_originals,
)


def _exporters(protocol: str, running: Any) -> tuple[Any, Any]:
    if protocol == "http":
        return (
            HttpSpans(endpoint=running.http_url + "/v1/traces", timeout=5),
            HttpLogs(
                endpoint=running.http_url + "/v1/logs", timeout=5, compression=Compression.Gzip
            ),
        )
    return (
        GrpcSpans(endpoint=running.grpc_target, insecure=True, timeout=5),
        GrpcLogs(endpoint=running.grpc_target, insecure=True, timeout=5),
    )


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_sdk_logs_and_spans_arrive_redacted(
    protocol: str, start_gateway: Any, fresh_downstream: Any, reader: Any, caplog: Any
) -> None:
    caplog.set_level(logging.DEBUG, logger="redactor.gateway")
    running = start_gateway(upstream=protocol)
    span_exporter, log_exporter = _exporters(protocol, running)
    resource = Resource.create({"service.name": "checkout", "deploy.note": f"card {VISA}"})
    sent_spans, sent_logs = InMemorySpanExporter(), InMemoryLogRecordExporter()

    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(SimpleSpanProcessor(sent_spans))
    tracer_provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(sent_logs))
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(log_exporter))
    tracer = tracer_provider.get_tracer("shop")
    logger = logger_provider.get_logger("shop")

    with tracer.start_as_current_span("linked") as other:
        pass
    with tracer.start_as_current_span(
        f"lookup ssn {SSN}",
        attributes={"order.id": "A-1001", "card": VISA, "password": PASSWORD, "retries": 3},
        links=[Link(other.get_span_context(), {"note": f"key {AWS_KEY}"})],
    ) as span:
        span.add_event(f"token {GITHUB} used", {"pan": MASTERCARD, "step": "auth"})
        span.set_status(Status(StatusCode.ERROR, f"declined {VISA}"))
        logger.emit(
            body=f"charged {MASTERCARD} for order A-1001",
            severity_number=SeverityNumber.WARN,
            severity_text="WARN",
            attributes={"order.id": "A-1001", "api.password": PASSWORD, "ssn": SSN},
        )
        logger.emit(
            body={"user": "bob", "card": VISA, "tokens": [GITHUB, "plain"]},
            severity_number=SeverityNumber.INFO,
            severity_text="INFO",
            event_name=f"billing {AWS_KEY}",
        )
        logger.emit(body=f"raw {SSN}".encode(), severity_text="DEBUG")
        logger.emit(body="all clean here", attributes={"order.id": "A-1002"})
    trace_id = format(span.get_span_context().trace_id, "032x")
    tracer_provider.shutdown()
    logger_provider.shutdown()

    traces = fresh_downstream.of(Signal.TRACES)
    logs = fresh_downstream.of(Signal.LOGS)
    assert traces and logs
    assert {r.protocol for r in traces + logs} == {protocol}
    for item in traces + logs:
        assert_no_leak(item.body, SECRETS, f"downstream {item.signal.label} bytes")
        assert_no_leak(item.as_json(), SECRETS, f"downstream {item.signal.label} fields")
    assert_no_leak(caplog.text, SECRETS, "gateway logs")

    # Spans: placeholders where the secrets were, everything else as the SDK sent it.
    got_spans = {
        s.span_id: s
        for r in traces
        for rs in r.message.resource_spans
        for ss in rs.scope_spans
        for s in ss.spans
    }
    for rs in (rs for r in traces for rs in r.message.resource_spans):
        attrs = {kv.key: kv.value.string_value for kv in rs.resource.attributes}
        assert attrs["service.name"] == "checkout"
        assert attrs["deploy.note"].startswith("card [card:")
    for original in sent_spans.get_finished_spans():
        got = got_spans[original.context.span_id.to_bytes(8, "big")]
        assert got.trace_id.hex() == format(original.context.trace_id, "032x")
        assert got.start_time_unix_nano == original.start_time
        assert got.end_time_unix_nano == original.end_time
        if original.name == "linked":
            assert got.name == "linked"
            continue
        assert got.name.startswith("lookup ssn [ssn:")
        attrs = {kv.key: kv.value for kv in got.attributes}
        assert attrs["order.id"].string_value == "A-1001"
        assert attrs["retries"].int_value == 3
        assert attrs["card"].string_value.startswith("[card:")
        assert attrs["password"].string_value.startswith("[password#")
        assert got.events[0].name.startswith("token [github")
        event_attrs = {kv.key: kv.value.string_value for kv in got.events[0].attributes}
        assert event_attrs["step"] == "auth" and event_attrs["pan"].startswith("[card:")
        assert got.links[0].attributes[0].value.string_value.startswith("key [aws")
        assert got.links[0].span_id == other.get_span_context().span_id.to_bytes(8, "big")
        assert got.status.message.startswith("declined [card:")
        assert got.status.code == 2

    # Logs: same.
    got_logs = [
        lr
        for r in logs
        for rl in r.message.resource_logs
        for sl in rl.scope_logs
        for lr in sl.log_records
    ]
    sent = [d.log_record for d in sent_logs.get_finished_logs()]
    assert len(got_logs) == len(sent) == 4
    for original, got in zip(sent, got_logs, strict=True):
        assert got.trace_id.hex() == trace_id
        assert got.span_id.hex() == format(span.get_span_context().span_id, "016x")
        assert got.time_unix_nano == (original.timestamp or 0)
        assert got.observed_time_unix_nano == original.observed_timestamp
        assert got.severity_text == (original.severity_text or "")
        expected = original.severity_number.value if original.severity_number else 0
        assert got.severity_number == expected
    first, second, third, fourth = got_logs
    assert "[card:****-****-****-4444#" in first.body.string_value
    assert first.body.string_value.endswith("for order A-1001")
    attrs = {kv.key: kv.value.string_value for kv in first.attributes}
    assert attrs["order.id"] == "A-1001"
    assert attrs["api.password"].startswith("[password#")
    assert attrs["ssn"].startswith("[ssn:")
    body = {kv.key: kv.value for kv in second.body.kvlist_value.values}
    assert body["user"].string_value == "bob"
    assert body["card"].string_value.startswith("[card:")
    tokens = [v.string_value for v in body["tokens"].array_value.values]
    assert tokens[0].startswith("[github") and tokens[1] == "plain"
    assert second.event_name.startswith("billing [aws")
    assert third.body.bytes_value.startswith(b"raw [ssn:")
    assert fourth.body.string_value == "all clean here"

    # The vault has every original under the trace id of the span / records that carried it.
    running.flush_vault()
    stored = vault_originals(reader, trace_id)
    assert_in_vault(stored, [SSN, VISA, PASSWORD, GITHUB, MASTERCARD, AWS_KEY], "trace")
    sources = {rec.source for rec in reader.records_for_trace(trace_id)}
    assert sources == {"gateway.logs", "gateway.spans"}
