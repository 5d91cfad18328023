"""Fixtures for the engine tests: one ruleset loaded once, engines over both stage-1 scanners.

Every engine here is built from settings whose home is a temporary directory and whose ref key
is given, so nothing reads or writes the real ``$REDACTOR_HOME``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from redactor import create_redactor
from redactor.engine import Redactor, RuleSet, load_ruleset
from redactor.settings import DEFAULT_RULES_DIR, Settings, resolve_settings

from _engine_helpers import REF_KEY, SCANNERS


@pytest.fixture(scope="session")
def session_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("redactor-home")


@pytest.fixture(scope="session")
def shipped_settings(session_home: Path) -> Settings:
    return resolve_settings(home=session_home, ref_key=REF_KEY, environ={})


@pytest.fixture(scope="session")
def shipped_ruleset() -> RuleSet:
    """The shipped packs, loaded once: every engine in a test run sees the same rules."""
    return load_ruleset([DEFAULT_RULES_DIR])


@pytest.fixture(scope="session")
def engines(shipped_ruleset: RuleSet) -> dict[str, Redactor]:
    return {name: Redactor(shipped_ruleset, ref_key=REF_KEY, scanner=name) for name in SCANNERS}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return resolve_settings(home=tmp_path, ref_key=REF_KEY, environ={})


@pytest.fixture
def redactor(settings: Settings) -> Redactor:
    """A fresh engine over the shipped packs (fresh counters), default scanner."""
    return create_redactor(settings)


@pytest.fixture(params=SCANNERS)
def any_redactor(request: pytest.FixtureRequest, settings: Settings) -> Redactor:
    """A fresh engine over the shipped packs, once per stage-1 scanner."""
    return create_redactor(settings, scanner=request.param)


@pytest.fixture(params=SCANNERS)
def engine(request: pytest.FixtureRequest, engines: dict[str, Redactor]) -> Redactor:
    """A shared engine per scanner (session-scoped: do not read its counters)."""
    return engines[request.param]
