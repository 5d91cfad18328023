"""Fixtures for the vault suite: real Redis servers, keys, and one backend per URL scheme."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# ``tests`` is not a package on sys.path when pytest is run as ``pytest`` rather than
# ``python -m pytest``; the starters live in tests/_redis_servers.py for other suites to reuse.
_ROOT = Path(__file__).resolve().parents[2]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from redactor.vault.backends import open_backend  # noqa: E402
from redactor.vault.interface import VaultBackend  # noqa: E402
from redactor.vault.keys import generate_keys, load_keyring, load_public_key  # noqa: E402
from redactor.vault.reader import VaultReader  # noqa: E402
from redactor.vault.writer import VaultWriter  # noqa: E402
from tests._redis_servers import RedisClusterServers, RedisServer  # noqa: E402
from tests.vault._vault_helpers import BACKENDS, open_backend_like, url_for  # noqa: E402


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A private redis-server on a free loopback port for the whole session."""
    server = RedisServer.start(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterServers]:
    """A three-master Redis Cluster on free loopback ports for the whole session."""
    cluster = RedisClusterServers.start(tmp_path_factory.mktemp("cluster"))
    yield cluster
    cluster.stop()


@pytest.fixture
def keys_dir(tmp_path: Path) -> Path:
    """A fresh key directory with one current key set."""
    path = tmp_path / "keys"
    generate_keys(path)
    return path


@pytest.fixture(params=BACKENDS)
def backend_kind(request: pytest.FixtureRequest) -> str:
    """Every backend, one test run each."""
    return str(request.param)


@pytest.fixture
def backend_url(backend_kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of the backend under test."""
    return url_for(backend_kind, request, tmp_path)


@pytest.fixture
def backend(backend_url: str) -> Iterator[VaultBackend]:
    """An open backend for the URL under test."""
    b = open_backend(backend_url)
    yield b
    b.close()


@pytest.fixture
def make_writer(backend: VaultBackend, keys_dir: Path) -> Iterator[Callable[..., VaultWriter]]:
    """Build writers on the backend under test (they are shut down after the test).

    Writers share the backend; shutting one down closes it, so tests reopen readers on it only
    through :func:`reader`.
    """
    made: list[VaultWriter] = []

    def make(**kwargs: Any) -> VaultWriter:
        kwargs.setdefault("schedule_delay_s", 0.02)
        writer = VaultWriter(open_backend_like(backend), load_public_key(keys_dir), **kwargs)
        made.append(writer)
        return writer

    yield make
    for writer in made:
        writer.shutdown(timeout_s=2.0)


@pytest.fixture
def reader(backend: VaultBackend, keys_dir: Path) -> VaultReader:
    """A reader with every private key of ``keys_dir`` on the backend under test."""
    return VaultReader(open_backend_like(backend), load_keyring(keys_dir))
