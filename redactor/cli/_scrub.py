"""``redactor scrub``: redact newline-delimited text from stdin (or files) to stdout.

Exactly one output line per input line, streaming with memory bounded by the chunk size plus
the longest line. Bytes that are not valid UTF-8 pass through unchanged outside of findings.
"""

from __future__ import annotations

import argparse
import collections
import io
import mmap
import os
import stat
import struct
import sys
import time
from collections.abc import Callable, Iterator
from typing import BinaryIO, cast

from redactor.cli._common import add_engine_options, engine_from_args
from redactor.engine import Finding, Redactor
from redactor.engine.interface import RedactorError
from redactor.engine.stream import Edit, apply_edits, redact_edits

CHUNK_BYTES = 1 << 19  # also a worker's unit of work: a 1 MB input already splits in two


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


# -- reading: chunks of complete lines, straight into shared memory -----------------------------


def _is_regular_file(stream: BinaryIO) -> bool:
    try:
        return stat.S_ISREG(os.fstat(stream.fileno()).st_mode)
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        return False

# A slot holds one chunk: the partial line carried over from the previous block, then a block.
# Lines longer than about three blocks do not fit; they are redacted here, one at a time.
SLOT_BYTES = 4 * CHUNK_BYTES
# How long a short chunk from a pipe waits for more input before it is redacted on its own.
STREAM_WAIT_S = 0.01


class _Reader:
    """Cuts a stream into chunks of complete lines, each read straight into a slot of ``buf``;
    a final line without newline comes last. A chunk too long for a slot (a line of more than
    about three chunks) comes back as bytes of its own."""

    def __init__(self, stream: BinaryIO, buf: mmap.mmap) -> None:
        self._stream = stream
        buffered = cast(io.BufferedIOBase, stream)  # what open() and stdin give
        # readinto1 returns what one read gives: a file's whole block, but on a pipe whatever
        # has arrived, so a slow producer's lines are redacted as they come.
        self._readinto = getattr(buffered, "readinto1", buffered.readinto)
        self._buf = buf
        self._view = memoryview(buf)
        self._carry = b""
        self.done = False
        #: Not a regular file (a pipe, a terminal): lines may trickle in.
        self.streaming = not _is_regular_file(stream)

    def read(self, offset: int) -> int | bytes:
        """The next chunk: its length at ``offset`` in the buffer, or its bytes; 0 at the end."""
        if self.done:
            return 0
        buf, view = self._buf, self._view
        size = len(self._carry)
        view[offset : offset + size] = self._carry
        self._carry = b""
        while size + CHUNK_BYTES <= SLOT_BYTES:
            start = offset + size
            got = self._readinto(view[start : start + CHUNK_BYTES])
            if not got:
                self.done = True
                return size
            size += got
            if self.streaming and size < CHUNK_BYTES and self._more_waiting():
                continue  # a fast producer: fill the chunk before handing it on
            cut = buf.rfind(b"\n", offset, offset + size)
            if cut >= 0:
                self._carry = buf[cut + 1 : offset + size]
                return cut + 1 - offset
        return self._long_line(bytearray(view[offset : offset + size]))

    def _more_waiting(self) -> bool:
        """Whether more input arrives within a few milliseconds: a producer writing as fast
        as the pipe drains refills it sooner; lines trickling in wait no longer than that."""
        import select

        try:
            return bool(select.select([self._stream], [], [], STREAM_WAIT_S)[0])
        except (OSError, ValueError):  # not selectable: read on as for a file
            return True

    def _long_line(self, chunk: bytearray) -> bytes:
        while block := self._stream.read(CHUNK_BYTES):
            cut = block.rfind(b"\n")
            if cut >= 0:
                chunk += block[: cut + 1]
                self._carry = block[cut + 1 :]
                return bytes(chunk)
            chunk += block
        self.done = True
        return bytes(chunk)


# -- redacting chunks, in this process or in forked workers -------------------------------------

# (trace id, redacted line, findings) for each line that had findings
Records = list[tuple[str | None, bytes, list[Finding]]]
# What redacting one chunk yields: its edits, its records, values failed closed, oversized values
Result = tuple[list[Edit], Records, int, int]

_TASK = struct.Struct("=QQQ")  # chunk number, offset in the shared buffer, length
_LENGTH = struct.Struct("=Q")  # of the result that follows, on a result pipe


def _redact(redactor: Redactor, chunk: bytes, trace_id: str | None, keep_findings: bool) -> Result:
    records: Records = []
    before = (redactor.failures, redactor.oversized)
    edits = redact_edits(
        redactor,
        chunk,
        default_trace_id=trace_id,
        on_line=(lambda t, line, f: records.append((t, line, f))) if keep_findings else None,
    )
    return edits, records, redactor.failures - before[0], redactor.oversized - before[1]


class WorkerFailed(RedactorError):
    """A worker process died or could not redact a chunk."""


class _Workers:
    """Processes forked from this one, so they share the loaded rules instead of loading them
    again; each compiles the patterns it meets, in parallel.

    Chunks stay in the shared buffer: a task is the chunk's place in it (a few bytes on one pipe
    that every worker reads from, so an idle worker takes the next chunk) and a result is the
    chunk's edits, on a pipe per worker. Tasks are smaller than the pipe's atomic write size,
    and only a few are in flight, so writing one never blocks.
    """

    def __init__(self, jobs: int, work: Callable[[bytes], Result], buf: mmap.mmap) -> None:
        self._pids: dict[int, int] = {}  # result pipe -> worker pid
        tasks_r, self._tasks = os.pipe()
        try:
            for _ in range(jobs):
                result_r, result_w = os.pipe()
                pid = os.fork()
                if pid == 0:  # pragma: no cover - runs in the child, which never returns
                    code = 1
                    try:
                        code = _serve(tasks_r, result_w, work, buf)
                    finally:
                        os._exit(code)
                os.close(result_w)
                self._pids[result_r] = pid
        except BaseException:
            self.close(abort=True)
            raise
        finally:
            os.close(tasks_r)

    def submit(self, seq: int, offset: int, length: int) -> None:
        try:
            os.write(self._tasks, _TASK.pack(seq, offset, length))
        except BrokenPipeError:  # every worker is gone: say why, not "broken pipe"
            self.collect({}, block=True)
            raise WorkerFailed("the scrub workers exited") from None

    def collect(self, results: dict[int, Result], block: bool) -> None:
        """Adds the results that are ready to ``results``; with ``block``, waits for one."""
        import pickle  # here and below: a run that never forks does without these imports
        import select

        if not self._pids:
            raise WorkerFailed("no scrub worker is left")
        ready, _, _ = select.select(list(self._pids), [], [], None if block else 0)
        for fd in ready:
            header = _read_exactly(fd, _LENGTH.size)
            payload = _read_exactly(fd, _LENGTH.unpack(header)[0]) if header else None
            if not payload:
                raise WorkerFailed(self._exit_reason(fd))
            seq, result, error = pickle.loads(payload)
            if error is not None:
                raise WorkerFailed(f"a scrub worker failed: {error}")
            results[seq] = result

    def _exit_reason(self, fd: int) -> str:
        pid = self._pids.pop(fd)
        os.close(fd)
        _, status = os.waitpid(pid, 0)
        if os.WIFSIGNALED(status):
            return f"a scrub worker was killed by signal {os.WTERMSIG(status)}"
        return f"a scrub worker exited with status {os.waitstatus_to_exitcode(status)}"

    def close(self, abort: bool) -> None:
        """Workers exit when the task pipe closes, once idle; ``abort`` kills them first."""
        import signal

        if self._tasks >= 0:
            os.close(self._tasks)
            self._tasks = -1
        for fd, pid in list(self._pids.items()):
            if abort:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            os.close(fd)
            os.waitpid(pid, 0)
        self._pids.clear()


def _serve(tasks: int, results: int, work: Callable[[bytes], Result], buf: mmap.mmap) -> int:
    """A worker's loop: the exit status once the task pipe closes or a chunk fails."""
    import pickle
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles ^C and ends its workers
    # Hold nothing open that others wait on: not stdout (a reader waits for its end), not the
    # write end of a pipe being read, not the other workers' pipes.
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    try:
        open_fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:  # no /proc: every descriptor up to a sane limit
        open_fds = list(range(3, min(os.sysconf("SC_OPEN_MAX"), 1 << 16)))
    for fd in open_fds:
        if fd > 2 and fd not in (tasks, results):
            try:
                os.close(fd)
            except OSError:
                pass  # not open (or the listing's own descriptor, already closed)
    failed = False
    while not failed and len(task := os.read(tasks, _TASK.size)) == _TASK.size:
        seq, offset, length = _TASK.unpack(task)
        try:
            reply = pickle.dumps((seq, work(buf[offset : offset + length]), None), protocol=5)
        except BaseException as exc:
            failed = True  # and only its type is told: a message may quote the input
            reply = pickle.dumps((seq, None, type(exc).__name__))
        _write_all(results, _LENGTH.pack(len(reply)))
        _write_all(results, reply)
    return 1 if failed else 0


def _read_exactly(fd: int, size: int) -> bytearray | None:
    """``size`` bytes from ``fd``, or None at end of file."""
    data = bytearray(size)
    view = memoryview(data)
    got = 0
    while got < size:
        n = os.readv(fd, [view[got:]])
        if n == 0:
            return None
        got += n
    return data


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class _Chunks:
    """Redacts the chunks of a stream, in order, here or (for inputs of more than one chunk) in
    ``jobs`` forked worker processes, started once and kept for the following files.

    At most a few chunks per worker are in flight, so memory stays bounded however large the
    input; a worker's result is only the lines that changed, and this process writes the rest
    straight from the shared buffer.
    """

    def __init__(
        self, redactor: Redactor, jobs: int, trace_id: str | None, keep_findings: bool
    ) -> None:
        self.redactor = redactor
        self.jobs = jobs if jobs > 1 and hasattr(os, "fork") else 1
        self.trace_id = trace_id
        self.keep_findings = keep_findings
        self.failures = self.oversized = 0
        slots = 2 * self.jobs + 1 if self.jobs > 1 else 2
        # Shared with forked workers; pages are only allocated when touched.
        self._buf = mmap.mmap(-1, slots * SLOT_BYTES)
        self._view = memoryview(self._buf)
        self._free = [i * SLOT_BYTES for i in range(slots)]
        self._workers: _Workers | None = None
        self._seq = 0

    def close(self, abort: bool = False) -> None:
        if self._workers is not None:
            self._workers.close(abort)
            self._workers = None

    def run(self, stream: BinaryIO) -> Iterator[tuple[list[bytes | memoryview], Records, int]]:
        """(output pieces, records, input size) per chunk, in input order. The pieces are valid
        until the next item is asked for."""
        reader = _Reader(stream, self._buf)
        ahead: list[tuple[int, int | bytes]] = []  # read, not yet submitted: (slot, chunk)
        if self._workers is None:
            # Workers pay off from a second chunk on: read that far before forking. A stream
            # whose first chunk came short is a slow producer: waiting for a second chunk would
            # hold back lines already here, and one process keeps up with it.
            for _ in range(2 if self.jobs > 1 else 1):
                slot = self._free.pop()
                chunk = reader.read(slot)
                ahead.append((slot, chunk))
                if reader.streaming and isinstance(chunk, int) and chunk < CHUNK_BYTES // 2:
                    break
            if self.jobs > 1 and len(ahead) == 2 and ahead[-1][1]:
                try:
                    self.redactor.scanner.prepare_chunks()  # loaded once, shared by the workers
                    self._workers = _Workers(self.jobs, self._work, self._buf)
                except OSError:  # no fork (process or memory limits): carry on here
                    self.jobs = 1
        if self._workers is None:
            yield from self._here(reader, ahead)
        else:
            yield from self._parallel(reader, ahead)

    def _work(self, chunk: bytes) -> Result:
        return _redact(self.redactor, chunk, self.trace_id, self.keep_findings)

    def _here(
        self, reader: _Reader, ahead: list[tuple[int, int | bytes]]
    ) -> Iterator[tuple[list[bytes | memoryview], Records, int]]:
        for slot, chunk in ahead:
            if chunk:
                yield self._redact_here(slot, chunk)
            self._free.append(slot)
        slot = self._free.pop()
        while chunk := reader.read(slot):
            yield self._redact_here(slot, chunk)
        self._free.append(slot)

    def _redact_here(
        self, slot: int, chunk: int | bytes
    ) -> tuple[list[bytes | memoryview], Records, int]:
        data = chunk if isinstance(chunk, bytes) else self._buf[slot : slot + chunk]
        return self._output(data, self._account(self._work(data)), len(data))

    def _parallel(
        self, reader: _Reader, ahead: list[tuple[int, int | bytes]]
    ) -> Iterator[tuple[list[bytes | memoryview], Records, int]]:
        workers = self._workers
        assert workers is not None
        # In input order: (chunk number, slot or -1, chunk length or the bytes of a long one)
        queue: collections.deque[tuple[int, int, int | bytes]] = collections.deque()
        results: dict[int, Result] = {}
        ahead.reverse()
        while True:
            if ahead or (self._free and not reader.done):
                if ahead:
                    slot, chunk = ahead.pop()
                else:
                    slot = self._free.pop()
                    chunk = reader.read(slot)
                if isinstance(chunk, bytes) or not chunk:
                    self._free.append(slot)
                    slot = -1
                if chunk:
                    seq = self._seq
                    self._seq += 1
                    queue.append((seq, slot, chunk))
                    if isinstance(chunk, bytes):  # a line longer than a slot: rare, done here
                        results[seq] = self._work(chunk)
                    else:
                        workers.submit(seq, slot, chunk)
                    workers.collect(results, block=False)
            elif queue:
                if queue[0][0] not in results:
                    workers.collect(results, block=True)
            else:
                return
            while queue and queue[0][0] in results:
                seq, slot, chunk = queue.popleft()
                result = self._account(results.pop(seq))
                if isinstance(chunk, bytes):
                    yield self._output(chunk, result, len(chunk))
                else:
                    yield self._output(self._view[slot : slot + chunk], result, chunk)
                    self._free.append(slot)

    def _account(self, result: Result) -> tuple[list[Edit], Records]:
        edits, records, failures, oversized = result
        self.failures += failures
        self.oversized += oversized
        return edits, records

    @staticmethod
    def _output(
        data: bytes | memoryview, result: tuple[list[Edit], Records], size: int
    ) -> tuple[list[bytes | memoryview], Records, int]:
        edits, records = result
        return apply_edits(data, edits), records, size


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
            streaming = not _is_regular_file(stream)
            try:
                for pieces, records, size in processor.run(stream):
                    out.write(pieces[0] if len(pieces) == 1 else b"".join(pieces))
                    if streaming:
                        out.flush()  # lines arriving one by one leave one by one
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
    except BaseException:
        processor.close(abort=True)
        raise
    finally:
        processor.close()
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
