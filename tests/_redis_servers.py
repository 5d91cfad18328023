"""Throw-away redis-server processes for tests and benchmarks: one server, or a 3-master Cluster.

Everything binds to 127.0.0.1 on free ports, keeps no data on disk (``--save '' --appendonly
no``) and lives in a caller-supplied temporary directory. A missing ``redis-server`` binary is
an error (:class:`RedisUnavailable`), not a skip: the vault's Redis contract must really run.

Usage from pytest::

    from tests._redis_servers import RedisServer, RedisClusterServers

    server = RedisServer.start(tmp_dir)      # server.url == "redis://127.0.0.1:<port>/0"
    server.kill(); server.restart()           # same port, for outage tests
    cluster = RedisClusterServers.start(tmp_dir)  # cluster.url == "redis+cluster://127.0.0.1:<p1>"
    server.stop(); cluster.stop()
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

LOOPBACK = "127.0.0.1"


class RedisUnavailable(RuntimeError):
    """redis-server or redis-cli is not installed, or a server did not come up."""


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RedisUnavailable(
            f"{name} not found on PATH; install redis (e.g. apt-get install redis-server)"
        )
    return path


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def free_port(*, cluster_bus: bool = False) -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago.

    With ``cluster_bus``, port + 10000 (Redis Cluster's bus port) is free too, which also means
    the port is at most 55535.
    """
    if not cluster_bus:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((LOOPBACK, 0))
            return int(sock.getsockname()[1])
    for _ in range(200):
        port = random.randint(20_000, 55_000)
        if _bindable(port) and _bindable(port + 10_000):
            return port
    raise RedisUnavailable("no free port pair for a cluster node")


def _cli(port: int, *args: str, timeout_s: float = 5.0) -> str:
    done = subprocess.run(
        [_binary("redis-cli"), "-h", LOOPBACK, "-p", str(port), *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    return done.stdout


def _wait_ping(port: int, proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RedisUnavailable(f"redis-server on port {port} exited with {proc.returncode}")
        try:
            with socket.create_connection((LOOPBACK, port), timeout=0.2) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return
        except OSError:
            pass
        time.sleep(0.02)
    raise RedisUnavailable(f"redis-server on port {port} did not answer within {timeout_s}s")


@dataclass
class RedisServer:
    """One redis-server process on 127.0.0.1:``port``."""

    port: int
    workdir: Path
    extra_args: tuple[str, ...] = ()
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @classmethod
    def start(
        cls, workdir: Path, *, port: int | None = None, extra_args: tuple[str, ...] = ()
    ) -> RedisServer:
        """Start a server in ``workdir`` on a free (or the given) port and wait for PONG."""
        server = cls(port=port or free_port(), workdir=Path(workdir), extra_args=extra_args)
        server.restart()
        return server

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return f"redis://{LOOPBACK}:{self.port}/0"

    def _args(self) -> list[str]:
        return [
            _binary("redis-server"),
            "--port",
            str(self.port),
            "--bind",
            LOOPBACK,
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--dir",
            str(self.workdir),
            "--logfile",
            str(self.workdir / f"redis-{self.port}.log"),
            *self.extra_args,
        ]

    def restart(self, timeout_s: float = 10.0, attempts: int = 3) -> None:
        """(Re)start the process on the same port; waits until it answers."""
        if self.running:
            return
        self.workdir.mkdir(parents=True, exist_ok=True)
        for attempt in range(attempts):
            self.proc = subprocess.Popen(
                self._args(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            try:
                _wait_ping(self.port, self.proc, timeout_s)
                return
            except RedisUnavailable:
                # Right after a kill the port can linger briefly; a few retries cover that.
                self.kill()
                if attempt == attempts - 1:
                    raise
                time.sleep(0.2)

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the server (an abrupt outage) and wait for it to go."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        """Terminate the server."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


@dataclass
class RedisClusterServers:
    """Three cluster-enabled masters on 127.0.0.1, joined with ``redis-cli --cluster create``."""

    nodes: list[RedisServer]

    @classmethod
    def start(
        cls, workdir: Path, *, masters: int = 3, timeout_s: float = 20.0
    ) -> RedisClusterServers:
        """Start ``masters`` nodes, create the cluster and wait for ``cluster_state:ok``."""
        workdir = Path(workdir)
        nodes: list[RedisServer] = []
        try:
            for _ in range(masters):
                port = free_port(cluster_bus=True)
                nodes.append(
                    RedisServer.start(
                        workdir / f"node-{port}",
                        port=port,
                        extra_args=(
                            "--cluster-enabled",
                            "yes",
                            "--cluster-config-file",
                            str(workdir / f"node-{port}" / "nodes.conf"),
                            "--cluster-node-timeout",
                            "2000",
                        ),
                    )
                )
            cluster = cls(nodes)
            done = subprocess.run(
                [
                    _binary("redis-cli"),
                    "--cluster",
                    "create",
                    *(f"{LOOPBACK}:{n.port}" for n in nodes),
                    "--cluster-replicas",
                    "0",
                    "--cluster-yes",
                ],
                capture_output=True,
                text=True,
                timeout=timeout_s,
            )
            if done.returncode != 0:
                raise RedisUnavailable(
                    f"redis-cli --cluster create failed: {done.stdout[-500:]}{done.stderr[-500:]}"
                )
            cluster._wait_ok(timeout_s)
            return cluster
        except BaseException:
            for node in nodes:
                node.stop()
            raise

    def _wait_ok(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if all("cluster_state:ok" in _cli(n.port, "cluster", "info") for n in self.nodes):
                return
            time.sleep(0.1)
        raise RedisUnavailable("redis cluster did not reach cluster_state:ok")

    @property
    def url(self) -> str:
        """``redis+cluster://127.0.0.1:<first node port>``."""
        return f"redis+cluster://{LOOPBACK}:{self.nodes[0].port}"

    @property
    def ports(self) -> list[int]:
        """Ports of all masters."""
        return [n.port for n in self.nodes]

    def stop(self) -> None:
        """Terminate every node."""
        for node in self.nodes:
            node.stop()
