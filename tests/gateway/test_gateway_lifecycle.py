"""``redactor gateway`` as a subprocess: starts from the CLI, serves, and on SIGTERM finishes
the request in flight, flushes the vault and exits 0; its own logs carry no payload values."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from redactor.testing import assert_no_leak
from redactor.vault import open_reader

from .conftest import SECRETS, vault_originals
from .test_gateway_wire import dirty_logs


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_healthy(port: int, proc: subprocess.Popen[bytes], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, "gateway exited during start-up"
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("gateway did not become healthy")


def test_cli_gateway_drains_on_sigterm(home: Path, settings: Any, tmp_path: Path) -> None:
    http_port, grpc_port = _free_port(), _free_port()
    out = tmp_path / "out.jsonl"
    env = {**os.environ, "REDACTOR_HOME": str(home)}
    env.pop("REDACTOR_CONFIG", None)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "redactor",
            "gateway",
            "--http",
            f"127.0.0.1:{http_port}",
            "--grpc",
            f"127.0.0.1:{grpc_port}",
            "--output",
            str(out),
            "--log-level",
            "DEBUG",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_healthy(http_port, proc)
        trace = os.urandom(16)
        body = dirty_logs(trace).SerializeToString()
        results: list[int] = []
        # Every sender is connected before the signal: on a loaded machine a thread that
        # started late would otherwise meet a listener already closed (connection refused),
        # which is not what this test is about.
        connected = threading.Barrier(9, timeout=10)

        def send() -> None:
            conn = http.client.HTTPConnection("127.0.0.1", http_port, timeout=10)
            conn.connect()
            connected.wait()
            conn.request("POST", "/v1/logs", body=body,
                         headers={"Content-Type": "application/x-protobuf"})  # fmt: skip
            results.append(conn.getresponse().status)

        senders = [threading.Thread(target=send) for _ in range(8)]
        for thread in senders:
            thread.start()
        connected.wait()
        time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        for thread in senders:
            thread.join(10)
        stdout, stderr = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    # Every request either got through before the drain or was told to retry.
    assert len(results) == 8 and set(results) <= {200, 503}
    assert results.count(200) == len(out.read_bytes().splitlines())
    print("statuses:", sorted(results))
    assert_no_leak(out.read_bytes(), SECRETS, "output file")
    assert_no_leak(stdout + stderr, SECRETS, "gateway stdout/stderr")
    assert b"listening" in stderr and b"stopped" in stderr
    if results.count(200):
        record = json.loads(out.read_bytes().splitlines()[0])
        assert record["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]["traceId"] == trace.hex()
        with open_reader(settings) as reader:  # flushed by the gateway before it exited
            assert len(vault_originals(reader, trace.hex())) >= 3 * results.count(200)
