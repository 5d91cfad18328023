"""Redacting newline-delimited text in large chunks (what ``redactor scrub`` runs on).

Stage 1 runs over a whole chunk at once and stops at the first trigger; every line before it is
clean and is passed through as one slice, never decoded. Only lines holding a trigger are
decoded and redacted one by one. On mostly clean logs this costs about one Hyperscan pass.
"""

from __future__ import annotations

from collections.abc import Callable

import regex

from redactor.engine.core import Redactor
from redactor.engine.interface import Finding

# A JSON/logfmt line's own trace id wins over the caller's default.
_TRACE_ID_RE = regex.compile(
    rb"""["']?(?:trace_?id|traceId|trace\.id|otelTraceID|logging\.googleapis\.com/trace)["']?\s*[:=]\s*["']?(?:projects/[^/"']+/traces/)?([0-9a-fA-F]{32})(?![0-9a-fA-F])"""
)

OnLine = Callable[[str | None, bytes, list[Finding]], None]


def line_trace_id(line: bytes, default: str | None) -> str | None:
    """The trace id a line carries itself (32 hex chars, lowercased), else ``default``."""
    m = _TRACE_ID_RE.search(line)
    return m.group(1).decode().lower() if m else default


def redact_chunk(
    redactor: Redactor,
    buf: bytes,
    *,
    default_trace_id: str | None = None,
    on_line: OnLine | None = None,
) -> list[bytes | memoryview]:
    """Redact the complete lines in ``buf``; returns the output pieces, same line count.

    ``on_line(trace_id, redacted_line, findings)`` is called for each line that had findings.
    """
    out: list[bytes | memoryview] = []
    view = memoryview(buf)
    pos = 0
    for line_start, line_end, triggered in redactor.scanner.dirty_lines(buf):
        if line_start > pos:
            out.append(view[pos:line_start])
        line = buf[line_start:line_end]
        trace_id = line_trace_id(line, default_trace_id)
        findings: list[Finding] | None = [] if on_line is not None else None
        redacted = redactor.redact_line(line, triggered, trace_id=trace_id, findings=findings)
        if b"\n" in redacted:  # never split one input line into two output lines
            redacted = redacted.replace(b"\n", b"\\n")
        out.append(redacted)
        if findings and on_line is not None:
            on_line(trace_id, redacted, findings)
        pos = line_end
    if pos < len(buf):
        out.append(view[pos:])
    return out
