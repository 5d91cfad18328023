"""Grant notifications: webhook POSTs (plain JSON or Slack-compatible), off the caller's path.

Events carry who/what/which traces and the reason — never a revealed value. Delivery runs on a
daemon thread with a bounded queue: a slow or dead receiver costs notifications (counted in
``dropped``/``failed``), never a blocked approval or reveal.
"""

from __future__ import annotations

import collections
import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

from redactor.grants.policy import WebhookTarget

_log = logging.getLogger("redactor.grants.notify")
_log.propagate = False  # internal diagnostics must not re-enter the host's redacting handlers
if not _log.handlers:
    _log.addHandler(logging.NullHandler())


class Notifier:
    """Base class: receives grant events. The default does nothing."""

    def notify(self, event: dict[str, Any]) -> None:
        """Queue ``event`` for delivery; must not block or raise."""

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until queued events are delivered (or given up on).

        ``True`` if the queue drained.
        """
        return True

    def shutdown(self, timeout_s: float = 5.0) -> None:
        """Deliver what is queued (bounded by ``timeout_s``) and stop; safe to call twice."""


def slack_payload(event: dict[str, Any]) -> dict[str, Any]:
    """A Slack incoming-webhook body (``text`` plus one section block) for an event."""
    kind = event.get("event", "event")
    grant = event.get("grant") or {}
    flag = ":rotating_light: BREAK-GLASS " if grant.get("break_glass") else ""
    traces = ", ".join(grant.get("traces", [])[:5]) or ", ".join(grant.get("refs", [])[:5])
    text = (
        f"{flag}redactor {kind}: {event.get('actor', '?')} — grant {grant.get('id', '?')} "
        f"[{', '.join(grant.get('categories', []))}] traces {traces or '-'} "
        f"status {grant.get('status', '?')}"
    )
    if grant.get("reason"):
        text += f" — reason: {grant['reason']}"
    return {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}


class WebhookNotifier(Notifier):
    """POSTs events to webhook targets with retries and exponential backoff on a background thread.

    Overflow policy: when ``max_queue`` events are waiting, the oldest is dropped and counted.
    A response of 2xx is delivered; 4xx other than 408/429 is final (the receiver rejects the
    payload); network errors, 408, 429 and 5xx are retried up to ``max_attempts`` times.
    """

    def __init__(
        self,
        targets: Sequence[WebhookTarget],
        *,
        max_attempts: int = 4,
        backoff_s: float = 0.5,
        timeout_s: float = 5.0,
        max_queue: int = 1000,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.targets = tuple(targets)
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self.delivered = 0
        self.failed = 0
        self.dropped = 0
        self._queue: collections.deque[tuple[WebhookTarget, bytes]] = collections.deque(
            maxlen=max_queue
        )
        self._cond = threading.Condition()
        self._busy = 0
        self._stopped = False
        self._thread: threading.Thread | None = None

    def notify(self, event: dict[str, Any]) -> None:
        kind = event.get("event", "")
        with self._cond:
            if self._stopped:
                return
            for target in self.targets:
                if kind not in target.events:
                    continue
                body = slack_payload(event) if target.format == "slack" else event
                if len(self._queue) == self._queue.maxlen:
                    self.dropped += 1
                self._queue.append((target, json.dumps(body, sort_keys=True).encode("utf-8")))
            if self._thread is None and self._queue:
                self._thread = threading.Thread(
                    target=self._run, name="redactor-notify", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stopped:
                    self._cond.wait()
                if not self._queue and self._stopped:
                    return
                target, body = self._queue.popleft()
                self._busy += 1
            try:
                ok = self._deliver(target, body)
            finally:
                with self._cond:
                    self._busy -= 1
                    if ok:
                        self.delivered += 1
                    else:
                        self.failed += 1
                    self._cond.notify_all()

    def _deliver(self, target: WebhookTarget, body: bytes) -> bool:
        delay = self.backoff_s
        for attempt in range(1, self.max_attempts + 1):
            req = urllib.request.Request(
                target.url,
                data=body,
                method="POST",
                headers={"Content-Type": "application/json", "User-Agent": "redactor-notify/1"},
            )
            try:
                with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                    if 200 <= resp.status < 300:
                        return True
                    status = resp.status
            except urllib.error.HTTPError as exc:
                status = exc.code
            except (OSError, ValueError) as exc:
                status = 0
                _log.warning("webhook attempt %d failed: %s", attempt, type(exc).__name__)
            if 400 <= status < 500 and status not in (408, 429):
                _log.warning("webhook rejected event with HTTP %d; not retrying", status)
                return False
            if attempt < self.max_attempts:
                time.sleep(delay)
                delay *= 2
        return False

    def flush(self, timeout_s: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self._queue or self._busy:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def shutdown(self, timeout_s: float = 5.0) -> None:
        self.flush(timeout_s)
        with self._cond:
            self._stopped = True
            self._cond.notify_all()


class MultiNotifier(Notifier):
    """Fans an event out to several notifiers."""

    def __init__(self, notifiers: Sequence[Notifier]) -> None:
        self.notifiers = tuple(notifiers)

    def notify(self, event: dict[str, Any]) -> None:
        for n in self.notifiers:
            n.notify(event)

    def flush(self, timeout_s: float = 5.0) -> bool:
        return all([n.flush(timeout_s) for n in self.notifiers])

    def shutdown(self, timeout_s: float = 5.0) -> None:
        for n in self.notifiers:
            n.shutdown(timeout_s)
