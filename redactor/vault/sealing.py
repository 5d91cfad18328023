"""Sealing and opening blobs: ephemeral X25519 → HKDF-SHA256 → ChaCha20-Poly1305.

One writer batch makes one ephemeral key pair and one key agreement with the vault's public key;
HKDF turns the shared secret into a batch key, and each entry of the batch is encrypted under
that key with its own counter nonce (unique because the batch key is never reused).

Blob layout::

    b"RVB1" | header length (u16, big-endian) | header (JSON) | ciphertext + 16-byte tag

The header is in the clear (kid, ephemeral public key, nonce counter, trace id, entry id,
expiry, refs, record count) and *all of it* — magic and length included — is the AEAD's
associated data. Editing any header field breaks the tag; copying a blob under another trace or
ref is caught by comparing the (authenticated) header with where the blob was found.
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
import time
from dataclasses import dataclass
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from redactor.vault.interface import SealError, UnknownKeyError
from redactor.vault.keys import KeyRing, VaultPublicKey

MAGIC = b"RVB1"
_LEN = struct.Struct(">H")
_PREFIX_BYTES = len(MAGIC) + _LEN.size
_HKDF_INFO = b"redactor-vault/v1 batch key "
_NONCE_BYTES = 12
_MAX_ENTRIES_PER_BATCH_KEY = 2**32  # far above any batch; guards nonce reuse by construction


def _batch_key(shared: bytes, epk: bytes, recipient: bytes, kid: str) -> ChaCha20Poly1305:
    # Salt binds both public keys so the derived key is specific to this exchange and recipient.
    key = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=epk + recipient,
        info=_HKDF_INFO + kid.encode("ascii"),
    ).derive(shared)
    return ChaCha20Poly1305(key)


def dumps_payload(value: Any) -> bytes:
    """JSON bytes of ``value``.

    Falls back to escaped JSON for text orjson refuses (lone surrogates).
    """
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value, ensure_ascii=True, default=str).encode("ascii")


def loads_payload(data: bytes) -> Any:
    """Inverse of :func:`dumps_payload`."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


class BatchSealer:
    """Seals the entries of one writer batch under one fresh ephemeral key agreement."""

    __slots__ = ("_kid", "_epk_text", "_aead", "_counter")

    def __init__(self, public: VaultPublicKey) -> None:
        ephemeral = X25519PrivateKey.generate()
        epk = ephemeral.public_key().public_bytes_raw()
        self._kid = public.kid
        self._epk_text = base64.urlsafe_b64encode(epk).decode("ascii")
        self._aead = _batch_key(ephemeral.exchange(public.key), epk, public.raw, public.kid)
        self._counter = 0
        # The ephemeral private key goes out of scope here: nobody can re-derive the batch key
        # without the vault's private key.

    def seal(
        self,
        *,
        trace_id: str | None,
        entry_id: str,
        refs: tuple[str, ...],
        expires_at: float,
        count: int,
        payload: bytes,
    ) -> bytes:
        """One blob: ``payload`` encrypted, with the header fields bound as associated data."""
        counter = self._counter
        if counter >= _MAX_ENTRIES_PER_BATCH_KEY:
            raise SealError("batch key exhausted")
        self._counter = counter + 1
        header = dumps_payload(
            {
                "kid": self._kid,
                "epk": self._epk_text,
                "n": counter,
                "t": trace_id,
                "e": entry_id,
                "x": int(expires_at * 1000),
                "r": list(refs),
                "c": count,
            }
        )
        prefix = MAGIC + _LEN.pack(len(header)) + header
        nonce = counter.to_bytes(_NONCE_BYTES, "big")
        return prefix + self._aead.encrypt(nonce, payload, prefix)


@dataclass(frozen=True, slots=True)
class SealHeader:
    """The authenticated clear header of a blob (trusted only after :meth:`Unsealer.open`)."""

    kid: str
    epk: bytes
    counter: int
    trace_id: str | None
    entry_id: str
    expires_at_ms: int
    refs: tuple[str, ...]
    count: int

    def expired(self, now_s: float | None = None) -> bool:
        """Whether the entry's TTL has passed."""
        return (time.time() if now_s is None else now_s) * 1000 >= self.expires_at_ms


def _str_list(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SealError("malformed blob header")
    return tuple(value)


def parse_header(blob: bytes) -> tuple[SealHeader, int]:
    """The header of ``blob`` and the offset of its ciphertext. Not authenticated yet."""
    if not isinstance(blob, (bytes, bytearray, memoryview)) or bytes(blob[:4]) != MAGIC:
        raise SealError("not a vault blob (bad magic)")
    if len(blob) < _PREFIX_BYTES:
        raise SealError("truncated vault blob")
    (length,) = _LEN.unpack_from(blob, len(MAGIC))
    end = _PREFIX_BYTES + length
    if len(blob) < end + 16:
        raise SealError("truncated vault blob")
    try:
        raw = orjson.loads(bytes(blob[_PREFIX_BYTES:end]))
        kid, epk_text, counter = raw["kid"], raw["epk"], raw["n"]
        trace_id, entry_id, expires, count = raw["t"], raw["e"], raw["x"], raw["c"]
        epk = base64.urlsafe_b64decode(epk_text)
        refs = raw["r"]
    except (orjson.JSONDecodeError, KeyError, TypeError, binascii.Error, ValueError):
        raise SealError("malformed blob header") from None
    if not (
        isinstance(kid, str)
        and len(epk) == 32
        and isinstance(counter, int)
        and 0 <= counter < _MAX_ENTRIES_PER_BATCH_KEY
        and (trace_id is None or isinstance(trace_id, str))
        and isinstance(entry_id, str)
        and isinstance(expires, int)
        and isinstance(count, int)
    ):
        raise SealError("malformed blob header")
    header = SealHeader(kid, epk, counter, trace_id, entry_id, expires, _str_list(refs), count)
    return header, end


class Unsealer:
    """Opens blobs with a :class:`KeyRing`, caching the batch key of each key agreement.

    Entries of one batch share an ephemeral key, so opening a trace usually costs one X25519
    exchange per writer batch, not per entry.
    """

    __slots__ = ("_keyring", "_cache", "_max_cached")

    def __init__(self, keyring: KeyRing, *, max_cached: int = 4096) -> None:
        self._keyring = keyring
        self._cache: dict[tuple[str, bytes], ChaCha20Poly1305] = {}
        self._max_cached = max_cached

    def _aead(self, kid: str, epk: bytes) -> ChaCha20Poly1305:
        aead = self._cache.get((kid, epk))
        if aead is not None:
            return aead
        private = self._keyring.private_key(kid)
        if private is None:
            raise UnknownKeyError(f"blob sealed to key {kid!r}, which is not loaded (retired?)")
        try:
            shared = private.exchange(X25519PublicKey.from_public_bytes(epk))
        except ValueError:
            raise SealError("blob carries an invalid ephemeral key") from None
        aead = _batch_key(shared, epk, self._keyring.public_raw(kid), kid)
        if len(self._cache) >= self._max_cached:
            self._cache.clear()  # bounded; a full rebuild costs one exchange per batch
        self._cache[(kid, epk)] = aead
        return aead

    def open(self, blob: bytes) -> tuple[SealHeader, bytes]:
        """Authenticate and decrypt ``blob``; raises :class:`SealError` on any mismatch."""
        header, offset = parse_header(blob)
        aead = self._aead(header.kid, header.epk)
        data = bytes(blob)
        try:
            payload = aead.decrypt(
                header.counter.to_bytes(_NONCE_BYTES, "big"), data[offset:], data[:offset]
            )
        except InvalidTag:
            raise SealError(
                "blob failed authentication (tampered, or sealed to another key)"
            ) from None
        return header, payload
