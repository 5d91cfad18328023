"""The engine over OTLP request messages, in place.

Covered, as the OTel SDK integration covers them in-process: log record bodies (any AnyValue:
string, bytes, kvlist, array), log / span / event / link attributes, span names, event names,
status messages, log event names, resource and scope attributes; for metrics, data-point and
exemplar attributes (their values are numbers). Attribute lists are handed to the engine as
dicts, so key-name rules (``password``, ``authorization``…) mask values as they do everywhere.

Clean requests cost one stage-1 scan: every text of the request is collected (keys checked
against the key-name rules on the way) and scanned once; only when that scan or a key is not
known clean are items redacted one by one, each again behind its own one-scan check. A request
that comes out unchanged is forwarded as received, never re-encoded.

Refs and vault entries are keyed by the item's own trace id (log record, span, exemplar);
resource, scope and data-point attributes have none. Anything that goes wrong while rewriting
a field replaces the field with ``[redaction-failed]``; a raw value is never left behind.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from redactor.engine import FAILED_PLACEHOLDER, Finding, Redactor
from redactor.engine.core import MAX_DEPTH, SHORTEST_NUMBER_SECRET
from redactor.gateway.interface import Signal
from redactor.metrics import METRICS

_log = logging.getLogger("redactor.gateway")

LOGS_SOURCE = "gateway.logs"
SPANS_SOURCE = "gateway.spans"
METRICS_SOURCE = "gateway.metrics"
INTEGRATION = "gateway"

_MAX_CHECK_DEPTH = 8  # deeper AnyValues go to the engine, which knows its own limits
_INT64_MAX = 2**63 - 1


def _has_field(message_type: Any, name: str) -> bool:
    return name in message_type.DESCRIPTOR.fields_by_name


# LogRecord.event_name arrived with OTLP 1.5; older opentelemetry-proto builds have no such field
# (and so can carry none: an unknown field is dropped by the decoder).
_LOG_EVENT_NAME = _has_field(LogRecord, "event_name")


class _TooDeep(Exception):
    pass


def _hex_id(raw: bytes) -> str | None:
    """32 hex characters for a 16-byte trace id; None for a missing or all-zero one."""
    if len(raw) != 16 or not any(raw):
        return None
    return raw.hex()


def _to_py(value: Any, depth: int) -> Any:
    """An AnyValue as the Python value the engine understands."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value" or kind == "kvlist_value":
        if depth >= MAX_DEPTH:
            raise _TooDeep
        if kind == "array_value":
            return [_to_py(item, depth + 1) for item in value.array_value.values]
        return {kv.key: _to_py(kv.value, depth + 1) for kv in value.kvlist_value.values}
    return getattr(value, kind)


def _from_py(target: Any, value: Any) -> None:
    """Write a redacted Python value into the AnyValue ``target`` (cleared first)."""
    target.Clear()
    if value is None:
        return
    if isinstance(value, bool):
        target.bool_value = value
    elif isinstance(value, int) and -_INT64_MAX - 1 <= value <= _INT64_MAX:
        target.int_value = value
    elif isinstance(value, float):
        target.double_value = value
    elif isinstance(value, str):
        target.string_value = value
    elif isinstance(value, bytes):
        target.bytes_value = value
    elif isinstance(value, (list, tuple)):
        target.array_value.SetInParent()
        for item in value:
            _from_py(target.array_value.values.add(), item)
    elif isinstance(value, dict):
        target.kvlist_value.SetInParent()
        for key, item in value.items():
            kv = target.kvlist_value.values.add()
            kv.key = str(key)
            _from_py(kv.value, item)
    else:  # nothing the engine returns; never forward what we cannot account for
        target.string_value = FAILED_PLACEHOLDER


class OtlpRedactor:
    """Redacts OTLP export requests in place; safe to share across threads.

    ``vault`` is a :class:`redactor.vault.VaultWriter` (or anything with its ``submit``), or
    None to keep no originals.
    """

    def __init__(self, engine: Redactor, vault: Any = None) -> None:
        self._engine = engine
        self._redact = engine.redact
        self._is_clean_texts = engine.is_clean_texts
        self._covers_key = engine.covers_key
        self._vault = vault
        self._lock = threading.Lock()
        self.failures = 0  # fields replaced by the failure placeholder by the gateway itself

    # -- entry point ----------------------------------------------------------------------

    def redact(self, signal: Signal, request: Any) -> bool:
        """Redact ``request`` (an Export*ServiceRequest) in place; True when anything changed."""
        collect: Callable[[Any, list[Any]], bool]
        redact_item: Callable[[Any], bool]
        if signal is Signal.LOGS:
            groups, scopes, items = "resource_logs", "scope_logs", "log_records"
            collect, redact_item = self._collect_log, self._redact_log
        elif signal is Signal.TRACES:
            groups, scopes, items = "resource_spans", "scope_spans", "spans"
            collect, redact_item = self._collect_span, self._redact_span
        else:
            groups, scopes, items = "resource_metrics", "scope_metrics", "metrics"
            collect, redact_item = self._collect_metric, self._redact_metric
        source = _SOURCES[signal]

        # One scan for the whole request: the common, clean case ends here.
        texts: list[Any] = []
        known = True
        for group in getattr(request, groups):
            known = known and self._collect_kvs(group.resource.attributes, texts, 0)
            for scope in getattr(group, scopes):
                known = known and self._collect_kvs(scope.scope.attributes, texts, 0)
                for item in getattr(scope, items):
                    known = known and collect(item, texts)
                    if not known:
                        break
        if known and self._scan(texts):
            return False

        changed = False
        for group in getattr(request, groups):
            changed |= self._redact_static(group.resource.attributes, "resource", source)
            for scope in getattr(group, scopes):
                changed |= self._redact_static(scope.scope.attributes, "scope", source)
                for item in getattr(scope, items):
                    texts = []
                    if collect(item, texts) and self._scan(texts):
                        continue
                    changed |= redact_item(item)
        return changed

    # -- the one-scan clean check -----------------------------------------------------------

    def _scan(self, texts: list[Any]) -> bool:
        """Stage 1 over all the texts at once (see :meth:`Redactor.is_clean_texts`)."""
        return self._is_clean_texts(texts)

    def _collect_kvs(self, kvs: Iterable[Any], texts: list[Any], depth: int) -> bool:
        covers = self._covers_key
        for kv in kvs:
            if covers(kv.key):
                return False  # its value is masked whatever it is: the engine must see it
            if not self._collect_value(kv.value, texts, depth):
                return False
        return True

    def _collect_value(self, value: Any, texts: list[Any], depth: int) -> bool:
        kind = value.WhichOneof("value")
        if kind == "string_value" or kind == "bytes_value":
            texts.append(getattr(value, kind))
        elif kind == "int_value":
            number = value.int_value
            if not -SHORTEST_NUMBER_SECRET < number < SHORTEST_NUMBER_SECRET:
                texts.append(str(number))  # a card number or SSN sent as an integer
        elif kind == "array_value":
            if depth >= _MAX_CHECK_DEPTH:
                return False
            for item in value.array_value.values:
                if not self._collect_value(item, texts, depth + 1):
                    return False
        elif kind == "kvlist_value":
            if depth >= _MAX_CHECK_DEPTH:
                return False
            return self._collect_kvs(value.kvlist_value.values, texts, depth + 1)
        return True

    def _collect_log(self, record: Any, texts: list[Any]) -> bool:
        if _LOG_EVENT_NAME and record.event_name:
            texts.append(record.event_name)
        return self._collect_value(record.body, texts, 0) and self._collect_kvs(
            record.attributes, texts, 0
        )

    def _collect_span(self, span: Any, texts: list[Any]) -> bool:
        texts.append(span.name)
        if span.status.message:
            texts.append(span.status.message)
        if not self._collect_kvs(span.attributes, texts, 0):
            return False
        for event in span.events:
            texts.append(event.name)
            if not self._collect_kvs(event.attributes, texts, 0):
                return False
        return all(self._collect_kvs(link.attributes, texts, 0) for link in span.links)

    def _collect_metric(self, metric: Any, texts: list[Any]) -> bool:
        for point in _data_points(metric):
            if not self._collect_kvs(point.attributes, texts, 0):
                return False
            for exemplar in getattr(point, "exemplars", ()):
                if not self._collect_kvs(exemplar.filtered_attributes, texts, 0):
                    return False
        return True

    # -- redaction, item by item ------------------------------------------------------------

    def _redact_static(self, kvs: Any, path: str, source: str) -> bool:
        """Resource or scope attributes: no trace id of their own."""
        texts: list[Any] = []
        if not kvs or (self._collect_kvs(kvs, texts, 0) and self._scan(texts)):
            return False
        findings: list[Finding] = []
        changed = self._redact_kvs(kvs, None, findings, path)
        self._commit(None, source, "", findings, None)
        return changed

    def _redact_log(self, record: Any) -> bool:
        trace_id = _hex_id(record.trace_id)
        findings: list[Finding] = []
        changed = False
        if record.HasField("body"):
            changed |= self._redact_any_value(record.body, trace_id, findings, "body")
        changed |= self._redact_kvs(record.attributes, trace_id, findings, "attributes")
        if _LOG_EVENT_NAME and record.event_name:
            new = self._redact_text(record.event_name, trace_id, findings, "event_name")
            if new is not None:
                record.event_name = new
                changed = True
        timestamp_ns = record.time_unix_nano or record.observed_time_unix_nano
        body = record.body.string_value if record.body.WhichOneof("value") == "string_value" else ""
        self._commit(trace_id, LOGS_SOURCE, body, findings, timestamp_ns)
        return changed

    def _redact_span(self, span: Any) -> bool:
        trace_id = _hex_id(span.trace_id)
        findings: list[Finding] = []
        changed = False
        new = self._redact_text(span.name, trace_id, findings, "name")
        if new is not None:
            span.name = new
            changed = True
        changed |= self._redact_kvs(span.attributes, trace_id, findings, "attributes")
        for index, event in enumerate(span.events):
            new = self._redact_text(event.name, trace_id, findings, f"events.{index}.name")
            if new is not None:
                event.name = new
                changed = True
            changed |= self._redact_kvs(
                event.attributes, trace_id, findings, f"events.{index}.attributes"
            )
        for index, link in enumerate(span.links):
            changed |= self._redact_kvs(
                link.attributes, trace_id, findings, f"links.{index}.attributes"
            )
        if span.status.message:
            new = self._redact_text(span.status.message, trace_id, findings, "status.message")
            if new is not None:
                span.status.message = new
                changed = True
        self._commit(
            trace_id, SPANS_SOURCE, span.name, findings, span.end_time_unix_nano or None
        )
        return changed

    def _redact_metric(self, metric: Any) -> bool:
        changed = False
        for index, point in enumerate(_data_points(metric)):
            findings: list[Finding] = []
            changed |= self._redact_kvs(
                point.attributes, None, findings, f"data_points.{index}.attributes"
            )
            self._commit(None, METRICS_SOURCE, metric.name, findings, point.time_unix_nano)
            for number, exemplar in enumerate(getattr(point, "exemplars", ())):
                trace_id = _hex_id(exemplar.trace_id)
                findings = []
                changed |= self._redact_kvs(
                    exemplar.filtered_attributes,
                    trace_id,
                    findings,
                    f"data_points.{index}.exemplars.{number}.filtered_attributes",
                )
                self._commit(
                    trace_id, METRICS_SOURCE, metric.name, findings, exemplar.time_unix_nano
                )
        return changed

    # -- fields -----------------------------------------------------------------------------

    def _redact_text(
        self, text: str, trace_id: str | None, findings: list[Finding], path: str
    ) -> str | None:
        """The redacted text, or None when unchanged."""
        if not text:
            return None
        new = self._redact(text, trace_id=trace_id, findings=findings, path=path)
        if new is text:
            return None
        return new if isinstance(new, str) else FAILED_PLACEHOLDER

    def _redact_any_value(
        self, value: Any, trace_id: str | None, findings: list[Finding], path: str
    ) -> bool:
        keep = len(findings)
        try:
            original = _to_py(value, 0)
            new = self._redact(original, trace_id=trace_id, findings=findings, path=path)
            if new is original:
                return False
            _from_py(value, new)
        except Exception as exc:
            del findings[keep:]
            self._failed(exc, path)
            value.Clear()
            value.string_value = FAILED_PLACEHOLDER
        return True

    def _redact_kvs(
        self, kvs: Any, trace_id: str | None, findings: list[Finding], path: str
    ) -> bool:
        if not kvs:
            return False
        keep = len(findings)
        try:
            values = {kv.key: _to_py(kv.value, 1) for kv in kvs}
            if len(values) != len(kvs):
                # Duplicate keys (invalid OTLP, but on the wire): each pair on its own, so the
                # first of two equal keys is redacted too.
                changed = False
                for kv in kvs:
                    changed |= self._redact_kvs([kv], trace_id, findings, path)
                return changed
            new = self._redact(values, trace_id=trace_id, findings=findings, path=path)
            if new is values:
                return False
            if not isinstance(new, dict):  # the engine failed closed on the whole mapping
                new = dict.fromkeys(values, FAILED_PLACEHOLDER)
            for kv in kvs:
                item = new.get(kv.key, FAILED_PLACEHOLDER)
                if item is not values[kv.key]:
                    _from_py(kv.value, item)
        except Exception as exc:
            del findings[keep:]
            self._failed(exc, path)
            for kv in kvs:
                kv.value.Clear()
                kv.value.string_value = FAILED_PLACEHOLDER
        return True

    def _failed(self, exc: BaseException, path: str) -> None:
        with self._lock:
            self.failures += 1
            first = self.failures == 1
        METRICS.count_failure(INTEGRATION)
        if first:  # once, and never with a value
            _log.warning(
                "redaction failed at %s (%s); the field was replaced by %s",
                path,
                type(exc).__name__,
                FAILED_PLACEHOLDER,
            )

    def _commit(
        self,
        trace_id: str | None,
        source: str,
        redacted: str,
        findings: list[Finding],
        timestamp_ns: int | None,
    ) -> None:
        if not findings:
            return
        METRICS.count_findings(findings)
        vault = self._vault
        if vault is None:
            return
        try:
            vault.submit(
                trace_id,
                source,
                redacted,
                tuple(findings),
                timestamp_ns / 1e9 if timestamp_ns else None,
            )
        except Exception as exc:  # the writer promises not to raise; stay up regardless
            _log.warning("vault submit failed (%s); originals were not stored", type(exc).__name__)


_SOURCES = {Signal.LOGS: LOGS_SOURCE, Signal.TRACES: SPANS_SOURCE, Signal.METRICS: METRICS_SOURCE}


def _data_points(metric: Any) -> Any:
    kind = metric.WhichOneof("data")
    if kind is None:
        return ()
    return getattr(metric, kind).data_points
