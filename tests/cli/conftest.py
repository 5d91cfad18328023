"""Fixtures for the command-line tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """The environment for a CLI subprocess: a fresh home, no REDACTOR_* settings."""
    home = tmp_path / "home"
    home.mkdir()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("REDACTOR_")}
    return {**clean, "REDACTOR_HOME": str(home)}
