"""Vault key files: generate, load the current public key, load every private key, retire.

A key set lives in one directory (``$REDACTOR_HOME/keys`` by default)::

    vault-<kid>.pub   X25519 public key, PEM (SubjectPublicKeyInfo) — what redacting processes need
    vault-<kid>.key   X25519 private key, PEM (PKCS#8), mode 0600    — only the reveal side needs it
    current           the kid new blobs are sealed to

The kid is derived from the public key (8 base32 characters of its SHA-256), so a ``.pub`` file
renamed to another kid is detected on load. Rotation: ``generate`` a new set (it becomes
current); old ``.key`` files keep opening old blobs until :func:`retire_key` deletes them.
Security settings fail rather than fall back: a missing ``current`` pointer, a private key
readable by group or others, or a kid that does not match its key all raise.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from redactor.vault.interface import VaultConfigError

CURRENT_FILE = "current"
_PUB_SUFFIX = ".pub"
_KEY_SUFFIX = ".key"
_PREFIX = "vault-"


def key_id(public_raw: bytes) -> str:
    """The key id of a raw 32-byte X25519 public key: 8 lowercase base32 characters."""
    return base64.b32encode(hashlib.sha256(public_raw).digest()[:5]).decode("ascii").lower()


@dataclass(frozen=True, slots=True)
class VaultPublicKey:
    """The key redacting processes seal to: its id, the key, and its raw bytes."""

    kid: str
    key: X25519PublicKey = field(repr=False)
    raw: bytes = field(repr=False)

    @classmethod
    def from_key(cls, key: X25519PublicKey) -> VaultPublicKey:
        raw = key.public_bytes_raw()
        return cls(kid=key_id(raw), key=key, raw=raw)


class KeyRing:
    """The private keys a reader may open blobs with, by key id."""

    __slots__ = ("_keys", "_public_raw")

    def __init__(self, keys: Mapping[str, X25519PrivateKey]) -> None:
        self._keys = dict(keys)
        self._public_raw = {kid: k.public_key().public_bytes_raw() for kid, k in self._keys.items()}
        for kid, raw in self._public_raw.items():
            if key_id(raw) != kid:
                raise VaultConfigError(
                    f"private key filed under kid {kid!r} belongs to another kid"
                )

    @classmethod
    def from_private_keys(cls, *keys: X25519PrivateKey) -> KeyRing:
        """A key ring holding ``keys``, each under its derived kid."""
        return cls({key_id(k.public_key().public_bytes_raw()): k for k in keys})

    @property
    def kids(self) -> frozenset[str]:
        """Ids of the loaded private keys."""
        return frozenset(self._keys)

    def private_key(self, kid: str) -> X25519PrivateKey | None:
        """The private key for ``kid``, or None when it is not loaded."""
        return self._keys.get(kid)

    def public_raw(self, kid: str) -> bytes:
        """The raw public key matching the loaded private key ``kid``."""
        return self._public_raw[kid]

    def __len__(self) -> int:
        return len(self._keys)

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._keys))

    def __repr__(self) -> str:
        return f"KeyRing(kids={sorted(self._keys)})"


def _write_new(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    # Replace in one rename so a process loading the key never sees a half-written pointer.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def generate_keys(keys_dir: Path, *, make_current: bool = True) -> str:
    """Create a new key pair in ``keys_dir`` and (by default) make it current; return its kid."""
    keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    private = X25519PrivateKey.generate()
    public = VaultPublicKey.from_key(private.public_key())
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = public.key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    _write_new(keys_dir / f"{_PREFIX}{public.kid}{_KEY_SUFFIX}", private_pem, 0o600)
    _write_new(keys_dir / f"{_PREFIX}{public.kid}{_PUB_SUFFIX}", public_pem, 0o644)
    if make_current:
        _write_atomic(keys_dir / CURRENT_FILE, (public.kid + "\n").encode("ascii"), 0o644)
    return public.kid


def current_kid(keys_dir: Path) -> str | None:
    """The kid in ``keys_dir/current``, or None when there is no pointer."""
    try:
        kid = (keys_dir / CURRENT_FILE).read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise VaultConfigError(f"{keys_dir / CURRENT_FILE}: unreadable: {exc}") from None
    if not kid or not kid.isalnum():
        raise VaultConfigError(f"{keys_dir / CURRENT_FILE}: not a key id")
    return kid


def has_public_key(keys_dir: Path) -> bool:
    """Whether ``keys_dir`` has a current public key a writer could seal to."""
    try:
        kid = current_kid(keys_dir)
    except VaultConfigError:
        return True  # present but broken: let load_public_key report it rather than ignore it
    return kid is not None and (keys_dir / f"{_PREFIX}{kid}{_PUB_SUFFIX}").is_file()


def load_public_key(keys_dir: Path) -> VaultPublicKey:
    """The current public key of ``keys_dir``; raises :class:`VaultConfigError` if absent or bad."""
    kid = current_kid(keys_dir)
    if kid is None:
        raise VaultConfigError(
            f"no vault key in {keys_dir}: run `redactor keys generate` (or copy a public key set)"
        )
    path = keys_dir / f"{_PREFIX}{kid}{_PUB_SUFFIX}"
    try:
        loaded = serialization.load_pem_public_key(path.read_bytes())
    except FileNotFoundError:
        raise VaultConfigError(f"{path}: current vault public key is missing") from None
    except ValueError as exc:
        raise VaultConfigError(f"{path}: not a PEM public key ({exc})") from None
    if not isinstance(loaded, X25519PublicKey):
        raise VaultConfigError(f"{path}: not an X25519 public key")
    public = VaultPublicKey.from_key(loaded)
    if public.kid != kid:
        raise VaultConfigError(f"{path}: key does not match its id {kid!r}")
    return public


def _load_private(path: Path) -> X25519PrivateKey:
    mode = path.stat().st_mode
    if mode & 0o077:
        raise VaultConfigError(
            f"{path}: private key is accessible by group or others (mode {mode & 0o777:o}); "
            "chmod 600 it"
        )
    try:
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise VaultConfigError(f"{path}: not an unencrypted PEM private key ({exc})") from None
    if not isinstance(loaded, X25519PrivateKey):
        raise VaultConfigError(f"{path}: not an X25519 private key")
    return loaded


def load_keyring(keys_dir: Path) -> KeyRing:
    """Every private key in ``keys_dir`` (current and not yet retired ones)."""
    keys: dict[str, X25519PrivateKey] = {}
    try:
        paths = sorted(keys_dir.glob(f"{_PREFIX}*{_KEY_SUFFIX}"))
    except OSError as exc:
        raise VaultConfigError(f"{keys_dir}: unreadable: {exc}") from None
    for path in paths:
        kid = path.name[len(_PREFIX) : -len(_KEY_SUFFIX)]
        private = _load_private(path)
        if key_id(private.public_key().public_bytes_raw()) != kid:
            raise VaultConfigError(f"{path}: key does not match its id {kid!r}")
        keys[kid] = private
    if not keys:
        raise VaultConfigError(f"no vault private key in {keys_dir}")
    return KeyRing(keys)


def list_keys(keys_dir: Path) -> list[tuple[str, bool, bool]]:
    """``(kid, has_private_key, is_current)`` for every key set in ``keys_dir``."""
    current = current_kid(keys_dir)
    kids = {
        p.name[len(_PREFIX) : -len(_PUB_SUFFIX)] for p in keys_dir.glob(f"{_PREFIX}*{_PUB_SUFFIX}")
    }
    kids |= {
        p.name[len(_PREFIX) : -len(_KEY_SUFFIX)] for p in keys_dir.glob(f"{_PREFIX}*{_KEY_SUFFIX}")
    }
    return [
        (kid, (keys_dir / f"{_PREFIX}{kid}{_KEY_SUFFIX}").exists(), kid == current)
        for kid in sorted(kids)
    ]


def retire_key(keys_dir: Path, kid: str) -> None:
    """Delete the private key ``kid``: blobs sealed to it can no longer be opened.

    The current key cannot be retired (generate a new one first).
    """
    if kid == current_kid(keys_dir):
        raise VaultConfigError(
            f"{kid} is the current key; generate a new key set before retiring it"
        )
    path = keys_dir / f"{_PREFIX}{kid}{_KEY_SUFFIX}"
    try:
        path.unlink()
    except FileNotFoundError:
        raise VaultConfigError(f"no private key {kid!r} in {keys_dir}") from None
