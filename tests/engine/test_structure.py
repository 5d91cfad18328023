"""Structured values: same object when clean, a redacted copy otherwise (input untouched),
sensitive keys masked whatever the value's type, findings that locate without revealing,
refs keyed by trace and by ref key."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import pytest

from redactor import create_redactor
from redactor.engine import FAILED_PLACEHOLDER, Finding, Redactor, RuleSet
from redactor.engine.masks import PLACEHOLDER_RE
from redactor.settings import Settings
from redactor.testing import assert_no_leak

CARD = "4111111111111111"
PASSWORD = "Zq8vN2pLx4Rt"


def clean_record() -> dict:
    return {
        "msg": "user logged in",
        "level": "info",
        "n": 3,
        "ok": True,
        "none": None,
        "tags": ["a", "b", ("c", b"d")],
        "http": {"status": 200, "path": "/api/v1/items", "ids": [1, 2, 3]},
    }


def test_clean_structures_come_back_as_the_same_object(engine: Redactor) -> None:
    for value in (clean_record(), [clean_record(), "x"], ("a", {"b": ["c"]}), {}, [], (), "", b""):
        assert engine.redact(value) is value


def test_dirty_structure_is_copied_and_the_input_is_not_mutated(engine: Redactor) -> None:
    record = clean_record()
    record["http"]["card"] = f"card {CARD}"
    record["tags"][2] = ("c", f"password={PASSWORD}".encode())
    before = copy.deepcopy(record)
    out = engine.redact(record)
    assert record == before, "the input was mutated"
    assert out is not record
    assert_no_leak(repr(out), [CARD, PASSWORD])
    # Untouched branches are shared, touched ones are copies of the same type.
    assert out["msg"] is record["msg"]
    assert out["http"] is not record["http"] and out["http"]["ids"] is record["http"]["ids"]
    assert isinstance(out["tags"], list) and isinstance(out["tags"][2], tuple)
    assert isinstance(out["tags"][2][1], bytes)
    assert out["tags"][2][0] == "c"


@pytest.mark.parametrize("mask", ["[FILTERED]", "REDACTED", "********", "[REDACTADO]", "<hidden>"])
def test_another_tools_mask_under_a_sensitive_key_is_left_alone(
    engine: Redactor, mask: str
) -> None:
    # A value masked before it reached us holds nothing to seal; changing it only adds noise.
    record = {"password": mask, "headers": {"Authorization": [mask]}}
    findings: list[Finding] = []
    assert engine.redact(record, findings=findings) is record
    assert findings == []


@pytest.mark.parametrize(
    "value",
    [123456, 3.14159, b"raw-bytes-secret", "plain-str-secret", 8301],
    ids=["int", "float", "bytes", "str", "pin"],
)
def test_sensitive_keys_mask_whatever_the_type(engine: Redactor, value: object) -> None:
    record = {"password": value, "other": "fine"}
    findings: list[Finding] = []
    out = engine.redact(record, findings=findings)
    assert out["other"] == "fine"
    masked = out["password"]
    assert type(masked) is (bytes if isinstance(value, bytes) else str)
    text = masked.decode() if isinstance(masked, bytes) else masked
    assert PLACEHOLDER_RE.fullmatch(text) and text.startswith("[password#"), (
        "not a password placeholder"
    )
    assert [f.path for f in findings] == ["password"]
    assert findings[0].rule_id == "keyname.password"


def test_scalars_in_a_list_under_a_sensitive_key_are_masked(engine: Redactor) -> None:
    """``{"password": ["...", ...]}``: the list is the value under the key, so its items are."""
    secrets = ["Zq8vN2pLx4Rt", "other-pass-77"]
    out = engine.redact({"password": list(secrets), "tokens": {"refresh_token": ("tok-abc-123",)}})
    assert_no_leak(repr(out), [*secrets, "tok-abc-123"])


def test_dict_under_a_sensitive_key_is_walked(engine: Redactor) -> None:
    out = engine.redact({"credentials": {"user": "ana", "password": PASSWORD}})
    assert out["credentials"]["user"] == "ana"
    assert_no_leak(repr(out), [PASSWORD])


def test_none_and_bool_under_sensitive_keys_stay(engine: Redactor) -> None:
    record = {"password": None, "token": True}
    assert engine.redact(record) is record


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "db_password",
        "SMTP_PASSWORD",
        "x-api-key",
        "secretAccessKey",
        "Authorization",
        "pw",
        "accessToken",
        "access_token_2",
        "API_TOKEN_B64",
        "password_base64",
        # names that end in a digit of their own: SIP's HA1 digest, a card's CV2
        "ha1",
        "ha1b",
        "authorizationHa1",
        "CV2",
    ],
)
def test_key_grammar(engine: Redactor, key: str) -> None:
    out = engine.redact({key: "opaque-value-123"})
    assert PLACEHOLDER_RE.fullmatch(out[key]), f"value under {key!r} not masked"


@pytest.mark.parametrize(
    "key",
    [
        "password_policy",
        "token_type",
        "author",
        "bypass",
        "compass",
        "max_tokens",
        "secret_name",
        "sha1",
        "opencv2",
    ],
)
def test_keys_that_only_resemble_sensitive_names(engine: Redactor, key: str) -> None:
    record = {key: "plain"}
    assert engine.redact(record) is record


def test_findings_carry_path_rule_category_ref_and_offsets(redactor: Redactor) -> None:
    text = f"pay {CARD} now"
    record = {"a": {"b": [0, 1, {"c": text}]}, "user": {"password": PASSWORD}}
    findings: list[Finding] = []
    out = redactor.redact(record, findings=findings, trace_id="t1")
    by_path = {f.path: f for f in findings}
    assert set(by_path) == {"a.b[2].c", "user.password"}
    card = by_path["a.b[2].c"]
    assert (card.rule_id, card.category, card.label) == ("card.pan", "card", "card")
    assert (card.start, card.end) == (4, 4 + len(CARD))
    located = text[card.start : card.end] == card.original
    assert located, "the card finding's offsets do not locate its original"
    assert card.mask in out["a"]["b"][2]["c"] and card.ref in card.mask
    assert len(card.ref) == 8 and PLACEHOLDER_RE.fullmatch(card.mask).group("ref") == card.ref
    pw = by_path["user.password"]
    assert (pw.rule_id, pw.category, pw.start, pw.end) == (
        "keyname.password",
        "secret",
        0,
        len(PASSWORD),
    )
    assert out["user"]["password"] == pw.mask
    assert redactor.redactions["card.pan"] == 1 and redactor.redactions["keyname.password"] == 1


def test_findings_offsets_in_bounds_for_text(engine: Redactor) -> None:
    text = f"a={CARD} password={PASSWORD} ssn 078-05-1121 end"
    findings: list[Finding] = []
    engine.redact(text, findings=findings)
    assert len(findings) == 3
    for f in findings:
        assert 0 <= f.start < f.end <= len(text)
        located = text[f.start : f.end] == f.original
        assert located, f"offsets of {f.rule_id} do not locate its original"
        assert f.path == ""


def test_finding_repr_and_str_never_contain_the_original(engine: Redactor) -> None:
    findings: list[Finding] = []
    engine.redact({"k": f"x {CARD}", "password": PASSWORD}, findings=findings)
    assert len(findings) == 2
    for f in findings:
        assert_no_leak(repr(f), [CARD, PASSWORD], where="repr(Finding)")
        assert_no_leak(str(f), [CARD, PASSWORD], where="str(Finding)")
        assert_no_leak(repr([f]), [CARD, PASSWORD], where="repr([Finding])")


def _refs(engine: Redactor, value: object, trace_id: str | None) -> list[str]:
    findings: list[Finding] = []
    engine.redact(value, trace_id=trace_id, findings=findings)
    return [f.ref for f in findings]


def test_refs_equal_within_a_trace_and_differ_across_traces(engine: Redactor) -> None:
    text = f"first {CARD} then again {CARD} and 5555555555554444"
    a1, a2, other = _refs(engine, text, "trace-a")
    assert a1 == a2, "equal values in one trace must share a ref"
    assert a1 != other
    # Across calls with the same trace: stable.
    assert _refs(engine, {"x": f"card {CARD}"}, "trace-a") == [a1]
    (b1,) = _refs(engine, f"card {CARD}", "trace-b")
    assert b1 != a1, "different traces must give different refs"
    (none1,) = _refs(engine, f"card {CARD}", None)
    assert none1 not in (a1, b1)


def test_refs_differ_with_the_ref_key(settings: Settings) -> None:
    one = create_redactor(settings)
    two = create_redactor(settings.with_overrides(ref_key=b"j" * 32))
    assert _refs(one, f"card {CARD}", "t") != _refs(two, f"card {CARD}", "t")
    assert _refs(one, f"card {CARD}", "t") == _refs(create_redactor(settings), f"card {CARD}", "t")


def test_short_ref_key_is_refused(engine: Redactor) -> None:
    with pytest.raises(ValueError):
        Redactor(engine.ruleset, ref_key=b"short")


def test_depth_100_dicts_fail_closed(redactor: Redactor) -> None:
    root: dict = {}
    node = root
    for _ in range(100):
        node["k"] = {}
        node = node["k"]
    node["note"] = f"card {CARD}"
    node["password"] = PASSWORD
    out = redactor.redact(root)
    assert_no_leak(repr(out), [CARD, PASSWORD])
    assert FAILED_PLACEHOLDER in repr(out), (
        "the too-deep subtree should become the failure placeholder"
    )
    assert redactor.failures >= 1
    # Shallow structure kept intact above the cut.
    assert isinstance(out["k"]["k"]["k"], dict)


def test_self_referencing_list_does_not_crash(redactor: Redactor) -> None:
    loop: list = [f"card {CARD}"]
    loop.append(loop)
    out = redactor.redact(loop)
    assert_no_leak(repr(out), [CARD])


def test_non_str_keys_and_odd_scalars(engine: Redactor) -> None:
    record = {1: "one", None: "none", ("t",): "tuple", "v": 1.5, "s": {1, 2}}
    assert engine.redact(record) is record
    record[2] = f"card {CARD}"
    out = engine.redact(record)
    assert_no_leak(repr(out), [CARD])
    assert out[1] == "one"


class _Subclassed(Redactor):
    """A subclass with its own redact(): the engine must not shadow it with its fast path."""

    calls = 0

    def redact(self, value: Any, **kwargs: Any) -> Any:
        type(self).calls += 1
        return super().redact(value, **kwargs)


@pytest.mark.parametrize("scanner", ["regex", "hyperscan"])
def test_a_subclass_keeps_its_redact_and_super_gives_the_same_results(
    shipped_ruleset: RuleSet, scanner: str
) -> None:
    plain = Redactor(shipped_ruleset, ref_key=b"s" * 32, scanner=scanner)
    sub = _Subclassed(shipped_ruleset, ref_key=b"s" * 32, scanner=scanner)
    _Subclassed.calls = 0
    values: list[Any] = [
        "request completed status=200",
        "charge card=4111111111111111 ok",
        "x" * 3000 + " ssn 123-45-6789",
        b"token=ghp_" + b"a1B2" * 9,
        {"password": "hunter22", "note": ["fine", 5]},
        "\udcff lone surrogate with card 5555555555554444",
        42,
    ]
    for value in values:
        plain_findings: list[Any] = []
        sub_findings: list[Any] = []
        out = plain.redact(value, trace_id="t1", findings=plain_findings, path="p")
        assert sub.redact(value, trace_id="t1", findings=sub_findings, path="p") == out
        assert [f.ref for f in sub_findings] == [f.ref for f in plain_findings]
    assert _Subclassed.calls == len(values)


def test_oversized_strings_fail_closed_on_the_fast_path(shipped_ruleset: RuleSet) -> None:
    small = Redactor(shipped_ruleset, ref_key=b"s" * 32, max_value_bytes=64)
    assert small.redact("x" * 64) == "x" * 64
    assert small.redact("x" * 65) == "[redacted:oversized]"
    with pytest.raises(AttributeError):  # the fast path holds the cap: it cannot change later
        small.max_value_bytes = 10**9  # type: ignore[misc]


def test_name_value_pairs_mask_the_value_of_a_named_key(engine: Redactor) -> None:
    record = {
        "env": [{"name": "DB_HOST", "value": "db"}, {"name": "DB_PASSWORD", "value": "plain"}],
        "tags": [{"Key": "api_key", "Value": 12345678}],
        "parameter": {"ParameterKey": "DbPassword", "ParameterValue": "also-plain"},
        "logger": {"name": "botocore.credentials", "levelname": "INFO"},  # no value field
    }
    out = engine.redact(record)
    assert out["env"][0] == {"name": "DB_HOST", "value": "db"}
    assert out["env"][1]["name"] == "DB_PASSWORD"
    assert out["env"][1]["value"].startswith("[password#")
    assert out["tags"][0]["Value"].startswith("[api_key#")
    assert out["parameter"]["ParameterValue"].startswith("[password#")
    assert out["logger"] is record["logger"]


COOKIE_HEADERS = [
    # (header value, the cookies' values, what stays)
    (  # settings are no credentials: theme, lang
        "theme=dark; JSESSIONID=2284429E41AB73F3; lang=en-US",
        ["2284429E41AB73F3"],
        ["theme=dark; JSESSIONID=", "; lang=en-US"],
    ),
    (  # analytics scripts' visitor and visit counters stay; the session does not
        "_ga=GA1.2.1262064.17227; _ga_2EU0F72P90=GS1.1.1732295101.48.1.1732814725.0.0.0; "
        "_gcl_au=1.1.721; _fbp=fb.1.1732.99; _hjSession_37287=eyJpZCI6IjEyMyJ9; "
        "laravel_session=eyJpdiI6IlpXRjJRRlI2",
        ["eyJpdiI6IlpXRjJRRlI2"],
        ["_ga=GA1.2.1262064.17227", "GS1.1.1732295101.48", "_fbp=fb.1.1732.99", "eyJpZCI6IjEyMyJ9"],
    ),
    (
        "__Host-session=gp7hrPwHvwztCEK; Path=/; Secure; HttpOnly; Max-Age=1209600",
        ["gp7hrPwHvwztCEK"],
        ["__Host-session=", "Path=/; Secure; HttpOnly; Max-Age=1209600"],
    ),
    (  # a quoted value; two Set-Cookie headers joined into one line
        'sid="q8Zr2Lk9"; Path=/, csrf=Yt6Wm1Pq; Expires=Thu, 01 Jan 2037 00:00:00 GMT',
        ["q8Zr2Lk9", "Yt6Wm1Pq"],
        ["Expires=Thu, 01 Jan 2037 00:00:00 GMT"],
    ),
]


@pytest.mark.parametrize(("header", "values", "kept"), COOKIE_HEADERS)
def test_cookie_headers_mask_each_value_and_keep_names_and_attributes(
    engine: Redactor, header: str, values: list[str], kept: list[str]
) -> None:
    for value in (
        f"> Cookie: {header}" if "Path" not in header else f"< Set-Cookie: {header}",
        {"headers": {"Set-Cookie": header}},
    ):
        findings: list[Finding] = []
        out = engine.redact(value, findings=findings)
        text = str(out)
        assert_no_leak(text, values)
        for part in kept:
            assert part in text
        assert sorted(f.original for f in findings) == sorted(values)
        assert engine.redact(out) == out  # idempotent


def test_a_cookie_being_cleared_is_left_as_it_is(engine: Redactor) -> None:
    header = "session=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; HttpOnly"
    line = f"< Set-Cookie: {header}"
    assert engine.redact(line) is line
    record = {"Set-Cookie": header}
    assert engine.redact(record) is record


def _b64(document: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(document).encode()).decode()


def test_base64_json_holding_a_secret_is_masked_whole(redactor: Redactor) -> None:
    blob = _b64({"user": "ana", "password": PASSWORD, "note": "from kinesis"})
    line = f'{{"Records":[{{"kinesis":{{"data":"{blob}"}}}}]}}'
    findings: list[Finding] = []
    out = redactor.redact(line, findings=findings)
    assert blob not in out
    assert [f.rule_id for f in findings] == ["secret.base64.encoded_json"]
    # the password inside was looked at, not redacted: only the blob counts
    assert redactor.redactions == {"secret.base64.encoded_json": 1}


def test_base64_json_without_a_secret_stays(engine: Redactor) -> None:
    line = f'{{"data":"{_b64({"level": "info", "message": "user signed in", "user": "ana"})}"}}'
    assert engine.redact(line) is line


def test_base64_inside_base64_is_not_decoded_twice(engine: Redactor) -> None:
    inner = _b64({"note": "rotated", "password": PASSWORD})
    line = f"data={_b64({'wrapped': inner, 'kind': 'envelope'})} ok"
    assert engine.redact(line) is line


def test_a_lone_cookie_value_is_masked_whatever_it_looks_like(engine: Redactor) -> None:
    """Settings are told by their name=value shape; a value with no name is the cookie."""
    for value in ("00000012", "dark"):
        out = engine.redact({"Set-Cookie": f"{value}; Path=/; HttpOnly"})
        assert value not in out["Set-Cookie"] and "Path=/; HttpOnly" in out["Set-Cookie"]
    # a name is a token: "abc rv=" or "abc =" is a value and what follows it
    for line in ("cookie=h0kFf6kLfSfijfNTNl8T rv=", "cookie=00000012 ="):
        assert "h0kFf6kLfSfijfNTNl8T" not in engine.redact(line)
        assert "00000012" not in engine.redact(line)
