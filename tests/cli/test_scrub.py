"""``redactor scrub`` end to end, as a subprocess: one output line per input line, JSON stays
JSON, packs and rule dirs from the command line, clean errors, bounded memory when streaming.

Every run gets ``REDACTOR_HOME`` in a temporary directory and ``--no-vault``."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from redactor.testing import find_leaks

CARD = "4111111111111111"
PASSWORD = "Zq8vN2pLx4Rt"


def scrub(
    env: dict[str, str], *args: str, data: bytes = b"", timeout: float = 60
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "redactor", "scrub", "--no-vault", *args],
        input=data,
        capture_output=True,
        env=env,
        timeout=timeout,
    )


def _no_leak(out: bytes, originals: list[str]) -> None:
    leaked = find_leaks(out, originals)
    assert not leaked, f"originals {leaked} leaked into scrub's output"


@pytest.mark.parametrize(
    "data",
    [
        b"a\nb\n",
        b"no final newline",
        b"one\n\n\nthree after empties\n",
        b"card " + CARD.encode() + b"\r\nwindows line\r\n\r\nlast password=" + PASSWORD.encode(),
        b"\n",
        b"",
        b"\xff\xfe invalid utf-8\ncard " + CARD.encode() + b" \xc3(\n",
    ],
    ids=[
        "simple",
        "no-final-newline",
        "empty-lines",
        "crlf-and-secrets",
        "only-newline",
        "empty",
        "invalid-utf8",
    ],
)
def test_one_output_line_per_input_line(env: dict[str, str], data: bytes) -> None:
    done = scrub(env, data=data)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    out = done.stdout
    assert out.count(b"\n") == data.count(b"\n"), "line count changed"
    assert out.endswith(b"\n") == data.endswith(b"\n"), "final newline added or dropped"
    assert out.count(b"\r\n") == data.count(b"\r\n"), "CRLF endings changed"
    _no_leak(out, [CARD, PASSWORD])
    for before, after in zip(data.split(b"\n"), out.split(b"\n"), strict=False):
        if CARD.encode() not in before and PASSWORD.encode() not in before:
            assert before == after, "a clean line changed"


def test_json_lines_stay_json(env: dict[str, str]) -> None:
    records = [
        {"msg": f"charging {CARD}", "password": PASSWORD},
        {"log": orjson.dumps({"password": PASSWORD}).decode()},
        {"key": f"-----BEGIN RSA PRIVATE KEY-----\n{PASSWORD * 6}\n-----END RSA PRIVATE KEY-----"},
        {"clean": True, "n": 1},
    ]
    data = b"".join(orjson.dumps(r) + b"\n" for r in records)
    done = scrub(env, data=data)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    lines = done.stdout.splitlines()
    assert len(lines) == len(records)
    for line in lines:
        orjson.loads(line)
    assert lines[-1] == orjson.dumps(records[-1])
    _no_leak(done.stdout, [CARD, PASSWORD])


def test_enable_pii_masks_an_email(env: dict[str, str]) -> None:
    data = b"invite sent to mary.santos89@example.org ok\n"
    off = scrub(env, data=data)
    assert off.stdout == data, "the pii pack is off by default"
    on = scrub(env, "--enable", "pii", data=data)
    assert on.returncode == 0, on.stderr.decode()[-2000:]
    _no_leak(on.stdout, ["mary.santos89"])
    assert on.stdout.count(b"\n") == 1


def test_custom_rules_dir(env: dict[str, str], tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "widgets.toml").write_text(
        '[pack]\nname = "widgets"\n[[rules]]\n'
        'id = "test.widget"\ncategory = "secret"\nlabel = "widget"\n'
        "trigger = 'wdg_'\npattern = '''(?P<secret>wdg_[a-z0-9]{8})'''\n"
    )
    done = scrub(
        env, "--rules", str(rules), data=b"key wdg_a1b2c3d4 and card " + CARD.encode() + b"\n"
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert done.stdout.startswith(b"key [widget#"), "the custom rule did not mask"
    # --rules replaces the shipped packs: the card rule is not loaded.
    assert done.stdout.endswith(b" and card " + CARD.encode() + b"\n")


@pytest.mark.parametrize(
    "args",
    [
        ["--rules", "/nonexistent/rules"],
        ["--config", "/nonexistent/redactor.toml"],
        ["--config", "{bad_config}"],
        ["--enable", "no_such_pack"],
        ["--rules", "{bad_rules}"],
    ],
    ids=["missing-rules-dir", "missing-config", "bad-config", "unknown-pack", "malformed-pack"],
)
def test_configuration_errors_exit_2_with_one_line(
    env: dict[str, str], tmp_path: Path, args: list[str]
) -> None:
    bad_config = tmp_path / "bad.toml"
    bad_config.write_text("[redactor\nref_key = ")
    bad_rules = tmp_path / "badrules"
    bad_rules.mkdir()
    (bad_rules / "broken.toml").write_text(
        '[[rules]]\nid = "x.y"\nlabel = "x"\ncategory = "secret"\ntrigger = "x"\npattern = "("\n'
    )
    args = [a.format(bad_config=bad_config, bad_rules=bad_rules) for a in args]
    done = scrub(env, *args, data=b"card " + CARD.encode() + b"\n")
    err = done.stderr.decode()
    assert done.returncode == 2, err[-2000:]
    assert "Traceback" not in err, err[-2000:]
    assert len(err.strip().splitlines()) == 1, err[-2000:]
    assert err.startswith("redactor: error: ")
    assert done.stdout == b"", "nothing may be written when the engine cannot start"


def test_file_arguments(env: dict[str, str], tmp_path: Path) -> None:
    one = tmp_path / "one.log"
    one.write_bytes(b"card " + CARD.encode() + b"\nclean\n")
    two = tmp_path / "two.log"
    two.write_bytes(b"password=" + PASSWORD.encode())
    done = scrub(env, str(one), "-", str(two), data=b"from stdin\n")
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    lines = done.stdout.split(b"\n")
    assert len(lines) == 4, "file, stdin, file: 3 newlines and a final line without one"
    assert lines[1:3] == [b"clean", b"from stdin"]
    assert lines[3].startswith(b"password=[password#")
    assert lines[0].startswith(b"card [card:")
    _no_leak(done.stdout, [CARD, PASSWORD])


def test_missing_file_exits_1_and_continues(env: dict[str, str], tmp_path: Path) -> None:
    good = tmp_path / "good.log"
    good.write_bytes(b"ok line\n")
    done = scrub(env, str(tmp_path / "nope.log"), str(good))
    err = done.stderr.decode()
    assert done.returncode == 1, err
    assert "nope.log" in err and "Traceback" not in err
    assert done.stdout == b"ok line\n"


def _vm_hwm_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, ValueError):
        return None
    return None


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc for VmHWM")
def test_streaming_50_mb_with_bounded_memory(
    start_scrub: Callable[[], subprocess.Popen[bytes]],
) -> None:
    block = (
        b'{"level":"info","msg":"request ok","trace_id":"4bf92f3577b34da6a3ce929b0e0e4736","path":"/api/v1/items"}\n'  # noqa: E501
        * 60
        + b"login password="
        + PASSWORD.encode()
        + b" card "
        + CARD.encode()
        + b"\n"
    )
    repeats = (50 * 1024 * 1024) // len(block) + 1
    proc = start_scrub()
    counts = {"lines": 0, "leaks": 0, "bytes": 0}

    def feed() -> None:
        assert proc.stdin is not None
        try:
            for _ in range(repeats):
                proc.stdin.write(block)
        finally:
            proc.stdin.close()

    def drain() -> None:
        assert proc.stdout is not None
        tail = b""
        while chunk := proc.stdout.read(1 << 20):
            counts["lines"] += chunk.count(b"\n")
            counts["bytes"] += len(chunk)
            window = tail + chunk
            if find_leaks(window, [CARD, PASSWORD]):
                counts["leaks"] += 1
            tail = chunk[-64:]

    threads = [threading.Thread(target=feed), threading.Thread(target=drain)]
    for t in threads:
        t.start()
    peak = 0
    deadline = time.monotonic() + 100
    while proc.poll() is None and time.monotonic() < deadline:
        peak = max(peak, _vm_hwm_kb(proc.pid) or 0)
        time.sleep(0.05)
    if proc.poll() is None:
        proc.kill()
        pytest.fail("scrub did not finish 50 MB within 100 s")
    for t in threads:
        t.join()
    assert proc.returncode == 0, proc.stderr.read().decode()[-2000:]
    assert counts["lines"] == repeats * block.count(b"\n"), "line count changed"
    assert counts["leaks"] == 0, "a secret survived in the stream"
    assert peak > 0, "could not read VmHWM"
    assert peak < 300 * 1024, f"peak RSS {peak // 1024} MB while streaming 50 MB"
