"""The entries of one interval slot of the history index, each as the interval of dates T at
which its history filter counts it: how many contain T, in two bisections.

A history filter whose T-dependent constraints are all `in past` counts an entry H at T when
`T - W ≤ date(H) ≤ T` (W: its window, or the retention) and, for each bounded attribute x
with shortest duration D, `T - D ≤ x(H) ≤ T`. Each is `T ∈ [date, date + W]` or
`T ∈ [x, x + D]`, so H is counted exactly when T lies in

    [start, end] = [max(date, x1, x2, ...), min(date + W, x1 + D1, x2 + D2, ...)]

and the count at T is how many such intervals contain it. `Intervals` keeps only the non-empty
ones (`start ≤ end`), as two sorted lists, `starts` and `ends`; then

    count(T) = #{start ≤ T} - #{end < T}

since an interval that ends before T also starts before it. This holds for any number of
attributes, at the price of one slot per (constraints, window, durations): the interval
depends on all of them, so filters differing in window or duration do not share a slot.
(It replaced a Fenwick tree of sorted values over the date order, `dated_points`, which
shared one slot across windows but answered one attribute only, in O(log² n) per count,
and one such count per run of late arrivals: twice slower on a busy lead in pure Python.)

Invariants (tests/unit/test_intervals.py against brute force; the index's against the
scanning evaluator): `starts` and `ends` are sorted and hold the starts and ends of the same
multiset of intervals, each non-empty; `odd` is set once an entry's attribute was neither
empty nor an integer (the filter then scans, as the reference does).

Cost: a count two bisections; an add or a remove a bisection and an insertion or deletion
in each list (a move of the entries after it: none for an add in date order).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort


class Intervals:
    """One interval slot's entries (module doc): `add`, `remove`, `count`."""

    __slots__ = ("ends", "odd", "starts")

    def __init__(self, intervals: list[tuple[int, int]] | None = None) -> None:
        """From non-empty `(start, end)` intervals in any order."""
        self.starts: list[int] = sorted(s for s, _ in intervals) if intervals else []
        self.ends: list[int] = sorted(e for _, e in intervals) if intervals else []
        self.odd = False

    def add(self, start: int, end: int) -> None:
        """A non-empty interval."""
        starts = self.starts
        if not starts or starts[-1] <= start:
            starts.append(start)
        else:
            insort(starts, start)
        ends = self.ends
        if not ends or ends[-1] <= end:
            ends.append(end)
        else:
            insort(ends, end)

    def remove(self, start: int, end: int) -> None:
        """An interval added before (one of them if several are equal); a bound not held
        changes nothing, as in the core's `intervals.rs` (never a neighbour's deleted)."""
        _discard(self.starts, start)
        _discard(self.ends, end)

    def count(self, ts: int) -> int:
        """How many intervals contain `ts`."""
        return bisect_right(self.starts, ts) - bisect_left(self.ends, ts)

    def __len__(self) -> int:
        return len(self.starts)

    def check(self) -> None:
        """Raise AssertionError unless the invariants of the module doc hold (for tests)."""
        assert self.starts == sorted(self.starts) and self.ends == sorted(self.ends)
        assert len(self.starts) == len(self.ends)
        # non-empty intervals: the i-th smallest start is at most the i-th smallest end
        assert all(s <= e for s, e in zip(self.starts, self.ends, strict=True))


def _discard(values: list[int], value: int) -> None:
    """One `value` out of the sorted `values`, if it holds one."""
    at = bisect_left(values, value)
    if at < len(values) and values[at] == value:
        del values[at]
