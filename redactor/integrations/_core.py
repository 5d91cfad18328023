"""What every integration shares: engine and vault resolution, trace ids, failure handling.

Integrations are the boundary with host code, so everything here is built to never raise on
the hot path: a failing engine call yields :data:`FAILED_PLACEHOLDER` for that field, is counted
in :data:`redactor.metrics.METRICS`, and is logged once through the non-propagating
``redactor.internal`` logger with the exception *type* only (an exception message may quote
the text being redacted).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from redactor.engine.core import LazyTraceId, Redactor
from redactor.engine.interface import ConfigError
from redactor.engine.keynames import VALUE_FIELDS
from redactor.engine.masks import FAILED_PLACEHOLDER
from redactor.metrics import METRICS

if TYPE_CHECKING:
    from redactor.engine.interface import Finding
    from redactor.settings import Settings

__all__ = [
    "CleanCheck",
    "DEFAULT_TRACE_SOURCES",
    "FAILED_PLACEHOLDER",
    "INTERNAL_LOGGER_NAME",
    "Pipeline",
    "TraceResolver",
    "internal_logger",
    "normalize_trace_id",
]

INTERNAL_LOGGER_NAME = "redactor.internal"

#: Where a record's trace id comes from, tried in this order unless configured otherwise:
#: the active OpenTelemetry span (or the telemetry item's own span context), attributes that
#: OpenTelemetry's logging instrumentation injects (``otelTraceID``), structlog's contextvars
#: (``trace_id``), and finally a configured record field.
DEFAULT_TRACE_SOURCES: tuple[str, ...] = ("otel", "record", "contextvars", "field")
_KNOWN_TRACE_SOURCES = frozenset(DEFAULT_TRACE_SOURCES)
OTEL_RECORD_TRACE_KEYS: tuple[str, ...] = ("otelTraceID", "otel_trace_id")

_DEDUP_LIMIT = 1024


class _OnceFilter(logging.Filter):
    """Lets each distinct internal message through once per process (bounded memory)."""

    def __init__(self) -> None:
        super().__init__()
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        key = f"{record.levelno}:{record.msg}:{record.args!r}"
        with self._lock:
            if key in self._seen or len(self._seen) >= _DEDUP_LIMIT:
                return False
            self._seen.add(key)
        return True


_internal_lock = threading.Lock()


def internal_logger() -> logging.Logger:
    """redactor's own logger: non-propagating (so host redaction filters never recurse into
    it and host handlers never see it unasked) and de-duplicating.

    Without handlers of its own, warnings reach stderr through ``logging.lastResort``.
    Messages logged here carry integration names and exception types, never record text.
    """
    logger = logging.getLogger(INTERNAL_LOGGER_NAME)
    if logger.propagate or not any(isinstance(f, _OnceFilter) for f in logger.filters):
        with _internal_lock:
            logger.propagate = False
            if not any(isinstance(f, _OnceFilter) for f in logger.filters):
                logger.addFilter(_OnceFilter())
    return logger


# -- trace ids ---------------------------------------------------------------------------------

_HEX_RE = re.compile(r"[0-9a-f]{1,32}")
_MAX_TRACE_ID = 1 << 128


def normalize_trace_id(value: object) -> str | None:
    """A trace id as 32 lowercase hex characters, or None when ``value`` is not a valid one.

    Accepts OpenTelemetry's integer form, hex strings with or without ``0x`` / dashes (UUIDs),
    and 16 raw bytes. All-zero ids are OpenTelemetry's "invalid" and yield None.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return f"{value:032x}" if 0 < value < _MAX_TRACE_ID else None
    if isinstance(value, (bytes, bytearray)):
        if len(value) != 16:
            return None
        value = bytes(value).hex()
    if not isinstance(value, str):
        return None
    text = value
    if len(text) != 32 or not _HEX_RE.fullmatch(text):
        text = text.strip().lower().replace("-", "")
        if text.startswith("0x"):
            text = text[2:]
        if not _HEX_RE.fullmatch(text):
            return None
        text = text.rjust(32, "0")
    if text == "0" * 32:
        return None
    return text


def _make_active_span_reader() -> Callable[[], str | None]:
    try:
        from opentelemetry.context import get_current
        from opentelemetry.trace.propagation import _SPAN_KEY
    except ImportError:
        return lambda: None

    def read() -> str | None:
        # get_current_span() would wrap a missing span in INVALID_SPAN; reading the context
        # directly is a dict lookup (this runs per dirty record and per dirty span).
        span: Any = get_current().get(_SPAN_KEY)
        if span is None:
            return None
        context = span.get_span_context()
        return f"{context.trace_id:032x}" if context.is_valid else None

    return read


#: The trace id of the active OpenTelemetry span, if there is a valid one.
active_span_trace_id: Callable[[], str | None] = _make_active_span_reader()


def _structlog_contextvar(key: str) -> Callable[[], object]:
    """A cheap reader of one structlog contextvar (structlog's own getter copies the context)."""
    try:
        import structlog.contextvars as sc
    except ImportError:
        return lambda: None
    store = getattr(sc, "_CONTEXT_VARS", None)
    name = getattr(sc, "STRUCTLOG_KEY_PREFIX", "structlog_") + key
    if not isinstance(store, dict):
        return lambda: sc.get_contextvars().get(key)

    def read() -> object:
        var = store.get(name)
        if var is None:
            return None
        value = var.get(Ellipsis)
        return None if value is Ellipsis else value

    return read


class TraceResolver:
    """Finds a record's trace id from the configured sources, in order.

    ``sources`` is any ordering of ``"otel"``, ``"record"``, ``"contextvars"``, ``"field"``.
    ``field`` names the record attribute / event key used by the ``"field"`` source;
    ``contextvar`` is the structlog contextvar key (default ``trace_id``).
    """

    __slots__ = ("sources", "field", "_steps", "_ctx_reader", "_record_keys")

    def __init__(
        self,
        sources: Iterable[str] | str | None = None,
        *,
        field: str | None = None,
        contextvar: str = "trace_id",
        record_keys: Sequence[str] = OTEL_RECORD_TRACE_KEYS,
    ) -> None:
        if sources is None:
            sources = DEFAULT_TRACE_SOURCES
        elif isinstance(sources, str):
            sources = [s.strip() for s in sources.split(",") if s.strip()]
        ordered = tuple(sources)
        unknown = [s for s in ordered if s not in _KNOWN_TRACE_SOURCES]
        if unknown:
            raise ConfigError(
                f"unknown trace id source(s) {unknown}; choose from {sorted(_KNOWN_TRACE_SOURCES)}"
            )
        # "field" without a field name is a no-op, so drop it rather than test it per record.
        self.sources = tuple(s for s in ordered if s != "field" or field)
        self.field = field
        self._record_keys = tuple(record_keys)
        self._ctx_reader = _structlog_contextvar(contextvar)

    def resolve(self, get: Callable[[str], object], own_trace_id: object = None) -> str | None:
        """The first valid trace id; ``get`` reads a record attribute / key by name and
        ``own_trace_id`` is the telemetry item's own span context (used by the "otel" source
        before the active span)."""
        for source in self.sources:
            if source == "otel":
                found = normalize_trace_id(own_trace_id) if own_trace_id else None
                if found is None:
                    found = active_span_trace_id()
            elif source == "record":
                found = None
                for key in self._record_keys:
                    found = normalize_trace_id(get(key))
                    if found is not None:
                        break
            elif source == "contextvars":
                found = normalize_trace_id(self._ctx_reader())
            else:
                found = normalize_trace_id(get(self.field)) if self.field else None
            if found is not None:
                return found
        return None


# -- engine and vault --------------------------------------------------------------------------

_shared_lock = threading.Lock()
_shared_redactors: dict[Any, Any] = {}
_shared_writers: dict[Any, Any] = {}


def resolve_settings(settings: Settings | None) -> Settings:
    """``settings`` or, when None, settings resolved from the environment."""
    if settings is not None:
        return settings
    from redactor.settings import resolve_settings as resolve

    return resolve()


def shared_redactor(settings: Settings | None) -> Any:
    """One engine per settings value per process (rule compilation is paid once)."""
    from redactor import create_redactor

    resolved = resolve_settings(settings)
    with _shared_lock:
        engine = _shared_redactors.get(resolved)
        if engine is None:
            engine = create_redactor(resolved)
            _shared_redactors[resolved] = engine
        return engine


def shared_writer(settings: Settings | None, url: str | None) -> Any:
    """One vault writer per (settings, url) per process, so integrations share its queue
    and background thread; None when no vault is configured."""
    from redactor.vault import open_writer

    resolved = resolve_settings(settings)
    key = (resolved, url)
    with _shared_lock:
        if key not in _shared_writers:
            writer = open_writer(resolved, url=url)
            _shared_writers[key] = writer
            if writer is not None:
                METRICS.watch_vault(writer)
        return _shared_writers[key]


def resolve_vault(vault: Any, settings: Settings | None) -> Any:
    """Turn the ``vault=`` argument of an integration into a writer (or None).

    A writer object is used as is; a string is a vault URL; None opens the configured vault
    (None again when none is configured); False disables the vault explicitly.
    """
    if vault is False:
        return None
    if vault is None or isinstance(vault, str):
        return shared_writer(settings, vault)
    if not callable(getattr(vault, "submit", None)):
        raise ConfigError(f"vault must be a VaultWriter, a URL or None, got {type(vault).__name__}")
    METRICS.watch_vault(vault)
    return vault


# -- the clean path ----------------------------------------------------------------------------

# How the engine treats a value of a given type (Redactor._redact_any): scanned as text,
# returned as is, scanned as text when it is a long int, walked, or anything else this check
# leaves to the engine itself.
_TEXT, _INERT, _INT, _DICT, _SEQ, _ENGINE = range(6)
_KINDS_LIMIT = 256
_KEYS_LIMIT = 4096
# Deep structures are rare in records; past this depth the engine walks them itself.
_MAX_CHECK_DEPTH = 8


def _kind_of(cls: type) -> int:
    if cls is str:
        return _TEXT
    if cls is int:
        return _INT
    if cls is dict:
        return _DICT
    if cls is list or cls is tuple:
        return _SEQ
    if issubclass(cls, (str, bytes, dict, list, tuple)):
        return _ENGINE  # bytes and subclasses: rare, and the engine knows them best
    return _INERT  # None, bool, float, int subclasses, any other object: the engine keeps them


class CleanCheck:
    """Stage 1 over every text of a record in one scan: True only when the engine would
    certainly return each of the record's values unchanged.

    A clean record (the common case) then costs one scan, with no per-field engine calls,
    findings list or trace id. Anything it is unsure of -- a trigger anywhere in the record, a
    key that a key-name rule covers, bytes, an oversized or deeply nested value -- sends the
    record through the engine as usual, so the output is the same either way.

    Texts are joined with newlines: the scanner's contract (``scrub`` relies on it for
    megabyte chunks) is that a newline-joined buffer triggers wherever one of its lines does.
    """

    __slots__ = (
        "_is_clean_texts",
        "text",
        "_covers_key",
        "_covers_named_value",
        "_clean_keys",
        "_kinds",
    )

    def __init__(self, engine: Redactor) -> None:
        self._is_clean_texts = engine.is_clean_texts
        #: Whether one string is clean (the stdlib message): the engine's own one-string test.
        self.text: Callable[[str], bool] = engine.is_clean_text
        self._covers_key = engine.covers_key
        self._covers_named_value = engine.covers_named_value
        self._clean_keys: set[str] = set()  # keys seen not covered: one subset test per dict
        self._kinds: dict[type, int] = {}

    @classmethod
    def for_engine(cls, engine: Any) -> CleanCheck | None:
        """A check for ``engine``, or None when it is not redactor's own (a subclass that
        overrides ``redact`` or ``is_clean`` decides for itself what clean means)."""
        if not isinstance(engine, Redactor):
            return None
        kind = type(engine)
        if (
            kind.redact is not Redactor.redact
            or kind.is_clean is not Redactor.is_clean
            or kind.is_clean_texts is not Redactor.is_clean_texts
            or kind.is_clean_text is not Redactor.is_clean_text
        ):
            return None
        return cls(engine)

    # Any error here (a dict changed by another thread, a scanner failure) only means "not
    # known clean": the engine then meets the same trouble and fails closed as it always does.

    def mapping(self, mapping: Any, text: str | None = None) -> bool:
        """Whether a dict (a structlog event dict, OTel attributes) and ``text`` are clean."""
        parts: list[str] = [] if text is None else [text]
        try:
            return (
                type(mapping) is dict
                and self._collect_dict(mapping, parts, 0)
                and self._is_clean_texts(parts)
            )
        except Exception:
            return False

    def values(self, values: Iterable[Any]) -> bool:
        """Whether every value (each one a separate engine call otherwise) is clean."""
        parts: list[str] = []
        try:
            return self._collect_seq(values, parts, 0) and self._is_clean_texts(parts)
        except Exception:
            return False

    def _keys_clean(self, mapping: dict[Any, Any]) -> bool:
        known = self._clean_keys
        if mapping.keys() <= known:
            return True
        covers = self._covers_key
        for key in mapping:
            if key in known:
                continue
            if type(key) is not str or covers(key):
                return False
            if len(known) >= _KEYS_LIMIT:
                known.clear()
            known.add(key)
        return True

    def _collect_dict(self, mapping: dict[Any, Any], parts: list[str], depth: int) -> bool:
        return (
            self._keys_clean(mapping)
            and (mapping.keys().isdisjoint(VALUE_FIELDS) or not self._covers_named_value(mapping))
            and self._collect_seq(mapping.values(), parts, depth)
        )

    def _collect_seq(self, values: Iterable[Any], parts: list[str], depth: int) -> bool:
        kinds = self._kinds
        for value in values:
            cls = type(value)
            if cls is str:
                parts.append(value)
                continue
            kind = kinds.get(cls)
            if kind is None:
                kind = _kind_of(cls)
                if len(kinds) < _KINDS_LIMIT:
                    kinds[cls] = kind
            if kind == _INERT:
                continue
            if kind == _INT:
                parts.append(str(value))  # long ones are scanned as card numbers and SSNs
            elif kind == _DICT:
                if depth >= _MAX_CHECK_DEPTH or not self._collect_dict(value, parts, depth + 1):
                    return False
            elif kind == _SEQ:
                if depth >= _MAX_CHECK_DEPTH or not self._collect_seq(value, parts, depth + 1):
                    return False
            else:
                return False
        return True


class Pipeline:
    """Engine + vault + trace resolver for one integration, with fail-closed wrappers."""

    __slots__ = (
        "integration",
        "engine",
        "vault",
        "trace",
        "check",
        "_redact",
        "_lazy_trace",
        "_log",
    )

    def __init__(
        self,
        integration: str,
        *,
        redactor: Any = None,
        vault: Any = None,
        settings: Settings | None = None,
        trace_sources: Iterable[str] | str | None = None,
        trace_field: str | None = None,
        trace_contextvar: str = "trace_id",
    ) -> None:
        if redactor is None:
            redactor = shared_redactor(settings)
        redact = getattr(redactor, "redact", None)
        if not callable(redact):
            raise ConfigError(
                f"redactor must have a redact() method, got {type(redactor).__name__}"
            )
        self.integration = integration
        self.engine = redactor
        self._redact = redact
        # redactor's own engine takes a LazyTraceId; a duck-typed one gets a plain string.
        self._lazy_trace = isinstance(redactor, Redactor)
        #: The one-scan clean-record check, or None when the engine must see every record.
        self.check = CleanCheck.for_engine(redactor)
        self.vault = resolve_vault(vault, settings)
        self.trace = TraceResolver(trace_sources, field=trace_field, contextvar=trace_contextvar)
        self._log = internal_logger()
        METRICS.register()

    def trace_id(
        self, get: Callable[[str], object], own_trace_id: object = None
    ) -> str | LazyTraceId | None:
        """The record's trace id for the engine, shared by all of the record's fields.

        For redactor's engine it is a :class:`LazyTraceId`, looked up only when a finding
        needs a ref, so clean records never pay for it; ``get`` and ``own_trace_id`` are as
        for :meth:`TraceResolver.resolve`.
        """
        trace = self.trace
        if not trace.sources:
            return None
        if self._lazy_trace:
            return LazyTraceId(lambda: trace.resolve(get, own_trace_id))
        return trace.resolve(get, own_trace_id)

    def redact(
        self, value: Any, trace_id: str | LazyTraceId | None, findings: list[Finding], path: str
    ) -> Any:
        """``value`` redacted, the same object when clean, the failure placeholder on error."""
        try:
            return self._redact(value, trace_id=trace_id, findings=findings, path=path)
        except Exception as exc:  # fail closed: the host's log line survives, the value doesn't
            return self.failed(exc, findings, 0, "value")

    def failed(self, exc: BaseException, findings: list[Finding], keep: int, what: str) -> str:
        """Account for a failed redaction and return the placeholder that replaces the field.

        Findings appended for the failed value (beyond index ``keep``) are dropped: their
        masks never reach the output.
        """
        del findings[keep:]
        METRICS.count_failure(self.integration)
        self._log.warning(
            "redaction failed in %s (%s: %s); the field was replaced by %s",
            self.integration,
            what,
            type(exc).__name__,
            FAILED_PLACEHOLDER,
        )
        return FAILED_PLACEHOLDER

    def redact_field(
        self,
        value: Any,
        trace_id: str | LazyTraceId | None,
        findings: list[Finding],
        path: str,
        what: str,
    ) -> Any:
        """Like :meth:`redact`, naming the field kind (never the value) in the failure log."""
        keep = len(findings)
        try:
            return self._redact(value, trace_id=trace_id, findings=findings, path=path)
        except Exception as exc:
            return self.failed(exc, findings, keep, what)

    def commit(
        self,
        trace_id: str | LazyTraceId | None,
        source: str,
        redacted: str,
        findings: Sequence[Finding],
        timestamp: float | None = None,
    ) -> None:
        """Count ``findings`` and hand them to the vault writer (which never blocks).

        A :class:`LazyTraceId` is resolved here if the engine has not already done so: the
        vault entry goes under the same trace id as the refs in the output.
        """
        METRICS.count_findings(findings)
        vault = self.vault
        if vault is None:
            return
        if isinstance(trace_id, LazyTraceId):
            trace_id = trace_id.get()
        try:
            vault.submit(trace_id, source, redacted, findings, timestamp)
        except Exception as exc:  # the writer promises not to raise; guard the host anyway
            self._log.warning(
                "vault submit failed in %s (%s); originals were not stored",
                self.integration,
                type(exc).__name__,
            )

    def flush_vault(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for the vault writer to drain; True when nothing is pending."""
        vault = self.vault
        if vault is None:
            return True
        try:
            return bool(vault.flush(timeout_s))
        except Exception as exc:
            self._log.warning("vault flush failed in %s (%s)", self.integration, type(exc).__name__)
            return False
