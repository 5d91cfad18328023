"""Who calls the broker: static bearer tokens (stored hashed) or OIDC JWTs checked against a JWKS.

Tokens file (TOML, mode 0600 recommended)::

    [[token]]
    user = "alice"
    sha256 = "9f86d0…"        # hex SHA-256 of the token; the token itself is never stored
    groups = ["oncall"]       # optional, added to the policy's [groups] membership

Bearer tokens are 256-bit random strings, so a plain SHA-256 is enough (no password stretching
needed) and a stolen tokens file does not let anyone authenticate. JWTs: only RS256 and ES256
are accepted (never ``none`` or HMAC, so a public key can't be used as a shared secret);
issuer, audience, expiry and not-before are checked with a small leeway.
"""

from __future__ import annotations

import abc
import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
import tomllib
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from redactor.engine.interface import ConfigError
from redactor.grants.interface import GrantError, Identity
from redactor.grants.service import USER_RE

MAX_TOKEN_CHARS = 8192
ALLOWED_ALGS = frozenset({"RS256", "ES256"})


class AuthError(GrantError):
    """The caller is not authenticated; the message never says which check failed in detail
    beyond what helps an honest client (expired, wrong audience, …)."""

    status = 401


def hash_token(token: str) -> str:
    """Hex SHA-256 of a bearer token, as stored in the tokens file."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    """A fresh bearer token (256 bits, URL-safe)."""
    return "rdx_" + secrets.token_urlsafe(32)


class Authenticator(abc.ABC):
    """Turns a bearer credential into an :class:`Identity` or raises :class:`AuthError`."""

    @abc.abstractmethod
    def authenticate(self, credential: str, address: str | None) -> Identity:
        """Verify ``credential`` (the part after ``Bearer``)."""


@dataclass(frozen=True, slots=True)
class _TokenEntry:
    user: str
    digest: bytes = field(repr=False)
    groups: frozenset[str] = frozenset()


class TokenAuthenticator(Authenticator):
    """Static bearer tokens, looked up by hash."""

    def __init__(self, entries: Sequence[_TokenEntry]) -> None:
        self._by_digest = {e.digest: e for e in entries}

    @classmethod
    def from_file(cls, path: str | Path) -> TokenAuthenticator:
        """Load and validate a tokens file (errors name the entry and field)."""
        p = Path(path)
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"token file not found: {p}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{p}: invalid TOML: {exc}") from None
        unknown = set(data) - {"token"}
        if unknown:
            raise ConfigError(
                f"{p}: unknown field(s) {sorted(unknown)} (expected [[token]] tables)"
            )
        entries = []
        for i, t in enumerate(data.get("token", [])):
            where = f"{p}: token[{i}]"
            if not isinstance(t, dict) or set(t) - {"user", "sha256", "groups"}:
                raise ConfigError(
                    f"{where}: expected a table with user, sha256 and optional groups"
                )
            user, digest, groups = t.get("user"), t.get("sha256"), t.get("groups", [])
            if not isinstance(user, str) or not USER_RE.match(user):
                raise ConfigError(f"{where}.user: expected a user name")
            if not isinstance(digest, str) or len(digest) != 64:
                raise ConfigError(f"{where}.sha256: expected 64 hex characters")
            try:
                raw = bytes.fromhex(digest)
            except ValueError:
                raise ConfigError(f"{where}.sha256: expected 64 hex characters") from None
            if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
                raise ConfigError(f"{where}.groups: expected a list of strings")
            entries.append(_TokenEntry(user, raw, frozenset(groups)))
        return cls(entries)

    def authenticate(self, credential: str, address: str | None) -> Identity:
        digest = hashlib.sha256(credential.encode("utf-8", "surrogatepass")).digest()
        entry = self._by_digest.get(digest)
        # The dict lookup is on a hash of a high-entropy secret, so its timing reveals nothing
        # useful; compare_digest keeps the final check constant-time anyway.
        if entry is None or not hmac.compare_digest(entry.digest, digest):
            raise AuthError("invalid token")
        return Identity(entry.user, entry.groups, via="token", address=address)


def add_token(path: str | Path, user: str, groups: Sequence[str] = ()) -> str:
    """Append a new token for ``user`` to a tokens file (created 0600); returns the token once."""
    if not USER_RE.match(user):
        raise ConfigError(f"invalid user name {user!r}")
    token = new_token()
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    if not p.exists():
        p.touch(mode=0o600)
    groups_toml = ", ".join(json.dumps(g) for g in groups)
    with p.open("a", encoding="utf-8") as fh:
        fh.write(
            f'\n[[token]]\nuser = {json.dumps(user)}\nsha256 = "{hash_token(token)}"\n'
            f"groups = [{groups_toml}]\n"
        )
    TokenAuthenticator.from_file(p)  # fail now, not at serve time, if the file is broken
    return token


# ----------------------------------------------------------------------------- OIDC / JWT


def _b64url(data: str) -> bytes:
    if not isinstance(data, str) or any(
        c not in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_" for c in data
    ):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


def _b64url_int(data: object) -> int:
    if not isinstance(data, str):
        raise ValueError("expected a base64url string")
    return int.from_bytes(_b64url(data), "big")


def jwk_to_key(jwk: Mapping[str, Any]) -> rsa.RSAPublicKey | ec.EllipticCurvePublicKey:
    """A public key from one JWK (RSA, or EC on P-256)."""
    kty = jwk.get("kty")
    if kty == "RSA":
        return rsa.RSAPublicNumbers(
            _b64url_int(jwk.get("e")), _b64url_int(jwk.get("n"))
        ).public_key()
    if kty == "EC":
        if jwk.get("crv") != "P-256":
            raise ValueError("only P-256 EC keys are supported")
        return ec.EllipticCurvePublicNumbers(
            _b64url_int(jwk.get("x")), _b64url_int(jwk.get("y")), ec.SECP256R1()
        ).public_key()
    raise ValueError(f"unsupported key type {kty!r}")


class JWKS:
    """A key set from a file or an https URL.

    Refetched at most every ``min_refresh_s``, when a token names an unknown kid.
    """

    def __init__(self, source: str, *, min_refresh_s: float = 60.0, timeout_s: float = 5.0) -> None:
        self.source = source
        self.min_refresh_s = min_refresh_s
        self.timeout_s = timeout_s
        self._keys: dict[str, tuple[str | None, Any]] = {}
        self._fetched_at = float("-inf")
        self._lock = threading.Lock()
        self._load()  # fail at start-up if the key set is unreadable

    @classmethod
    def from_keys(cls, jwks: Mapping[str, Any]) -> JWKS:
        """A fixed key set (tests, or keys pinned in configuration)."""
        self = cls.__new__(cls)
        self.source, self.min_refresh_s, self.timeout_s = "<inline>", float("inf"), 0.0
        self._lock = threading.Lock()
        self._fetched_at = time.monotonic()
        self._keys = self._parse(jwks)
        return self

    def _load(self) -> None:
        try:
            if self.source.startswith(("http://", "https://")):
                with urllib.request.urlopen(self.source, timeout=self.timeout_s) as resp:
                    raw = resp.read(1024 * 1024)
            else:
                raw = Path(self.source).read_bytes()
            data = json.loads(raw)
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"cannot load JWKS from {self.source}: {type(exc).__name__}"
            ) from None
        self._keys = self._parse(data)
        self._fetched_at = time.monotonic()

    @staticmethod
    def _parse(data: Any) -> dict[str, tuple[str | None, Any]]:
        if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
            raise ConfigError("JWKS must be an object with a 'keys' list")
        keys = {}
        for jwk in data["keys"]:
            if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig":
                continue
            try:
                keys[str(jwk.get("kid", ""))] = (jwk.get("alg"), jwk_to_key(jwk))
            except (ValueError, TypeError):
                continue  # a key we cannot use is skipped; tokens naming it fail to verify
        if not keys:
            raise ConfigError("JWKS holds no usable signing keys (RSA or EC P-256)")
        return keys

    def key(self, kid: str) -> tuple[str | None, Any] | None:
        with self._lock:
            found = self._keys.get(kid)
            if found is None and time.monotonic() - self._fetched_at >= self.min_refresh_s:
                try:
                    self._load()  # key rotation at the identity provider
                except ConfigError:
                    self._fetched_at = time.monotonic()
                found = self._keys.get(kid)
            return found


class OIDCAuthenticator(Authenticator):
    """Verifies RS256/ES256 JWTs: signature (JWKS), ``iss``, ``aud``, ``exp``, ``nbf``."""

    def __init__(
        self,
        jwks: JWKS,
        *,
        issuer: str,
        audience: str,
        user_claim: str = "preferred_username",
        groups_claim: str = "groups",
        leeway_s: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not issuer or not audience:
            raise ConfigError("OIDC needs both an issuer and an audience")
        self.jwks = jwks
        self.issuer = issuer
        self.audience = audience
        self.user_claim = user_claim
        self.groups_claim = groups_claim
        self.leeway_s = leeway_s
        self.clock = clock

    def authenticate(self, credential: str, address: str | None) -> Identity:
        claims = self.verify(credential)
        user = claims.get(self.user_claim) or claims.get("sub")
        if not isinstance(user, str) or not USER_RE.match(user):
            raise AuthError("token has no usable user claim")
        raw_groups = claims.get(self.groups_claim, [])
        groups = (
            frozenset(g for g in raw_groups if isinstance(g, str))
            if isinstance(raw_groups, list)
            else frozenset()
        )
        return Identity(user, groups, via="oidc", address=address)

    def verify(self, token: str) -> dict[str, Any]:
        """The claims of a valid token; :class:`AuthError` otherwise."""
        if len(token) > MAX_TOKEN_CHARS or token.count(".") != 2:
            raise AuthError("malformed token")
        head_b64, body_b64, sig_b64 = token.split(".")
        try:
            header = json.loads(_b64url(head_b64))
            claims = json.loads(_b64url(body_b64))
            signature = _b64url(sig_b64)
        except (ValueError, UnicodeDecodeError):
            raise AuthError("malformed token") from None
        if not isinstance(header, dict) or not isinstance(claims, dict):
            raise AuthError("malformed token")
        alg = header.get("alg")
        if alg not in ALLOWED_ALGS:
            raise AuthError("token algorithm not allowed")
        found = self.jwks.key(str(header.get("kid", "")))
        if found is None:
            raise AuthError("token signed by an unknown key")
        key_alg, key = found
        if key_alg is not None and key_alg != alg:
            raise AuthError("token algorithm does not match its key")
        signed = f"{head_b64}.{body_b64}".encode("ascii")
        try:
            if alg == "RS256":
                if not isinstance(key, rsa.RSAPublicKey):
                    raise AuthError("token algorithm does not match its key")
                key.verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
            else:
                if not isinstance(key, ec.EllipticCurvePublicKey) or len(signature) != 64:
                    raise AuthError("token algorithm does not match its key")
                der = encode_dss_signature(
                    int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
                )
                key.verify(der, signed, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            raise AuthError("bad token signature") from None
        now = self.clock()
        if claims.get("iss") != self.issuer:
            raise AuthError("token issuer not accepted")
        aud = claims.get("aud")
        if not (aud == self.audience or (isinstance(aud, list) and self.audience in aud)):
            raise AuthError("token audience not accepted")
        exp = claims.get("exp")
        if not isinstance(exp, (int, float)) or isinstance(exp, bool):
            raise AuthError("token has no expiry")
        if now >= exp + self.leeway_s:
            raise AuthError("token expired")
        nbf = claims.get("nbf")
        if (
            isinstance(nbf, (int, float))
            and not isinstance(nbf, bool)
            and now < nbf - self.leeway_s
        ):
            raise AuthError("token not yet valid")
        return claims


class ChainAuthenticator(Authenticator):
    """JWT-shaped credentials go to OIDC, everything else to the tokens file."""

    def __init__(self, tokens: TokenAuthenticator | None, oidc: OIDCAuthenticator | None) -> None:
        if tokens is None and oidc is None:
            raise ConfigError(
                "the broker needs --token-file and/or OIDC settings; refusing to run open"
            )
        self.tokens = tokens
        self.oidc = oidc

    def authenticate(self, credential: str, address: str | None) -> Identity:
        if self.oidc is not None and credential.count(".") == 2:
            return self.oidc.authenticate(credential, address)
        if self.tokens is not None:
            return self.tokens.authenticate(credential, address)
        raise AuthError("invalid token")
