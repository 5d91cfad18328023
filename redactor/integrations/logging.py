"""Redaction for the standard library's :mod:`logging`.

Two drop-in pieces, both usable from :func:`logging.config.dictConfig`:

* :class:`RedactingFilter` -- a :class:`logging.Filter` that rewrites the record in place:
  the formatted message (``record.msg`` becomes the redacted text, ``record.args`` empty),
  the exception text (the traceback is formatted into ``exc_text`` and redacted; ``exc_info``
  is replaced by a stand-in carrying the exception type and redacted message and no
  traceback, so no formatter or exporter can re-render the raw one), ``stack_info`` and every
  ``extra=`` attribute.
* :class:`RedactingHandler` -- wraps a target handler (an instance, the name of a handler in
  the same dictConfig, or a handler config dict) and redacts every record before it.

**Where to attach.** Filters on a *logger* only see records created on that logger, not those
propagated from child loggers; filters on a *handler* see everything the handler emits. Attach
the filter to handlers (or call :func:`install`, which does that for the root logger's
handlers), and put it on OpenTelemetry's ``LoggingHandler`` too: that handler exports record
attributes directly, so the record must be redacted before it runs.

A redacted record is marked (``record.args`` is a private empty tuple), so a second filter
does not process it again and no extra attribute shows up in exported records.
"""

from __future__ import annotations

import logging
import logging.config
import traceback
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from redactor.integrations._core import FAILED_PLACEHOLDER, Pipeline

if TYPE_CHECKING:
    from redactor.engine.core import LazyTraceId
    from redactor.engine.interface import Finding
    from redactor.settings import Settings

__all__ = ["RedactingFilter", "RedactingHandler", "install", "is_redacted"]

SOURCE = "logging"


class _Redacted(tuple):  # type: ignore[type-arg]
    """An empty tuple that marks ``record.args`` of a redacted record.

    It compares equal to ``()`` and is falsy, so ``getMessage()`` and every formatter treat it
    exactly like the empty args they expect.
    """

    __slots__ = ()


_DONE = _Redacted()

# Attributes every LogRecord has, plus those formatters add; anything else came from extra=.
_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "taskName",
}
_BASE_ATTR_COUNT = len(vars(logging.LogRecord("", 0, "", 0, "", (), None)))
# Injected by instrumentation, never user data: skip them instead of scanning them per record.
_SKIPPED_EXTRAS = frozenset(
    {"otelSpanID", "otelTraceID", "otelTraceSampled", "otelServiceName", "_logger", "_name"}
)

_STANDIN_TYPES: dict[type, type[Exception]] = {}
_STANDIN_LIMIT = 512



def _named_handler(name: str) -> logging.Handler | None:
    """A handler configured under ``name`` (dictConfig registers them in a private dict)."""
    registry: dict[str, logging.Handler] = logging._handlers  # type: ignore[attr-defined]  # not in typeshed
    return registry.get(name)

def _standin_type(exc_type: type) -> type[Exception]:
    """An exception class named like ``exc_type`` whose instances carry only redacted text.

    A real instance of ``exc_type`` cannot be built safely (arbitrary constructors), and its
    original carries the raw message and chained causes.
    """
    standin = _STANDIN_TYPES.get(exc_type)
    if standin is None:
        standin = type(
            exc_type.__name__,
            (Exception,),
            {
                "__module__": getattr(exc_type, "__module__", "builtins"),
                "__qualname__": getattr(exc_type, "__qualname__", exc_type.__name__),
                "__doc__": "Redacted stand-in for a logged exception.",
            },
        )
        if len(_STANDIN_TYPES) < _STANDIN_LIMIT:
            _STANDIN_TYPES[exc_type] = standin
    return standin


def is_redacted(record: logging.LogRecord) -> bool:
    """Whether a :class:`RedactingFilter` already processed ``record``."""
    return record.args is _DONE


class RedactingFilter(logging.Filter):
    """A logging filter that redacts the record in place and always lets it through.

    ``redactor`` is an engine (default: ``redactor.create_redactor(settings)``, shared per
    process); ``vault`` a VaultWriter, a vault URL, None (the configured vault, if any) or
    False (no vault). ``trace_sources`` orders where trace ids come from (see
    :class:`redactor.integrations._core.TraceResolver`), ``trace_field`` names a record
    attribute holding one. ``formatter`` formats exception tracebacks before redaction
    (default: :class:`logging.Formatter`).

    All arguments are keyword-compatible, so dictConfig can build it::

        "filters": {"redact": {"()": "redactor.integrations.logging.RedactingFilter"}}
    """

    def __init__(
        self,
        redactor: Any = None,
        vault: Any = None,
        settings: Settings | None = None,
        *,
        name: str = "",
        trace_sources: Iterable[str] | str | None = None,
        trace_field: str | None = None,
        formatter: logging.Formatter | None = None,
    ) -> None:
        super().__init__(name)
        self._pipeline = Pipeline(
            SOURCE,
            redactor=redactor,
            vault=vault,
            settings=settings,
            trace_sources=trace_sources,
            trace_field=trace_field,
        )
        self._formatter = formatter or logging.Formatter()
        self._check = self._pipeline.check

    @property
    def pipeline(self) -> Pipeline:
        """The engine, vault writer and trace resolver this filter uses."""
        return self._pipeline

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact ``record`` in place (once); never raises, never drops the record."""
        args = record.args
        if args is _DONE or (self.name and not super().filter(record)):
            return True
        try:
            check = self._check
            if (
                check is not None
                and len(record.__dict__) <= _BASE_ATTR_COUNT  # no extras, no cached "message"
                and record.exc_info is None
                and not record.exc_text
                and not record.stack_info
            ):
                # The common record, a plain message and nothing else to redact: one scan
                # decides, here, without the calls of the general path below.
                msg = record.msg
                if args:
                    try:
                        plain = record.getMessage()
                    except Exception:
                        plain = None  # the general path keeps the template, drops the args
                else:
                    plain = msg if type(msg) is str else None
                if plain is not None:
                    if check.text(plain):
                        record.msg = plain
                        record.args = _DONE
                        return True
                    self.redact_record(record, prescanned=True)
                    return True
            self.redact_record(record)
        except Exception as exc:  # a bug of ours must not cost the host its log line
            self._fail_record(record, exc)
        return True

    def redact_record(
        self,
        record: logging.LogRecord,
        formatter: logging.Formatter | None = None,
        *,
        prescanned: bool = False,
    ) -> None:
        """Redact every text-bearing part of ``record`` and mark it redacted.

        ``prescanned``: the caller already found the record's text not clean (skip that scan).
        """
        attrs = record.__dict__
        check = None if prescanned else self._check

        # -- gather the originals: the formatted message (formatted once here, so formatters
        # do no %-formatting later), the traceback text, the exception message, stack, extras
        msg = record.msg
        if record.args:
            try:
                text: Any = record.getMessage()
            except Exception:
                # A bad format string is the host's bug; logging would print the raw args to
                # stderr. Keep the template, drop the args (they may hold the secret).
                text = str(msg)
        elif isinstance(msg, str):
            text = msg
        elif isinstance(msg, (dict, list, tuple)):
            text = msg  # structured message (OTel body, ProcessorFormatter): keep its shape
        else:
            text = str(msg)
        exc_info = record.exc_info
        exc_text = record.exc_text
        exc_message: str | None = None
        if exc_info:
            if not exc_text:
                try:
                    exc_text = (formatter or self._formatter).formatException(exc_info)
                except Exception:
                    exc_text = "".join(traceback.format_exception(*exc_info))
            value = exc_info[1]
            try:
                exc_message = str(value) if value is not None else ""
            except Exception:
                exc_message = FAILED_PLACEHOLDER
        extra_keys: list[str] | None = None
        extras: dict[str, Any] | None = None
        if len(attrs) > _BASE_ATTR_COUNT:
            extra_keys = [k for k in attrs if k not in _STANDARD_ATTRS and k not in _SKIPPED_EXTRAS]
            if extra_keys:
                # one engine call over all of them, so key-name rules see the keys
                extras = {k: attrs[k] for k in extra_keys}
        stack = record.stack_info
        fields = (text, exc_text, exc_message, stack, extras)

        # -- a clean record takes one scan; a dirty one is redacted field by field under one
        # lazy trace id, looked up only if a value needs a ref
        if check is not None and (
            check.text(text)
            if type(text) is str and extras is None and not exc_text and not stack
            else check.values(fields)
        ):
            findings: list[Finding] | None = None
            lazy = None
            new_msg, new_exc_text, new_exc_message, new_stack, new_extras = fields
        else:
            findings = []
            lazy = self._pipeline.trace_id(attrs.get)
            out = self._redact_fields(fields, lazy, findings)
            new_msg, new_exc_text, new_exc_message, new_stack, new_extras = out

        record.msg = new_msg
        record.args = _DONE
        if "message" in attrs:  # an earlier formatter cached the raw formatted message
            record.message = new_msg if isinstance(new_msg, str) else str(new_msg)
        if exc_text:
            record.exc_text = new_exc_text
        if exc_info:
            # a stand-in with the redacted message and no traceback, so nothing re-renders the raw
            # one
            record.exc_info = self._standin(exc_info, new_exc_message)
        if new_stack is not stack:
            record.stack_info = new_stack
        if extras is not None and new_extras is not extras and extra_keys:
            if isinstance(new_extras, dict):
                for key in extra_keys:
                    attrs[key] = new_extras.get(key, FAILED_PLACEHOLDER)
            else:
                for key in extra_keys:
                    attrs[key] = FAILED_PLACEHOLDER

        if findings:
            self._pipeline.commit(
                lazy,
                SOURCE,
                new_msg if isinstance(new_msg, str) else str(new_msg),
                findings,
                record.created,
            )

    def _redact_fields(
        self,
        fields: tuple[Any, Any, Any, Any, Any],
        trace_id: str | LazyTraceId | None,
        findings: list[Finding],
    ) -> tuple[Any, Any, Any, Any, Any]:
        """Redact the five text-bearing fields, all under the record's one trace id."""
        redact = self._pipeline.redact_field
        text, exc_text, exc_message, stack, extras = fields
        return (
            redact(text, trace_id, findings, "message", "message"),
            redact(exc_text, trace_id, findings, "exc_text", "exception text")
            if exc_text
            else exc_text,
            redact(exc_message, trace_id, findings, "exception.message", "exception message")
            if exc_message
            else exc_message,
            redact(stack, trace_id, findings, "stack_info", "stack info") if stack else stack,
            redact(extras, trace_id, findings, "extra", "extra") if extras else extras,
        )

    @staticmethod
    def _standin(exc_info: Any, message: Any) -> Any:
        exc_type = exc_info[0]
        if exc_type is None:
            return None
        standin_type = _standin_type(exc_type)
        standin = standin_type(message) if message else standin_type()
        return (standin_type, standin, None)

    def _fail_record(self, record: logging.LogRecord, exc: BaseException) -> None:
        """Fail closed on the whole record: nothing of its text survives."""
        self._pipeline.failed(exc, [], 0, "record")
        attrs = record.__dict__
        for key in [k for k in attrs if k not in _STANDARD_ATTRS and k not in _SKIPPED_EXTRAS]:
            attrs[key] = FAILED_PLACEHOLDER
        record.msg = FAILED_PLACEHOLDER
        record.args = _DONE
        record.exc_info = None
        record.exc_text = FAILED_PLACEHOLDER if record.exc_text else None
        record.stack_info = None
        if "message" in attrs:
            record.message = FAILED_PLACEHOLDER


def _resolve_target(target: Any) -> logging.Handler | None:
    """A handler from an instance, a configured handler's name, or a handler config dict.

    None when ``target`` names a handler not configured yet (dictConfig builds handlers in
    name order, so the target may come after the wrapper); it is looked up again on first use.
    """
    if isinstance(target, logging.Handler):
        return target
    if isinstance(target, str):
        return _named_handler(target)
    if isinstance(target, Mapping):
        configurator = getattr(target, "configurator", None)
        if configurator is None:  # a plain dict, not from inside dictConfig
            configurator = logging.config.DictConfigurator({})
            target = configurator.convert(dict(target))
        handler = configurator.configure_handler(target)
        if not isinstance(handler, logging.Handler):
            raise ValueError(f"target config built a {type(handler).__name__}, not a Handler")
        return handler
    raise ValueError(
        f"target must be a Handler, a handler name or a config dict, not {type(target).__name__}"
    )


class RedactingHandler(logging.Handler):
    """Wraps a target handler; every record reaching the target has been redacted.

    ``target`` is a handler, the name of another handler in the same dictConfig, or a handler
    config dict. Other keyword arguments go to the inner :class:`RedactingFilter`::

        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": "plain"},
            "redacted": {"class": "redactor.integrations.logging.RedactingHandler",
                         "target": "console"},
        }

    A formatter set on this handler is passed on to the target.
    """

    def __init__(
        self,
        target: Any,
        redactor: Any = None,
        vault: Any = None,
        settings: Settings | None = None,
        level: int | str = logging.NOTSET,
        **filter_options: Any,
    ) -> None:
        super().__init__(level)
        self._target_name = target if isinstance(target, str) else None
        self._target = _resolve_target(target)
        self._formatter_pending: logging.Formatter | None = None
        self.redacting_filter = RedactingFilter(redactor, vault, settings, **filter_options)

    @property
    def target(self) -> logging.Handler:
        """The wrapped handler (looked up by name on first use when configured by name)."""
        target = self._target
        if target is None:
            target = _named_handler(self._target_name or "")
            if target is None:
                raise ValueError(f"target handler {self._target_name!r} is not configured")
            if self._formatter_pending is not None:
                target.setFormatter(self._formatter_pending)
                self._formatter_pending = None
            self._target = target
        return target

    def handle(self, record: logging.LogRecord) -> bool:
        """Apply this handler's own filters, redact, and hand the record to the target."""
        passed = self.filter(record)
        if passed:
            if isinstance(passed, logging.LogRecord):  # 3.12+: a filter may replace the record
                record = passed
            self.emit(record)
        return bool(passed)

    def emit(self, record: logging.LogRecord) -> None:
        """Redact ``record`` and forward it to the target handler."""
        try:
            target: logging.Handler | None = self.target
        except ValueError:
            target = None
        if record.args is not _DONE:
            # The target's formatter renders the traceback, so the output looks as it would have.
            formatter = target.formatter if target is not None else None
            try:
                self.redacting_filter.redact_record(record, formatter)
            except Exception as exc:
                self.redacting_filter._fail_record(record, exc)
        if target is None:
            self.handleError(record)  # logging's own policy (raiseExceptions) for a bad config
            return
        target.handle(record)

    def setFormatter(self, fmt: logging.Formatter | None) -> None:
        """Set the formatter on the target, which is the handler that formats."""
        if self._target is None:
            self._formatter_pending = fmt
        else:
            self._target.setFormatter(fmt)

    def flush(self) -> None:
        """Flush the target."""
        if self._target is not None:
            self._target.flush()


def install(
    logger: logging.Logger | str | None = None,
    *,
    include_children: bool = False,
    filter: RedactingFilter | None = None,
    **filter_options: Any,
) -> RedactingFilter:
    """Attach one :class:`RedactingFilter` to every handler of ``logger`` (root by default).

    Handler filters see records propagated from child loggers, which logger filters do not.
    With ``include_children``, handlers of every existing logger below ``logger`` get it too
    (for loggers with ``propagate=False`` and their own handlers). Handlers added later are not
    covered: call again after adding them. Returns the filter.
    """
    if isinstance(logger, str) or logger is None:
        logger = logging.getLogger(logger)
    redacting = filter if filter is not None else RedactingFilter(**filter_options)
    loggers: list[logging.Logger] = [logger]
    if include_children:
        prefix = "" if logger is logging.root else logger.name + "."
        for name, candidate in list(logging.root.manager.loggerDict.items()):
            if isinstance(candidate, logging.Logger) and name.startswith(prefix):
                loggers.append(candidate)
    for each in loggers:
        for handler in list(each.handlers):
            if redacting not in handler.filters and not isinstance(handler, RedactingHandler):
                handler.addFilter(redacting)
    return redacting
