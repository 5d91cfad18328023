"""Choosing a backend from a URL: ``sqlite:///path``, ``redis://``, ``rediss://``,
``redis+cluster://`` (``rediss+cluster://`` for TLS), ``memory://``.
"""

from __future__ import annotations

from redactor.vault.interface import VaultBackend, VaultConfigError

SCHEMES = ("sqlite", "redis", "rediss", "redis+cluster", "rediss+cluster", "memory")


def open_backend(url: str) -> VaultBackend:
    """The backend a vault URL names. Does not connect yet: connection errors surface on use."""
    scheme, sep, _rest = url.partition("://")
    if not sep:
        raise VaultConfigError(f"not a vault URL (expected scheme://...): {url.split('@')[-1]!r}")
    scheme = scheme.lower()
    if scheme == "sqlite":
        from redactor.vault._sqlite import SQLiteVault

        if not url.startswith("sqlite:///") or len(url) <= len("sqlite:///"):
            raise VaultConfigError("sqlite vault URL must be sqlite:///relative or sqlite:////absolute")
        return SQLiteVault.from_url(url)
    if scheme in ("redis", "rediss", "redis+cluster", "rediss+cluster"):
        from redactor.vault._redis import RedisVault

        return RedisVault.from_url(url)
    if scheme == "memory":
        from redactor.vault._memory import MemoryVault

        return MemoryVault.from_url(url)
    raise VaultConfigError(
        f"unknown vault URL scheme {scheme!r}; expected one of {', '.join(SCHEMES)}"
    )
