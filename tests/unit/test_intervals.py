"""`Intervals` against brute force, and `Stab.interval` against the conditions it folds: an
entry's interval contains T exactly when the scanning evaluator counts the entry at T."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.engine.compiler import load_plan
from streams.engine.history_index import Stab
from streams.engine.intervals import Intervals
from streams.engine.problems import RulesError

small = st.integers(-20, 60)  # few distinct values: ties everywhere
operations = st.lists(
    st.one_of(
        st.tuples(st.just("add"), small, st.integers(0, 30)),  # start, length
        st.tuples(st.just("remove"), st.integers(0, 200)),
        st.tuples(st.just("count"), st.integers(-25, 95)),
    ),
    max_size=300,
)


@settings(max_examples=300, deadline=None)
@given(ops=operations, start=st.lists(st.tuples(small, st.integers(0, 30)), max_size=40))
def test_counts_match_brute_force(ops: list[Any], start: list[tuple[int, int]]) -> None:
    brute = [(s, s + n) for s, n in start]
    intervals = Intervals(list(brute))
    for op in ops:
        if op[0] == "add":
            brute.append((op[1], op[1] + op[2]))
            intervals.add(op[1], op[1] + op[2])
        elif op[0] == "remove" and brute:
            gone = brute.pop(op[1] % len(brute))
            intervals.remove(*gone)
        else:
            ts = op[1]
            assert intervals.count(ts) == sum(1 for s, e in brute if s <= ts <= e), op
        intervals.check()
        assert len(intervals) == len(brute)
    for ts in range(-25, 95):
        assert intervals.count(ts) == sum(1 for s, e in brute if s <= ts <= e)


value = st.one_of(st.none(), st.integers(-(2**62), 2**62), st.integers(-50, 150))


def test_removing_an_interval_not_held_changes_nothing() -> None:
    """As the core's `remove`: a neighbour is never taken out instead."""
    intervals = Intervals([(1, 5), (3, 9)])
    for start, end in [(2, 7), (0, 0), (10, 12)]:
        intervals.remove(start, end)
        intervals.check()
    assert (intervals.starts, intervals.ends) == ([1, 3], [5, 9])


@settings(max_examples=2000, deadline=None)
@given(
    date=st.integers(-50, 150),
    x=value,
    y=value,
    spans=st.tuples(st.integers(1, 60), st.integers(1, 60), st.integers(1, 60)),
    window=st.one_of(st.none(), st.integers(1, 100)),
    retention=st.integers(1, 200),
    ts=st.integers(-60, 260),
)
def test_an_entrys_interval_holds_the_dates_it_is_counted_at(
    date: int,
    x: int | None,
    y: int | None,
    spans: tuple[int, int, int],
    window: int | None,
    retention: int,
    ts: int,
) -> None:
    """Two attributes (one of them bounded twice: the shortest counts) and the primary."""
    stab = Stab(
        (("", spans[2]), ("x", min(spans[0], spans[1])), ("y", spans[1])), window, [retention]
    )
    primary = y  # the primary bounded too: a third attribute, the same value as y
    counted = (
        ts - (window if window is not None else retention) <= date <= ts
        and x is not None
        and ts - spans[0] <= x <= ts
        and ts - spans[1] <= x <= ts
        and y is not None
        and ts - spans[1] <= y <= ts
        and primary is not None
        and ts - spans[2] <= primary <= ts
    )
    interval = stab.interval(date, primary, {"x": x, "y": y})
    assert interval is not True
    assert counted == (interval is not False and interval[0] <= ts <= interval[1])


def test_an_attribute_of_another_type_makes_the_entry_odd() -> None:
    stab = Stab((("x", 10), ("y", 10)), None, [100])
    assert stab.interval(5, None, {"x": 5.0, "y": 5}) is True
    assert stab.interval(5, None, {"x": None, "y": True}) is True
    assert stab.interval(5, None, {"x": None, "y": 5}) is False  # empty: never counted
    assert stab.interval(5, None, {"x": 0, "y": 20}) is False  # [20, 10]: never
    assert stab.interval(5, None, {"x": 0, "y": 3}) == (5, 10)


def test_in_past_on_type_13s_names_cannot_be_written(tmp_path: Path) -> None:
    """The index leaves an `in past` on a list (type 13's changed fields' names) to the
    scan; no rule reaches that: the names are text, which `in past` does not take."""
    (tmp_path / "campaigns").mkdir()
    (tmp_path / "campaigns" / "a.yaml").write_text(
        "id: 1\nname: A\nqualification: every time\n"
        "triggers:\n  - trigger: Data Value Changes\n"
        "filters:\n  items:\n    - filter: Data Value Was Changed\n"
        "      constraints:\n        - operator: in past\n          value: 7 days\n"
    )
    with pytest.raises(RulesError, match="'in past' is not an operator for dataType string"):
        load_plan(tmp_path)
