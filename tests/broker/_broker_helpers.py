"""Shared by the broker tests (a unique module name, unlike conftest)."""

from __future__ import annotations

import base64
import http.client
import json
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

KEY = b"k" * 32
CARD, SSN = "4111111111111111", "123-45-6789"
TOKEN = "xoxb-" + "123456789012-123456789012-AbCdEfGhIjKlMnOpQrStUvWx"
T1, T2 = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b700f067aa0ba902b7"
ORIGINALS = [CARD, SSN, TOKEN]
ISSUER, AUDIENCE = "https://idp.test", "redactor-broker"

POLICY = {
    "groups": {"security": ["carol", "dave"], "oncall": []},
    "break_glass": {"groups": ["oncall"]},
    "category": {"card": {"approvers": ["security"], "approvals_required": 2}},
}


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _int(n: int, size: int | None = None) -> str:
    return b64(n.to_bytes(size or (n.bit_length() + 7) // 8, "big"))


class IdP:
    """A test identity provider: an RSA and an EC key, a JWKS, and a token minter."""

    def __init__(self) -> None:
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP256R1())
        rn = self.rsa.public_key().public_numbers()
        en = self.ec.public_key().public_numbers()
        self.jwks = {
            "keys": [
                {
                    "kty": "RSA",
                    "kid": "r1",
                    "alg": "RS256",
                    "use": "sig",
                    "n": _int(rn.n),
                    "e": _int(rn.e),
                },
                {
                    "kty": "EC",
                    "kid": "e1",
                    "alg": "ES256",
                    "crv": "P-256",
                    "x": _int(en.x, 32),
                    "y": _int(en.y, 32),
                },
            ]
        }

    def token(
        self,
        claims: dict[str, Any],
        alg: str = "RS256",
        kid: str | None = None,
        header: dict[str, Any] | None = None,
    ) -> str:
        h = header or {"alg": alg, "typ": "JWT", "kid": kid or ("r1" if alg == "RS256" else "e1")}
        signing = f"{b64(json.dumps(h).encode())}.{b64(json.dumps(claims).encode())}".encode()
        if alg == "RS256":
            sig = self.rsa.sign(signing, padding.PKCS1v15(), hashes.SHA256())
        elif alg == "ES256":
            r, s = decode_dss_signature(self.ec.sign(signing, ec.ECDSA(hashes.SHA256())))
            sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        else:
            sig = b""
        return f"{signing.decode()}.{b64(sig)}"

    def claims(self, user: str, now: float, **extra: Any) -> dict[str, Any]:
        return {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": f"id-{user}",
            "preferred_username": user,
            "exp": now + 300,
            "iat": now,
            **extra,
        }


def call(
    url: str,
    method: str,
    path: str,
    body: bytes | None = None,
    token: str | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], Any]:
    """One raw HTTP request; returns status, lower-cased headers and the parsed JSON body."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    h = dict(headers or {})
    if token is not None:
        h["Authorization"] = f"Bearer {token}"
    conn.request(method, path, body=body, headers=h)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return (
        resp.status,
        {k.lower(): v for k, v in resp.getheaders()},
        json.loads(data) if data else None,
    )
