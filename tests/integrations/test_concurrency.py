"""Many threads logging at once, and a process forked after configuration (pre-fork servers)."""

from __future__ import annotations

import io
import logging
import os
import threading
from typing import Any

import pytest
import structlog

from redactor.integrations.logging import RedactingFilter
from redactor.integrations.structlog import RedactingProcessor
from redactor.testing import assert_no_leak

from .conftest import assert_in_vault, new_trace_id, vault_originals

CARD = "4111 1111 1111 1111"
THREADS = 8
PER_THREAD = 40


def test_many_threads_no_lost_or_duplicated_vault_entries(
    engine: Any, writer: Any, reader: Any
) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter(engine, writer))
    logger = logging.getLogger("concurrency.threads")
    logger.propagate = False
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    struct_stream = io.StringIO()
    struct_logger = structlog.wrap_logger(
        structlog.PrintLogger(struct_stream),
        processors=[
            RedactingProcessor(engine, writer, trace_sources=["field"], trace_field="tid"),
            structlog.processors.JSONRenderer(),
        ],
    )
    traces: list[list[str]] = [[] for _ in range(THREADS)]
    barrier = threading.Barrier(THREADS)
    before = writer.stats()

    def work(index: int) -> None:
        barrier.wait()
        for _ in range(PER_THREAD):
            trace_id = new_trace_id()
            traces[index].append(trace_id)
            if index % 2:
                logger.info("pay %s", CARD, extra={"otelTraceID": trace_id})
            else:
                struct_logger.info(f"pay {CARD}", tid=trace_id)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "deadlock: a logging thread hung"

    assert_no_leak(stream.getvalue() + struct_stream.getvalue(), [CARD], "threaded output")
    assert writer.flush(20.0)
    all_traces = [t for per in traces for t in per]
    assert len(set(all_traces)) == THREADS * PER_THREAD
    for trace_id in all_traces:
        records = reader.records_for_trace(trace_id)
        originals = [o.original for r in records for o in r.originals]
        if len(records) != 1 or len(originals) != 1 or originals[0] != CARD:
            pytest.fail(
                f"trace {trace_id}: {len(records)} records, {len(originals)} originals (want 1/1)"
            )
    after = writer.stats()
    assert after["dropped"] == before["dropped"]
    assert after["written"] - before["written"] == THREADS * PER_THREAD


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_findings_reach_the_vault(engine: Any, writer: Any, reader: Any) -> None:
    """Configure in the parent, fork (as gunicorn's pre-fork model does), log in the child."""
    read_fd, write_fd = os.pipe()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter(engine, writer))
    logger = logging.getLogger("concurrency.fork")
    logger.propagate = False
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.info("parent warms up with %s", CARD, extra={"otelTraceID": new_trace_id()})
    trace_id = new_trace_id()

    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        code = 1
        try:
            os.close(read_fd)
            logger.info("child pays %s", CARD, extra={"otelTraceID": trace_id})
            flushed = writer.flush(10.0)
            leaked = CARD in stream.getvalue()
            code = 0 if flushed and not leaked else 2
        finally:
            os.write(write_fd, str(code).encode())
            os._exit(code)
    os.close(write_fd)
    _, status = os.waitpid(pid, 0)
    child_report = os.read(read_fd, 16).decode()
    os.close(read_fd)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, (
        f"child exit {status}, report {child_report!r}"
    )
    assert_in_vault(vault_originals(writer, reader, trace_id), [CARD], "forked child")
    # the parent keeps working after the fork
    parent_trace = new_trace_id()
    logger.info("parent pays %s", CARD, extra={"otelTraceID": parent_trace})
    assert_in_vault(vault_originals(writer, reader, parent_trace), [CARD], "parent after fork")
