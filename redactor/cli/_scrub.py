"""``redactor scrub``: redact newline-delimited text from stdin (or files) to stdout.

Exactly one output line per input line, streaming with memory bounded by the chunk size plus
the longest line. Bytes that are not valid UTF-8 pass through unchanged outside of findings.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import BinaryIO, Iterator

from redactor.cli._common import add_engine_options, engine_from_args
from redactor.engine import Finding
from redactor.engine.stream import redact_chunk

CHUNK_BYTES = 1 << 20


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("scrub", help="redact lines from stdin (or files) to stdout")
    parser.add_argument("files", nargs="*", metavar="FILE", help="read these instead of stdin ('-' is stdin)")
    add_engine_options(parser)
    parser.add_argument("--vault", metavar="URL", help="store sealed originals here (sqlite:///…, redis://…, redis+cluster://…)")
    parser.add_argument("--no-vault", action="store_true", help="do not store originals even if a default vault exists")
    parser.add_argument("--trace-id", metavar="ID", help="trace id for lines that carry none of their own")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="progress on stderr (default: when stderr is a terminal and input is a file)")
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


def run(args: argparse.Namespace) -> int:
    settings, redactor = engine_from_args(args, vault_url=args.vault)
    writer = None
    if not args.no_vault:
        from redactor.vault import open_writer  # the vault is optional for scrubbing

        writer = open_writer(settings, args.vault)

    def on_line(trace_id: str | None, redacted: bytes, findings: list[Finding]) -> None:
        assert writer is not None
        writer.submit(trace_id, "scrub", redacted.decode("utf-8", "surrogateescape"), findings)

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
            show = args.progress if args.progress is not None else (sys.stderr.isatty() and name != "-")
            progress = _Progress(total) if show else None
            try:
                for chunk in _chunks(stream):
                    pieces = redact_chunk(
                        redactor, chunk, default_trace_id=args.trace_id,
                        on_line=on_line if writer is not None else None,
                    )
                    out.writelines(pieces)
                    if progress:
                        progress.advance(len(chunk))
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
                print(f"redactor scrub: vault: {stats.get('dropped', 0)} originals dropped, {stats.get('errors', 0)} write errors", file=sys.stderr)
    if redactor.failures or redactor.oversized:
        print(f"redactor scrub: {redactor.failures} values failed closed, {redactor.oversized} oversized values replaced", file=sys.stderr)
    return status
