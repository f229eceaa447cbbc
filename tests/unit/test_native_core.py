"""The native core's pieces that must write what Python writes, byte for byte: JSON text
(orjson's: floats, escapes; the stored state and the history sizes use it), dates,
`eventId`s and content hashes. The differential test (test_compiled_engine.py) holds the
whole core to the pure engine; its streams hold few floats and odd texts, so these are
held here on generated values.

Skipped when there is no fresh native build (no cargo); under `CI=true` that fails.
"""

from __future__ import annotations

import os
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.engine.activity import Activity, _content_hash
from streams.engine.datatypes import MAX_US, MIN_US, format_us
from streams.engine.events import event_id
from streams.engine.native import load_module
from streams.engine_select import check_native

INT64 = st.integers(-(2**63), 2**63 - 1)
TEXT = st.text(max_size=30)
FLOATS = st.floats(allow_nan=False, allow_infinity=False)


@pytest.fixture(scope="module")
def native() -> Any:
    path, reason, _ = check_native()
    if path is None:
        if os.environ.get("CI", "").strip().lower() == "true":
            pytest.fail(f"no native build: {reason}", pytrace=False)
        pytest.skip(f"no native build: {reason}")
    return load_module(path)


@settings(max_examples=3000, deadline=None)
@given(FLOATS | st.sampled_from([1e-5, 1.5e-5, 9.99e-6, 1e16, 9.999e15, 0.0, -0.0, 5e-324]))
def test_floats_are_written_as_orjson_writes_them(native: Any, value: float) -> None:
    assert native.dumps(value) == orjson.dumps(value)


@settings(max_examples=1000, deadline=None)
@given(TEXT | st.text(st.characters(max_codepoint=0x7F), max_size=10), INT64, st.booleans())
def test_texts_numbers_and_booleans_are_written_as_orjson_writes_them(
    native: Any, text: str, number: int, flag: bool
) -> None:
    for value in (text, number, flag, [text, text[:3]]):
        assert native.dumps(value) == orjson.dumps(value)


@settings(max_examples=1000, deadline=None)
@given(st.integers(MIN_US, MAX_US))
def test_dates_are_formatted_as_python_formats_them(native: Any, us: int) -> None:
    assert native.format_us(us) == format_us(us)


@settings(max_examples=500, deadline=None)
@given(st.integers(1, 2**63 - 1), st.integers(1, 2**63 - 1), TEXT)
def test_event_ids_are_those_of_python(
    native: Any, campaign: int, lead: int, activity: str
) -> None:
    assert native.event_id(campaign, lead, activity) == event_id(campaign, lead, activity)


@settings(max_examples=500, deadline=None)
@given(
    st.integers(1, 2**63 - 1),
    st.integers(1, 2**63 - 1),
    st.integers(MIN_US, MAX_US),
    st.none() | TEXT | INT64 | FLOATS | st.booleans() | st.lists(TEXT, max_size=3),
    st.dictionaries(TEXT, TEXT | INT64 | FLOATS | st.booleans(), max_size=4),
    st.lists(st.tuples(TEXT, st.none() | TEXT), max_size=3),
)
def test_content_hashes_are_those_of_python(
    native: Any,
    lead: int,
    type_id: int,
    ts: int,
    primary: Any,
    attributes: dict[str, Any],
    fields: list[tuple[str, str | None]],
) -> None:
    activity = Activity("", lead, type_id, ts, primary, attributes, fields, "t/0/0")
    expected = _content_hash(lead, type_id, ts, primary, attributes, fields)
    assert native.content_hash(activity) == expected
