"""Compiled stage-2 patterns kept between runs (``PatternCache``).

A cached pattern decides what gets masked, so it must behave exactly as compiling its source
does, and a file that was altered, made under another key or for another source must never be
used. The cache is also the one place a file from disk is unpickled: only a regex pattern may
come out of it, whatever a file with a valid tag holds.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import regex

from redactor import create_redactor
from redactor.engine.compiled import PatternCache
from redactor.engine.sealed import SealedFiles
from redactor.settings import resolve_settings

from _engine_helpers import CORPUS

KEY = b"k" * 32
SOURCE = r"(?i)(?<![a-z])token[=:]\s*(?P<secret>[A-Za-z0-9_\-]{8,64})"
LINES = [
    "refresh TOKEN= abcDEF123456 ok",
    "token:xyz no",
    "mytoken=abcdefghijk",
    "token=a1b2c3d4e5f6g7h8 and Token:ZZZZZZZZZZ",
]


@pytest.fixture
def compiles(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The sources ``regex.compile`` was asked for (the cache's misses)."""
    seen: list[str] = []
    real = regex.compile

    def counting(source: str, flags: int = 0, **kwargs: object) -> regex.Pattern[str]:
        seen.append(source)
        return real(source, flags, **kwargs)

    monkeypatch.setattr(regex, "compile", counting)
    return seen


def _spans(pattern: regex.Pattern[str]) -> list[list[tuple[int, int]]]:
    return [[m.span("secret") for m in pattern.finditer(line)] for line in LINES]


def test_a_warm_cache_gives_the_same_pattern_without_compiling(
    tmp_path: Path, compiles: list[str]
) -> None:
    cold = PatternCache(SealedFiles(tmp_path, KEY)).compile(SOURCE, 0)
    assert compiles == [SOURCE]
    warm = PatternCache(SealedFiles(tmp_path, KEY)).compile(SOURCE, 0)
    assert compiles == [SOURCE]  # loaded, not compiled
    assert warm.pattern == SOURCE and warm.flags == cold.flags
    assert _spans(warm) == _spans(cold) == _spans(regex.compile(SOURCE))
    assert any(_spans(warm))  # the lines do exercise the pattern


def test_flags_are_part_of_what_is_cached(tmp_path: Path) -> None:
    PatternCache(SealedFiles(tmp_path, KEY)).compile("abc", 0)
    caseless = PatternCache(SealedFiles(tmp_path, KEY)).compile("abc", regex.IGNORECASE)
    assert caseless.search("ABC") is not None


def test_an_altered_file_is_compiled_again(tmp_path: Path, compiles: list[str]) -> None:
    PatternCache(SealedFiles(tmp_path, KEY)).compile(SOURCE, 0)
    (path,) = tmp_path.glob("re-*.bin")
    blob = bytearray(path.read_bytes())
    blob[-5] ^= 0x01
    path.write_bytes(bytes(blob))
    pattern = PatternCache(SealedFiles(tmp_path, KEY)).compile(SOURCE, 0)
    assert compiles == [SOURCE, SOURCE]
    assert _spans(pattern) == _spans(regex.compile(SOURCE))


def test_a_file_made_under_another_key_is_not_used(tmp_path: Path, compiles: list[str]) -> None:
    PatternCache(SealedFiles(tmp_path, b"a" * 32)).compile(SOURCE, 0)
    PatternCache(SealedFiles(tmp_path, b"b" * 32)).compile(SOURCE, 0)
    assert compiles == [SOURCE, SOURCE]


class _Planted:
    """A pickle that runs a function of its choosing when loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, ...]]:
        return (Path.write_text, (str(self.marker), "ran"))  # type: ignore[arg-type]


def test_a_sealed_file_that_is_not_a_pattern_is_never_run(tmp_path: Path) -> None:
    # Even a correctly tagged file (written by someone holding the key) only ever yields a
    # pattern: any other global in the pickle is refused, and the source is compiled instead.
    files = SealedFiles(tmp_path / "cache", KEY)
    PatternCache(files).compile(SOURCE, 0)
    (path,) = (tmp_path / "cache").glob("re-*.bin")
    marker = tmp_path / "marker"
    identity = f"{regex.__version__}\x00{0}\x00{SOURCE}".encode()
    files.store("re", identity, pickle.dumps(_Planted(marker)))
    assert len(list((tmp_path / "cache").glob("re-*.bin"))) == 1  # the same file, replaced
    pattern = PatternCache(files).compile(SOURCE, 0)
    assert not marker.exists()
    assert _spans(pattern) == _spans(regex.compile(SOURCE))
    # A pickled pattern of another source under this source's name is refused too.
    files.store("re", identity, pickle.dumps(regex.compile("token")))
    assert PatternCache(files).compile(SOURCE, 0).pattern == SOURCE
    assert path.exists()


def test_an_unwritable_cache_only_costs_the_compile(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    pattern = PatternCache(SealedFiles(blocked / "cache", KEY)).compile(SOURCE, 0)
    assert _spans(pattern) == _spans(regex.compile(SOURCE))


def test_an_engine_started_warm_compiles_nothing_and_redacts_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, compiles: list[str]
) -> None:
    monkeypatch.setenv("REDACTOR_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("REDACTOR_CONFIG", raising=False)
    settings = resolve_settings()
    lines = [json.loads(row)["line"] for row in CORPUS.read_text().splitlines()[:1500]]
    cold_engine = create_redactor(settings)
    cold = [cold_engine.redact(line) for line in lines]
    rule_sources = {rule.pattern_source for rule in cold_engine.rules}
    assert rule_sources & set(compiles)  # the cold engine compiled what these lines needed
    compiles.clear()
    warm_engine = create_redactor(settings)
    warm = [warm_engine.redact(line) for line in lines]
    assert not rule_sources & set(compiles)
    assert warm == cold
    assert sum(a != b for a, b in zip(cold, lines, strict=True)) > 500
