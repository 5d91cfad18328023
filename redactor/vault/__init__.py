"""The write-only vault: originals sealed to a public key, in a short-TTL store.

Redacting processes hold only the public key and use :func:`open_writer`; the reveal side holds
the private key(s) and uses :func:`open_reader`.
"""

from __future__ import annotations

from pathlib import Path

from redactor.settings import Settings
from redactor.vault.backends import open_backend
from redactor.vault.interface import (
    SealedEntry,
    SealError,
    StoredOriginal,
    UnknownKeyError,
    VaultBackend,
    VaultConfigError,
    VaultError,
    VaultRecord,
    VaultUnavailable,
)
from redactor.vault.keys import (
    KeyRing,
    VaultPublicKey,
    generate_keys,
    has_public_key,
    load_keyring,
    load_public_key,
)
from redactor.vault.reader import VaultReader
from redactor.vault.writer import VaultWriter

__all__ = [
    "KeyRing",
    "SealError",
    "SealedEntry",
    "StoredOriginal",
    "UnknownKeyError",
    "VaultBackend",
    "VaultConfigError",
    "VaultError",
    "VaultPublicKey",
    "VaultReader",
    "VaultRecord",
    "VaultUnavailable",
    "VaultWriter",
    "generate_keys",
    "has_public_key",
    "load_keyring",
    "load_public_key",
    "open_backend",
    "open_reader",
    "open_writer",
]


def open_writer(settings: Settings, url: str | None = None) -> VaultWriter | None:
    """A writer for ``url``, else ``settings.vault_url``, else the embedded SQLite vault.

    The embedded vault is used only when a public key exists in ``settings.keys_dir``; with no
    URL configured and no key, returns None (redaction works, nothing is kept). A configured URL
    without a usable public key is an error: security settings do not fall back silently.
    """
    chosen = url or settings.vault_url
    if chosen is None:
        if not has_public_key(settings.keys_dir):
            return None
        chosen = settings.default_vault_url
    public_key = load_public_key(settings.keys_dir)
    backend = open_backend(chosen)
    return VaultWriter(backend, public_key, ttl_s=settings.vault_ttl_s)


def open_reader(
    settings: Settings, url: str | None = None, keys_dir: str | Path | None = None
) -> VaultReader:
    """A reader for ``url`` (else ``settings.vault_url``, else the embedded vault), opening
    blobs with every private key in ``keys_dir`` (default ``settings.keys_dir``)."""
    keyring = load_keyring(Path(keys_dir) if keys_dir is not None else settings.keys_dir)
    backend = open_backend(url or settings.vault_url or settings.default_vault_url)
    return VaultReader(backend, keyring)
