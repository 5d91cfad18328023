"""Redaction for the OpenTelemetry Python SDK: log records and spans.

* :class:`RedactingLogRecordProcessor` -- register it on the ``LoggerProvider`` *before* the
  batch/simple processor that exports: processors run in registration order and share the
  record, so the exporting processor sees the redacted body, attributes (including the
  ``exception.message`` / ``exception.stacktrace`` the SDK adds), event name, resource and
  instrumentation-scope attributes.
* :class:`RedactingSpanExporter` -- wraps the real ``SpanExporter``. Spans are frozen at
  ``end()``, so a span processor cannot change them; the wrapper passes the inner exporter
  redacted ``ReadableSpan`` copies (name, attributes, event names and attributes, link
  attributes, status description, resource and scope attributes). Spans with nothing to
  redact are passed through uncopied.

Both follow the SDK lifecycle: ``shutdown()`` is safe to call twice, ``force_flush`` takes
``timeout_millis`` and returns a bool, and neither ``on_emit`` nor ``export`` raises.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk._logs import LogRecordProcessor, ReadWriteLogRecord
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, Status

from redactor.integrations._core import FAILED_PLACEHOLDER, Pipeline

if TYPE_CHECKING:
    from redactor.engine.core import LazyTraceId
    from redactor.engine.interface import Finding
    from redactor.settings import Settings

__all__ = ["RedactingLogRecordProcessor", "RedactingSpanExporter"]

LOGS_SOURCE = "otel.logs"
SPANS_SOURCE = "otel.spans"

_SCALARS = (bool, int, float)


def _none_get(key: str) -> None:
    return None


def _as_dict(attributes: Any) -> dict[str, Any] | None:
    """The attributes as a dict without copying when possible (BoundedAttributes wraps one)."""
    if not attributes:
        return None
    if type(attributes) is dict:
        return attributes
    inner = getattr(attributes, "_dict", None)
    if isinstance(inner, dict):
        return inner
    return dict(attributes)


def _bounded_like(
    values: Mapping[str, Any], original: Any, immutable: bool = True
) -> BoundedAttributes:
    """Redacted ``values`` in a BoundedAttributes keeping the original's limits and drop count."""
    bounded = BoundedAttributes(
        maxlen=getattr(original, "maxlen", None),
        attributes=values,
        immutable=immutable,
        max_value_len=getattr(original, "max_value_len", None),
    )
    bounded.dropped = getattr(original, "dropped", 0)
    return bounded


def _span_texts(span: ReadableSpan, attrs: dict[str, Any] | None) -> list[Any]:
    """Every part of a span the exporter redacts (resource and scope aside)."""
    values: list[Any] = [span.name, attrs, span.status.description]
    for event in span.events:
        values.append(event.name)
        values.append(_as_dict(event.attributes))
    for link in span.links:
        values.append(_as_dict(link.attributes))
    return values


class _StaticCache:
    """Redacted copies of resources / scopes, computed once per distinct object.

    Resources and scopes are shared by every record of a provider, so redacting them per record
    would be waste; their findings go to the vault once, without a trace id.
    """

    def __init__(self, pipeline: Pipeline, source: str) -> None:
        self._pipeline = pipeline
        self._source = source
        self._lock = threading.Lock()
        # id -> (original kept alive so the id stays unique, redacted copy)
        self._cache: dict[int, tuple[Any, Any]] = {}
        self._last: tuple[Any, Any] = (None, None)  # most records share one: no lookup then

    def get(self, obj: Any, build: Any) -> Any:
        last = self._last
        if last[0] is obj:
            return last[1]
        entry = self._cache.get(id(obj))
        if entry is not None and entry[0] is obj:
            self._last = entry
            return entry[1]
        findings: list[Finding] = []
        redacted = build(obj, findings)
        if findings:
            self._pipeline.commit(None, self._source, "", findings)
        with self._lock:
            if len(self._cache) > 64:  # providers are few; a growing cache means churn
                self._cache.clear()
            self._cache[id(obj)] = self._last = (obj, redacted)
        return redacted

    def resource(self, resource: Resource, findings: list[Finding]) -> Resource:
        attrs = _as_dict(resource.attributes)
        if not attrs:
            return resource
        redacted = self._pipeline.redact_field(attrs, None, findings, "resource", "resource")
        if redacted is attrs:
            return resource
        if not isinstance(redacted, dict):
            redacted = dict.fromkeys(attrs, FAILED_PLACEHOLDER)
        return Resource(redacted, resource.schema_url)

    def scope(self, scope: InstrumentationScope, findings: list[Finding]) -> InstrumentationScope:
        attrs = _as_dict(scope.attributes)
        if not attrs:
            return scope
        redacted = self._pipeline.redact_field(attrs, None, findings, "scope", "scope")
        if redacted is attrs:
            return scope
        if not isinstance(redacted, dict):
            redacted = dict.fromkeys(attrs, FAILED_PLACEHOLDER)
        return InstrumentationScope(scope.name, scope.version, scope.schema_url, redacted)


class RedactingLogRecordProcessor(LogRecordProcessor):
    """Redacts OpenTelemetry log records in place; register before the exporting processor.

    ``redactor``, ``vault``, ``settings``, ``trace_sources`` and ``trace_field`` work as for
    :class:`redactor.integrations.logging.RedactingFilter`; the "otel" trace source is the
    record's own span context first, then the active span. ``redact_static`` also redacts
    resource and instrumentation-scope attributes (once per distinct object).
    """

    def __init__(
        self,
        redactor: Any = None,
        vault: Any = None,
        settings: Settings | None = None,
        *,
        trace_sources: Iterable[str] | str | None = None,
        trace_field: str | None = None,
        redact_static: bool = True,
    ) -> None:
        self._pipeline = Pipeline(
            "otel",
            redactor=redactor,
            vault=vault,
            settings=settings,
            trace_sources=trace_sources,
            trace_field=trace_field,
        )
        self._redact = self._pipeline.redact_field
        self._trace_id = self._pipeline.trace_id
        self._check = self._pipeline.check
        self._static = _StaticCache(self._pipeline, LOGS_SOURCE) if redact_static else None
        self._shutdown = False

    @property
    def pipeline(self) -> Pipeline:
        """The engine, vault writer and trace resolver this processor uses."""
        return self._pipeline

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        """Redact ``log_record`` in place; never raises."""
        try:
            self._redact_record(log_record)
        except Exception as exc:  # fail closed on the whole record
            self._pipeline.failed(exc, [], 0, "log record")
            record = log_record.log_record
            record.body = FAILED_PLACEHOLDER
            attributes = _as_dict(record.attributes)
            if attributes:
                record.attributes = dict.fromkeys(attributes, FAILED_PLACEHOLDER)

    def _redact_record(self, log_record: ReadWriteLogRecord) -> None:
        record = log_record.log_record
        attributes = record.attributes
        attrs = _as_dict(attributes)
        body = record.body
        if isinstance(body, _SCALARS):
            body = None  # numbers and booleans carry nothing to mask
        event_name = record.event_name

        static = self._static
        if static is not None:
            resource = log_record.resource
            if resource is not None:
                redacted_resource = static.get(resource, static.resource)
                if redacted_resource is not resource:
                    log_record.resource = redacted_resource
            scope = log_record.instrumentation_scope
            if scope is not None:
                redacted_scope = static.get(scope, static.scope)
                if redacted_scope is not scope:
                    log_record.instrumentation_scope = redacted_scope

        # A clean record takes one scan; a dirty one is redacted field by field under one
        # lazy trace id, looked up only if a value needs a ref.
        check = self._check
        if check is not None and (
            check.mapping(attrs if attrs is not None else {}, body)
            if event_name is None and (body is None or type(body) is str)
            else check.values((body, attrs, event_name))
        ):
            return
        findings: list[Finding] = []
        lazy = self._trace_id(attrs.get if attrs else _none_get, record.trace_id)
        new_body, new_attrs, new_name = self._redact_fields(body, attrs, event_name, lazy, findings)
        if new_body is not body:
            record.body = new_body
        if attrs and new_attrs is not attrs:
            if not isinstance(new_attrs, dict):
                new_attrs = dict.fromkeys(attrs, FAILED_PLACEHOLDER)
            self._write_attributes(record, attributes, attrs, new_attrs)
        if new_name is not event_name:
            record.event_name = new_name

        if findings:
            timestamp_ns = record.timestamp or record.observed_timestamp
            body = record.body
            self._pipeline.commit(
                lazy,
                LOGS_SOURCE,
                body if isinstance(body, str) else "",
                findings,
                timestamp_ns / 1e9 if timestamp_ns else None,
            )

    def _redact_fields(
        self,
        body: Any,
        attrs: dict[str, Any] | None,
        event_name: str | None,
        trace_id: str | LazyTraceId | None,
        findings: list[Finding],
    ) -> tuple[Any, Any, Any]:
        redact = self._redact
        return (
            redact(body, trace_id, findings, "body", "body") if body is not None else body,
            redact(attrs, trace_id, findings, "attributes", "attributes") if attrs else attrs,
            redact(event_name, trace_id, findings, "event_name", "event name")
            if event_name
            else event_name,
        )

    @staticmethod
    def _write_attributes(
        record: Any, attributes: Any, current: dict[str, Any], redacted: dict[str, Any]
    ) -> None:
        if isinstance(attributes, BoundedAttributes):
            try:
                for key, value in redacted.items():
                    if value is not current.get(key):
                        attributes[key] = value
                return
            except TypeError:  # immutable: replace the whole mapping below
                pass
            record.attributes = _bounded_like(redacted, attributes, immutable=False)
        else:
            record.attributes = redacted

    def shutdown(self) -> None:
        """Flush pending vault writes (bounded); safe to call more than once."""
        if self._shutdown:
            return
        self._shutdown = True
        self._pipeline.flush_vault(5.0)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Wait up to ``timeout_millis`` for findings to reach the vault."""
        return self._pipeline.flush_vault(timeout_millis / 1000.0)


class RedactingSpanExporter(SpanExporter):
    """A ``SpanExporter`` that redacts spans and hands the copies to ``inner``.

    Put it where the real exporter would go: ``BatchSpanProcessor(RedactingSpanExporter(
    OTLPSpanExporter()))``. It runs on the batch processor's worker thread, off the
    application's hot path.
    """

    def __init__(
        self,
        inner: SpanExporter,
        redactor: Any = None,
        vault: Any = None,
        settings: Settings | None = None,
        *,
        trace_sources: Iterable[str] | str | None = None,
        trace_field: str | None = None,
        redact_static: bool = True,
    ) -> None:
        if inner is None or not callable(getattr(inner, "export", None)):
            from redactor.engine.interface import ConfigError

            raise ConfigError("RedactingSpanExporter needs the SpanExporter to wrap")
        self._inner = inner
        self._pipeline = Pipeline(
            "otel",
            redactor=redactor,
            vault=vault,
            settings=settings,
            trace_sources=trace_sources,
            trace_field=trace_field,
        )
        self._redact = self._pipeline.redact_field
        self._trace_id = self._pipeline.trace_id
        self._check = self._pipeline.check
        self._static = _StaticCache(self._pipeline, SPANS_SOURCE) if redact_static else None
        self._shutdown = False
        self._shutdown_lock = threading.Lock()

    @property
    def inner(self) -> SpanExporter:
        """The wrapped exporter."""
        return self._inner

    @property
    def pipeline(self) -> Pipeline:
        """The engine, vault writer and trace resolver this exporter uses."""
        return self._pipeline

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Redact ``spans`` and export the copies through the inner exporter."""
        if self._shutdown:
            return SpanExportResult.FAILURE
        redacted: list[ReadableSpan] = []
        for span in spans:
            try:
                redacted.append(self._redact_span(span))
            except Exception as exc:  # fail closed: the span is exported with nothing in it
                self._pipeline.failed(exc, [], 0, "span")
                redacted.append(self._failed_span(span))
        try:
            return self._inner.export(redacted)
        except Exception as exc:  # exporters should not raise; the host must not see it
            self._pipeline._log.warning("inner span exporter raised %s", type(exc).__name__)
            return SpanExportResult.FAILURE

    def _redact_span(self, span: ReadableSpan) -> ReadableSpan:
        redact = self._redact
        context = span.context
        raw_attributes = getattr(span, "_attributes", None)
        if raw_attributes is None:
            raw_attributes = span.attributes
        attrs = _as_dict(raw_attributes)

        resource = span.resource
        scope = span.instrumentation_scope
        static = self._static
        if static is not None:
            new_resource = static.get(resource, static.resource) if resource is not None else None
            new_scope = static.get(scope, static.scope) if scope is not None else None
            changed = new_resource is not resource or new_scope is not scope
        else:
            new_resource, new_scope = resource, scope
            changed = False

        # A clean span takes one scan; a dirty one is redacted part by part under one lazy
        # trace id, looked up only if a value needs a ref.
        check = self._check
        if check is not None and check.values(_span_texts(span, attrs)):
            if not changed:
                return span
            return self._copy(
                span,
                name=span.name,
                attributes=raw_attributes,
                events=span.events,
                links=span.links,
                status=span.status,
                resource=new_resource,
                scope=new_scope,
            )
        trace_id = self._trace_id(
            attrs.get if attrs else _none_get, context.trace_id if context is not None else None
        )
        findings: list[Finding] = []

        name = span.name
        new_name = redact(name, trace_id, findings, "name", "span name") if name else name
        changed |= new_name is not name

        new_attributes: Any = raw_attributes
        if attrs:
            redacted = redact(attrs, trace_id, findings, "attributes", "attributes")
            if redacted is not attrs:
                if not isinstance(redacted, dict):
                    redacted = dict.fromkeys(attrs, FAILED_PLACEHOLDER)
                new_attributes = _bounded_like(redacted, raw_attributes)
                changed = True

        events = span.events
        new_events: list[Any] = []
        for index, event in enumerate(events):
            event_name = event.name
            e_name = redact(event_name, trace_id, findings, f"events.{index}.name", "event name")
            e_attrs_raw = event.attributes
            e_attrs = _as_dict(e_attrs_raw)
            e_new_attrs: Any = e_attrs_raw
            if e_attrs:
                r = redact(
                    e_attrs, trace_id, findings, f"events.{index}.attributes", "event attributes"
                )
                if r is not e_attrs:
                    if not isinstance(r, dict):
                        r = dict.fromkeys(e_attrs, FAILED_PLACEHOLDER)
                    e_new_attrs = _bounded_like(r, e_attrs_raw)
            if e_name is not event_name or e_new_attrs is not e_attrs_raw:
                new_events.append(Event(e_name, e_new_attrs, event.timestamp))
                changed = True
            else:
                new_events.append(event)

        links = span.links
        new_links: list[Any] = []
        for index, link in enumerate(links):
            l_attrs_raw = link.attributes
            l_attrs = _as_dict(l_attrs_raw)
            if l_attrs:
                r = redact(
                    l_attrs, trace_id, findings, f"links.{index}.attributes", "link attributes"
                )
                if r is not l_attrs:
                    if not isinstance(r, dict):
                        r = dict.fromkeys(l_attrs, FAILED_PLACEHOLDER)
                    new_links.append(Link(link.context, _bounded_like(r, l_attrs_raw)))
                    changed = True
                    continue
            new_links.append(link)

        status = span.status
        description = status.description
        new_status = status
        if description:
            new_description = redact(
                description, trace_id, findings, "status.description", "status"
            )
            if new_description is not description:
                new_status = Status(status.status_code, new_description)
                changed = True

        if findings:
            self._pipeline.commit(
                trace_id,
                SPANS_SOURCE,
                new_name,
                findings,
                span.end_time / 1e9 if span.end_time else time.time(),
            )
        if not changed:
            return span
        return self._copy(
            span,
            name=new_name,
            attributes=new_attributes,
            events=new_events,
            links=new_links,
            status=new_status,
            resource=new_resource,
            scope=new_scope,
        )

    @staticmethod
    def _copy(
        span: ReadableSpan,
        *,
        name: str,
        attributes: Any,
        events: Sequence[Any],
        links: Sequence[Any],
        status: Any,
        resource: Any,
        scope: Any,
    ) -> ReadableSpan:
        copy = ReadableSpan(
            name=name,
            context=span.context,
            parent=span.parent,
            resource=resource,
            attributes=attributes,
            events=tuple(events),
            links=tuple(links),
            kind=span.kind,
            # read the private slot: the public property is deprecated and warns
            instrumentation_info=getattr(span, "_instrumentation_info", None),
            status=status,
            start_time=span.start_time,
            end_time=span.end_time,
            instrumentation_scope=scope,
        )
        return copy

    def _failed_span(self, span: ReadableSpan) -> ReadableSpan:
        try:
            return ReadableSpan(
                name=FAILED_PLACEHOLDER,
                context=span.context,
                parent=span.parent,
                kind=span.kind,
                status=Status(span.status.status_code),
                start_time=span.start_time,
                end_time=span.end_time,
            )
        except Exception:
            return ReadableSpan(name=FAILED_PLACEHOLDER)

    def shutdown(self) -> None:
        """Shut the inner exporter down and flush the vault; safe to call more than once."""
        with self._shutdown_lock:
            if self._shutdown:
                return
            self._shutdown = True
        try:
            self._inner.shutdown()
        except Exception as exc:
            self._pipeline._log.warning(
                "inner span exporter shutdown raised %s", type(exc).__name__
            )
        self._pipeline.flush_vault(5.0)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Flush the inner exporter, then the vault, within ``timeout_millis`` overall."""
        deadline = time.monotonic() + timeout_millis / 1000.0
        try:
            inner_ok = bool(self._inner.force_flush(timeout_millis))
        except Exception as exc:
            self._pipeline._log.warning("inner span exporter flush raised %s", type(exc).__name__)
            inner_ok = False
        remaining_s = max(0.0, deadline - time.monotonic())
        return self._pipeline.flush_vault(remaining_s) and inner_ok
