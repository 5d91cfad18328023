"""The reveal broker: the HTTP API that alone holds the vault's private key (``redactor serve``)."""

from __future__ import annotations

from redactor.broker.auth import (
    JWKS,
    Authenticator,
    AuthError,
    ChainAuthenticator,
    OIDCAuthenticator,
    TokenAuthenticator,
    add_token,
    hash_token,
)
from redactor.broker.client import BrokerClient
from redactor.broker.server import BrokerApp, BrokerServer, RateLimiter, make_server

__all__ = [
    "JWKS",
    "AuthError",
    "Authenticator",
    "BrokerApp",
    "BrokerClient",
    "BrokerServer",
    "ChainAuthenticator",
    "OIDCAuthenticator",
    "RateLimiter",
    "TokenAuthenticator",
    "add_token",
    "hash_token",
    "make_server",
]
