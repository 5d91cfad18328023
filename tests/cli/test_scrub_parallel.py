"""``redactor scrub`` over inputs of several chunks, where forked workers redact them: the very
bytes and vault records of one pass in one process, in input order, from files and from pipes;
a worker that dies or fails ends the run with an error (no hang, no original in the message)."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from redactor import create_redactor
from redactor.cli import _scrub
from redactor.engine import Redactor
from redactor.engine.stream import redact_chunk
from redactor.settings import resolve_settings
from redactor.testing import find_leaks

CARD = "4111111111111111"
PASSWORD = "Zq8vN2pLx4Rt"
TRACE = "0af7651916cd43dd8448eb211c80319c"


def _input() -> bytes:
    """About 4.5 MB: mostly clean lines, secrets here and there (some lines carrying their own
    trace id), NUL bytes, invalid UTF-8, CRLF, a line longer than a chunk slot, and a last
    line without newline."""
    rng = random.Random(11)
    lines: list[bytes] = []
    for i in range(26_000):
        kind = i % 97
        if kind == 5:
            lines.append(f"charge ok card={CARD} order={i}".encode())
        elif kind == 17:
            trace = f"{rng.getrandbits(128):032x}"
            lines.append(f'{{"msg":"login","password":"{PASSWORD}","trace_id":"{trace}"}}'.encode())
        elif kind == 33:
            lines.append(b"bin \x00\xff\xfe\xc3( password=" + PASSWORD.encode() + b"\r")
        else:
            lines.append(
                f"2024-05-07T06:00:{i % 60:02d}Z INFO request ok path=/api/v1/items/{i} "
                f"status=200 duration_ms={rng.randint(1, 900)} user=u{i % 50}".encode()
            )
    long_line = b"x" * (_scrub.SLOT_BYTES + 300_000) + b" card " + CARD.encode()
    lines.insert(9_000, long_line)
    return b"\n".join(lines) + b"\nlast line password=" + PASSWORD.encode()


@pytest.fixture(scope="module")
def data() -> bytes:
    return _input()


@pytest.fixture(scope="module")
def data_file(data: bytes, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("scrub-input") / "input.log"
    path.write_bytes(data)
    return path


@pytest.fixture(scope="module")
def redactor(tmp_path_factory: pytest.TempPathFactory) -> Redactor:
    home = tmp_path_factory.mktemp("redactor-home")
    return create_redactor(resolve_settings(home=home, ref_key=b"p" * 32, environ={}))


@contextlib.contextmanager
def _pipe(data: bytes) -> Iterator[BinaryIO]:
    """A pipe's read end, fed ``data`` by a thread (so it is not seekable and arrives in
    pieces)."""
    read_fd, write_fd = os.pipe()

    def feed() -> None:
        with contextlib.suppress(BrokenPipeError), open(write_fd, "wb") as sink:
            sink.write(data)  # the reader may stop early (a failed run)

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    with open(read_fd, "rb") as source:
        yield source
    feeder.join(5)


@contextlib.contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    def expired(_signum: int, _frame: Any) -> None:
        raise TimeoutError(f"scrub did not finish within {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _scrub_chunks(
    redactor: Redactor, stream: BinaryIO, jobs: int, trace_id: str | None = TRACE
) -> tuple[bytes, list[Any], int, bool]:
    """Output, vault records and bytes read, as ``scrub`` produces them; and whether workers
    were forked."""
    chunks = _scrub._Chunks(redactor, jobs, trace_id, keep_findings=True)
    out: list[bytes] = []
    records: list[Any] = []
    size = 0
    try:
        with _deadline(60):
            for pieces, recs, n in chunks.run(stream):
                out.append(b"".join(pieces))
                records.extend(recs)
                size += n
        forked = chunks._workers is not None
    finally:
        chunks.close(abort=True)
    return b"".join(out), records, size, forked


@pytest.fixture(scope="module")
def one_pass(redactor: Redactor, data: bytes) -> tuple[bytes, list[Any]]:
    """What redacting the whole input as one chunk, in this process, gives."""
    records: list[Any] = []
    pieces = redact_chunk(
        redactor, data, default_trace_id=TRACE, on_line=lambda *r: records.append(r)
    )
    return b"".join(pieces), records


@pytest.mark.parametrize("source", ["file", "pipe"])
@pytest.mark.parametrize("jobs", [1, 2, 3])
def test_chunks_give_one_pass_output_and_records(
    redactor: Redactor,
    data: bytes,
    data_file: Path,
    one_pass: tuple[bytes, list[Any]],
    source: str,
    jobs: int,
) -> None:
    expected, expected_records = one_pass
    assert expected.count(b"\n") == data.count(b"\n")
    if source == "file":
        with data_file.open("rb") as stream:
            out, records, size, forked = _scrub_chunks(redactor, stream, jobs)
    else:
        with _pipe(data) as stream:
            out, records, size, forked = _scrub_chunks(redactor, stream, jobs)
    assert forked == (jobs > 1)
    assert size == len(data)
    assert out == expected
    # Same findings (originals included), same trace ids, same order.
    assert len(records) > 500
    assert records == expected_records
    assert not find_leaks(out, [CARD, PASSWORD])


def test_workers_serve_the_following_inputs(
    redactor: Redactor, data_file: Path, one_pass: tuple[bytes, list[Any]]
) -> None:
    chunks = _scrub._Chunks(redactor, 2, TRACE, keep_findings=True)
    try:
        with _deadline(60):
            workers = None
            for _ in range(2):
                out, records = [], []
                with data_file.open("rb") as stream:
                    for pieces, recs, _ in chunks.run(stream):
                        out.append(b"".join(pieces))  # pieces are only valid until the next
                        records.extend(recs)
                assert (b"".join(out), records) == one_pass
                assert chunks._workers is not None
                assert workers in (None, chunks._workers), "workers were started again"
                workers = chunks._workers
            with _pipe(b"short password=" + PASSWORD.encode() + b"\n") as stream:
                got = [(b"".join(pieces), recs) for pieces, recs, _ in chunks.run(stream)]
            assert chunks._workers is workers
            ((out_short, recs_short),) = got
            assert PASSWORD.encode() not in out_short and len(recs_short) == 1
    finally:
        chunks.close()


def test_a_worker_that_dies_fails_the_run(
    redactor: Redactor, data: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    parent = os.getpid()
    real = redactor.redact_line

    def dies(line: bytes, *args: Any, **kwargs: Any) -> bytes:
        if os.getpid() != parent and b"order=4" in line:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(line, *args, **kwargs)

    monkeypatch.setattr(redactor, "redact_line", dies)
    with _pipe(data) as stream, pytest.raises(_scrub.WorkerFailed, match="signal 9"):
        _scrub_chunks(redactor, stream, 2)


def test_a_worker_error_names_its_type_only(
    redactor: Redactor, data: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    parent = os.getpid()
    real = redactor.redact_line

    def fails(line: bytes, *args: Any, **kwargs: Any) -> bytes:
        if os.getpid() != parent and PASSWORD.encode() in line:
            raise ValueError(f"cannot redact {line!r}")
        return real(line, *args, **kwargs)

    monkeypatch.setattr(redactor, "redact_line", fails)
    with _pipe(data) as stream, pytest.raises(_scrub.WorkerFailed) as failed:
        _scrub_chunks(redactor, stream, 2)
    assert str(failed.value) == "a scrub worker failed: ValueError"


# -- the command, as a subprocess ---------------------------------------------------------------


def _run(
    env: dict[str, str], *args: str, data: bytes = b"", code: str | None = None
) -> subprocess.CompletedProcess[bytes]:
    launcher = ["-c", code] if code else ["-m", "redactor"]
    return subprocess.run(
        [sys.executable, *launcher, "scrub", "--no-vault", *args],
        input=data,
        capture_output=True,
        env=env,
        timeout=60,
    )


def test_command_parallel_matches_one_process(
    env: dict[str, str], data: bytes, data_file: Path
) -> None:
    one = _run(env, "--jobs", "1", str(data_file))
    assert one.returncode == 0, one.stderr.decode()[-2000:]
    assert one.stdout.count(b"\n") == data.count(b"\n")
    assert not find_leaks(one.stdout, [CARD, PASSWORD])
    from_file = _run(env, "--jobs", "2", "--progress", str(data_file))
    assert from_file.returncode == 0, from_file.stderr.decode()[-2000:]
    assert from_file.stdout == one.stdout
    assert "scrub: 100.0% " in from_file.stderr.decode()
    # Files one after the other, each redacted on its own; the workers serve them all.
    from_pipe = _run(env, "--jobs", "3", "-", str(data_file), data=data)
    assert from_pipe.returncode == 0, from_pipe.stderr.decode()[-2000:]
    assert from_pipe.stdout == one.stdout + one.stdout


_FAULTY = """
import os, signal, sys
from redactor.engine import core
real = core.Redactor.redact_line
def faulty(self, line, *args, **kwargs):
    if b"order=4" in line and os.environ["FAULT"] in line.decode("utf-8", "replace"):
        if os.environ["FAULT"] == "4111111111111111":
            raise ValueError(line)
        os.kill(os.getpid(), signal.SIGKILL)
    return real(self, line, *args, **kwargs)
core.Redactor.redact_line = faulty
from redactor.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize(
    ("fault", "message"),
    [(CARD, "a scrub worker failed: ValueError"), ("order=4", "killed by signal 9")],
    ids=["error", "killed"],
)
def test_command_worker_failure_is_a_clean_error(
    env: dict[str, str], data_file: Path, fault: str, message: str
) -> None:
    done = _run({**env, "FAULT": fault}, "--jobs", "2", str(data_file), code=_FAULTY)
    err = done.stderr.decode()
    assert done.returncode == 2, err[-2000:]
    assert err.startswith("redactor: error: ") and message in err, err[-2000:]
    assert "Traceback" not in err and CARD not in err and PASSWORD not in err


def test_lines_from_a_slow_pipe_come_out_as_they_arrive(
    start_scrub: Callable[[], subprocess.Popen[bytes]],
) -> None:
    # `tail -f app.log | redactor scrub`: each line is redacted and written when it arrives,
    # not when a chunk's worth has piled up, while the input stays open.
    import select

    proc = start_scrub()
    assert proc.stdin is not None and proc.stdout is not None
    try:
        for i in range(3):
            proc.stdin.write(f"charge ok card={CARD} n={i}\n".encode())
            proc.stdin.flush()
            ready, _, _ = select.select([proc.stdout], [], [], 20)
            assert ready, f"line {i} did not come out while the input stayed open"
            line = proc.stdout.readline()
            assert line.startswith(b"charge ok card=[card:") and line.endswith(f" n={i}\n".encode())
        proc.stdin.close()
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
