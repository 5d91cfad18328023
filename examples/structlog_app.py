"""A tiny app using structlog, with the redacting processor just before the renderer.

Run it (after ``redactor keys generate``)::

    python examples/structlog_app.py

The trace id is bound once per request with structlog's contextvars.
"""

from __future__ import annotations

import secrets
import sys

import structlog

from redactor.integrations.structlog import RedactingProcessor


def main() -> None:
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            RedactingProcessor(),  # after everything that adds data, before the renderer
            structlog.processors.JSONRenderer(),
        ]
    )
    log = structlog.get_logger("shop")
    trace_id = secrets.token_hex(16)
    structlog.contextvars.bind_contextvars(trace_id=trace_id)
    log.info("charging card 4111 1111 1111 1111", amount_cents=1299)
    log.info("calling payment api", headers={"Authorization": "Bearer sk-example-0123456789"})
    log.warning("customer record", customer={"ssn": "496-87-3407", "card": "5555555555554444"})
    try:
        raise RuntimeError("gateway echoed 4111111111111111")
    except RuntimeError:
        log.exception("payment failed")
    structlog.contextvars.clear_contextvars()
    print(f"trace_id={trace_id}", file=sys.stderr)


if __name__ == "__main__":
    main()
