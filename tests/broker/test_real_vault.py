"""The broker revealing from the real embedded vault: keys, engine, sealed writer, reader."""

from __future__ import annotations

import threading
from pathlib import Path

from redactor import create_redactor
from redactor.broker import BrokerApp, ChainAuthenticator, TokenAuthenticator
from redactor.broker.auth import add_token
from redactor.broker.server import make_server
from redactor.grants import GrantService, GrantStore, default_policy
from redactor.settings import resolve_settings
from redactor.testing import assert_no_leak
from redactor.vault import generate_keys, open_reader, open_writer

from _broker_helpers import call

CARD = "4111 1111 1111 1111"
TRACE = "0af7651916cd43dd8448eb211c80319c"


def test_reveal_from_sealed_vault(tmp_path: Path, caplog) -> None:
    settings = resolve_settings(home=str(tmp_path), environ={})
    generate_keys(settings.keys_dir)
    engine = create_redactor(settings)
    writer = open_writer(settings)
    assert writer is not None
    findings: list = []
    masked = engine.redact(f"charged {CARD}", trace_id=TRACE, findings=findings)
    writer.submit(TRACE, "test", masked, findings)
    assert writer.flush(5.0)
    writer.shutdown()

    tokens_file = tmp_path / "tokens.toml"
    tok = {u: add_token(tokens_file, u) for u in ("alice", "bob")}
    service = GrantService(GrantStore(tmp_path / "grants.db"), default_policy())
    app = BrokerApp(service, ChainAuthenticator(TokenAuthenticator.from_file(tokens_file), None),
                    lambda: open_reader(settings))
    server = make_server(app, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        status, _, body = call(
            server.url,
            "POST",
            "/v1/grants",
            b'{"traces": ["%s"], "categories": ["card"], "reason": "INC-1"}' % TRACE.encode(),
            token=tok["alice"],
        )
        assert status == 201
        gid = body["grant"]["id"]
        assert (
            call(server.url, "POST", f"/v1/grants/{gid}/approve", b"{}", token=tok["bob"])[0] == 200
        )
        status, headers, body = call(
            server.url,
            "POST",
            "/v1/reveal",
            b'{"trace": "%s"}' % TRACE.encode(),
            token=tok["alice"],
        )
        assert status == 200 and headers["cache-control"] == "no-store"
        assert body["records"][0]["text"] == f"charged {CARD}"
        audit = call(server.url, "GET", "/v1/audit?last=50", token=tok["bob"])[2]
        assert_no_leak(str(audit), [CARD], "audit via broker")
        assert_no_leak(caplog.text, [CARD], "broker logs")
    finally:
        server.shutdown()
        server.server_close()
        service.store.close()
