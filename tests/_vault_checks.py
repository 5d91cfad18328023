"""Vault assertions shared by the integration and gateway suites."""

from __future__ import annotations

import pytest


def assert_in_vault(stored: list[str], originals: list[str], where: str) -> None:
    """Fail naming indexes only: a test failure must not print a secret."""
    missing = [i for i, original in enumerate(originals) if original not in stored]
    if missing:
        pytest.fail(
            f"{where}: originals at indexes {missing} missing from the vault", pytrace=False
        )
