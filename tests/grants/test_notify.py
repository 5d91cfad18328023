"""Webhook notifications against a local receiver on 127.0.0.1: payloads, retries, no values."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

from redactor.grants import GrantService, GrantStore, Identity, WebhookNotifier, parse_policy
from redactor.grants.policy import WebhookTarget
from redactor.grants.testing import FakeVaultReader, Secret, make_record
from redactor.testing import assert_no_leak

CARD = "4111111111111111"
T1 = "4bf92f3577b34da6a3ce929d0e0e4736"


class Receiver:
    def __init__(self, fail_first: int = 0) -> None:
        self.bodies: list[Any] = []
        self.attempts = 0
        self.fail_first = fail_first
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                outer.attempts += 1
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if outer.attempts <= outer.fail_first:
                    self.send_response(503)
                else:
                    outer.bodies.append(json.loads(body))
                    self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(fail_first=2)
    yield r
    r.close()


def test_lifecycle_events_with_retries(receiver: Receiver) -> None:
    notifier = WebhookNotifier([WebhookTarget(receiver.url)], backoff_s=0.01)
    svc = GrantService(GrantStore(":memory:"), parse_policy({}), notifier=notifier)
    reader = FakeVaultReader(
        [make_record(b"k" * 32, T1, "card={0}", [Secret("card", "card", CARD)])]
    )
    started = time.monotonic()
    g = svc.request(Identity("alice"), traces=[T1], categories=["card"], reason="INC-1")
    assert time.monotonic() - started < 0.5  # delivery (with its retries) is off the caller's path
    svc.approve(Identity("bob"), g.id)
    svc.reveal(Identity("alice"), reader, trace=T1)
    svc.revoke(Identity("alice"), g.id)
    assert notifier.flush(5.0)
    events = [b["event"] for b in receiver.bodies]
    assert events == ["request", "decision", "revoke"]
    assert receiver.attempts == 5  # two 503s retried
    assert receiver.bodies[0]["grant"]["traces"] == [T1] and receiver.bodies[0]["actor"] == "alice"
    assert_no_leak(json.dumps(receiver.bodies), [CARD], "webhook payloads")
    notifier.shutdown()
    notifier.shutdown()  # safe twice


def test_slack_format_and_break_glass() -> None:
    r = Receiver()
    try:
        policy = parse_policy(
            {"groups": {"oncall": ["erin"]}, "break_glass": {"groups": ["oncall"]}}
        )
        notifier = WebhookNotifier(
            [WebhookTarget(r.url, format="slack", events=frozenset({"break_glass"}))]
        )
        svc = GrantService(GrantStore(":memory:"), policy, notifier=notifier)
        svc.request(
            Identity("erin"), traces=[T1], categories=["secret"], reason="outage", break_glass=True
        )
        svc.request(
            Identity("erin"), traces=[T1], categories=["secret"], reason="normal"
        )  # not subscribed
        assert notifier.flush(5.0)
        assert len(r.bodies) == 1
        assert (
            "BREAK-GLASS" in r.bodies[0]["text"] and r.bodies[0]["blocks"][0]["type"] == "section"
        )
    finally:
        r.close()


def test_dead_receiver_does_not_block() -> None:
    notifier = WebhookNotifier(
        [WebhookTarget("http://127.0.0.1:9/x")], max_attempts=2, backoff_s=0.01, timeout_s=0.5
    )
    notifier.notify({"event": "request", "grant": {}})
    assert notifier.flush(5.0)
    assert notifier.failed == 1 and notifier.delivered == 0
