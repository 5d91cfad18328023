"""Files kept between runs to save start-up work, authenticated with a key.

What these files hold decides what gets redacted (a compiled trigger database, a parsed rule
pack), so one that was altered, or made from other input and copied under this one's name,
must never be used: a database missing a trigger would silently skip a rule. Each file's tag
covers the identity of what it was made from as well as its bytes, and is checked before any
byte of it is used. A file that fails the check is treated as missing and made again. Writes
are atomic, and a cache that cannot be written only costs start-up time.

The tag is keyed BLAKE2b, a MAC by construction: every start-up checks the trigger databases'
5 MB, and on CPUs without SHA extensions BLAKE2b does that in half the time of HMAC-SHA256.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

__all__ = ["SealedFiles"]

_TAG_BYTES = 32


class SealedFiles:
    """A directory of MAC-tagged files, each named by a kind and the identity of its input."""

    def __init__(self, directory: Path, hmac_key: bytes) -> None:
        self.directory = directory
        # The key's fingerprint is part of each file name: engines with different keys
        # sharing a home keep a file each instead of overwriting each other's.
        self._fingerprint = hmac.new(hmac_key, b"redactor sealed files", hashlib.sha256).digest()
        self._tag_key = hmac.new(hmac_key, b"redactor sealed files: tag", hashlib.sha256).digest()

    def _path(self, kind: str, identity: bytes) -> Path:
        digest = hashlib.sha256(self._fingerprint + kind.encode() + b"\x00" + identity)
        return self.directory / f"{kind}-{digest.hexdigest()[:32]}.bin"

    def _tag(self, kind: str, identity: bytes, payload: bytes | memoryview) -> bytes:
        bound_to = hashlib.sha256(kind.encode() + b"\x00" + identity).digest()
        mac = hashlib.blake2b(bound_to, key=self._tag_key, digest_size=_TAG_BYTES)
        mac.update(payload)  # not bound_to + payload: that would copy megabytes
        return mac.digest()

    def holds(self, kind: str, identity: bytes) -> bool:
        """Whether a file is kept for ``identity`` (verified only when it is loaded)."""
        return self._path(kind, identity).is_file()

    def load(self, kind: str, identity: bytes) -> bytes | None:
        """The payload stored for ``identity``, or None when there is none that verifies."""
        try:
            blob = self._path(kind, identity).read_bytes()
        except OSError:
            return None
        tag, payload = blob[:_TAG_BYTES], memoryview(blob)[_TAG_BYTES:]
        if not hmac.compare_digest(tag, self._tag(kind, identity, payload)):
            return None
        return payload.tobytes()

    def store(self, kind: str, identity: bytes, payload: bytes) -> None:
        """Keep ``payload`` for ``identity``; silently does nothing if it cannot be written."""
        path = self._path(kind, identity)
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_bytes(self._tag(kind, identity, payload) + payload)
            os.replace(tmp, path)
        except OSError:
            pass
