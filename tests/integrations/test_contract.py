"""The contract every integration keeps: no original reaches any output, and the vault holds
each original under the trace id of the record it came from.

Every harness (stdlib filter / handler / next to OTel's LoggingHandler, structlog direct and
through ProcessorFormatter, OTel log records, OTel spans) runs over the same dirty-case table,
against the real embedded SQLite vault with generated keys.
"""

from __future__ import annotations

import re

import pytest

from redactor.testing import assert_no_leak

from .conftest import CASES, assert_in_vault, new_trace_id, vault_originals
from .harnesses import HARNESSES, Harness


@pytest.mark.parametrize("harness_cls", HARNESSES, ids=lambda h: h.name)
def test_no_original_leaks_and_vault_keeps_each_under_its_trace(
    harness_cls: type[Harness],
    engine: object,
    writer: object,
    reader: object,
    detectable: frozenset[str],
    capfd: pytest.CaptureFixture[str],
) -> None:
    harness = harness_cls(engine, writer)
    traces: dict[str, str] = {}
    try:
        for case in CASES:
            traces[case.name] = new_trace_id()
            harness.emit(case, traces[case.name])
    finally:
        harness.close()

    checked = [c for c in CASES if c.label is None or c.name in detectable]
    output = harness.output()
    assert output.strip(), "the harness produced no output at all"
    assert_no_leak(output, [c.original for c in checked], where=harness.name)
    captured = capfd.readouterr()
    assert_no_leak(
        captured.out + captured.err, [c.original for c in checked], where="stdout/stderr"
    )

    for case in checked:
        stored_records = vault_originals(writer, reader, traces[case.name])  # type: ignore[arg-type]
        assert_in_vault(stored_records, [case.original], f"{harness.name}/{case.name}")
        # every ref the vault holds for this trace is visible in the output (correlation)
        refs = {r.ref for rec in reader.records_for_trace(traces[case.name]) for r in rec.originals}  # type: ignore[attr-defined]
        missing_refs = [ref for ref in refs if not re.search(rf"#{ref}\]", output)]
        assert not missing_refs, f"{harness.name}/{case.name}: refs {missing_refs} not in output"

    # nothing from another case's trace leaked into this one
    for case in checked:
        for other in checked:
            if other is case or other.original in case.original:
                continue
            stored = vault_originals(writer, reader, traces[case.name])  # type: ignore[arg-type]
            if other.original in stored:
                pytest.fail(f"{harness.name}: {other.name} stored under {case.name}'s trace")

    undetected = [c.name for c in CASES if c.label is not None and c.name not in detectable]
    if undetected:
        pytest.xfail(f"engine rule packs do not detect {undetected} yet; checked the rest")
