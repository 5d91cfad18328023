"""Fixtures for the gateway tests: a real embedded (SQLite) vault in a private REDACTOR_HOME with
keys made by ``redactor keys generate``, one engine, a fake downstream on loopback, and gateways
started in-process on free 127.0.0.1 ports."""

from __future__ import annotations

import binascii
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from redactor import create_redactor
from redactor.cli import main as cli_main
from redactor.engine import Redactor
from redactor.engine.validators import _base62
from redactor.gateway import Gateway, GatewayConfig
from redactor.settings import Settings, resolve_settings
from redactor.vault import VaultReader, VaultWriter, open_reader, open_writer
from tests._vault_checks import assert_in_vault as assert_in_vault  # re-exported

from .fakes import Downstream, start_grpc, start_http


def github_token(seed: str) -> str:
    """A classic GitHub token with a valid CRC32 checksum (made up for the test)."""
    payload = (seed * 30)[:30]
    return "ghp_" + payload + _base62(binascii.crc32(payload.encode()), 6)


# Published card-network test numbers (Luhn-valid), an issued-range SSN from the rule pack's
# examples, a made-up AWS key id and GitHub token, and a password known only by its key name.
VISA = "4111 1111 1111 1111"
MASTERCARD = "5555555555554444"
SSN = "496-87-3407"
AWS_KEY = "AKIAQ3EGRTXL7YV2MNB4"
GITHUB = github_token("Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy")
PASSWORD = "Tr0ub4dor&3-horse"
SECRETS = (VISA, MASTERCARD, SSN, AWS_KEY, GITHUB, PASSWORD)


@pytest.fixture(scope="session")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("gateway-home")
    assert cli_main(["keys", "generate", "--dir", str(path / "keys")]) == 0
    return path


@pytest.fixture(scope="session")
def settings(home: Path) -> Settings:
    return resolve_settings(home=str(home), environ={})


@pytest.fixture(scope="session")
def engine(settings: Settings) -> Redactor:
    return create_redactor(settings)


@pytest.fixture(scope="session")
def reader(settings: Settings) -> Iterator[VaultReader]:
    vault_reader = open_reader(settings)
    yield vault_reader
    vault_reader.close()


@pytest.fixture(scope="session")
def downstream() -> Iterator[Downstream]:
    fake = Downstream()
    http_server = start_http(fake)
    grpc_server = start_grpc(fake)
    yield fake
    http_server.shutdown()
    grpc_server.stop(0)


@pytest.fixture
def fresh_downstream(downstream: Downstream) -> Downstream:
    """The shared downstream, emptied and answering OK."""
    with downstream.lock:
        downstream.received.clear()
    downstream.http_status = 200
    downstream.grpc_code = None
    return downstream


class Running:
    """A started gateway with its vault writer."""

    def __init__(self, gateway: Gateway, writer: VaultWriter | None) -> None:
        self.gateway = gateway
        self.writer = writer

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway.http_port}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.gateway.grpc_port}"

    def flush_vault(self) -> None:
        assert self.writer is not None and self.writer.flush(10.0), "vault did not drain"


@pytest.fixture
def start_gateway(
    settings: Settings, engine: Redactor, fresh_downstream: Downstream
) -> Iterator[Callable[..., Running]]:
    """Start gateways on free ports; ``upstream`` is "http", "grpc", "both" or None (then pass
    ``output``). Each has its own writer to the session's SQLite vault."""
    started: list[Running] = []

    def start(upstream: str | None = "http", **overrides: Any) -> Running:
        options: dict[str, Any] = {"http_address": "127.0.0.1:0", "grpc_address": "127.0.0.1:0"}
        if upstream in ("http", "both"):
            options["upstream_http"] = f"http://127.0.0.1:{fresh_downstream.http_port}"
        if upstream in ("grpc", "both"):
            options["upstream_grpc"] = f"127.0.0.1:{fresh_downstream.grpc_port}"
        options["upstream_timeout_s"] = 5.0
        options.update(overrides)
        writer = open_writer(settings)
        gateway = Gateway(GatewayConfig(**options), engine, writer)
        gateway.start()
        running = Running(gateway, writer)
        started.append(running)
        return running

    yield start
    for running in started:
        running.gateway.shutdown(grace_s=2.0)


def vault_originals(reader: VaultReader, trace_id: str) -> list[str]:
    return [o.original for record in reader.records_for_trace(trace_id) for o in record.originals]
