"""Behaviour each integration promises beyond the contract: fail closed, trace correlation,
dictConfig wiring, idempotence, SDK lifecycle, metrics."""

from __future__ import annotations

import io
import logging
import logging.config
from typing import Any

import pytest
import structlog
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from redactor import Redactor
from redactor.engine.interface import ConfigError
from redactor.engine.masks import FAILED_PLACEHOLDER
from redactor.integrations._core import INTERNAL_LOGGER_NAME, TraceResolver, normalize_trace_id
from redactor.integrations.logging import RedactingFilter, install, is_redacted
from redactor.integrations.otel import RedactingLogRecordProcessor, RedactingSpanExporter
from redactor.integrations.structlog import RedactingProcessor
from redactor.metrics import METRICS, Metrics
from redactor.testing import assert_no_leak

from .conftest import assert_in_vault, new_trace_id, vault_originals
from .harnesses import DumpFormatter, active_trace

CARD = "4111 1111 1111 1111"
CARD2 = "5555555555554444"


class ExplodingRedactor(Redactor):
    """An engine whose every call fails (a fake subclassing the real engine)."""

    calls = 0

    def redact(self, value: Any, **kwargs: Any) -> Any:
        type(self).calls += 1
        raise RuntimeError(f"engine blew up on {value!r}")  # a message quoting the value


class CountingRedactor(Redactor):
    calls = 0

    def redact(self, value: Any, **kwargs: Any) -> Any:
        type(self).calls += 1
        return super().redact(value, **kwargs)


def _clone(engine: Redactor, cls: type[Redactor]) -> Redactor:
    return cls(engine.ruleset, ref_key=engine._ref_key)


def _stream_logger(
    name: str, flt: logging.Filter
) -> tuple[logging.Logger, io.StringIO, logging.Handler]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(DumpFormatter("%(levelname)s %(message)s"))
    handler.addFilter(flt)
    logger = logging.getLogger(name)
    logger.propagate = False
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG)
    return logger, stream, handler


# -- never break the host ------------------------------------------------------------------------


def test_engine_failure_masks_fields_counts_and_logs_once(
    engine: Redactor, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    before = METRICS.failures().get("logging", 0)
    flt = RedactingFilter(_clone(engine, ExplodingRedactor), vault=False)
    logger, stream, _ = _stream_logger("behaviour.fail", flt)
    for _ in range(3):
        logger.info("pay %s", CARD, extra={"card": CARD2})
        try:
            raise ValueError(CARD)
        except ValueError:
            logger.exception("boom")
    out = stream.getvalue()
    assert_no_leak(out, [CARD, CARD2], "handler output")
    assert FAILED_PLACEHOLDER in out
    assert METRICS.failures()["logging"] > before
    err = capfd.readouterr().err
    assert_no_leak(err, [CARD, CARD2], "stderr")
    internal = [r.getMessage() for r in caplog.records if r.name == INTERNAL_LOGGER_NAME]
    assert_no_leak("\n".join(internal), [CARD, CARD2], "internal log")
    assert sum("redaction failed in logging (message" in m for m in internal) == 1  # de-duplicated


def test_structlog_and_otel_fail_closed(engine: Redactor) -> None:
    exploding = _clone(engine, ExplodingRedactor)
    proc = RedactingProcessor(exploding, vault=False)
    out = proc(None, "info", {"event": f"pay {CARD}", "card": CARD2})
    assert_no_leak(repr(out), [CARD, CARD2], "structlog")
    assert out["event"] == FAILED_PLACEHOLDER

    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider()
    provider.add_log_record_processor(RedactingLogRecordProcessor(exploding, vault=False))
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    provider.get_logger("x").emit(body=f"pay {CARD}", attributes={"card": CARD2})
    assert_no_leak(exporter.get_finished_logs()[0].to_json(), [CARD, CARD2], "otel logs")

    spans = InMemorySpanExporter()
    wrapper = RedactingSpanExporter(spans, exploding, vault=False)
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(wrapper))
    with tracer_provider.get_tracer("x").start_as_current_span(
        f"pay {CARD}", attributes={"c": CARD2}
    ):
        pass
    assert_no_leak(spans.get_finished_spans()[0].to_json(), [CARD, CARD2], "otel spans")


def test_bad_format_args_do_not_leak_args(engine: Redactor) -> None:
    logger, stream, _ = _stream_logger("behaviour.badfmt", RedactingFilter(engine, vault=False))
    logger.info("two %s %s", CARD)  # wrong arity: logging would print the args on stderr
    assert_no_leak(stream.getvalue(), [CARD], "output")


def test_vault_failure_never_reaches_host(engine: Redactor) -> None:
    class BrokenVault:
        def submit(self, *args: Any) -> None:
            raise OSError("disk full")

        def stats(self) -> dict[str, int]:
            return {}

    logger, stream, _ = _stream_logger(
        "behaviour.vault", RedactingFilter(engine, vault=BrokenVault())
    )
    logger.info("pay %s", CARD)
    assert "[card:" in stream.getvalue()


def test_bad_configuration_raises_early() -> None:
    with pytest.raises(ConfigError):
        RedactingFilter(redactor=object(), vault=False)
    with pytest.raises(ConfigError):
        TraceResolver(["otel", "nope"])
    with pytest.raises(ConfigError):
        RedactingSpanExporter(None, vault=False)  # type: ignore[arg-type]


# -- stdlib specifics -----------------------------------------------------------------------------


def test_record_is_redacted_once_and_looks_standard(engine: Redactor) -> None:
    counting = _clone(engine, CountingRedactor)
    flt = RedactingFilter(counting, vault=False)
    second = RedactingFilter(counting, vault=False)
    logger, stream, handler = _stream_logger("behaviour.once", flt)
    handler.addFilter(second)
    captured: list[logging.LogRecord] = []
    handler.emit = captured.append  # type: ignore[method-assign]
    CountingRedactor.calls = 0
    try:
        raise KeyError(CARD)
    except KeyError:
        logger.error("pay %s", CARD, extra={"note": CARD2})
        logger.exception("again")
    record = captured[0]
    assert is_redacted(record) and record.args == () and not record.args
    assert record.getMessage().startswith("pay [card:")
    assert record.__dict__["note"].startswith("[card:")
    calls_per_record = CountingRedactor.calls / 2
    assert calls_per_record <= 4  # message, exc text, exc message, extras -- once, not twice
    exc_record = captured[1]
    assert exc_record.exc_info is not None and exc_record.exc_info[2] is None
    assert exc_record.exc_info[0].__name__ == "KeyError"
    assert_no_leak(logging.Formatter().format(exc_record), [CARD], "formatted exception")
    import traceback

    assert_no_leak("".join(traceback.format_exception(*exc_record.exc_info)), [CARD], "re-rendered")


def test_dict_config_filter_and_handler_by_name_and_by_dict(
    engine: Redactor, settings: Any, fresh_shared: None, capsys: pytest.CaptureFixture[str]
) -> None:
    config = {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "redact": {"()": "redactor.integrations.logging.RedactingFilter", "settings": settings}
        },
        "formatters": {"plain": {"format": "%(name)s %(message)s"}},
        "handlers": {
            # "a_..." sorts before "console": the name is resolved on first use
            "a_wrapped": {
                "class": "redactor.integrations.logging.RedactingHandler",
                "target": "console",
                "settings": settings,
            },
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "plain",
                "stream": "ext://sys.stdout",
            },
            "inline": {
                "class": "redactor.integrations.logging.RedactingHandler",
                "settings": settings,
                "target": {
                    "class": "logging.StreamHandler",
                    "formatter": "plain",
                    "stream": "ext://sys.stdout",
                },
            },
            "filtered": {
                "class": "logging.StreamHandler",
                "formatter": "plain",
                "stream": "ext://sys.stdout",
                "filters": ["redact"],
            },
        },
        "loggers": {
            "cfg": {
                "handlers": ["a_wrapped", "inline", "filtered"],
                "propagate": False,
                "level": "INFO",
            }
        },
    }
    logging.config.dictConfig(config)
    trace_id = new_trace_id()
    try:
        logging.getLogger("cfg.child").info("pay %s", CARD, extra={"otelTraceID": trace_id})
        out = capsys.readouterr().out
    finally:
        logging.getLogger("cfg").handlers.clear()
    assert out.count("cfg.child pay [card:") == 3
    assert_no_leak(out, [CARD], "dictConfig output")


def test_install_covers_root_handlers_and_children(engine: Redactor) -> None:
    root = logging.getLogger()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    own_stream = io.StringIO()
    own_handler = logging.StreamHandler(own_stream)
    isolated = logging.getLogger("behaviour.install.isolated")
    isolated.propagate = False
    isolated.addHandler(own_handler)
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.INFO)
    try:
        flt = install(include_children=True, redactor=engine, vault=False)
        assert flt in handler.filters and flt in own_handler.filters
        logging.getLogger("behaviour.install.child").info("pay %s", CARD)
        isolated.info("pay %s", CARD2)
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    assert "[card:" in stream.getvalue() and "[card:" in own_stream.getvalue()
    assert_no_leak(stream.getvalue() + own_stream.getvalue(), [CARD, CARD2], "install")


# -- trace correlation ----------------------------------------------------------------------------


def test_trace_id_normalisation() -> None:
    tid = "0af7651916cd43dd8448eb211c80319c"
    assert normalize_trace_id(int(tid, 16)) == tid
    assert normalize_trace_id("0x" + tid.upper()) == tid
    assert normalize_trace_id("0af76519-16cd-43dd-8448-eb211c80319c") == tid
    assert normalize_trace_id("abc") == "0" * 29 + "abc"
    assert normalize_trace_id(bytes.fromhex(tid)) == tid
    for bad in (None, 0, "0" * 32, "not-hex", True, "f" * 33, 1 << 128):
        assert normalize_trace_id(bad) is None


@pytest.mark.parametrize("source", ["otel", "record", "contextvars", "field"])
def test_each_trace_source_routes_findings(
    source: str, engine: Redactor, writer: Any, reader: Any
) -> None:
    trace_id = new_trace_id()
    flt = RedactingFilter(engine, writer, trace_sources=[source], trace_field="request_trace")
    proc = RedactingProcessor(engine, writer, trace_sources=[source], trace_field="request_trace")
    logger, stream, _ = _stream_logger(f"behaviour.trace.{source}", flt)
    extra: dict[str, Any] = {}
    if source == "record":
        extra = {"otelTraceID": trace_id}
    elif source == "field":
        extra = {"request_trace": trace_id}
    structlog.contextvars.clear_contextvars()
    if source == "contextvars":
        structlog.contextvars.bind_contextvars(trace_id=trace_id)
    try:
        if source == "otel":
            with active_trace(trace_id):
                logger.info("pay %s", CARD, extra=extra)
                proc(None, "info", {"event": f"pay {CARD2}", **extra})
        else:
            logger.info("pay %s", CARD, extra=extra)
            proc(None, "info", {"event": f"pay {CARD2}", **extra})
    finally:
        structlog.contextvars.clear_contextvars()
    assert_in_vault(vault_originals(writer, reader, trace_id), [CARD, CARD2], f"source {source}")


def test_trace_source_order_is_configurable(engine: Redactor, writer: Any, reader: Any) -> None:
    span_trace, field_trace = new_trace_id(), new_trace_id()
    flt = RedactingFilter(engine, writer, trace_sources="field,otel", trace_field="tid")
    logger, _, _ = _stream_logger("behaviour.order", flt)
    with active_trace(span_trace):
        logger.info("pay %s", CARD, extra={"tid": field_trace})
    assert_in_vault(vault_originals(writer, reader, field_trace), [CARD], "field first")
    assert vault_originals(writer, reader, span_trace) == []


def test_otel_log_record_uses_its_own_span_context(
    engine: Redactor, writer: Any, reader: Any
) -> None:
    trace_id = new_trace_id()
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider()
    provider.add_log_record_processor(RedactingLogRecordProcessor(engine, writer))
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    with active_trace(trace_id):
        provider.get_logger("x").emit(body={"password": "hunter2-abc"}, attributes={"c": CARD})
    assert_in_vault(vault_originals(writer, reader, trace_id), ["hunter2-abc", CARD], "otel record")


# -- OTel lifecycle -------------------------------------------------------------------------------


def test_sdk_lifecycle(engine: Redactor) -> None:
    inner = InMemorySpanExporter()
    wrapper = RedactingSpanExporter(inner, engine, vault=False)
    assert wrapper.force_flush(1000) is True
    wrapper.shutdown()
    wrapper.shutdown()
    assert wrapper.export([]) is SpanExportResult.FAILURE
    processor = RedactingLogRecordProcessor(engine, vault=False)
    assert processor.force_flush(timeout_millis=10) is True
    processor.shutdown()
    processor.shutdown()


def test_clean_span_is_passed_through_uncopied(engine: Redactor) -> None:
    from opentelemetry.sdk.trace import TracerProvider

    inner = InMemorySpanExporter()
    wrapper = RedactingSpanExporter(inner, engine, vault=False)
    with (
        TracerProvider().get_tracer("x").start_as_current_span("clean", attributes={"n": 1}) as span
    ):
        span.add_event("tick", {"ok": True})
    readable = span._readable_span()  # what the SDK hands span processors at end()
    assert wrapper.export([readable]) is SpanExportResult.SUCCESS
    assert inner.get_finished_spans()[0] is readable


# -- metrics --------------------------------------------------------------------------------------


def test_metrics_observed_through_otel(engine: Redactor, writer: Any) -> None:
    metrics = Metrics()
    metrics.watch_vault(writer)
    reader = InMemoryMetricReader()
    metrics.register(MeterProvider(metric_readers=[reader]))
    metrics.count_failure("logging")

    class Found:
        rule_id, category = "card.visa", "card"

    metrics.count_findings([Found(), Found()])  # type: ignore[list-item]
    data = reader.get_metrics_data()
    points = {
        m.name: list(m.data.data_points)
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
    }
    assert points["redactor.redactions"][0].value == 2
    assert dict(points["redactor.redactions"][0].attributes) == {
        "rule_id": "card.visa",
        "category": "card",
    }
    assert points["redactor.redaction_failures"][0].value == 1
    assert {"redactor.vault.dropped", "redactor.vault.errors", "redactor.vault.enqueued"} <= set(
        points
    )


def test_internal_logger_does_not_propagate() -> None:
    from redactor.integrations._core import internal_logger

    assert internal_logger().propagate is False
    assert internal_logger().name == INTERNAL_LOGGER_NAME
