from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from redactor.broker import (
    JWKS,
    BrokerApp,
    ChainAuthenticator,
    OIDCAuthenticator,
    RateLimiter,
    TokenAuthenticator,
)
from redactor.broker.auth import add_token
from redactor.broker.server import make_server
from redactor.grants import GrantService, GrantStore, parse_policy
from redactor.grants.testing import FakeVaultReader, Secret, make_record

from _broker_helpers import AUDIENCE, CARD, ISSUER, KEY, POLICY, SSN, T1, T2, TOKEN, Clock, IdP


@pytest.fixture(scope="session")
def idp() -> IdP:
    return IdP()


@pytest.fixture
def broker(tmp_path: Path, idp: IdP) -> Iterator[dict[str, Any]]:
    clock = Clock()
    tokens_file = tmp_path / "tokens.toml"
    tokens = {u: add_token(tokens_file, u) for u in ("alice", "bob", "carol", "dave")}
    tokens["erin"] = add_token(tokens_file, "erin", ["oncall"])
    reader = FakeVaultReader(
        [
            make_record(
                KEY,
                T1,
                "checkout card={0} ssn={1} slack={2}",
                [
                    Secret("card", "card", CARD),
                    Secret("ssn", "ssn", SSN),
                    Secret("secret", "slack_token", TOKEN),
                ],
            ),
            make_record(
                KEY, T2, "other ssn={0}", [Secret("ssn", "ssn", "987-65-4329")], record_id="r2"
            ),
        ]
    )
    service = GrantService(GrantStore(tmp_path / "grants.db"), parse_policy(POLICY), clock=clock)
    auth = ChainAuthenticator(
        TokenAuthenticator.from_file(tokens_file),
        OIDCAuthenticator(JWKS.from_keys(idp.jwks), issuer=ISSUER, audience=AUDIENCE, clock=clock),
    )
    app = BrokerApp(
        service,
        auth,
        lambda: reader,
        max_body_bytes=64 * 1024,
        rate_limiter=RateLimiter(per_minute=600, burst=20),
    )
    server = make_server(app, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield {
            "url": server.url,
            "tokens": tokens,
            "clock": clock,
            "reader": reader,
            "service": service,
            "app": app,
            "home": tmp_path,
        }
    finally:
        server.shutdown()
        server.server_close()
        service.store.close()
