"""Scanner parity and chunk/line equivalence.

Stage 1 is a superset filter, so Hyperscan and the regex fallback must give the very same
redaction; and ``redact_chunk`` (what ``scrub`` runs over megabyte buffers) must give the same
bytes as redacting each line on its own, including lines with more trigger matches than the
chunk scan reports one by one (``MAX_MATCHES_PER_LINE``)."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import orjson
import pytest

from redactor.engine import Redactor, RuleSet, load_ruleset
from redactor.engine.scanner import MAX_MATCHES_PER_LINE
from redactor.engine.stream import line_trace_id, redact_chunk
from redactor.settings import DEFAULT_RULES_DIR
from redactor.testing import find_leaks

from _engine_helpers import CORPUS, REF_KEY, SCANNERS, make_card


@pytest.fixture(scope="module")
def corpus_lines() -> list[str]:
    if not CORPUS.exists():  # the shared corpus is part of the dev environment
        pytest.fail(f"{CORPUS} is missing")
    with CORPUS.open("rb") as fh:
        return [orjson.loads(raw)["line"] for raw in itertools.islice(fh, 2000)]


def test_scanners_agree_on_the_corpus(
    engines: dict[str, Redactor], corpus_lines: list[str]
) -> None:
    regex_out = [engines["regex"].redact(line) for line in corpus_lines]
    hs_out = [engines["hyperscan"].redact(line) for line in corpus_lines]
    differ = [i for i, (a, b) in enumerate(zip(regex_out, hs_out, strict=False)) if a != b]
    assert not differ, (
        f"{len(differ)} of {len(corpus_lines)} lines differ between scanners, "
        f"e.g. lines {differ[:10]}"
    )


def test_scanners_agree_on_findings(engines: dict[str, Redactor], corpus_lines: list[str]) -> None:
    differ = []
    for i, line in enumerate(corpus_lines[:500]):
        found = {}
        for name, engine in engines.items():
            findings: list = []
            engine.redact(line, findings=findings)
            found[name] = [(f.rule_id, f.start, f.end, f.ref) for f in findings]
        if found["regex"] != found["hyperscan"]:
            differ.append(i)
    assert not differ, (
        f"findings differ between scanners on lines {differ[:10]} ({len(differ)} lines)"
    )


def test_triggered_sets_agree(engines: dict[str, Redactor], corpus_lines: list[str]) -> None:
    differ = [
        i
        for i, line in enumerate(corpus_lines)
        if sorted(engines["regex"].scanner.triggered(line.encode()))
        != sorted(engines["hyperscan"].scanner.triggered(line.encode()))
    ]
    assert not differ, f"stage-1 trigger sets differ on lines {differ[:10]}"


def _per_line(engine: Redactor, buf: bytes) -> bytes:
    return b"\n".join(
        engine.redact(line, trace_id=line_trace_id(line, None)) for line in buf.split(b"\n")
    )


def _chunk(engine: Redactor, buf: bytes) -> bytes:
    return b"".join(bytes(piece) for piece in redact_chunk(engine, buf))


def _many_cards_line(rng: random.Random, n: int) -> tuple[str, list[str]]:
    cards = [make_card("4", 16, rng) for _ in range(n)]
    return "batch " + ", ".join(cards) + " done", cards


@pytest.mark.parametrize("scanner", SCANNERS)
def test_chunk_equals_line_by_line_on_the_corpus(
    engines: dict[str, Redactor], corpus_lines: list[str], scanner: str
) -> None:
    engine = engines[scanner]
    buf = ("\n".join(corpus_lines) + "\n").encode()
    chunk, lines = _chunk(engine, buf).split(b"\n"), _per_line(engine, buf).split(b"\n")
    assert len(chunk) == len(lines) == len(corpus_lines) + 1
    differ = [i for i, (a, b) in enumerate(zip(chunk, lines, strict=False)) if a != b]
    assert not differ, f"redact_chunk differs from per-line redaction on lines {differ[:10]}"


@pytest.mark.parametrize("scanner", SCANNERS)
def test_chunk_equals_line_by_line_on_every_rule_example(
    engines: dict[str, Redactor], shipped_ruleset: RuleSet, scanner: str
) -> None:
    """Every example of every rule, each on a line of its own in one chunk: a trigger anchored
    to a line's start or end (``^PASS``, ``-u KEY:$``) must fire on every line of a chunk, not
    only at the chunk's own start and end."""
    engine = engines[scanner]
    texts = sorted(
        {
            example.text
            for rule in (*shipped_ruleset.rules, *shipped_ruleset.keynames)
            for example in (*rule.must_match, *rule.must_not_match)
            if "\n" not in example.text and "\r" not in example.text
        }
    )
    buf = ("\n".join(texts) + "\n").encode("utf-8", "surrogatepass")
    chunk, lines = _chunk(engine, buf).split(b"\n"), _per_line(engine, buf).split(b"\n")
    assert len(chunk) == len(lines) == len(texts) + 1
    differ = [i for i, (a, b) in enumerate(zip(chunk, lines, strict=False)) if a != b]
    assert not differ, f"redact_chunk differs from per-line redaction on examples {differ[:10]}"


@pytest.mark.parametrize("scanner", SCANNERS)
def test_chunk_with_more_matches_per_line_than_reported(
    engines: dict[str, Redactor], scanner: str
) -> None:
    engine = engines[scanner]
    rng = random.Random(7)
    many, cards = _many_cards_line(rng, 200)
    assert MAX_MATCHES_PER_LINE < 200
    more, more_cards = _many_cards_line(rng, MAX_MATCHES_PER_LINE + 1)
    edge, edge_cards = _many_cards_line(rng, MAX_MATCHES_PER_LINE)
    rows = [
        "clean first line",
        many,
        "password=Zq8vN2pLx4Rt in the middle",
        many,
        more,
        "clean",
        edge,
        many,
    ]
    for tail in ("", "\n"):  # with and without a final newline
        buf = ("\n".join(rows) + tail).encode()
        out = _chunk(engine, buf)
        assert out.count(b"\n") == buf.count(b"\n")
        same = out == _per_line(engine, buf)
        assert same, "redact_chunk differs from per-line redaction"
        leaked = find_leaks(out, [*cards, *more_cards, *edge_cards, "Zq8vN2pLx4Rt"])
        assert not leaked, f"{len(leaked)} secrets survived the chunk path"


@pytest.mark.parametrize("scanner", SCANNERS)
def test_chunk_with_a_trigger_ending_on_the_newline(tmp_path: Path, scanner: str) -> None:
    """A trigger whose last element can match the line break (``\\s``) must not make the chunk
    scan report the same line twice — that wrote the line a second time, redacted only for
    the late trigger."""
    (tmp_path / "ws.toml").write_text(
        '[pack]\nname = "ws"\n[[rules]]\nid = "test.ws"\ncategory = "secret"\nlabel = "ws"\n'
        "trigger = 'wsx\\s'\npattern = '''wsx\\s(?P<secret>[a-z0-9]{8})'''\n"
    )
    engine = Redactor(load_ruleset([DEFAULT_RULES_DIR, tmp_path]), ref_key=REF_KEY, scanner=scanner)
    buf = b"card 4111111111111111 wsx\nnext line wsx abcd1234\nlast 5555555555554444 wsx\n"
    out = _chunk(engine, buf)
    assert out.count(b"\n") == 3, "line count changed"
    same = out == _per_line(engine, buf)
    assert same, "redact_chunk differs from per-line redaction"
    leaked = find_leaks(out, ["4111111111111111", "5555555555554444", "abcd1234"])
    assert not leaked, f"secrets {leaked} survived the chunk path"


@pytest.mark.parametrize("scanner", SCANNERS)
def test_chunk_keeps_clean_bytes_and_line_count(engines: dict[str, Redactor], scanner: str) -> None:
    engine = engines[scanner]
    buf = (
        b"\xff\xfe clean \xc3( bytes\n\n\r\nline with \x00 NUL\n"
        b"last 4111111111111111 \xff\n\xfe\xfd"
    )
    out = _chunk(engine, buf)
    lines, out_lines = buf.split(b"\n"), out.split(b"\n")
    assert len(out_lines) == len(lines)
    assert out_lines[:4] == lines[:4] and out_lines[-1] == lines[-1], "clean lines changed"
    assert out_lines[4].startswith(b"last [card:") and out_lines[4].endswith(b" \xff")
