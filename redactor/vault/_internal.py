"""The vault's own problems, logged once each through a non-propagating internal logger.

Messages here describe what went wrong (backend unreachable, queue full); they never carry a
matched value, a redacted line or a blob. The logger does not propagate so that a host whose
root handler feeds back into redaction cannot loop, and repeats are suppressed so a Redis
outage produces one line, not one per batch.
"""

from __future__ import annotations

import logging
import os
import threading

LOGGER_NAME = "redactor.internal"

_logger = logging.getLogger(LOGGER_NAME)
_logger.propagate = False
_seen: set[str] = set()
_seen_lock = threading.Lock()


def _reinit_after_fork() -> None:
    # The lock may have been held by another thread at fork(); the child would deadlock on it.
    global _seen_lock
    _seen_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reinit_after_fork)


def log_once(key: str, message: str, *args: object, level: int = logging.WARNING) -> None:
    """Log ``message % args`` the first time ``key`` is seen in this process; never raises."""
    try:
        with _seen_lock:
            if key in _seen:
                return
            _seen.add(key)
        _logger.log(level, message, *args)
    except Exception:  # logging trouble must not reach the host either
        pass


def forget(key: str) -> None:
    """Allow ``key`` to be logged again (e.g. after the problem it reported went away)."""
    with _seen_lock:
        _seen.discard(key)
