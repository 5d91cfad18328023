"""Bodies in and out: content types, gzip with a cap on the decompressed size, OTLP JSON.

OTLP/JSON is protobuf's JSON mapping with two differences that matter here: trace and span ids
are hex strings (not base64), and enums are integers. Ids are converted on the way in and out;
any field the installed opentelemetry-proto does not know is dropped before forwarding (an
unknown field could carry text the gateway cannot see, so it never passes through unredacted).
"""

from __future__ import annotations

import base64
import binascii
import gzip
import zlib
from typing import Any

import orjson
from google.protobuf import json_format  # type: ignore[import-untyped,unused-ignore]
from google.protobuf.message import (  # type: ignore[import-untyped,unused-ignore]
    DecodeError,
    Message,
)

from redactor.gateway.interface import PayloadError, Signal, Status

PROTOBUF = "protobuf"
JSON = "json"
CONTENT_TYPES = {PROTOBUF: "application/x-protobuf", JSON: "application/json"}
_ENCODINGS = {
    "application/x-protobuf": PROTOBUF,
    "application/protobuf": PROTOBUF,
    "application/json": JSON,
}
_ID_FIELDS = frozenset(("traceId", "spanId", "parentSpanId"))


def encoding_for(content_type: str | None) -> str:
    """``protobuf`` or ``json`` for a Content-Type header; 415 for anything else."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    encoding = _ENCODINGS.get(media)
    if encoding is None:
        raise PayloadError(
            Status.UNSUPPORTED,
            "unsupported content type; use application/x-protobuf or application/json",
        )
    return encoding


def decompress(body: bytes, content_encoding: str | None, max_bytes: int) -> bytes:
    """The body without its Content-Encoding (identity or gzip), refusing more than
    ``max_bytes`` once decompressed: a small gzip bomb is stopped after ``max_bytes``."""
    coding = (content_encoding or "identity").strip().lower()
    if coding in ("", "identity"):
        return body
    if coding not in ("gzip", "x-gzip"):
        raise PayloadError(Status.UNSUPPORTED, "unsupported content encoding; use gzip or none")
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, max_bytes + 1)
        if len(out) > max_bytes:
            raise PayloadError(Status.TOO_LARGE, f"decompressed body exceeds {max_bytes} bytes")
        if not inflater.eof:
            raise PayloadError(Status.INVALID, "truncated gzip body")
        if inflater.unused_data:
            # Concatenated gzip members are legal but rare; bounded all the same.
            rest = decompress(inflater.unused_data, coding, max_bytes - len(out))
            out += rest
    except zlib.error:
        raise PayloadError(Status.INVALID, "malformed gzip body") from None
    return out


def compress(body: bytes) -> bytes:
    return gzip.compress(body, compresslevel=1)


def decode(signal: Signal, body: bytes, encoding: str) -> tuple[Any, bool]:
    """The request message, and whether it had fields this gateway does not know (which are
    dropped, so the request must be re-encoded rather than forwarded as received)."""
    message = signal.request_type()
    if encoding == PROTOBUF:
        try:
            message.ParseFromString(body)
        except (DecodeError, RecursionError, ValueError):
            raise PayloadError(Status.INVALID, "malformed protobuf body") from None
        before = message.ByteSize()
        message.DiscardUnknownFields()
        return message, message.ByteSize() != before
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise PayloadError(Status.INVALID, "malformed JSON body") from None
    if not isinstance(document, dict):
        raise PayloadError(Status.INVALID, "JSON body must be an object")
    try:
        _ids_to_base64(document, 0)
    except (ValueError, TypeError):
        raise PayloadError(Status.INVALID, "trace and span ids must be hex strings") from None
    try:
        json_format.ParseDict(document, message)
        return message, False
    except json_format.ParseError:
        pass
    except RecursionError:
        raise PayloadError(Status.INVALID, "JSON body nested too deeply") from None
    try:
        message = signal.request_type()
        json_format.ParseDict(document, message, ignore_unknown_fields=True)
    except (json_format.ParseError, RecursionError):
        # protobuf's message may quote the offending value: never pass it on.
        raise PayloadError(Status.INVALID, "JSON body is not a valid OTLP request") from None
    return message, True


def encode(message: Message, encoding: str) -> bytes:
    """``message`` as protobuf bytes or OTLP/JSON."""
    if encoding == PROTOBUF:
        return bytes(message.SerializeToString())
    return orjson.dumps(to_json_dict(message))


def to_json_dict(message: Message) -> dict[str, Any]:
    """OTLP/JSON as a dict: camelCase names, integer enums, hex ids."""
    document: dict[str, Any] = json_format.MessageToDict(message, use_integers_for_enums=True)
    _ids_to_hex(document, 0)
    return document


def _ids_to_base64(node: Any, depth: int) -> None:
    if depth > 100:
        raise ValueError("too deep")
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _ID_FIELDS and isinstance(value, str):
                node[key] = base64.b64encode(bytes.fromhex(value)).decode()
            elif isinstance(value, (dict, list)):
                _ids_to_base64(value, depth + 1)
    elif isinstance(node, list):
        for item in node:
            if isinstance(item, (dict, list)):
                _ids_to_base64(item, depth + 1)


def _ids_to_hex(node: Any, depth: int) -> None:
    if depth > 100:
        return
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _ID_FIELDS and isinstance(value, str):
                try:
                    node[key] = base64.b64decode(value).hex()
                except binascii.Error:
                    pass
            elif isinstance(value, (dict, list)):
                _ids_to_hex(value, depth + 1)
    elif isinstance(node, list):
        for item in node:
            _ids_to_hex(item, depth + 1)
