"""A tiny app using the standard library's logging, redacted through dictConfig.

Run it (after ``redactor keys generate`` so findings are kept in the embedded vault)::

    python examples/stdlib_app.py

Records carry a ``trace_id`` field (as a web framework's request middleware might add); the
filter is told to use it as the trace id when no OpenTelemetry span is active.
"""

from __future__ import annotations

import logging
import logging.config
import secrets
import sys

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "redact": {
            "()": "redactor.integrations.logging.RedactingFilter",
            "trace_field": "trace_id",
        }
    },
    "formatters": {"plain": {"format": "%(levelname)s %(name)s %(message)s"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": "plain",
            # on the handler, so records propagated from child loggers are covered
            "filters": ["redact"],
        }
    },
    "root": {"handlers": ["console"], "level": "INFO"},
}


def main() -> None:
    logging.config.dictConfig(LOGGING)
    log = logging.getLogger("shop.payments")
    trace_id = secrets.token_hex(16)
    log.info("charging card %s", "4111 1111 1111 1111", extra={"trace_id": trace_id})
    log.info("user signed in", extra={"trace_id": trace_id, "password": "hunter2-example"})
    try:
        raise ValueError("card 5555555555554444 declined")
    except ValueError:
        log.exception("payment failed", extra={"trace_id": trace_id})
    print(f"trace_id={trace_id}", file=sys.stderr)


if __name__ == "__main__":
    main()
