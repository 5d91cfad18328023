"""Helpers shared by the vault tests (plain functions; fixtures live in conftest.py)."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest

from redactor.engine.interface import Finding
from redactor.engine.masks import make_ref, mask_text, placeholder
from redactor.vault.interface import VaultBackend

REF_KEY = b"k" * 32
BACKENDS = ("memory", "sqlite", "redis", "cluster")
PERSISTENT_BACKENDS = ("sqlite", "redis", "cluster")


def url_for(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The vault URL of backend ``kind``, starting Redis fixtures on demand."""
    if kind == "memory":
        return "memory://"
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'vault.db'}"
    if kind == "redis":
        return str(request.getfixturevalue("redis_server").url)
    if kind == "cluster":
        return str(request.getfixturevalue("redis_cluster").url)
    raise AssertionError(kind)


def open_backend_like(backend: VaultBackend) -> VaultBackend:
    """A second handle on the same store (the memory backend is its own handle)."""
    from redactor.vault._memory import MemoryVault
    from redactor.vault._redis import RedisVault
    from redactor.vault._sqlite import SQLiteVault

    if isinstance(backend, MemoryVault):
        return _Unclosable(backend)
    if isinstance(backend, SQLiteVault):
        return SQLiteVault(backend._path)
    if isinstance(backend, RedisVault):
        scheme = "redis+cluster" if backend._cluster else "redis"
        return RedisVault(backend._url.replace("redis://", f"{scheme}://", 1))
    raise AssertionError(type(backend))


class _Unclosable(VaultBackend):
    """Delegates to a memory vault without closing it (a writer's shutdown closes its backend)."""

    def __init__(self, inner: VaultBackend) -> None:
        self._inner = inner

    def put(self, entries: Any) -> None:
        self._inner.put(entries)

    def blobs_for_trace(self, trace_id: str) -> list[bytes]:
        return self._inner.blobs_for_trace(trace_id)

    def blobs_for_ref(self, ref: str) -> list[bytes]:
        return self._inner.blobs_for_ref(ref)


def new_trace() -> str:
    """A fresh W3C-style trace id, so tests sharing a Redis server never see each other's data."""
    return secrets.token_hex(16)


def card_number() -> str:
    """A random 16-digit number (not Luhn-checked: the vault does not care, and it is unique)."""
    return "4" + "".join(str(secrets.randbelow(10)) for _ in range(15))


def make_finding(
    trace_id: str | None, original: str, *, label: str = "card", path: str = "msg"
) -> Finding:
    """A finding as the engine would produce it for ``original``."""
    ref = make_ref(REF_KEY, trace_id, label, original)
    style = "card" if label == "card" else "hidden"
    mask = placeholder(label, mask_text(style, original), ref)
    return Finding(
        rule_id=f"test.{label}",
        category="card" if label == "card" else "secret",
        label=label,
        ref=ref,
        mask=mask,
        path=path,
        start=0,
        end=len(original),
        original=original,
    )


def redacted_line(findings: tuple[Finding, ...]) -> str:
    """A log line made of the findings' placeholders."""
    return "paid with " + " and ".join(f.mask for f in findings)
