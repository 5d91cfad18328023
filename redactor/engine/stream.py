"""Redacting newline-delimited text in large chunks (what ``redactor scrub`` runs on).

Stage 1 runs over a whole chunk at once and reports the lines that hold a trigger, with the
triggers each holds; the clean stretches between them are passed through as slices, never
decoded. Only dirty lines are decoded and go through stage 2, which skips stage 1 since it
already knows their triggers. On mostly clean logs this costs about one Hyperscan pass.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

from redactor.engine.core import LazyTraceId, Redactor
from redactor.engine.interface import Finding
from redactor.engine.masks import FAILED_PLACEHOLDER

# A JSON/logfmt line's own trace id wins over the caller's default. The pattern starts at the
# key's name, not at an optional quote before it: the search can then skip to the names'
# first letters (2.6x faster on the corpus's lines) and finds the same ids.
_TRACE_ID_RE = re.compile(
    rb"""(?:trace_?id|traceId|trace\.id|otelTraceID|logging\.googleapis\.com/trace)["']?\s*[:=]\s*["']?(?:projects/[^/"']+/traces/)?([0-9a-fA-F]{32})(?![0-9a-fA-F])"""
)

OnLine = Callable[[str | None, bytes, list[Finding]], None]

# A PEM private key printed over several lines: its BEGIN line opens a block whose body lines
# hold nothing stage 1 could see. Each line may carry a prefix of its own (docker compose's
# "app-1  | ", journald's "host app[812]: ", a timestamp), so the key is put back together
# from the block's parts -- the BEGIN marker, each body line's trailing base64 run, the END
# marker -- and redacted as one value; every line of the block then keeps its own prefix and
# gets the key's placeholder in place of its part.
_PEM_OPEN = re.compile(rb"-{3,5} ?BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)? ?-{3,5}")
_PEM_CLOSE = re.compile(rb"-{3,5} ?END [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)? ?-{3,5}")
# A body line ends in a run of base64 (64 characters from OpenSSL, 70 from OpenSSH, the last
# line shorter); legacy encrypted keys add "Proc-Type:" and "DEK-Info:" header lines, PGP keys
# "Version:" and "Comment:". A run shorter than _PEM_MIN_RUN counts only on the line right
# before END. Runs are measured with bytes.strip, not a regex search, which would be
# quadratic on a long line of letters.
_BASE64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_PEM_HEADERS = (b"Proc-Type: ", b"DEK-Info: ", b"Version: ", b"Comment: ")
_PEM_MIN_RUN = 16
_PEM_MAX_LINES = 256  # a 16384-bit RSA key is about 210 lines of 64; 4096-bit about 50


def line_trace_id(line: bytes, default: str | None) -> str | None:
    """The trace id a line carries itself (32 hex chars, lowercased), else ``default``."""
    if b"race" not in line:  # every key the pattern knows has it; far cheaper than a search
        return default
    m = _TRACE_ID_RE.search(line)
    return m.group(1).decode().lower() if m else default


# (line start, line end, replacement) for a line that redaction changed
Edit = tuple[int, int, bytes]


def redact_edits(
    redactor: Redactor,
    buf: bytes,
    *,
    default_trace_id: str | None = None,
    on_line: OnLine | None = None,
) -> list[Edit]:
    """The lines of ``buf`` that redaction changes, in order, as edits; the bytes between
    them pass through unchanged. On mostly clean input the edits are far smaller than the
    chunk, so they are what a worker process sends back.

    ``on_line(trace_id, redacted_line, findings)`` is called for each line that had findings.
    """
    edits: list[Edit] = []
    redact_line = redactor.redact_line
    done_to = -1  # the end of the last line handled: a PEM block's lines are handled at once
    for line_start, line_end, triggered in redactor.scanner.dirty_lines(buf):
        if line_start <= done_to:
            continue
        line = buf[line_start:line_end]
        if b"PRIVATE KEY" in line:
            # An END line whose key began before the chunk looks back to the last edit, also
            # over a body line that some trigger fired on but that redaction left as it was
            # (the edits stay in order and never overlap).
            edited_to = edits[-1][1] if edits else -1
            block = _pem_block(buf, line_start, line_end, edited_to)
            if block is not None:
                done_to = block[1]
                edits.append(_redact_pem_block(redactor, buf, *block, default_trace_id, on_line))
                continue
        done_to = line_end
        # Looked up only if the line has a finding (refs are keyed by it).
        trace_id = LazyTraceId(functools.partial(line_trace_id, line, default_trace_id))
        findings: list[Finding] | None = [] if on_line is not None else None
        redacted = redact_line(line, triggered, trace_id=trace_id, findings=findings)
        if b"\n" in redacted:  # never split one input line into two output lines
            redacted = redacted.replace(b"\n", b"\\n")
        if redacted != line:
            edits.append((line_start, line_end, redacted))
        if findings and on_line is not None:
            on_line(trace_id.get(), redacted, findings)
    return edits


def _pem_block(buf: bytes, line_start: int, line_end: int, floor: int) -> tuple[int, int] | None:
    """The lines of a PEM private key printed over several lines, as (start, end) in ``buf``,
    when the line at ``line_start`` opens or closes one; else None.

    From a BEGIN line the block runs to its END line or, without one (a truncated log, the
    end of a chunk), to its last body line. From an END line whose BEGIN is not in ``buf``
    (the chunk began inside the key) it runs back over the body lines after ``floor``.
    At most ``_PEM_MAX_LINES`` lines either way.
    """
    opened = _PEM_OPEN.search(buf, line_start, line_end)
    if opened is not None:
        if _PEM_CLOSE.search(buf, opened.end(), line_end):
            return None  # the whole key is on this line
        if buf.find(b"\\n", opened.end(), line_end) >= 0:
            return None  # written with escaped newlines: a key on this line alone, cut short
        end = _body_end(buf, line_end)
        return None if end is None else (line_start, end)
    if _PEM_CLOSE.search(buf, line_start, line_end) is None:
        return None
    start = None
    pos = line_start
    for _ in range(_PEM_MAX_LINES):
        if pos - 1 <= floor:
            break
        previous = max(buf.rfind(b"\n", 0, pos - 1) + 1, floor + 1)
        run = len(_key_part(buf[previous : pos - 1], first=False)[1])
        if run == 0 or (run < _PEM_MIN_RUN and start is not None):  # short: the last line only
            break
        start = pos = previous
    return None if start is None else (start, line_end)


def _body_end(buf: bytes, line_end: int) -> int | None:
    """Where the key whose BEGIN line ends at ``line_end`` ends (None: no body line)."""
    last_body = None
    after_headers = False
    pos = line_end + 1
    for _ in range(_PEM_MAX_LINES):
        if pos > len(buf):
            break
        newline = buf.find(b"\n", pos)
        end = len(buf) if newline < 0 else newline
        if _PEM_CLOSE.search(buf, pos, end):
            return end
        if _PEM_OPEN.search(buf, pos, end):
            break  # another key begins
        _, part, _ = _key_part(buf[pos:end], first=False)
        blank_after_headers = not part and after_headers  # legacy encrypted keys have one
        if not blank_after_headers and (
            not part or (len(part) < _PEM_MIN_RUN and not _closes_next(buf, end))
        ):
            break  # not key material: the key ended on the line before
        after_headers = part.startswith(_PEM_HEADERS)
        last_body = end
        if newline < 0:
            break
        pos = newline + 1
    return last_body


def _closes_next(buf: bytes, line_end: int) -> bool:
    """Whether the line after the one ending at ``line_end`` holds an END marker."""
    start = line_end + 1
    newline = buf.find(b"\n", start)
    return _PEM_CLOSE.search(buf, start, len(buf) if newline < 0 else newline) is not None


def _key_part(line: bytes, first: bool) -> tuple[bytes, bytes, bytes]:
    """A line of a PEM block as (before, its part of the key, after): the BEGIN marker (on
    the ``first`` line) or END marker with any base64 run joined to it, a PEM header to the
    line's end, or the line's trailing base64 run (empty when it has none)."""
    text = line.rstrip(b"\r")
    start, end = 0, len(text)
    marker = _PEM_OPEN.search(text) if first else _PEM_CLOSE.search(text)
    if marker is not None:
        start, end = marker.start(), marker.end()
        if first:
            end = len(text) - len(text[end:].lstrip(_BASE64).lstrip(b"="))
        else:
            start = len(text[:start].rstrip(b"=").rstrip(_BASE64))
    else:
        header = max(text.find(h) for h in _PEM_HEADERS)
        start = header if header >= 0 else len(text.rstrip(b"=").rstrip(_BASE64))
    return line[:start], line[start:end], line[end:]


def _redact_pem_block(
    redactor: Redactor,
    buf: bytes,
    start: int,
    end: int,
    default_trace_id: str | None,
    on_line: OnLine | None,
) -> Edit:
    """Redact the key in the lines ``buf[start:end]`` as one value. The edit keeps their
    number; each line keeps what surrounds its part of the key (redacted as any text) and
    shows the key's placeholder in place of that part."""
    block = buf[start:end]
    parts = [_key_part(line, i == 0) for i, line in enumerate(block.split(b"\n"))]
    key = b"\n".join(part for _, part, _ in parts)
    if not _PEM_OPEN.match(key):  # the chunk began inside the key: its END names the kind
        closed = _PEM_CLOSE.search(key)
        assert closed is not None
        key = closed.group().replace(b"END", b"BEGIN", 1) + b"\n" + key
    trace_id = LazyTraceId(functools.partial(line_trace_id, block, default_trace_id))
    findings: list[Finding] = []
    redacted = redactor.redact_line(key, None, trace_id=trace_id, findings=findings)
    found = next((f for f in findings if f.label == "private_key"), None)
    if found is not None and b"\n" not in redacted:
        mask = found.mask.encode()
    else:  # key material the PEM rule does not take whole (a damaged body) is not let out
        mask = FAILED_PLACEHOLDER.encode()
        findings = []
    lines = []
    for before, _, after in parts:
        before = redactor.redact_line(before, None, trace_id=trace_id, findings=findings)
        after = redactor.redact_line(after, None, trace_id=trace_id, findings=findings)
        lines.append(before + mask + after)
    replacement = b"\n".join(lines)
    if findings and on_line is not None:
        on_line(trace_id.get(), replacement, findings)
    return (start, end, replacement)


def apply_edits(buf: bytes | memoryview, edits: list[Edit]) -> list[bytes | memoryview]:
    """``buf`` with ``edits`` applied, as pieces to join or write (slices of ``buf``)."""
    out: list[bytes | memoryview] = []
    append = out.append  # dense on dirty input: thousands of edits a chunk
    view = memoryview(buf)
    pos = 0
    for start, end, replacement in edits:
        if start > pos:
            append(view[pos:start])
        append(replacement)
        pos = end
    if pos < len(view):
        append(view[pos:])
    return out


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
    edits = redact_edits(redactor, buf, default_trace_id=default_trace_id, on_line=on_line)
    return apply_edits(buf, edits)
