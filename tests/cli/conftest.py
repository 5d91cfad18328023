"""Fixtures for the command-line tests."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """The environment for a CLI subprocess: a fresh home, no REDACTOR_* settings."""
    home = tmp_path / "home"
    home.mkdir()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("REDACTOR_")}
    return {**clean, "REDACTOR_HOME": str(home)}


@pytest.fixture
def start_scrub(env: dict[str, str]) -> Callable[[], subprocess.Popen[bytes]]:
    """Starts ``redactor scrub --no-vault`` in ``env``, with its three streams piped, for a
    test that feeds and reads it while it runs."""

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "redactor", "scrub", "--no-vault"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )

    return start
