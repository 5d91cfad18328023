"""Drop-in redaction for the places logs and telemetry leave a process.

* :mod:`redactor.integrations.logging` -- ``RedactingFilter`` / ``RedactingHandler`` / ``install``
  for the standard library's :mod:`logging` (dictConfig-ready).
* :mod:`redactor.integrations.structlog` -- ``RedactingProcessor``.
* :mod:`redactor.integrations.otel` -- ``RedactingLogRecordProcessor`` and
  ``RedactingSpanExporter`` for the OpenTelemetry SDK.

Submodules are imported on demand so that using one integration does not import the others'
host libraries.
"""

from __future__ import annotations
