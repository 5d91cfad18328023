"""A tiny app instrumented with the OpenTelemetry SDK: spans and logs, redacted before export.

Run it (after ``redactor keys generate``)::

    python examples/otel_app.py

Console exporters stand in for OTLP ones; swap in ``OTLPSpanExporter`` / ``OTLPLogExporter``
unchanged. Findings go to the vault under the active span's trace id.
"""

from __future__ import annotations

import logging
import sys
import warnings

from opentelemetry import trace
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import ConsoleLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

from redactor.integrations.logging import RedactingFilter
from redactor.integrations.otel import RedactingLogRecordProcessor, RedactingSpanExporter


def main() -> None:
    resource = Resource({"service.name": "shop"})

    tracer_provider = TracerProvider(resource=resource)
    # Spans are frozen at end(): redact in the exporter, wrapping the real one.
    tracer_provider.add_span_processor(
        SimpleSpanProcessor(RedactingSpanExporter(ConsoleSpanExporter(out=sys.stdout)))
    )
    trace.set_tracer_provider(tracer_provider)

    logger_provider = LoggerProvider(resource=resource)
    # Processors run in order on the same record: redaction first, export second.
    logger_provider.add_log_record_processor(RedactingLogRecordProcessor())
    logger_provider.add_log_record_processor(
        SimpleLogRecordProcessor(ConsoleLogRecordExporter(out=sys.stdout))
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        otel_handler = LoggingHandler(logger_provider=logger_provider)
    # Belt and braces: the record is also redacted before the handler builds OTel attributes.
    otel_handler.addFilter(RedactingFilter())
    log = logging.getLogger("shop")
    log.addHandler(otel_handler)
    log.setLevel(logging.INFO)

    tracer = trace.get_tracer("shop")
    with tracer.start_as_current_span("charge card 4111 1111 1111 1111") as span:
        trace_id = format(span.get_span_context().trace_id, "032x")
        span.set_attribute("payment.card", "5555555555554444")
        span.add_event("retry", {"password": "hunter2-example"})
        log.info("charging %s", "4111 1111 1111 1111", extra={"customer_ssn": "496-87-3407"})
        logger_provider.get_logger("shop.direct").emit(
            body={"msg": "api call", "authorization": "Bearer sk-example-0123456789"}
        )
        try:
            raise ValueError("card 5555555555554444 declined")
        except ValueError as exc:
            span.record_exception(exc)
            log.exception("payment failed")

    logger_provider.shutdown()
    tracer_provider.shutdown()
    print(f"trace_id={trace_id}", file=sys.stderr)


if __name__ == "__main__":
    main()
