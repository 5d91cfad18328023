"""The on-disk cache of compiled Hyperscan databases.

A database missing a trigger would silently skip a rule, so the cache must only ever hand back
a database built from the same triggers under the same key: anything else is rebuilt.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from redactor.engine.scanner import DatabaseCache, HyperscanScanner

TRIGGERS = ["alpha_[0-9]{4}", "(?i)bravo="]
OTHER_TRIGGERS = ["alpha_[0-9]{4}"]
KEY = b"c" * 32


class _Counting:
    """Wraps a cache and counts the databases it had to build."""

    def __init__(self, cache: DatabaseCache) -> None:
        self.cache = cache
        self.builds = 0

    def load_or_build(self, identity: str, build: Any) -> Any:
        def counted() -> Any:
            self.builds += 1
            return build()

        return self.cache.load_or_build(identity, counted)

    def holds(self, identity: str, extra_flags: int) -> bool:
        return self.cache.holds(identity, extra_flags)


def _scanner(directory: Path, key: bytes = KEY, triggers: list[str] = TRIGGERS) -> _Counting:
    cache = _Counting(DatabaseCache(directory, key))
    scanner = HyperscanScanner(triggers, cache)  # type: ignore[arg-type]
    assert sorted(scanner.triggered(b"x alpha_1234 BRAVO=1")) == list(range(len(triggers)))
    assert scanner.dirty_lines(b"clean\nx alpha_1234\n") == [(6, 18, [0])]
    return cache


def test_a_second_engine_loads_what_the_first_built(tmp_path: Path) -> None:
    assert _scanner(tmp_path).builds == 2  # one database per scan mode
    assert _scanner(tmp_path).builds == 0


def test_a_tampered_file_is_rebuilt(tmp_path: Path) -> None:
    _scanner(tmp_path)
    for path in tmp_path.glob("hs-*.bin"):
        blob = bytearray(path.read_bytes())
        blob[-100] ^= 0x01
        path.write_bytes(bytes(blob))
    assert _scanner(tmp_path).builds == 2


def test_a_valid_file_under_another_name_is_refused(tmp_path: Path) -> None:
    # A database of fewer triggers, copied over the files of the full set, must not load.
    _scanner(tmp_path / "full")
    _scanner(tmp_path / "fewer", triggers=OTHER_TRIGGERS)
    full = sorted((tmp_path / "full").glob("hs-*.bin"))
    fewer = sorted((tmp_path / "fewer").glob("hs-*.bin"))
    for target, source in zip(full, fewer, strict=True):
        shutil.copyfile(source, target)
    assert _scanner(tmp_path / "full").builds == 2


def test_engines_with_different_keys_keep_their_own_files(tmp_path: Path) -> None:
    _scanner(tmp_path, key=b"a" * 32)
    _scanner(tmp_path, key=b"b" * 32)
    assert _scanner(tmp_path, key=b"a" * 32).builds == 0
    assert _scanner(tmp_path, key=b"b" * 32).builds == 0


def test_each_database_is_loaded_on_first_use(tmp_path: Path) -> None:
    # An application's log handler scans records only, scrub chunks only: neither loads the
    # other's database.
    cache = _Counting(DatabaseCache(tmp_path, KEY))
    scanner = HyperscanScanner(TRIGGERS, cache)  # type: ignore[arg-type]
    assert cache.builds == 0
    assert scanner.triggered(b"bravo=") == [1]
    assert cache.builds == 1
    scanner.prepare_chunks()
    assert cache.builds == 2
    assert scanner.dirty_lines(b"bravo=\n") == [(0, 6, [1])]
    assert cache.builds == 2


def test_scrub_workers_never_compile_the_record_database(tmp_path: Path) -> None:
    # prepare_chunks runs before scrub forks: on a cold cache it also builds the record
    # database (a worker needs it for a PEM block), on a warm one it leaves it on disk.
    cold = _Counting(DatabaseCache(tmp_path, KEY))
    HyperscanScanner(TRIGGERS, cold).prepare_chunks()  # type: ignore[arg-type]
    assert cold.builds == 2
    warm = _Counting(DatabaseCache(tmp_path, KEY))
    scanner = HyperscanScanner(TRIGGERS, warm)  # type: ignore[arg-type]
    scanner.prepare_chunks()
    assert scanner.triggered(b"bravo=") == [1]  # loaded from the cache, not compiled
    assert warm.builds == 0
