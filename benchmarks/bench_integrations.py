"""Cost of each integration on the host's hot path: (with redactor) / (without), same run.

    .venv/bin/python benchmarks/bench_integrations.py [--rounds 7] [--records 2000]

For every integration, a baseline pipeline and the same pipeline with redaction are timed in
alternating rounds (so drift hits both alike) on a clean record and on a record with one card
number; the ratio of the medians of per-record time is printed. The dirty case includes the
vault enqueue (a real embedded SQLite vault, with its writer thread running, in a temp dir);
the "novlt" row is the same dirty record with no vault, to tell the integration's and the
engine's share from the vault writer's (informational, no target).

Targets: clean <= 1.10 (stdlib logging, structlog), <= 1.05 (OpenTelemetry SDK paths);
dirty <= 2.0.
"""

from __future__ import annotations

import argparse
import gc
import logging
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import structlog  # noqa: E402
from opentelemetry.sdk._logs import LoggerProvider  # noqa: E402
from opentelemetry.sdk._logs.export import (  # noqa: E402
    BatchLogRecordProcessor,
    LogRecordExporter,
    LogRecordExportResult,
)
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import (  # noqa: E402
    BatchSpanProcessor,
    SpanExporter,
    SpanExportResult,
)

from redactor import create_redactor  # noqa: E402
from redactor.integrations.logging import RedactingFilter  # noqa: E402
from redactor.integrations.otel import RedactingLogRecordProcessor, RedactingSpanExporter  # noqa: E402
from redactor.integrations.structlog import RedactingProcessor  # noqa: E402
from redactor.settings import resolve_settings  # noqa: E402
from redactor.vault import generate_keys, open_writer  # noqa: E402

CARD = "4111 1111 1111 1111"
TARGET_CLEAN = {"stdlib logging": 1.10, "structlog": 1.10, "otel logs": 1.05, "otel spans": 1.05}
TARGET_DIRTY = 2.0


class _Sink:
    """A stream that discards (so output size does not grow across rounds)."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


class _NullLogExporter(LogRecordExporter):
    def export(self, batch: Any) -> LogRecordExportResult:
        return LogRecordExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class _NullSpanExporter(SpanExporter):
    def export(self, spans: Any) -> SpanExportResult:
        return SpanExportResult.SUCCESS


Emit = Callable[[bool], None]  # emit(dirty) logs one record
Pipeline = tuple[Emit, Callable[[], None]]  # (emit, close)


def stdlib_pipeline(engine: Any, writer: Any, redacting: bool) -> Pipeline:
    handler = logging.StreamHandler(_Sink())  # type: ignore[arg-type]
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    if redacting:
        handler.addFilter(RedactingFilter(engine, writer))
    # one logger per pipeline: two pipelines sharing a name would share its handlers
    logger = logging.getLogger(f"bench.stdlib.{redacting}.{writer is not False}")
    logger.propagate = False
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)

    def emit(dirty: bool) -> None:
        if dirty:
            logger.info("charging card %s for order %s", CARD, 81723)
        else:
            logger.info("user %s signed in from %s", "alice", "10.1.2.3")

    return emit, lambda: None


def structlog_pipeline(engine: Any, writer: Any, redacting: bool) -> Pipeline:
    processors: list[Any] = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso"),
    ]
    if redacting:
        processors.append(RedactingProcessor(engine, writer))
    processors.append(structlog.processors.JSONRenderer())
    logger = structlog.wrap_logger(structlog.PrintLogger(_Sink()), processors=processors)  # type: ignore[arg-type]

    def emit(dirty: bool) -> None:
        if dirty:
            logger.info(f"charging card {CARD}", order=81723, user="alice")
        else:
            logger.info("user signed in", user="alice", ip="10.1.2.3")

    return emit, lambda: None


def otel_logs_pipeline(engine: Any, writer: Any, redacting: bool) -> Pipeline:
    provider = LoggerProvider()
    if redacting:
        provider.add_log_record_processor(RedactingLogRecordProcessor(engine, writer))
    provider.add_log_record_processor(
        BatchLogRecordProcessor(
            _NullLogExporter(), max_queue_size=1 << 16, schedule_delay_millis=50
        )
    )
    logger = provider.get_logger("bench")

    def emit(dirty: bool) -> None:
        if dirty:
            logger.emit(body=f"charging card {CARD}", attributes={"order": 81723, "user": "alice"})
        else:
            logger.emit(body="user signed in", attributes={"user": "alice", "ip": "10.1.2.3"})

    return emit, provider.shutdown


def otel_spans_pipeline(engine: Any, writer: Any, redacting: bool) -> Pipeline:
    provider = TracerProvider()
    exporter: SpanExporter = _NullSpanExporter()
    if redacting:
        exporter = RedactingSpanExporter(exporter, engine, writer)
    provider.add_span_processor(
        BatchSpanProcessor(exporter, max_queue_size=1 << 16, schedule_delay_millis=50)
    )
    tracer = provider.get_tracer("bench")

    def emit(dirty: bool) -> None:
        name = f"charge {CARD}" if dirty else "charge"
        with tracer.start_as_current_span(name, attributes={"user": "alice", "order": 81723}):
            pass

    return emit, provider.shutdown


PIPELINES: dict[str, Callable[[Any, Any, bool], Pipeline]] = {
    "stdlib logging": stdlib_pipeline,
    "structlog": structlog_pipeline,
    "otel logs": otel_logs_pipeline,
    "otel spans": otel_spans_pipeline,
}


def per_record_us(emit: Emit, dirty: bool, records: int) -> float:
    gc.disable()
    try:
        start = time.perf_counter()
        for _ in range(records):
            emit(dirty)
        return (time.perf_counter() - start) / records * 1e6
    finally:
        gc.enable()


def engine_us(engine: Any, dirty: bool, n: int = 5000) -> float:
    """Per-call cost of the engine itself on the message of the stdlib record."""
    text = (
        f"charging card {CARD} for order 81723" if dirty else "user alice signed in from 10.1.2.3"
    )
    samples = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(n):
            engine.redact(text, findings=[])
        samples.append((time.perf_counter() - start) / n * 1e6)
    return statistics.median(samples)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rounds", type=int, default=9, help="timed rounds per case (median taken)"
    )
    parser.add_argument("--records", type=int, default=2000, help="records per round")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")

    with tempfile.TemporaryDirectory(prefix="redactor-bench-") as home:
        settings = resolve_settings(home=home, environ={})
        generate_keys(settings.keys_dir)
        engine = create_redactor(settings)
        writer = open_writer(settings)
        print(
            f"{'integration':<16} {'case':<6} {'without µs':>11} {'with µs':>9} "
            f"{'ratio':>6} {'target':>7}"
        )
        failed = False
        for name, build in PIPELINES.items():
            (baseline, close_baseline) = build(engine, None, False)
            (redacting, close_redacting) = build(engine, writer, True)
            (no_vault, close_no_vault) = build(engine, False, True)
            for case, dirty, redacting_emit in (
                ("clean", False, redacting),
                ("dirty", True, redacting),
                ("novlt", True, no_vault),
            ):
                for emit in (baseline, redacting_emit):  # warm-up: caches, first-use paths
                    per_record_us(emit, dirty, args.records // 4)
                without, with_, ratios = [], [], []
                for _ in range(args.rounds):
                    # paired rounds: each ratio compares batches timed back to back, so load
                    # from other processes shifts both sides of a pair alike
                    base_us = per_record_us(baseline, dirty, args.records)
                    red_us = per_record_us(redacting_emit, dirty, args.records)
                    without.append(base_us)
                    with_.append(red_us)
                    ratios.append(red_us / base_us)
                ratio = statistics.median(ratios)
                target = None if case == "novlt" else TARGET_DIRTY if dirty else TARGET_CLEAN[name]
                flag = "" if target is None or ratio <= target else "  OVER"
                failed |= bool(flag)
                shown = f"{target:>7.2f}" if target is not None else f"{'-':>7}"
                print(
                    f"{name:<16} {case:<6} {statistics.median(without):>11.2f} "
                    f"{statistics.median(with_):>9.2f} {ratio:>6.3f} {shown}{flag}"
                )
                writer.flush(30.0)
            close_baseline()
            close_redacting()
            close_no_vault()
        print(
            f"engine alone, one str field: clean {engine_us(engine, False):.2f} µs, "
            f"dirty {engine_us(engine, True):.2f} µs (the floor under every 'with' column)"
        )
        stats = writer.stats()
        print(f"vault writer: {stats}")
        writer.shutdown()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
