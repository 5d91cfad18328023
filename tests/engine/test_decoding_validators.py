"""Validators that decode what they check: `jwt` (a base64url JSON header with `alg`) and
`sasl_plain` (base64 of NUL-separated SASL PLAIN fields)."""

from __future__ import annotations

import base64

import pytest

from redactor.engine.validators import jwt, sasl_plain


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


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def test_sasl_plain_wants_two_nul_separated_fields_after_the_authzid() -> None:
    assert sasl_plain(_b64(b"\0ana\0Hunter2pass!"))
    assert sasl_plain(_b64(b"admin\0ana\0Hunter2pass!").rstrip("="))
    assert not sasl_plain(_b64(b"\0ana\0"))  # no password
    assert not sasl_plain(_b64(b"ana:Hunter2pass!"))  # HTTP Basic, not SASL
    assert not sasl_plain("required")
    assert not sasl_plain("not base64!")
