"""Redaction for structlog: a processor to place just before the renderer.

::

    structlog.configure(processors=[
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso"),
        RedactingProcessor(),                 # after everything that adds data
        structlog.processors.JSONRenderer(),  # the renderer comes last
    ])

It works the same for records coming from the standard library, inside
``structlog.stdlib.ProcessorFormatter(processors=[..., RedactingProcessor(), renderer])``.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from typing import TYPE_CHECKING, Any

from redactor.integrations._core import FAILED_PLACEHOLDER, Pipeline

if TYPE_CHECKING:
    from redactor.engine.core import LazyTraceId
    from redactor.engine.interface import Finding
    from redactor.settings import Settings

__all__ = ["RedactingProcessor"]

SOURCE = "structlog"

# Keys structlog's ProcessorFormatter adds that hold objects, not data to redact.
_PASSTHROUGH_KEYS = frozenset({"_record", "_from_structlog"})


class RedactingProcessor:
    """A structlog processor redacting the event and every value in the event dict, nested.

    Returns the same event dict when nothing is found (no copy), otherwise a redacted copy.
    ``exc_info`` is rendered to an ``exception`` string first (as structlog's
    ``format_exc_info`` does) so that no later processor renders the raw traceback; pass
    ``render_exceptions=False`` if a processor before this one already does that.

    ``redactor``, ``vault``, ``settings``, ``trace_sources`` and ``trace_field`` work as for
    :class:`redactor.integrations.logging.RedactingFilter`; ``trace_contextvar`` names the
    structlog contextvar holding a trace id (default ``trace_id``).
    """

    def __init__(
        self,
        redactor: Any = None,
        vault: Any = None,
        settings: Settings | None = None,
        *,
        trace_sources: Iterable[str] | str | None = None,
        trace_field: str | None = None,
        trace_contextvar: str = "trace_id",
        render_exceptions: bool = True,
    ) -> None:
        pipeline = Pipeline(
            SOURCE,
            redactor=redactor,
            vault=vault,
            settings=settings,
            trace_sources=trace_sources,
            trace_field=trace_field,
            trace_contextvar=trace_contextvar,
        )
        self._pipeline = pipeline
        # Bound once here: the per-event path is attribute loads and one engine call.
        self._redact = pipeline.redact_field
        self._trace_id = pipeline.trace_id
        self._check = pipeline.check
        self._format_exc_info: Any = None
        if render_exceptions:
            from structlog.processors import format_exc_info

            self._format_exc_info = format_exc_info

    @property
    def pipeline(self) -> Pipeline:
        """The engine, vault writer and trace resolver this processor uses."""
        return self._pipeline

    def __call__(
        self, logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        """Redact ``event_dict``; never raises."""
        try:
            if self._format_exc_info is not None and "exc_info" in event_dict:
                formatted: MutableMapping[str, Any] = self._format_exc_info(
                    logger, method_name, event_dict
                )
                event_dict = formatted
            check = self._check
            if check is not None and check.mapping(event_dict):
                return event_dict  # one scan said clean: what the engine would have returned
            findings: list[Finding] = []
            # One lazy trace id for the whole event: resolved only if a value needs a ref.
            lazy = self._trace_id(event_dict.get)
            out = self._redact(event_dict, lazy, findings, "", "event dict")
            unchanged = out is event_dict
            if unchanged:
                return event_dict
            # If the engine failed on the whole dict, retry value by value so one bad value
            # costs one field, not the event.
            redacted: MutableMapping[str, Any] = (
                out if isinstance(out, dict) else self._per_key(event_dict, lazy, findings)
            )
            if findings:
                event = redacted.get("event")
                self._pipeline.commit(
                    lazy,
                    SOURCE,
                    event if isinstance(event, str) else "",
                    findings,
                )
            return redacted
        except Exception as exc:  # a bug of ours must not cost the host its log line
            self._pipeline.failed(exc, [], 0, "event dict")
            return {
                key: (value if key in _PASSTHROUGH_KEYS else FAILED_PLACEHOLDER)
                for key, value in event_dict.items()
            }

    def _per_key(
        self,
        event_dict: MutableMapping[str, Any],
        trace_id: str | LazyTraceId | None,
        findings: list[Finding],
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in event_dict.items():
            if key in _PASSTHROUGH_KEYS:
                out[key] = value
                continue
            # Redact {key: value} rather than value, so key-name rules still see the key.
            single = {key: value}
            redacted = self._redact(single, trace_id, findings, "", "event value")
            out[key] = (
                redacted.get(key, FAILED_PLACEHOLDER) if isinstance(redacted, dict) else redacted
            )
        return out
