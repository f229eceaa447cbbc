"""`DatedPoints` against brute force: a list of (date, seq, value) kept as the module doc says
the structure's points are, after every operation, with its invariants checked (`check`)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.engine.dated_points import PILE_MAX, DatedPoints

small = st.integers(0, 60)  # few distinct dates and values: ties everywhere
operations = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.integers(-3, 6), small),  # mostly rising dates
        st.tuples(st.just("late"), small, small),  # any date
        st.tuples(st.just("before"), st.integers(-5, 40)),
        st.tuples(st.just("first"), st.integers(0, 12)),
        st.tuples(st.just("count"), small, small, small, small),
    ),
    max_size=400,
)


class Brute:
    def __init__(self) -> None:
        self.points: list[tuple[int, int, int]] = []
        self.seq = 0
        self.last = 0

    def add(self, date: int, value: int) -> None:
        self.points.append((date, self.seq, value))
        self.seq += 1

    def count(self, lo: int, hi: int, a: int, b: int) -> int:
        return sum(1 for d, _, v in self.points if lo <= d <= hi and a <= v <= b)


def run(ops: list[Any], start: list[tuple[int, int]]) -> None:
    brute = Brute()
    for date, value in start:
        brute.add(date, value)
    points = DatedPoints(list(brute.points), brute.seq)
    last = max((d for d, _ in start), default=0)
    for op in ops:
        kind = op[0]
        if kind == "add":
            last = max(0, last + op[1])
            brute.add(last, op[2])
            points.add(last, op[2])
        elif kind == "late":
            brute.add(op[1], op[2])
            points.add(op[1], op[2])
        elif kind == "before":
            horizon = last - op[1]
            brute.points = [p for p in brute.points if p[0] >= horizon]
            points.drop_before(horizon)
        elif kind == "first":
            k = min(op[1], len(brute.points))
            brute.points = sorted(brute.points)[k:]
            points.drop_first(k)
        else:
            lo, hi, a, b = op[1:]
            assert points.count(lo, hi, a, b) == brute.count(lo, hi, a, b), op
        points.check()
        assert points.points() == sorted((d, v) for d, _, v in brute.points)
        assert len(points) == len(brute.points)
    for lo in range(0, max(last, 60) + 2, 7):
        for a in range(0, 62, 9):
            assert points.count(lo, lo + 20, a, a + 15) == brute.count(lo, lo + 20, a, a + 15)


@settings(max_examples=300, deadline=None)
@given(ops=operations, start=st.lists(st.tuples(small, small), max_size=80))
def test_counts_and_drops_match_brute_force(ops: list[Any], start: list[tuple[int, int]]) -> None:
    run(ops, start)


def test_a_long_stream_spills_merges_and_compacts() -> None:
    """Every path taken at sizes hypothesis rarely reaches: runs merged, a rebuild when
    the runs outgrow `main`, compaction after drops."""
    import random

    rng = random.Random(5)
    ops: list[Any] = []
    for i in range(3000):
        if i % 5 == 0:
            ops.append(("late", rng.randrange(0, 2000), rng.randrange(100)))
        else:
            ops.append(("add", rng.randrange(0, 3), rng.randrange(100)))
        if i % 97 == 0:
            ops.append(("before", rng.randrange(200, 900)))
        if i % 211 == 0:
            ops.append(("first", rng.randrange(0, 40)))
        if i % 13 == 0:
            lo = rng.randrange(0, 2000)
            ops.append(
                ("count", lo, lo + rng.randrange(500), rng.randrange(50), rng.randrange(100))
            )
    run(ops, [])


def test_late_points_become_runs_and_runs_merge() -> None:
    points = DatedPoints()
    for i in range(1000):
        points.add(10_000 + i, i % 37)
    for i in range((PILE_MAX + 1) * 3):  # three spills: runs of 17, then merged
        points.add(i, i)
    points.check()
    assert len(points.runs) == 2 and not points.pile
    assert points.count(0, 10**6, 0, 36) == 1000 + 37  # values 0..36 of the late ones
    points.drop_before(10_000)
    points.check()
    assert points.points() == sorted((10_000 + i, i % 37) for i in range(1000))
    assert not points.runs
