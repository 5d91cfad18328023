"""Parsed rule packs kept between runs (``load_ruleset(..., cache=...)``).

The cache decides which rules run, so it must hand back exactly what parsing the file gives,
and nothing when the file changed or the cached copy was altered or made under another key.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from redactor.engine.rules import SHIPPED_RULES_DIR, load_ruleset
from redactor.engine.sealed import SealedFiles

KEY = b"k" * 32


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts TOML parses (one per pack file not served from the cache)."""
    count = [0]
    real = tomllib.loads

    def counting(text: str) -> object:
        count[0] += 1
        return real(text)

    monkeypatch.setattr(tomllib, "loads", counting)
    return count


def _packs(tmp_path: Path) -> Path:
    rules = tmp_path / "rules"
    shutil.copytree(SHIPPED_RULES_DIR, rules, ignore=shutil.ignore_patterns("*.md"))
    return rules


def test_a_warm_cache_gives_the_parsed_rules_without_parsing(
    tmp_path: Path, parses: list[int]
) -> None:
    rules = _packs(tmp_path)
    files = len(list(rules.glob("*.toml")))
    cold = load_ruleset([rules], cache=SealedFiles(tmp_path / "cache", KEY))
    assert parses[0] == files
    warm = load_ruleset([rules], cache=SealedFiles(tmp_path / "cache", KEY))
    assert parses[0] == files  # every pack came from the cache
    assert warm == load_ruleset([rules])  # and equals a fresh parse, rule for rule
    assert warm == cold


def test_an_edited_pack_is_parsed_again(tmp_path: Path, parses: list[int]) -> None:
    rules = _packs(tmp_path)
    load_ruleset([rules], cache=SealedFiles(tmp_path / "cache", KEY))
    cards = rules / "cards.toml"
    cards.write_text(cards.read_text().replace('label = "card"', 'label = "pan"', 1))
    before = parses[0]
    ruleset = load_ruleset([rules], cache=SealedFiles(tmp_path / "cache", KEY))
    assert parses[0] == before + 1
    assert {r.label for r in ruleset.rules if r.id == "card.pan"} == {"pan"}


def test_an_altered_cache_file_is_not_used(tmp_path: Path, parses: list[int]) -> None:
    rules = _packs(tmp_path)
    cache_dir = tmp_path / "cache"
    expected = load_ruleset([rules], cache=SealedFiles(cache_dir, KEY))
    for path in cache_dir.glob("pack-*.bin"):
        blob = bytearray(path.read_bytes())
        blob[-3] ^= 0x01
        path.write_bytes(bytes(blob))
    before = parses[0]
    assert load_ruleset([rules], cache=SealedFiles(cache_dir, KEY)) == expected
    assert parses[0] == before + len(list(rules.glob("*.toml")))


def test_a_cache_made_under_another_key_is_not_used(tmp_path: Path, parses: list[int]) -> None:
    rules = _packs(tmp_path)
    load_ruleset([rules], cache=SealedFiles(tmp_path / "cache", b"a" * 32))
    before = parses[0]
    load_ruleset([rules], cache=SealedFiles(tmp_path / "cache", b"b" * 32))
    assert parses[0] == before + len(list(rules.glob("*.toml")))


def test_an_unwritable_cache_only_costs_the_parse(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    ruleset = load_ruleset([SHIPPED_RULES_DIR], cache=SealedFiles(blocked / "cache", KEY))
    assert ruleset == load_ruleset([SHIPPED_RULES_DIR])


def test_a_warm_start_does_not_load_the_toml_parser(tmp_path: Path) -> None:
    # What the cache is for: a process served from it skips the parser altogether.
    program = (
        "import sys; import redactor; redactor.create_redactor(); "
        "print('tomllib' in sys.modules)"
    )
    env = {**os.environ, "REDACTOR_HOME": str(tmp_path / "home")}
    env.pop("REDACTOR_CONFIG", None)
    runs = [
        subprocess.run(
            [sys.executable, "-c", program], env=env, capture_output=True, text=True, check=True
        ).stdout.strip()
        for _ in range(2)
    ]
    assert runs == ["True", "False"]
