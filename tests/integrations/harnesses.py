"""One harness per integration: build a pipeline writing to memory, emit a dirty case in
every shape the host library supports, and return all output as text.

The contract suite runs each harness over the same table of dirty cases.
"""

from __future__ import annotations

import io
import json
import logging
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import structlog
from opentelemetry import trace
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, StatusCode, TraceFlags

from redactor.integrations.logging import RedactingFilter, RedactingHandler
from redactor.integrations.otel import RedactingLogRecordProcessor, RedactingSpanExporter
from redactor.integrations.structlog import RedactingProcessor

from .conftest import DirtyCase

_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class DumpFormatter(logging.Formatter):
    """Formats the message, exception and stack, then every extra attribute (as JSON-ish repr),
    so that nothing a record carries escapes the leak check."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        extras = {k: v for k, v in vars(record).items() if k not in _STANDARD}
        return f"{text} extras={extras!r}"


@contextmanager
def active_trace(trace_id: str) -> Iterator[SpanContext]:
    """Make ``trace_id`` the active OpenTelemetry trace (a non-recording parent span)."""
    context = SpanContext(
        trace_id=int(trace_id, 16),
        span_id=int(secrets.token_hex(8), 16) | 1,
        is_remote=False,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )
    with trace.use_span(NonRecordingSpan(context), end_on_exit=False):
        yield context


def _fields(case: DirtyCase) -> dict[str, Any]:
    """Structured fields carrying the case: free-text fields, or key-name fields."""
    if case.label is None:
        return {"password": case.original, "db": {"password": case.original}}
    return {"detail": case.original, "customer": {"note": f"paid by {case.original}"}}


def _message(case: DirtyCase) -> str:
    return "charge failed" if case.label is None else f"charge failed for {case.original}"


def _error(case: DirtyCase) -> ValueError:
    return ValueError("bad password" if case.label is None else f"rejected {case.original}")


class Harness:
    name = "base"

    def __init__(self, engine: Any, writer: Any) -> None:
        self.engine = engine
        self.writer = writer

    def emit(self, case: DirtyCase, trace_id: str) -> None:
        raise NotImplementedError

    def output(self) -> str:
        raise NotImplementedError

    def close(self) -> None:
        pass


class StdlibFilterHarness(Harness):
    """RedactingFilter on a parent logger's handler; records come from a child logger."""

    name = "stdlib-filter"

    def __init__(self, engine: Any, writer: Any) -> None:
        super().__init__(engine, writer)
        self.stream = io.StringIO()
        self.handler = logging.StreamHandler(self.stream)
        self.handler.setFormatter(DumpFormatter("%(levelname)s %(name)s %(message)s"))
        self.handler.addFilter(RedactingFilter(engine, writer))
        self.parent = logging.getLogger(f"contract.{self.name}")
        self.parent.propagate = False
        self.parent.setLevel(logging.DEBUG)
        self.parent.addHandler(self.handler)
        self.logger = logging.getLogger(f"contract.{self.name}.child")

    def emit(self, case: DirtyCase, trace_id: str) -> None:
        with active_trace(trace_id):
            self.logger.info("%s", _message(case), extra=_fields(case))
            self.logger.warning(_message(case), extra={"payload": _fields(case)})
            try:
                raise _error(case)
            except ValueError:
                self.logger.exception("while charging %s", _message(case))
            self.logger.info(_message(case), stack_info=True)

    def output(self) -> str:
        return self.stream.getvalue()

    def close(self) -> None:
        self.parent.removeHandler(self.handler)


class StdlibHandlerHarness(StdlibFilterHarness):
    """RedactingHandler wrapping the stream handler."""

    name = "stdlib-handler"

    def __init__(self, engine: Any, writer: Any) -> None:
        Harness.__init__(self, engine, writer)
        self.stream = io.StringIO()
        target = logging.StreamHandler(self.stream)
        target.setFormatter(DumpFormatter("%(levelname)s %(name)s %(message)s"))
        self.handler = RedactingHandler(target, engine, writer)
        self.parent = logging.getLogger(f"contract.{self.name}")
        self.parent.propagate = False
        self.parent.setLevel(logging.DEBUG)
        self.parent.addHandler(self.handler)
        self.logger = logging.getLogger(f"contract.{self.name}.child")


class StdlibOtelHandlerHarness(StdlibFilterHarness):
    """OpenTelemetry's LoggingHandler with the RedactingFilter on it, next to a stream handler."""

    name = "stdlib-otel-handler"

    def __init__(self, engine: Any, writer: Any) -> None:
        super().__init__(engine, writer)
        self.exporter = InMemoryLogRecordExporter()
        self.provider = LoggerProvider(resource=Resource({"service.name": "contract"}))
        self.provider.add_log_record_processor(SimpleLogRecordProcessor(self.exporter))
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            self.otel_handler = LoggingHandler(logger_provider=self.provider)
        # The same filter instance on both handlers: whichever runs first redacts, the other
        # sees the mark and skips.
        self.otel_handler.addFilter(self.handler.filters[0])
        self.parent.addHandler(self.otel_handler)

    def output(self) -> str:
        logs = "\n".join(r.to_json(indent=None) for r in self.exporter.get_finished_logs())
        return self.stream.getvalue() + "\n" + logs

    def close(self) -> None:
        super().close()
        self.parent.removeHandler(self.otel_handler)
        self.provider.shutdown()


class StructlogHarness(Harness):
    name = "structlog"

    def __init__(self, engine: Any, writer: Any) -> None:
        super().__init__(engine, writer)
        self.stream = io.StringIO()
        self.logger = structlog.wrap_logger(
            structlog.PrintLogger(self.stream),
            processors=[
                structlog.contextvars.merge_contextvars,
                structlog.processors.add_log_level,
                RedactingProcessor(engine, writer),
                structlog.processors.JSONRenderer(),
            ],
        )

    def emit(self, case: DirtyCase, trace_id: str) -> None:
        with active_trace(trace_id):
            self.logger.info(_message(case), **_fields(case))
            self.logger.warning(
                "nested",
                payload=[_fields(case)],
                positional=(case.original,) if case.label else (),
            )
            try:
                raise _error(case)
            except ValueError:
                self.logger.exception(_message(case))

    def output(self) -> str:
        return self.stream.getvalue()


class StructlogFormatterHarness(Harness):
    """structlog through stdlib logging with ProcessorFormatter (structlog and foreign records)."""

    name = "structlog-formatter"

    def __init__(self, engine: Any, writer: Any) -> None:
        super().__init__(engine, writer)
        self.stream = io.StringIO()
        self.handler = logging.StreamHandler(self.stream)
        self.handler.setFormatter(
            structlog.stdlib.ProcessorFormatter(
                processors=[
                    RedactingProcessor(engine, writer),
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.JSONRenderer(default=repr),
                ],
                pass_foreign_args=True,
            )
        )
        self.stdlib_logger = logging.getLogger(f"contract.{self.name}")
        self.stdlib_logger.propagate = False
        self.stdlib_logger.setLevel(logging.DEBUG)
        self.stdlib_logger.addHandler(self.handler)
        self.logger = structlog.wrap_logger(
            self.stdlib_logger,
            processors=[
                structlog.contextvars.merge_contextvars,
                structlog.stdlib.add_log_level,
                structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
            ],
            wrapper_class=structlog.stdlib.BoundLogger,
        )

    def emit(self, case: DirtyCase, trace_id: str) -> None:
        with active_trace(trace_id):
            self.logger.info(_message(case), **_fields(case))
            self.stdlib_logger.info("foreign %s", _message(case))
            try:
                raise _error(case)
            except ValueError:
                self.logger.exception(_message(case))
                self.stdlib_logger.exception("foreign %s", _message(case))

    def output(self) -> str:
        return self.stream.getvalue()

    def close(self) -> None:
        self.stdlib_logger.removeHandler(self.handler)


class OtelLogsHarness(Harness):
    name = "otel-logs"

    def __init__(self, engine: Any, writer: Any) -> None:
        super().__init__(engine, writer)
        self.exporter = InMemoryLogRecordExporter()
        self.provider = LoggerProvider(resource=Resource({"service.name": "contract"}))
        self.processor = RedactingLogRecordProcessor(engine, writer)
        self.provider.add_log_record_processor(self.processor)
        self.provider.add_log_record_processor(SimpleLogRecordProcessor(self.exporter))
        self.logger = self.provider.get_logger("contract")

    def emit(self, case: DirtyCase, trace_id: str) -> None:
        with active_trace(trace_id):
            self.logger.emit(body=_message(case), attributes=_flat(_fields(case)))
            self.logger.emit(body=_fields(case), event_name="charge")
            self.logger.emit(body=[_message(case), _fields(case)])
            self.logger.emit(body="error", exception=_error(case))

    def output(self) -> str:
        return "\n".join(r.to_json(indent=None) for r in self.exporter.get_finished_logs())

    def close(self) -> None:
        self.provider.shutdown()
        self.processor.shutdown()  # second shutdown must be harmless


def _flat(fields: dict[str, Any]) -> dict[str, Any]:
    """OTel attribute values are scalars or homogeneous sequences: flatten nested maps."""
    out: dict[str, Any] = {}
    for key, value in fields.items():
        if isinstance(value, dict):
            for sub, inner in value.items():
                out[f"{key}.{sub}"] = inner
        else:
            out[key] = value
    return out


class OtelSpansHarness(Harness):
    name = "otel-spans"

    def __init__(self, engine: Any, writer: Any) -> None:
        super().__init__(engine, writer)
        self.exporter = InMemorySpanExporter()
        self.wrapper = RedactingSpanExporter(self.exporter, engine, writer)
        self.provider = TracerProvider(
            resource=Resource({"service.name": "contract"}),
        )
        self.provider.add_span_processor(SimpleSpanProcessor(self.wrapper))
        self.tracer = self.provider.get_tracer("contract", attributes={"scope.kind": "test"})

    def emit(self, case: DirtyCase, trace_id: str) -> None:
        with active_trace(trace_id) as parent:
            attributes = _flat(_fields(case))
            link = Link(parent, attributes=attributes)
            with self.tracer.start_as_current_span(
                _message(case), attributes=attributes, links=[link]
            ) as span:
                span.add_event(_message(case), attributes=attributes)
                span.record_exception(_error(case))
                span.set_status(StatusCode.ERROR, _message(case))

    def output(self) -> str:
        return "\n".join(
            json.dumps(json.loads(s.to_json(indent=None)), default=repr)
            + repr([dict(link.attributes or {}) for link in s.links])
            for s in self.exporter.get_finished_spans()
        )

    def close(self) -> None:
        self.provider.shutdown()
        self.wrapper.shutdown()  # second shutdown must be harmless


HARNESSES: tuple[type[Harness], ...] = (
    StdlibFilterHarness,
    StdlibHandlerHarness,
    StdlibOtelHandlerHarness,
    StructlogHarness,
    StructlogFormatterHarness,
    OtelLogsHarness,
    OtelSpansHarness,
)
