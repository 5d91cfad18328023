"""``line_trace_id`` skips its search on lines without "race": the same answer as the search
on every key form the pattern knows, and on the sample corpus."""

from __future__ import annotations

import itertools

import orjson
import pytest

from redactor.engine.stream import _TRACE_ID_RE, line_trace_id

from _engine_helpers import CORPUS

TRACE = "4BF92F3577B34DA6A3CE929D0E0E4736"


def _searched(line: bytes, default: str | None) -> str | None:
    m = _TRACE_ID_RE.search(line)
    return m.group(1).decode().lower() if m else default


@pytest.mark.parametrize(
    "line",
    [
        f'{{"msg":"x","trace_id":"{TRACE}"}}',
        f"level=info traceid={TRACE} ok",
        f'{{"traceId": "{TRACE}"}}',
        f"trace.id: {TRACE}",
        f"otelTraceID='{TRACE}'",
        f'"logging.googleapis.com/trace":"projects/p-1/traces/{TRACE}"',
    ],
)
def test_every_key_form_is_found(line: str) -> None:
    assert line_trace_id(line.encode(), "default") == TRACE.lower()


def test_lines_without_a_key_get_the_default() -> None:
    assert line_trace_id(f"span {TRACE} done".encode(), "default") == "default"
    assert line_trace_id(b"", None) is None


def test_same_as_the_search_on_the_corpus() -> None:
    with CORPUS.open("rb") as fh:
        lines = [orjson.loads(raw)["line"].encode() for raw in itertools.islice(fh, 5000)]
    assert sum(_searched(line, None) is not None for line in lines) > 100
    assert [line_trace_id(line, "d") for line in lines] == [_searched(line, "d") for line in lines]
