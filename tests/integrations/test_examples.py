"""The runnable examples, executed as subprocesses against a private home with vault keys."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from redactor.settings import resolve_settings
from redactor.testing import assert_no_leak
from redactor.vault import generate_keys, open_reader

from .conftest import ROOT, assert_in_vault

ORIGINALS = {
    "stdlib_app": ["4111 1111 1111 1111", "hunter2-example", "5555555555554444"],
    "structlog_app": [
        "4111 1111 1111 1111",
        "Bearer sk-example-0123456789",
        "496-87-3407",
        "5555555555554444",
        "4111111111111111",
    ],
    "otel_app": [
        "4111 1111 1111 1111",
        "5555555555554444",
        "hunter2-example",
        "496-87-3407",
        "Bearer sk-example-0123456789",
    ],
}


@pytest.fixture(scope="module")
def example_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("example-home")
    generate_keys(resolve_settings(home=str(home), environ={}).keys_dir)
    return home


@pytest.mark.parametrize("app", sorted(ORIGINALS))
def test_example_runs_clean_and_fills_the_vault(app: str, example_home: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDACTOR_")}
    env.update(REDACTOR_HOME=str(example_home), PYTHONPATH=str(ROOT))
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / f"{app}.py")],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )
    assert_no_leak(result.stdout + result.stderr, ORIGINALS[app], where=f"{app} output")
    assert result.returncode == 0, f"{app} exited {result.returncode}"
    match = re.search(r"trace_id=([0-9a-f]{32})", result.stderr)
    assert match, f"{app} printed no trace id"
    settings = resolve_settings(home=str(example_home), environ={})
    with open_reader(settings) as reader:
        stored = [o.original for r in reader.records_for_trace(match.group(1)) for o in r.originals]
    assert_in_vault(stored, ORIGINALS[app], app)
