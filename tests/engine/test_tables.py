"""Tables of ``(text, originals that must be masked)`` and of look-alikes that must come back
unchanged. Card numbers are the issuers' published test PANs. Assertions never print an
original: leaks are reported by index (``assert_no_leak``)."""

from __future__ import annotations

import pytest

from redactor.engine import Redactor
from redactor.engine.masks import PLACEHOLDER_RE
from redactor.engine.validators import card_number
from redactor.testing import assert_no_leak

from _engine_helpers import digits_only

# (brand, test PAN, grouping used when written with separators)
TEST_PANS = [
    ("visa", "4111111111111111", (4, 4, 4, 4)),
    ("visa", "4012888888881881", (4, 4, 4, 4)),
    ("visa", "4000056655665556", (4, 4, 4, 4)),
    ("visa13", "4222222222222", None),
    ("mastercard", "5555555555554444", (4, 4, 4, 4)),
    ("mastercard", "5105105105105100", (4, 4, 4, 4)),
    ("mastercard2", "2223003122003222", (4, 4, 4, 4)),
    ("mastercard2", "2221000000000009", (4, 4, 4, 4)),
    ("amex", "378282246310005", (4, 6, 5)),
    ("amex", "371449635398431", (4, 6, 5)),
    ("amex", "378734493671000", (4, 6, 5)),
    ("discover", "6011111111111117", (4, 4, 4, 4)),
    ("discover", "6011000990139424", (4, 4, 4, 4)),
    ("jcb", "3530111333300000", (4, 4, 4, 4)),
    ("jcb", "3566002020360505", (4, 4, 4, 4)),
    ("diners", "30569309025904", (4, 6, 4)),
    ("diners", "38520000023237", (4, 6, 4)),
    ("diners", "36227206271667", (4, 6, 4)),
    ("unionpay", "6200000000000005", (4, 4, 4, 4)),
    ("maestro", "6759649826438453", (4, 4, 4, 4)),
    ("mir", "2200000000000004", (4, 4, 4, 4)),
]


def _group(pan: str, sizes: tuple[int, ...], sep: str) -> str:
    parts, i = [], 0
    for n in sizes:
        parts.append(pan[i : i + n])
        i += n
    return sep.join(parts)


def _card_cases() -> list[tuple[str, str]]:
    cases = []
    for brand, pan, sizes in TEST_PANS:
        cases.append((f"{brand}-contiguous", pan))
        if sizes:
            for name, sep in (("spaced", " "), ("dashed", "-")):
                cases.append((f"{brand}-{name}", _group(pan, sizes, sep)))
    return cases


CARD_CASES = _card_cases()
CARD_CONTEXTS = [
    "charging card {} for order 77",
    '{{"number":"{}","exp":"04/31"}}',
    "pan={}&amount=10",
    "card_number: {}",
    "{}",
    "[{}]",
    "'{}',",
]


def _redact(redactor: Redactor, text: str) -> str:
    out = redactor.redact(text)
    assert isinstance(out, str)
    return out


@pytest.mark.parametrize("case", CARD_CASES, ids=[c[0] for c in CARD_CASES])
def test_published_test_pans_are_masked(engine: Redactor, case: tuple[str, str]) -> None:
    _, written = case
    assert card_number(written), "precondition: the table holds only valid PANs"
    digits = digits_only(written)
    contexts = CARD_CONTEXTS
    if written.isdigit() and len(written) not in (14, 15, 16):
        # 13 or 17-19 digits in a row are a card only after a card word (cards.toml)
        contexts = [c for c in CARD_CONTEXTS if "card" in c or "pan" in c]
    for context in contexts:
        text = context.format(written)
        out = _redact(engine, text)
        assert_no_leak(out, [written, digits[:-4]], where=f"output of context {context!r}")
        assert f"****-****-****-{digits[-4:]}#" in out, (
            f"no card mask with the last 4 in context {context!r}"
        )
        digits_survive = digits[:-4] in digits_only(out)
        assert not digits_survive, f"leading digits survive in context {context!r}"


def test_card_rule_reports_category_and_label(redactor: Redactor) -> None:
    findings: list = []
    redactor.redact("pay 4111 1111 1111 1111 now", findings=findings)
    assert [(f.rule_id, f.category, f.label) for f in findings] == [("card.pan", "card", "card")]
    assert (findings[0].start, findings[0].end) == (4, 23)


# A valid PAN followed by something that starts with a digit: an expiry date, a CVV, another
# number. Seen in real payment logs; the number must not survive because of its right neighbour.
CARD_NEIGHBOURS = [
    "card {} 12/27",
    "card {} 123 cvv",
    "cards {} 5555555555554444",
    "exp {} 0427",
]


@pytest.mark.parametrize("context", CARD_NEIGHBOURS)
@pytest.mark.parametrize(
    "pan", ["4111111111111111", "4111-1111-1111-1111", "4111 1111 1111 1111", "378282246310005"]
)
def test_card_followed_by_a_number_is_masked(engine: Redactor, pan: str, context: str) -> None:
    out = _redact(engine, context.format(pan))
    assert_no_leak(out, [pan, digits_only(pan)[:-4]], where=f"context {context!r}")


SSN_VALID = [
    ("applicant 078-05-1121 verified", "078-05-1121"),
    ('{"ssn":"496-87-3407"}', "496-87-3407"),
    ("ssn 001-01-0001 first issuable", "001-01-0001"),
    ("ssn 899-99-9999 last area", "899-99-9999"),
    ("ssn 665-12-3456 below 666", "665-12-3456"),
    ("ssn 667-12-3456 above 666", "667-12-3456"),
    ("SSN: 634 71 1926", "634 71 1926"),
    ("ssn=496873407 verified", "496873407"),
    ("Social Security Number: 634711926", "634711926"),
    ("taxpayer_id=634711926", "634711926"),
    ("user ssn 496.87.3407", "496.87.3407"),
]


@pytest.mark.parametrize("text,ssn", SSN_VALID, ids=[s for _, s in SSN_VALID])
def test_valid_ssns_are_masked(engine: Redactor, text: str, ssn: str) -> None:
    out = _redact(engine, text)
    assert_no_leak(out, [ssn, digits_only(ssn)[:5]])
    assert f"[ssn:***-**-{digits_only(ssn)[-4:]}#" in out, "no ssn mask with the last 4"


SSN_INVALID = [
    "ssn 000-12-3456",  # area 000
    "ssn 666-12-3456",  # area 666
    "ssn 900-12-3456",  # area 9xx
    "ssn 999-99-9999",
    "ssn 123-00-4567",  # group 00
    "ssn 123-45-0000",  # serial 0000
    "ssn 078-05-1120",  # the Woolworth wallet number, never issued
    "ssn 219-09-9999",  # the Social Security card advertisement number
    "ssn 123-45-6789",  # the textbook example
    "ssn=000123456",
    "ssn=912345678",
    "order 496873407 shipped",  # 9 digits without an SSN keyword
    "tel 555-123-4567",
    "date 2024-05-0712",
    "serial 496-87-34071",
]


@pytest.mark.parametrize("text", SSN_INVALID)
def test_invalid_ssns_are_left_alone(engine: Redactor, text: str) -> None:
    assert _redact(engine, text) == text


# Key-name values in every syntax logs use. The secret is what must disappear.
KEYNAME_CASES = [
    ("json", '{"user": "ana", "password": "Zq8vN2pLx4Rt"}', "Zq8vN2pLx4Rt", "password"),
    ("json-compact", '{"apiKey":"k7Hd92LmQpW3"}', "k7Hd92LmQpW3", "api_key"),
    ("json-nested", '{"db":{"credentials":{"secret":"s9Fk3LmQ2xZ"}}}', "s9Fk3LmQ2xZ", "secret"),
    ("escaped-json", '{"msg": "{\\"password\\": \\"Zq8vN2pLx4Rt\\"}"}', "Zq8vN2pLx4Rt", "password"),
    ("escaped-json-bare", 'log="{\\"access_token\\":\\"t0kV4lu3Xy9Q\\"}"', "t0kV4lu3Xy9Q", "token"),
    (
        "python-repr",
        "{'passphrase': 'correct horse battery staple'}",
        "correct horse battery staple",
        "password",
    ),
    (
        "python-repr-kwargs",
        "connect(user='ana', password='Zq8vN2pLx4Rt')",
        "Zq8vN2pLx4Rt",
        "password",
    ),
    ("logfmt", "level=info msg=login password=Zq8vN2pLx4Rt user=ana", "Zq8vN2pLx4Rt", "password"),
    (
        "logfmt-quoted",
        'level=info client_secret="f24gHyhjZ64QC0wiPpNvt6" ok=1',
        "f24gHyhjZ64QC0wiPpNvt6",
        "secret",
    ),
    (
        "query",
        "GET /cb?code=1&access_token=9f8e7d6c5b4aQ&expires_in=3600",
        "9f8e7d6c5b4aQ",
        "token",
    ),
    (
        "query-first",
        "GET /login?password=Zq8vN2pLx4Rt&user=ana HTTP/1.1",
        "Zq8vN2pLx4Rt",
        "password",
    ),
    ("header", "X-Api-Key: a1b2c3d4e5f6g7h8", "a1b2c3d4e5f6g7h8", None),
    ("header-auth", "Authorization: Basic YWRtaW46cGFzc3dvcmQ=", "YWRtaW46cGFzc3dvcmQ=", None),
    ("header-cookie", "Cookie: session=8f7e6d5cQ1; theme=dark", "8f7e6d5cQ1", "cookie"),
    ("env", "DB_PASSWORD=Tr0ub4dorXyz", "Tr0ub4dorXyz", "password"),
    ("env-export", "export GH_TOKEN=any_shape_at_all", "any_shape_at_all", "token"),
    ("env-quoted", "STRIPE_SECRET_KEY='q1w2e3r4t5y6'", "q1w2e3r4t5y6", "secret"),
    ("yaml", "  password: Zq8vN2pLx4Rt", "Zq8vN2pLx4Rt", "password"),
    ("yaml-quoted", '  api_key: "k7Hd92LmQpW3"', "k7Hd92LmQpW3", "api_key"),
    ("sql", "UPDATE users SET password = 'pa55wordQx' WHERE id = 4", "pa55wordQx", None),
    ("arrow", "{:password => 'Zq8vN2pLx4Rt'}", "Zq8vN2pLx4Rt", "password"),
    ("exact-name", "login pw=Zq8vN2pLx4Rt", "Zq8vN2pLx4Rt", "password"),
    ("case-insensitive", "SMTP_PASSWORD=Zq8vN2pLx4Rt", "Zq8vN2pLx4Rt", "password"),
]


@pytest.mark.parametrize("case", KEYNAME_CASES, ids=[c[0] for c in KEYNAME_CASES])
def test_keyname_values_are_masked(
    engine: Redactor, case: tuple[str, str, str, str | None]
) -> None:
    _, text, secret, label = case
    out = _redact(engine, text)
    assert_no_leak(out, [secret])
    labels = {m.group("label") for m in PLACEHOLDER_RE.finditer(out)}
    assert labels, "no placeholder in the output"
    if label is not None:
        assert label in labels, f"expected a [{label}#...] placeholder, got labels {sorted(labels)}"


NEGATIVES = [
    "trace_id=4bf92f3577b34da6a3ce929b0e0e4736 span_id=00f067aa0ba902b7",
    '{"traceId":"4bf92f3577b34da6a3ce929b0e0e4736","spanId":"00f067aa0ba902b7"}',
    "traceparent: 00-4bf92f3577b34da6a3ce929b0e0e4736-00f067aa0ba902b7-01",
    "request_id=9bcc6fee-8a04-44bb-aa19-33e6d94b36ad done",
    "uuid 9BCC6FEE-8A04-44BB-AA19-33E6D94B36AD",
    "commit 8992cd33c19bf536a1a91a9713700eb963a70d26",
    "sha256=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "ts=2024-05-07T06:00:01.132+00:00 level=info",
    "2024-05-07 06:00:00,138 DEBUG worker started",
    "timestamp_ms=1715058803163 took=12ms",
    "startTimeUnixNano=1715065862226968756",
    "epoch 1715058803 seconds",
    "card 4111111111111112 (bad checksum)",
    "card=5555555555554445",
    "card_display=**** **** **** 1111",
    "ratio=0.4111111111111111",
    "client_ip=2a02:420d:e78a:c0e2::5453 peer=fe80::1ff:fe23:4567:890a",
    "addr [2001:db8:85a3::8a2e:370:7334]:443",
    "token_type=bearer",
    "max_tokens=512 tokens_used=150 tokenizer=bpe",
    "password_reset_required=true",
    '{"password": null}',
    "password=******** (masked upstream)",
    "arn:aws:sqs:us-east-1:644393873380:events",
    "version 1.2.3-rc.4 build 20240507.1",
    "GET /api/v2/users/1234567/orders?page=3&per_page=50 200 13ms",
]


@pytest.mark.parametrize("text", NEGATIVES)
def test_look_alikes_come_back_identical(engine: Redactor, text: str) -> None:
    out = engine.redact(text)
    assert out == text
    assert out is text, "a clean value must be returned as the same object"
    data = text.encode()
    assert engine.redact(data) is data
