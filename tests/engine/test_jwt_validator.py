"""The ``jwt`` validator: a header segment that decodes to a JSON object with ``alg``."""

from __future__ import annotations

import base64

import pytest

from redactor.engine.validators import jwt


def _segment(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_a_real_header_is_accepted() -> None:
    assert jwt(_segment(b'{"alg":"HS256","typ":"JWT"}') + ".eyJzdWIiOiIxIn0.c2ln")


@pytest.mark.parametrize(
    "header",
    [
        b'{"typ":"JWT"}',  # no alg
        b'["alg"]',  # not an object
        b"not json at all",
        b"\xff\xfe{}",  # not UTF-8
        b"[" * 1500,  # nested deeper than the parser recurses: not a JWT, and no error
    ],
)
def test_other_headers_are_rejected(header: bytes) -> None:
    assert jwt(_segment(header) + ".eyJzdWIiOiIxIn0.c2ln") is False


def test_a_header_that_is_not_base64_is_rejected() -> None:
    assert jwt("eyJ!!!!.payload.sig") is False
