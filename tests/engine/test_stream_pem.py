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


def test_a_key_over_several_lines_is_masked_line_for_line(engine: Redactor) -> None:
    data = b"before\n" + _block() + b" (rotated)\nafter\n"
    out, seen = _scrub(engine, data)
    assert out.count(b"\n") == data.count(b"\n")  # one output line per input line
    assert not any(line in out for line in BODY)
    lines = out.split(b"\n")
    assert lines[0] == b"before" and lines[-2] == b"after"
    assert lines[1].startswith(b"loaded key: [private_key#") and lines[1].endswith(b"(rotated)")
    assert all(line.startswith(b"[private_key#") for line in lines[2:6])
    # The vault gets the whole key once, not the first line alone.
    (findings,) = [f for _, f in seen]
    assert [f.rule_id for f in findings] == ["secret.pem.private_key"]
    assert all(line.decode() in findings[0].original for line in BODY)


def test_without_its_end_line_a_key_is_left_to_its_first_line(engine: Redactor) -> None:
    # No END line in the chunk (a truncated log, or the chunk ends): no block to take.
    data = _block(end=b"next record") + b"\n"
    out, _ = _scrub(engine, data)
    assert out.count(b"\n") == data.count(b"\n")
    assert out.split(b"\n")[0].startswith(b"loaded key: [private_key#")
