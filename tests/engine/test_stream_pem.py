"""A PEM private key printed over several lines of a newline-delimited stream (what `scrub`
reads): its body lines hold nothing stage 1 could see, so the block is redacted as one value
and written back as the same number of lines."""

from __future__ import annotations

from redactor.engine import Finding, Redactor
from redactor.engine.stream import redact_chunk

BODY = [
    b"MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun",
    b"VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK",
    b"LxoS2tFczGkPLPgizskuemMghRniWaoLcyehkd3qqGElvW/VDL5AaWTg0nLVkjRo",
]


def _block(end: bytes = b"-----END RSA PRIVATE KEY-----") -> bytes:
    return b"\n".join([b"loaded key: -----BEGIN RSA PRIVATE KEY-----", *BODY, end])


def _scrub(engine: Redactor, data: bytes) -> tuple[bytes, list[tuple[str | None, list[Finding]]]]:
    seen: list[tuple[str | None, list[Finding]]] = []
    pieces = redact_chunk(
        engine, data, on_line=lambda trace, _line, findings: seen.append((trace, findings))
    )
    return b"".join(bytes(p) for p in pieces), seen


def _lines_of(out: bytes) -> list[bytes]:
    return out.split(b"\n")


def test_a_key_over_several_lines_is_masked_line_for_line(engine: Redactor) -> None:
    data = b"before\n" + _block() + b" (rotated)\nafter\n"
    out, seen = _scrub(engine, data)
    assert out.count(b"\n") == data.count(b"\n")  # one output line per input line
    assert not any(line in out for line in BODY)
    lines = _lines_of(out)
    assert lines[0] == b"before" and lines[-2] == b"after"
    # Each line keeps what surrounds its part of the key.
    assert lines[1].startswith(b"loaded key: [private_key#") and lines[1].endswith(b"]")
    assert len(set(lines[1:6])) == 3 and all(b"[private_key#" in line for line in lines[1:6])
    assert lines[5].endswith(b"] (rotated)")
    # The vault gets the whole key once, not the first line alone.
    (findings,) = [f for _, f in seen]
    assert [f.rule_id for f in findings] == ["secret.pem.private_key"]
    assert all(line.decode() in findings[0].original for line in BODY)


def test_each_line_keeps_its_own_log_prefix(engine: Redactor) -> None:
    # docker compose, journald (a timestamp per line) and kubectl --prefix print the key
    # with a prefix on every line, and Windows line ends.
    for prefix in (b"app-1  | ", b"Nov 30 00:28:1%d host app[812]: ", b"[pod/api-7d9/api] "):
        key = _block().split(b"\n")
        prefixes = [prefix % i if b"%d" in prefix else prefix for i in range(len(key))]
        lines = [p + line for p, line in zip(prefixes, key, strict=True)]
        data = b"before\r\n" + b"\r\n".join(lines) + b"\r\nafter\r\n"
        out, seen = _scrub(engine, data)
        assert out.count(b"\n") == data.count(b"\n")
        assert not any(line in out for line in BODY)
        out_lines = _lines_of(out)
        assert out_lines[0] == b"before\r" and out_lines[-2] == b"after\r"
        for p, redacted in zip(prefixes, out_lines[1:-2], strict=True):
            assert redacted.startswith(p) and redacted.endswith(b"]\r")
        (findings,) = [f for _, f in seen]
        assert [f.rule_id for f in findings] == ["secret.pem.private_key"]
        assert all(line.decode() in findings[0].original for line in BODY)


def test_a_key_without_its_end_line_is_masked_to_its_last_body_line(engine: Redactor) -> None:
    # A truncated log: the body lines still are key material; the next record is not.
    data = _block(end=b"next record") + b"\n"
    out, _ = _scrub(engine, data)
    assert out.count(b"\n") == data.count(b"\n")
    assert not any(line in out for line in BODY)
    lines = _lines_of(out)
    assert lines[0].startswith(b"loaded key: [private_key#")
    assert lines[-2] == b"next record"


def test_a_chunk_that_begins_inside_a_key_masks_the_lines_above_its_end(engine: Redactor) -> None:
    # The BEGIN line went to the previous chunk (or another worker): the END line still
    # shows the lines above it are a key.
    key = _block().split(b"\n")
    data = b"\n".join(b"app-1  | " + line for line in key[1:]) + b"\nafter\n"
    out, seen = _scrub(engine, data)
    assert out.count(b"\n") == data.count(b"\n")
    assert not any(line in out for line in BODY)
    assert _lines_of(out)[-2] == b"after"
    (findings,) = [f for _, f in seen]
    assert [f.rule_id for f in findings] == ["secret.pem.private_key"]


def test_the_look_back_crosses_a_body_line_that_a_trigger_fired_on(engine: Redactor) -> None:
    # An RSA key's first body line begins as a bare DER key does (MII…IBAAK…): stage 1 sends it
    # to stage 2, which leaves it as it is (64 characters are no whole key); the END line must
    # still mask it with the rest.
    key = _block().split(b"\n")
    data = b"\n".join(b"app-1  | " + line for line in key[1:]) + b"\nafter\n"
    first_body_line = (0, data.index(b"\n"))
    assert first_body_line in {(start, end) for start, end, _ in engine.scanner.dirty_lines(data)}
    out, _ = _scrub(engine, data)
    assert BODY[0] not in out
    assert _lines_of(out)[0].startswith(b"app-1  | [private_key#")


def test_a_legacy_encrypted_key_with_its_headers_and_blank_line(engine: Redactor) -> None:
    header = [b"-----BEGIN RSA PRIVATE KEY-----", b"Proc-Type: 4,ENCRYPTED"]
    header.append(b"DEK-Info: AES-128-CBC,3F17F5316E2BAC89")
    data = b"\n".join([*header, b"", *BODY, b"-----END RSA PRIVATE KEY-----", b"done", b""])
    out, _ = _scrub(engine, data)
    assert out.count(b"\n") == data.count(b"\n")
    assert not any(line in out for line in BODY)
    assert _lines_of(out)[-2] == b"done"


def test_lines_after_a_begin_that_are_not_key_material_are_kept(engine: Redactor) -> None:
    text = b"-----BEGIN PRIVATE KEY-----\n2024-05-07 INFO request ok id=abc\nmore\n"
    out, _ = _scrub(engine, text)
    assert _lines_of(out)[1:] == [b"2024-05-07 INFO request ok id=abc", b"more", b""]
    # A long line of letters after a BEGIN line is measured in one pass, not searched.
    long_line = b"a" * 2_000_000 + b"!"
    out, _ = _scrub(engine, b"-----BEGIN PRIVATE KEY-----\n" + long_line + b"\n")
    assert _lines_of(out)[1] == long_line
