"""JSON in, JSON out; and bad input and worst cases: invalid UTF-8, NUL bytes, 10 MB lines,
oversized values, deep nesting and a pattern that times out. Every case completes, keeps the
line count, and leaks nothing. Wall-clock bounds are sanity bounds, not performance targets."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from redactor import create_redactor
from redactor.engine import FAILED_PLACEHOLDER, OVERSIZED_PLACEHOLDER, Redactor, load_ruleset
from redactor.engine.stream import redact_chunk
from redactor.settings import DEFAULT_RULES_DIR, Settings
from redactor.testing import find_leaks

from _engine_helpers import REF_KEY

CARD = "4111111111111111"
PASSWORD = "Zq8vN2pLx4Rt"
PEM_BODY = "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gunVTLw7onLRnrq0"
PEM = (
    f"-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}\n{PEM_BODY[::-1]}\n"
    "-----END RSA PRIVATE KEY-----\n"
)
SANITY_S = 30.0


def _no_leak(out: str | bytes, originals: list[str], where: str) -> None:
    leaked = find_leaks(out, originals)
    assert not leaked, f"originals {leaked} leaked into {where}"


JSON_RECORDS = [
    {"msg": "login", "user": "ana", "password": PASSWORD},
    {"msg": f"charging card {CARD}", "amount": 10},
    {"key": PEM, "msg": "loaded key"},
    {
        "log": orjson.dumps({"password": PASSWORD, "note": f"card {CARD}"}).decode(),
        "stream": "stderr",
    },
    {"headers": {"Authorization": f"Bearer {PASSWORD}xyz", "Cookie": "sid=abc123def; theme=dark"}},
    {"items": [{"pan": CARD}, {"pan": "5555555555554444"}], "n": 2},
    [{"password": PASSWORD}, f"card {CARD}"],
]
SECRETS = [PASSWORD, CARD, PEM_BODY, PEM_BODY[::-1], "5555555555554444", "abc123def"]


@pytest.mark.parametrize("record", JSON_RECORDS, ids=range(len(JSON_RECORDS)))
def test_json_lines_stay_json(engine: Redactor, record: object) -> None:
    line = orjson.dumps(record).decode()
    for value in (line, line.encode()):
        out = engine.redact(value)
        try:
            orjson.loads(out)
        except orjson.JSONDecodeError:
            pytest.fail("redacted JSON line no longer parses")
        _no_leak(out, SECRETS, "redacted JSON")
    chunk = b"".join(bytes(p) for p in redact_chunk(engine, line.encode() + b"\n"))
    assert chunk.count(b"\n") == 1
    orjson.loads(chunk)
    _no_leak(chunk, SECRETS, "redact_chunk output")


def test_numeric_card_in_json_is_masked_and_stays_json(engine: Redactor) -> None:
    line = '{"pan": 4111111111111111, "ok": true}'
    out = engine.redact(line)
    parsed = orjson.loads(out)
    assert parsed["ok"] is True
    _no_leak(out, [CARD], "JSON with a numeric card")


def test_numeric_card_that_needs_its_key_is_masked_in_place(engine: Redactor) -> None:
    """An 18-digit card counts only with a card word before it: here its key. The number,
    masked in the text, becomes a string; a structural pass would see the number alone (no
    key) and let it through."""
    unionpay = "6212345678901232"  # 16 digits: the control, masked with or without context
    long_pan = "623538658965638518"  # 18 digits, Luhn-valid
    line = (
        f'{{"time":1742758598618,"msg":"validate","input":{{"pan":{long_pan},'
        f'"expiry":"2712"}},"other":[ {unionpay} ],"n":7}}'
    )
    out = engine.redact(line)
    parsed = orjson.loads(out)
    _no_leak(out, [long_pan, unionpay], "JSON with numeric cards")
    assert parsed["input"]["pan"].startswith("[card:")
    assert parsed["other"][0].startswith("[card:")
    assert parsed["time"] == 1742758598618 and parsed["n"] == 7  # other numbers stay numbers


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    values=st.lists(
        st.sampled_from([CARD, "plain", 42, "a\\b", 'q"uote', None, f"card {CARD}", [CARD]]),
        min_size=1,
        max_size=5,
    ),
    with_password=st.booleans(),
    numeric_card=st.booleans(),
)
def test_json_stays_json_whether_or_not_the_quote_count_decides(
    engine: Redactor, values: list[object], with_password: bool, numeric_card: bool
) -> None:
    """The engine skips parsing a redacted JSON line when counting quotes shows every masked
    span inside a string; it must give what parsing would: valid JSON, nothing leaked."""
    record: dict[str, object] = {f"field{i}": v for i, v in enumerate(values)}
    if with_password:
        record["password"] = PASSWORD
    if numeric_card:
        record["pan_number"] = int(CARD)
    out = engine.redact(orjson.dumps(record).decode())
    try:
        orjson.loads(out)
    except orjson.JSONDecodeError:
        pytest.fail("redacted JSON no longer parses")
    _no_leak(out, [CARD, PASSWORD], "redacted JSON")


def test_invalid_utf8_passes_through_byte_identical(engine: Redactor) -> None:
    clean = b"\xff\xfe\xc3( not utf-8 \xed\xa0\x80 at all \x80"
    assert engine.redact(clean) is clean
    dirty = b"\xff head " + CARD.encode() + b" \xfe password=" + PASSWORD.encode() + b" \xc3("
    out = engine.redact(dirty)
    assert isinstance(out, bytes)
    assert out.startswith(b"\xff head [card:") and out.endswith(b" \xc3("), (
        "bytes around the findings changed"
    )
    assert b" \xfe password=[" in out
    _no_leak(out, [CARD, PASSWORD], "invalid UTF-8 line")


def test_lone_surrogates_in_str(engine: Redactor) -> None:
    text = f"\ud800 card {CARD} \udfff"
    out = engine.redact(text)
    assert out.startswith("\ud800 card [card:") and out.endswith(" \udfff")
    _no_leak(out, [CARD], "str with lone surrogates")


def test_nul_bytes(engine: Redactor) -> None:
    for value in (f"a\x00card {CARD}\x00password={PASSWORD}\x00b", f"\x00{CARD}\x00"):
        out = engine.redact(value)
        _no_leak(out, [CARD, PASSWORD], "line with NUL bytes")
        out_bytes = engine.redact(value.encode())
        _no_leak(out_bytes, [CARD, PASSWORD], "bytes line with NUL bytes")
        kept = out_bytes[:1] == value.encode()[:1]
        assert kept, "bytes before the first finding changed"
    clean = "a\x00b\x00" * 1000
    assert engine.redact(clean) is clean


TEN_MB = 10 * 1024 * 1024


def _big_line(unit: bytes) -> bytes:
    body = (unit * (TEN_MB // len(unit) + 1))[:TEN_MB]
    half = TEN_MB // 2
    return (
        body[:half]
        + b" card "
        + CARD.encode()
        + b" ok password="
        + PASSWORD.encode()
        + b" ok "
        + body[half:]
    )


BIG_UNITS = {
    "digits": b"8491720365" * 7 + b"1",
    "a-pairs": b"a=",
    "base64": b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODkrLw==ZXhhbXBsZQ",
    "password-repeated": b"password=",
}


@pytest.mark.parametrize("kind", sorted(BIG_UNITS))
def test_ten_megabyte_line(redactor: Redactor, kind: str) -> None:
    line = _big_line(BIG_UNITS[kind])
    started = time.monotonic()
    pieces = redact_chunk(redactor, line + b"\nnext line\n")
    out = b"".join(bytes(p) for p in pieces)
    elapsed = time.monotonic() - started
    assert elapsed < SANITY_S, f"{kind}: took {elapsed:.0f}s"
    assert out.count(b"\n") == 2 and out.endswith(b"\nnext line\n"), (
        "one output line per input line"
    )
    _no_leak(out, [CARD, PASSWORD], f"10 MB {kind} line")


def test_ten_megabyte_value_through_redact(redactor: Redactor) -> None:
    line = _big_line(BIG_UNITS["base64"]).decode()
    out = redactor.redact(line)
    assert "\n" not in out
    _no_leak(out, [CARD, PASSWORD], "10 MB value")


DENSE_VALUES = {
    # Key names back to back: each is a key-name match whose value may run 4 KiB.
    "keys": "token=" * 40_000,
    # A key and a long lower-case value, over and over: the catch-all rule looks in each value
    # for a digit or a case change.
    "values": ("api_key " + "a" * 600 + " ") * 1000,
    # Short secrets back to back: tens of thousands of findings in one value.
    "secrets": '{"ssn":"496873407"}' * 20_000,
    # Triggers' prefixes over and over, never completed: a trigger's unbounded run after its
    # prefix made the fallback's stage 1 quadratic here (minutes).
    "prefixes": "Component curl LOGON. http-basic.-u-u connect to Login OK get secret " * 8_000,
}


@pytest.mark.parametrize("kind", sorted(DENSE_VALUES))
@pytest.mark.parametrize("scanner", ["hyperscan", "regex"])
def test_dense_values_are_redacted_not_given_up(kind: str, scanner: str) -> None:
    # Without Hyperscan's offsets (a value this long, or no Hyperscan), the search must still
    # start only at key names: trying the key-name grammar at every position took seconds
    # here and ended in the fail-closed placeholder instead of a redaction. And many findings
    # in one value must not cost time quadratic in their number (minutes, before).
    engine = Redactor(
        load_ruleset([DEFAULT_RULES_DIR]), ref_key=REF_KEY, match_timeout_s=2.0, scanner=scanner
    )
    value = DENSE_VALUES[kind] + f" client_secret={PASSWORD} ok"
    started = time.monotonic()
    out = engine.redact(value)
    elapsed = time.monotonic() - started
    assert elapsed < SANITY_S, f"{kind}: took {elapsed:.0f}s"
    assert FAILED_PLACEHOLDER not in out and engine.failures == 0
    _no_leak(out, [PASSWORD, "496873407"], f"{kind}-dense value")
    assert out.endswith(" ok")


def test_values_over_max_value_bytes_fail_closed(settings: Settings) -> None:
    redactor = create_redactor(settings.with_overrides(max_value_bytes=1000))
    for value in ("x" * 1001, f"card {CARD} " + "y" * 1000, ("z" * 2000).encode()):
        out = redactor.redact(value)
        expected = (
            OVERSIZED_PLACEHOLDER.encode() if isinstance(value, bytes) else OVERSIZED_PLACEHOLDER
        )
        assert out == expected, "an oversized value was passed through"
    assert redactor.oversized == 3
    record = {"small": "fine", "big": "w" * 5000}
    out = redactor.redact(record)
    assert out == {"small": "fine", "big": OVERSIZED_PLACEHOLDER}
    assert redactor.redact("x" * 1000) == "x" * 1000


def test_deep_json_text(engine: Redactor) -> None:
    depth = 10_000
    for inner in (f'"card {CARD}"', f'{{"password": "{PASSWORD}"}}', '"clean"'):
        text = "[" * depth + inner + "]" * depth
        out = engine.redact(text)
        assert isinstance(out, str)
        _no_leak(out, [CARD, PASSWORD], "deep JSON text")
        if inner == '"clean"':
            assert out is text
    obj = '{"a":' * depth + f'"password={PASSWORD}"' + "}" * depth
    out = engine.redact(obj)
    _no_leak(out, [PASSWORD], "deep JSON object text")


SLOW_PACK = (
    '[pack]\nname = "slow"\n[[rules]]\nid = "test.slow"\ncategory = "secret"\nlabel = "slow"\n'
    "trigger = 'slowkey'\npattern = '''slowkey(?:(?:a|aa)+)+b'''\n"
)


def _timeout_redactor(rules: Path) -> Redactor:
    (rules / "slow.toml").write_text(SLOW_PACK)
    return Redactor(load_ruleset([DEFAULT_RULES_DIR, rules]), ref_key=REF_KEY, match_timeout_s=0.05)


def test_pattern_timeout_fails_closed_on_a_long_value(tmp_path: Path) -> None:
    redactor = _timeout_redactor(tmp_path)
    value = "x" * 5000 + f" card {CARD} slowkey" + "a" * 40 + "c"
    started = time.monotonic()
    out = redactor.redact(value)
    assert time.monotonic() - started < SANITY_S
    assert out == FAILED_PLACEHOLDER, "a timed-out value must become the failure placeholder"
    assert redactor.failures == 1
    assert redactor.redact(value.encode()) == FAILED_PLACEHOLDER.encode()
    assert redactor.redact({"k": value, "ok": "fine"}) == {"k": FAILED_PLACEHOLDER, "ok": "fine"}
    assert redactor.failures == 3
    chunk = b"".join(
        bytes(p) for p in redact_chunk(redactor, b"clean\n" + value.encode() + b"\nclean\n")
    )
    assert chunk == b"clean\n" + FAILED_PLACEHOLDER.encode() + b"\nclean\n"
    assert redactor.failures == 4


# Run in a child process: if the timeout is not armed the match backtracks for hours, and the
# test must fail, not hang the suite.
_SHORT_VALUE_CHILD = """
import sys
from pathlib import Path
from redactor.engine import Redactor, load_ruleset
from redactor.settings import DEFAULT_RULES_DIR
rules = Path(sys.argv[1])
r = Redactor(load_ruleset([DEFAULT_RULES_DIR, rules]), ref_key=b"k" * 32, match_timeout_s=0.05)
out = r.redact("note slowkey" + "a" * 40 + "c")
print(out == "[redaction-failed]", r.failures)
"""


@pytest.mark.parametrize(
    "pack",
    [SLOW_PACK, SLOW_PACK.replace("pattern =", "anchor = 'slowkey'\npattern =")],
    ids=["searched", "anchored"],
)
def test_pattern_timeout_fails_closed_on_a_short_value(tmp_path: Path, pack: str) -> None:
    import subprocess
    import sys

    (tmp_path / "slow.toml").write_text(pack)
    done = None
    try:
        done = subprocess.run(
            [sys.executable, "-c", _SHORT_VALUE_CHILD, str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except subprocess.TimeoutExpired:
        pass
    if done is None:
        pytest.fail(
            "a pathological pattern on a short value ran 10 s without timing out "
            "(match_timeout_s=0.05)"
        )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["True", "1"], (
        "a timed-out short value was not replaced by the failure placeholder"
    )
