"""Fixtures for the integration tests: one real embedded (SQLite) vault with generated keys,
one engine, and the dirty-record table every integration is run against."""

from __future__ import annotations

import binascii
import logging
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from redactor import create_redactor
from redactor.engine.validators import _base62
from redactor.integrations import _core
from redactor.integrations._core import INTERNAL_LOGGER_NAME
from redactor.settings import Settings, resolve_settings
from redactor.vault import VaultReader, VaultWriter, generate_keys, open_reader, open_writer
from tests._vault_checks import assert_in_vault as assert_in_vault  # re-exported


def github_token(seed: str) -> str:
    """A classic GitHub token with a valid CRC32 checksum (30 base62 chars + 6 of checksum)."""
    payload = (seed * 30)[:30]
    return "ghp_" + payload + _base62(binascii.crc32(payload.encode()), 6)


@dataclass(frozen=True)
class DirtyCase:
    """One sensitive value and the rule label that must mask it in free text.

    ``label`` None means the value is only sensitive under a key name (a password).
    """

    name: str
    original: str
    label: str | None = field(default=None)


#: Test values: Visa/Mastercard test numbers (Luhn-valid, published by the card networks for
#: testing), issued-range SSNs (the rule pack's own examples), an AWS key id and a checksummed
#: GitHub token made up for the test, and a password only recognisable by its key name.
CASES: tuple[DirtyCase, ...] = (
    DirtyCase("visa_spaced", "4111 1111 1111 1111", "card"),
    DirtyCase("mastercard", "5555555555554444", "card"),
    DirtyCase("ssn", "496-87-3407", "ssn"),
    DirtyCase("aws_key", "AKIAQ3EGRTXL7YV2MNB4", "aws"),
    DirtyCase("github_token", github_token("Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy"), "github"),
    DirtyCase("password", "Tr0ub4dor&3-horse", None),
)


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings for a private home: ref key, generated vault keys, embedded SQLite vault."""
    home = tmp_path_factory.mktemp("redactor-home")
    resolved = resolve_settings(home=str(home), environ={})
    generate_keys(resolved.keys_dir)
    return resolved.with_overrides(vault_url=resolved.default_vault_url)


@pytest.fixture(scope="session")
def engine(settings: Settings):  # type: ignore[no-untyped-def]
    return create_redactor(settings)


@pytest.fixture(scope="session")
def writer(settings: Settings) -> Iterator[VaultWriter]:
    vault_writer = open_writer(settings)
    assert vault_writer is not None
    yield vault_writer
    vault_writer.shutdown()


@pytest.fixture(scope="session")
def reader(settings: Settings) -> Iterator[VaultReader]:
    vault_reader = open_reader(settings)
    yield vault_reader
    vault_reader.close()


@pytest.fixture(scope="session")
def detectable(engine) -> frozenset[str]:  # type: ignore[no-untyped-def]
    """Names of the cases the engine masks in free text (rule packs may lag the table)."""
    found = set()
    for case in CASES:
        if case.label is None:
            continue
        if engine.redact(f"value {case.original} here") != f"value {case.original} here":
            found.add(case.name)
    return frozenset(found)


def new_trace_id() -> str:
    return secrets.token_hex(16)


def vault_originals(writer: VaultWriter, reader: VaultReader, trace_id: str) -> list[str]:
    """Every original the vault holds under ``trace_id`` (after draining the writer)."""
    assert writer.flush(10.0), "vault writer did not drain in time"
    return [o.original for record in reader.records_for_trace(trace_id) for o in record.originals]


@pytest.fixture(autouse=True)
def _clean_internal_logger() -> Iterator[None]:
    yield
    logging.getLogger(INTERNAL_LOGGER_NAME).filters.clear()


@pytest.fixture
def fresh_shared(monkeypatch: pytest.MonkeyPatch) -> None:
    """Isolate the per-process engine/writer caches."""
    monkeypatch.setattr(_core, "_shared_redactors", {})
    monkeypatch.setattr(_core, "_shared_writers", {})


ROOT = Path(__file__).resolve().parents[2]
