"""The two forms of triggers and filters decide alike: functions generated with `exec` (what
the pure-Python engine runs) and `rule_forms` objects (what the compiled build runs).

In one process, whichever engine it runs: every condition of every operator and data type
(and of field filters) against its generated predicate on values of every kind; matchers of
several constraints, type 13's any-of included; filter logic trees, which must call the same
leaves in the same order; and whole engines over the history-index streams, the sample
stream and the benchmark's catalogs (`tests/engine_child.run` with `NATIVE_FORMS` set one
way then the other). `test_compiled_engine` holds the two builds, and so the two forms as
each build runs them, to the same results.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import streams.engine.compiler as compiler
from bench.engine import generate, write_rules
from streams.engine import rule_forms
from streams.engine.compiler import (
    PRIMARY,
    FieldLeaf,
    build_matcher,
    filter_test,
    native_cond,
    native_tree,
)
from streams.engine.datatypes import DataType, datetime_to_us
from streams.engine.leadstate import LeadState
from streams.engine.logic import compile_logic, parse_logic
from streams.engine.operators import (
    FIELD_OPERATORS,
    Condition,
    OperatorError,
    condition,
    condition_predicate,
    field_condition,
    operators_for,
)
from tests.engine_child import run
from tests.unit.test_compiled_engine import index_rules, sample_request  # noqa: F401
from tests.unit.test_history_index import NOW_US, ops, record
from tests.unit.test_logic import rendered

T = 1_790_000_000_000_000
HOUR = 3_600_000_000

VALUES: dict[str, list[Any]] = {
    "text": ["France", "fr", "x", "Item-3", "ÉTÉ", "ß"],
    "number": [0, 1, 10, 10.5, -3, 250],
    "boolean": [True, False],
    "date": [T, T - HOUR, T - 30 * 24 * HOUR, 0],
}
RAW: dict[str, list[Any]] = {
    "text": [["France"], ["fr", "Es"], ["item-3"], ["é"], ["SS"]],
    "number": [[10], [1, 10], [0], [10.5, 3]],
    "boolean": [[True], [False]],
    "date": [["2026-09-26T00:00:00Z"], ["2026-01-01", "2026-12-31"], ["7 days"], ["1 hours"]],
}
FIELD_RAW: list[list[Any]] = [["France"], [10], [1, 10], ["2026-09-26"], ["7 days"], [True], []]
FIELD_VALUES: list[Any] = [None, "France", "fr", "10", " 10.5 ", "x", "2026-09-26", "1e3", ""]


def kind(data_type: DataType) -> str:
    if data_type in (DataType.INTEGER, DataType.FLOAT, DataType.CURRENCY):
        return "number"
    if data_type is DataType.BOOLEAN:
        return "boolean"
    if data_type in (DataType.DATE, DataType.DATETIME):
        return "date"
    return "text"


def conditions() -> Iterator[tuple[str, Condition]]:
    """Every operator of every data type on sample values, and of field filters."""
    for data_type in DataType:
        for operator in operators_for(data_type):
            for raw in [[], *RAW[kind(data_type)]]:
                try:
                    cond = condition(data_type, operator, raw)
                except OperatorError:
                    continue
                yield f"{data_type.value} {operator} {raw}", cond
    for operator in FIELD_OPERATORS:
        for raw in FIELD_RAW:
            try:
                cond = field_condition(operator, raw)
            except OperatorError:
                continue
            yield f"field {operator} {raw}", cond


def outcome(function: Any, *args: Any) -> Any:
    try:
        return bool(function(*args))
    except Exception as exc:
        return type(exc).__name__, str(exc)


def test_every_operator_has_a_compiled_class() -> None:
    """No template of `operators` falls back to its generated predicate."""
    seen = {cond.template for _, cond in conditions()}
    assert len(seen) >= 15
    for name, cond in conditions():
        assert not isinstance(native_cond(cond), rule_forms.Generated), name


def test_every_condition_decides_as_its_generated_predicate() -> None:
    values = [None, *(v for vs in VALUES.values() for v in vs), *FIELD_VALUES]
    checked = 0
    for name, cond in conditions():
        native = native_cond(cond)
        generated = condition_predicate(cond)
        for v in values:
            for t in (T, T + HOUR, 0):
                assert outcome(native.holds, v, t) == outcome(generated, v, t), (name, v, t)
                checked += 1
    assert checked > 10_000


def test_an_unknown_template_runs_its_generated_predicate() -> None:
    cond = Condition("v is not None and len(v) == {0}", (2,))
    native = native_cond(cond)
    assert isinstance(native, rule_forms.Generated)
    assert [native.holds(v, T) for v in ("ab", "abc", None)] == [True, False, False]


checks = st.lists(
    st.tuples(
        st.sampled_from([PRIMARY, "amount", "channel", "missing"]),
        st.sampled_from([c for _, c in conditions() if c.parse is None]),
        st.booleans(),
    ),
    max_size=4,
)
attribute_values = st.sampled_from([None, *VALUES["text"], *VALUES["number"], *VALUES["date"]])


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    found=checks,
    primary=st.one_of(attribute_values, st.lists(st.sampled_from(VALUES["text"]), max_size=3)),
    attributes=st.dictionaries(st.sampled_from(["amount", "channel"]), attribute_values),
)
def test_a_matcher_decides_as_the_generated_one(
    monkeypatch_forms: Any, found: list[Any], primary: Any, attributes: dict[str, Any]
) -> None:
    """Constraints in order, the first that fails deciding (or raising), any-of included."""
    found = [(k, c, a and k == PRIMARY) for k, c, a in found]
    monkeypatch_forms(True)
    native = build_matcher(found)
    monkeypatch_forms(False)
    generated = build_matcher(found)
    assert outcome(native, primary, attributes, T) == outcome(generated, primary, attributes, T)


@pytest.fixture
def monkeypatch_forms() -> Iterator[Any]:
    before = compiler.NATIVE_FORMS

    def use(native: bool) -> None:
        compiler.NATIVE_FORMS = native

    yield use
    compiler.NATIVE_FORMS = before


def recording_leaf(
    i: int, values: list[bool], by_tree: list[int], by_closures: list[int]
) -> FieldLeaf:
    """Field leaf i: its value is `values[i]`; the tree's calls and the closures' calls
    are recorded apart."""

    def record_call(v: Any, t: int) -> bool:
        by_tree.append(i)
        return values[i]

    def closure(ctx: Any) -> bool:
        by_closures.append(i)
        return values[i]

    return FieldLeaf(str(i), str(i), closure, record_call, Condition("{0}(v, t)", (record_call,)))


@settings(max_examples=150, deadline=None)
@given(rendered())
def test_a_filter_tree_short_circuits_as_the_closures(case: Any) -> None:
    """The same result and the same leaves called in the same order as `compile_logic`."""
    count, _tree, text = case
    node = parse_logic(text, count)
    for assignment in range(2**count):
        values = [bool(assignment >> i & 1) for i in range(count)]
        by_tree: list[int] = []
        by_closures: list[int] = []
        leaves = [recording_leaf(i, values, by_tree, by_closures) for i in range(count)]
        tree = native_tree(node, leaves)
        assert tree is not None
        state = LeadState(fields={str(i): "x" for i in range(count)})
        got = tree.test(state, T, None)
        assert got is compile_logic(node, [lf.evaluate for lf in leaves])(None), text
        assert by_tree == by_closures, (text, values)


def test_filter_test_takes_the_form_asked_for(monkeypatch_forms: Any) -> None:
    cond = field_condition("is", ["France"])
    predicate = condition_predicate(cond)
    leaf = FieldLeaf("country is France", "country", lambda ctx: True, predicate, cond)
    node = parse_logic("all", 1)
    monkeypatch_forms(True)
    native = filter_test(node, [leaf], lambda ctx: True)
    monkeypatch_forms(False)
    generated = filter_test(node, [leaf], lambda ctx: True)
    assert isinstance(getattr(native, "__self__", None), rule_forms.Node)
    assert not isinstance(getattr(generated, "__self__", None), rule_forms.Node)
    for country in ("France", "france", "Spain", None):
        fields = {} if country is None else {"country": country}
        state = LeadState(fields=fields)
        assert native(state, T, None) == generated(state, T, None)


def both_forms(monkeypatch_forms: Any, request: dict[str, Any]) -> dict[str, Any]:
    results = []
    for native in (True, False):
        monkeypatch_forms(native)
        results.append(run(request, {}))
    assert results[0]["outcomes"] == results[1]["outcomes"]
    assert results[0]["states"] == results[1]["states"]
    return results[0]


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    stream=st.lists(ops, min_size=1, max_size=80),
    batch=st.integers(1, 30),
    index_from=st.sampled_from(["default", None, 0]),
    store=st.sampled_from(["memory", "journal"]),
)
def test_engines_of_both_forms_emit_the_same(
    monkeypatch_forms: Any,
    index_rules: Path,  # noqa: F811
    stream: list[Any],
    batch: int,
    index_from: Any,
    store: str,
) -> None:
    values = [
        record((k, lead, i * 7 - (late if late < 300 else 0), item, qty, guid))
        for i, (k, lead, late, item, qty, guid) in enumerate(stream)
    ]
    records = [(v, "t", 0, i) for i, v in enumerate(values)]
    both_forms(
        monkeypatch_forms,
        {
            "rules": str(index_rules),
            "retention_us": 3 * HOUR,
            "max_history": 20_000,
            "index_from": index_from,
            "store": store,
            "reload_every": 0,
            "now_us": NOW_US,
            "batches": [records[i : i + batch] for i in range(0, len(records), batch)],
        },
    )


def test_both_forms_on_the_sample_stream(monkeypatch_forms: Any) -> None:
    want = both_forms(monkeypatch_forms, sample_request(1, 100, "memory"))
    assert sum(len(o[0]) for o in want["outcomes"]) >= 20


def test_both_forms_on_a_generated_catalog(monkeypatch_forms: Any, tmp_path: Path) -> None:
    rng = random.Random(11)
    write_rules(tmp_path / "rules", rng)
    values = generate(3000, 80, rng)
    records = [(v, "bench", 0, i) for i, v in enumerate(values)]
    want = both_forms(
        monkeypatch_forms,
        {
            "rules": str(tmp_path / "rules"),
            "retention_us": None,
            "max_history": 20_000,
            "index_from": "default",
            "store": "memory",
            "reload_every": 0,
            "now_us": datetime_to_us(datetime(2026, 12, 1, tzinfo=UTC)),
            "batches": [records[i : i + 500] for i in range(0, len(records), 500)],
        },
    )
    assert sum(len(o[0]) for o in want["outcomes"]) > 100
