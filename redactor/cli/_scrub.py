"""``redactor scrub``: redact newline-delimited text from stdin (or files) to stdout.

Exactly one output line per input line, streaming with memory bounded by the chunk size plus
the longest line. Bytes that are not valid UTF-8 pass through unchanged outside of findings.
"""

from __future__ import annotations

import argparse
import collections
import itertools
import os
import sys
import time
from collections.abc import Iterator
from typing import Any, BinaryIO

from redactor.cli._common import add_engine_options, engine_from_args
from redactor.engine import Finding, Redactor
from redactor.engine.stream import redact_chunk

CHUNK_BYTES = 1 << 20  # also the unit of work of one worker process


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("scrub", help="redact lines from stdin (or files) to stdout")
    parser.add_argument(
        "files", nargs="*", metavar="FILE", help="read these instead of stdin ('-' is stdin)"
    )
    add_engine_options(parser)
    parser.add_argument(
        "--vault",
        metavar="URL",
        help="store sealed originals here (sqlite:///…, redis://…, redis+cluster://…)",
    )
    parser.add_argument(
        "--no-vault",
        action="store_true",
        help="do not store originals even if a default vault exists",
    )
    parser.add_argument(
        "--trace-id", metavar="ID", help="trace id for lines that carry none of their own"
    )
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress on stderr (default: when stderr is a terminal and input is a file)",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=0,
        metavar="N",
        help="worker processes for inputs larger than one chunk (default: one per CPU, at most 4)",
    )
    parser.set_defaults(func=run)


def _chunks(stream: BinaryIO) -> Iterator[bytes]:
    """Blocks of complete lines; a final line without newline comes last."""
    carry = b""
    while True:
        block = stream.read(CHUNK_BYTES)
        if not block:
            if carry:
                yield carry
            return
        cut = block.rfind(b"\n")
        if cut < 0:
            carry += block
            continue
        yield carry + block[: cut + 1]
        carry = block[cut + 1 :]


class _Progress:
    def __init__(self, total_bytes: int | None) -> None:
        self.total = total_bytes
        self.done = 0
        self.started = self.last = time.monotonic()

    def advance(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if now - self.last >= 0.25:
            self.last = now
            self.show()

    def show(self, final: bool = False) -> None:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = self.done / elapsed / 1e6
        pct = f"{100 * self.done / self.total:5.1f}% " if self.total else ""
        sys.stderr.write(f"\rscrub: {pct}{self.done / 1e6:,.1f} MB  {rate:,.1f} MB/s")
        if final:
            sys.stderr.write("\n")
        sys.stderr.flush()


# -- chunk processing, in this process or in forked workers -------------------------------------

# (trace id, redacted line, findings) for each line that had findings
Records = list[tuple[str | None, bytes, list[Finding]]]

_worker_redactor: Redactor | None = None  # set in the parent before forking workers


def _redact(
    redactor: Redactor, chunk: bytes, trace_id: str | None, keep_findings: bool
) -> tuple[bytes, Records, int, int]:
    records: Records = []
    before = (redactor.failures, redactor.oversized)
    pieces = redact_chunk(
        redactor,
        chunk,
        default_trace_id=trace_id,
        on_line=(lambda t, line, f: records.append((t, line, f))) if keep_findings else None,
    )
    return b"".join(pieces), records, redactor.failures - before[0], redactor.oversized - before[1]


def _can_fork() -> bool:
    # Imported here: multiprocessing costs a short run several milliseconds of start-up.
    import multiprocessing

    return "fork" in multiprocessing.get_all_start_methods()


def _redact_in_worker(
    chunk: bytes, trace_id: str | None, keep_findings: bool
) -> tuple[bytes, Records, int, int]:
    assert _worker_redactor is not None
    return _redact(_worker_redactor, chunk, trace_id, keep_findings)


class _Chunks:
    """Redacts a stream of chunks, in order, with at most ``jobs`` worker processes.

    Workers are forked from this process, so they share the loaded rules instead of loading
    them again; each compiles the patterns it meets, in parallel, which costs less wall time
    than compiling all of them here first. At most two chunks per worker are in flight, so
    memory stays bounded however large the input.
    """

    def __init__(
        self, redactor: Redactor, jobs: int, trace_id: str | None, keep_findings: bool
    ) -> None:
        self.redactor = redactor
        self.jobs = jobs
        self.trace_id = trace_id
        self.keep_findings = keep_findings
        self.failures = self.oversized = 0
        self._pool: Any = None

    def run(self, chunks: Iterator[bytes]) -> Iterator[tuple[bytes, Records, int]]:
        """(output, records, input size) per chunk, in input order."""
        first = next(chunks, None)
        if first is None:
            return
        second = next(chunks, None)
        if second is None or self.jobs <= 1 or not _can_fork():
            for chunk in (first, second, *chunks) if second is not None else (first,):
                yield self._account(
                    _redact(self.redactor, chunk, self.trace_id, self.keep_findings), len(chunk)
                )
            return
        yield from self._parallel(itertools.chain((first, second), chunks))

    def _parallel(self, chunks: Iterator[bytes]) -> Iterator[tuple[bytes, Records, int]]:
        import multiprocessing

        global _worker_redactor
        _worker_redactor = self.redactor
        pending: collections.deque[tuple[Any, int]] = collections.deque()
        with multiprocessing.get_context("fork").Pool(self.jobs) as pool:
            for chunk in chunks:
                pending.append(
                    (
                        pool.apply_async(
                            _redact_in_worker, (chunk, self.trace_id, self.keep_findings)
                        ),
                        len(chunk),
                    )
                )
                if len(pending) >= 2 * self.jobs:
                    result, size = pending.popleft()
                    yield self._account(result.get(), size)
            while pending:
                result, size = pending.popleft()
                yield self._account(result.get(), size)

    def _account(
        self, result: tuple[bytes, Records, int, int], size: int
    ) -> tuple[bytes, Records, int]:
        out, records, failures, oversized = result
        self.failures += failures
        self.oversized += oversized
        return out, records, size


def run(args: argparse.Namespace) -> int:
    settings, redactor = engine_from_args(args, vault_url=args.vault)
    writer = None
    if not args.no_vault:
        from redactor.vault import open_writer  # the vault is optional for scrubbing

        writer = open_writer(settings, args.vault)
    jobs = args.jobs if args.jobs > 0 else min(os.cpu_count() or 1, 4)
    processor = _Chunks(redactor, jobs, args.trace_id, keep_findings=writer is not None)

    sources = args.files or ["-"]
    out = sys.stdout.buffer
    status = 0
    try:
        for name in sources:
            stream: BinaryIO
            if name == "-":
                stream, total = sys.stdin.buffer, None
            else:
                try:
                    stream = open(name, "rb")  # noqa: SIM115 - closed below
                except OSError as exc:
                    print(f"redactor scrub: cannot read {name}: {exc.strerror}", file=sys.stderr)
                    status = 1
                    continue
                total = os.fstat(stream.fileno()).st_size
            show = (
                args.progress
                if args.progress is not None
                else (sys.stderr.isatty() and name != "-")
            )
            progress = _Progress(total) if show else None
            try:
                for redacted, records, size in processor.run(_chunks(stream)):
                    out.write(redacted)
                    if writer is not None:
                        for trace_id, line, findings in records:
                            writer.submit(
                                trace_id, "scrub", line.decode("utf-8", "surrogateescape"), findings
                            )
                    if progress:
                        progress.advance(size)
            finally:
                if stream is not sys.stdin.buffer:
                    stream.close()
            if progress:
                progress.show(final=True)
        out.flush()
    finally:
        if writer is not None:
            writer.shutdown()
            stats = writer.stats()
            if stats.get("dropped") or stats.get("errors"):
                print(
                    f"redactor scrub: vault: {stats.get('dropped', 0)} originals dropped, "
                    f"{stats.get('errors', 0)} write errors",
                    file=sys.stderr,
                )
    if processor.failures or processor.oversized:
        print(
            f"redactor scrub: {processor.failures} values failed closed, "
            f"{processor.oversized} oversized values replaced",
            file=sys.stderr,
        )
    return status
