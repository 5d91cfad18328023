"""The one-scan clean check: whatever it passes through untouched, the engine would have
returned unchanged, with no findings; everything else still reaches the engine."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from redactor import Redactor
from redactor.integrations._core import CleanCheck

from .conftest import CASES

_POOL = [c.original for c in CASES] + ["Bearer sk-example-0123456789", "10.1.2.3"]


class _Pooled:
    """A sensitive test value drawn by index, so a failing example prints the index only."""

    def __init__(self, index: int) -> None:
        self.index = index

    def __repr__(self) -> str:
        return f"_Pooled({self.index})"


def _materialize(value: Any) -> Any:
    if isinstance(value, _Pooled):
        return _POOL[value.index]
    if isinstance(value, dict):
        return {k: _materialize(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_materialize(v) for v in value)
    return value


_leaves = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["DB_PASSWORD", "api_key", "db"]),  # names a name/value pair may hold
    st.integers(),
    st.floats(allow_nan=False),
    st.booleans(),
    st.none(),
    st.builds(_Pooled, st.integers(0, len(_POOL) - 1)),
)
_keys = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["password", "api_key", "user", "note", "token", "name", "value", "Key"]),
)
_values = st.recursive(
    _leaves,
    lambda children: (
        st.lists(children, max_size=4)
        | st.tuples(children, children)
        | st.dictionaries(_keys, children, max_size=4)
    ),
    max_leaves=12,
)


def _unchanged_by_engine(engine: Redactor, value: Any) -> bool:
    findings: list[Any] = []
    return engine.redact(value, findings=findings) is value and not findings


@hsettings(max_examples=300, deadline=None)
@given(drawn=st.dictionaries(_keys, _values, max_size=6))
def test_clean_means_the_engine_changes_nothing(engine: Redactor, drawn: dict[str, Any]) -> None:
    record = _materialize(drawn)
    check = CleanCheck.for_engine(engine)
    assert check is not None
    if check.mapping(record):
        assert _unchanged_by_engine(engine, record), "passed as clean, but the engine changes it"
    if check.values(list(record.values())):
        assert all(_unchanged_by_engine(engine, v) for v in record.values()), (
            "values passed as clean"
        )


@pytest.mark.parametrize(
    "record",
    [
        {"password": "plain-looking"},  # masked by its key alone
        {"nested": {"api_key": "x" * 8}},
        {"n": 4111111111111111},  # a card number as a JSON number
        {"raw": b"4111 1111 1111 1111"},
        {"t": ("ok", ["fine", {"token": "abc"}])},
        {1: "non-str key"},
        {"env": [{"name": "DB_PASSWORD", "value": "plain"}]},  # the name field names the key
    ],
    ids=["keyname", "nested-keyname", "long-int", "bytes", "deep-keyname", "int-key", "named"],
)
def test_doubtful_records_go_to_the_engine(engine: Redactor, record: dict[Any, Any]) -> None:
    check = CleanCheck.for_engine(engine)
    assert check is not None
    assert not check.mapping(record)


def test_engines_that_redefine_redact_see_every_record(engine: Redactor) -> None:
    class Custom(Redactor):
        def redact(self, value: Any, **kwargs: Any) -> Any:
            return super().redact(value, **kwargs)

    custom = Custom(engine.ruleset, ref_key=engine._ref_key)
    assert CleanCheck.for_engine(custom) is None
    assert CleanCheck.for_engine(object()) is None
