"""The points (date, value) of one history-index slot whose constraints bound an attribute of
the entry by `in past`: how many lie in `[lo, hi] × [a, b]`, in polylogarithmic time.

A history filter with `in past D` on an attribute of the entry counts the entries whose date
lies in the window `[T - window, T]` and whose attribute lies in `[T - D, T]`: two ranges at
once, both moving with T, which one sorted list of dates cannot answer. Per such slot the
history index (`history_index.py`) keeps a `DatedPoints` of the entries its other
constraints accept (date, the attribute's integer value, and `seq`, the entry's place in
processing order), laid out as:

- `main`, a `_Run`: points sorted by (date, seq) at positions 0, 1, ..., and a Fenwick tree
  over the positions whose node `i` (1-based) holds the sorted values of the positions
  `[i - lowbit(i), i)`. A count in a date range is two bisections of the dates (positions
  `[p, q)`) and the prefix counts of `q` and `p`, each a bisection pair per node on the
  tree's path: O(log² n). A point dated no earlier than the last is appended, its node made
  by merging the sorted nodes it covers: O(log n) amortised;
- `pile`: up to `PILE_MAX` points that came late (dated before `main`'s last), scanned;
- `runs`: when the pile overflows it becomes a static `_Run`, merged with the smaller runs
  like a binary counter (Bentley and Saxe's logarithmic method), so there are O(log n) runs
  and a point is rebuilt O(log n) times; once the runs hold as many live points as `main`,
  everything is rebuilt into `main` (the sizes double between such rebuilds).
- drops: `drop_before(horizon)` (the retention) moves each run's `base` past the dates
  before it (positions below `base` are dead: they stay in the tree, where a count's two
  prefixes both hold them, so they cancel); `drop_first(k)` (the bounds' trim) drops the k
  points first in (date, seq) order, which is what `bounds._trim_history` cuts of a type
  (oldest by date, ties in processing order). When dead points outnumber the live ones
  (and are at least `COMPACT_FROM`), everything is rebuilt into `main`.

Invariants (`check` verifies them; tests/unit/test_dated_points.py against brute force):
- the live points of `main`, the runs and the pile are the slot's points, each once;
- each run's `dates` and `seqs` are sorted by (date, seq), `tree[i]` is the sorted values
  of its positions `[i - lowbit(i), i)`, dead positions included; `base` ≤ len;
- `seq` is larger than every point's: a point added later comes later in processing order.

Cost: a count is O(log² n) for `main`, the same per run (O(log n) of them, none at all for
a lead whose activities come in date order) and O(PILE_MAX); an append O(log n) amortised,
a late point O(log² n) amortised, a drop O(log n) plus the rebuilds it triggers
(amortised against the points that died). Memory: O(n log n) values per slot.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from typing import Final

PILE_MAX: Final = 16
"""Late points scanned before they become a run."""
COMPACT_FROM: Final = 64
"""Dead points that may wait for a rebuild whatever the live count."""

Point = tuple[int, int, int]
"""(date, seq, value)."""

_COMPILED: Final = not (__file__ or "").endswith(".py")
"""Compiled (mypyc), a bisection written as a loop compares machine integers, where the
`bisect` module compares Python objects: several times faster. As Python, `bisect` is."""


def _left(items: list[int], x: int, lo: int, hi: int) -> int:
    """`bisect_left(items, x, lo, hi)`."""
    if not _COMPILED:
        return bisect_left(items, x, lo, hi)
    while lo < hi:
        mid = (lo + hi) >> 1
        if items[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


def _right(items: list[int], x: int, lo: int) -> int:
    """`bisect_right(items, x, lo)`."""
    if not _COMPILED:
        return bisect_right(items, x, lo)
    hi = len(items)
    while lo < hi:
        mid = (lo + hi) >> 1
        if x < items[mid]:
            hi = mid
        else:
            lo = mid + 1
    return lo


def _within(node: list[int], a: int, b: int) -> int:
    """How many values of the sorted, non-empty `node` lie in `[a, b]` (a ≤ b). The
    engine's `b` is T, usually above them all, and `a` = T - D, above all of an old node's
    values: a comparison each instead of a bisection. Else the values from `a` on, the
    recent ones, are found galloping back from the end: O(log k) for k of them, in the
    node's tail (the cache lines a bisection from the middle of a large node would miss)."""
    last = len(node) - 1
    if node[last] < a:
        return 0
    high = last + 1 if node[last] <= b else _right(node, b, 0)
    if high == 0 or node[0] >= a:
        return high
    hi = high - 1
    if node[hi] < a:
        return 0
    # node[hi] >= a > node[0]
    step = 1
    lo = hi - step
    while lo > 0 and node[lo] >= a:
        hi = lo
        step <<= 1
        lo = hi - step
    return high - _left(node, a, max(lo, 0), hi)


class _Run:
    """Points sorted by (date, seq) with their Fenwick tree of sorted values (module doc)."""

    __slots__ = ("base", "dates", "seqs", "tree", "values")

    def __init__(self) -> None:
        self.dates: list[int] = []
        self.seqs: list[int] = []
        self.values: list[int] = []
        self.tree: list[list[int]] = [[]]
        self.base = 0

    def append(self, date: int, seq: int, value: int) -> None:
        """A point that sorts after every point of the run."""
        self.dates.append(date)
        self.seqs.append(seq)
        self.values.append(value)
        tree = self.tree
        i = len(self.dates)
        low = i - (i & -i)
        node = [value]
        j = i - 1
        while j > low:
            node.extend(tree[j])
            j &= j - 1
        if len(node) > 1:
            node.sort()  # sorted runs: Timsort merges them
        tree.append(node)

    def live(self) -> int:
        return len(self.dates) - self.base

    def count(self, lo: int, hi: int, a: int, b: int) -> int:
        """Live points with lo ≤ date ≤ hi and a ≤ value ≤ b (a ≤ b)."""
        dates = self.dates
        p = self.base
        end = len(dates)
        if p == end:
            return 0
        if dates[p] < lo:  # else the window starts before the run: no bisection
            p = _left(dates, lo, p, end)
        q = end if dates[end - 1] <= hi else _right(dates, hi, p)
        tree = self.tree
        n = 0
        while q != p:  # prefix(q) - prefix(p), the paths' shared nodes skipped
            if q > p:
                n += _within(tree[q], a, b)
                q &= q - 1
            else:
                n -= _within(tree[p], a, b)
                p &= p - 1
        return n

    def points(self) -> list[Point]:
        return [
            (self.dates[i], self.seqs[i], self.values[i]) for i in range(self.base, len(self.dates))
        ]


def _run_of(points: list[Point]) -> _Run:
    """A run of points sorted by (date, seq)."""
    run = _Run()
    for date, seq, value in points:
        run.append(date, seq, value)
    return run


class DatedPoints:
    """One slot's points (module doc): `add`, `count`, `drop_before`, `drop_first`."""

    __slots__ = ("main", "odd", "pile", "runs", "seq")

    def __init__(self, points: list[Point] | None = None, seq: int = 0) -> None:
        """From `points` in any order (their seqs distinct and below `seq`)."""
        self.main = _run_of(sorted(points)) if points else _Run()
        self.runs: list[_Run] = []
        self.pile: list[Point] = []
        self.seq = seq
        self.odd = False
        """Set by the index when an entry's attribute is not an integer (a state written
        under an older catalog): the filter then scans, as the reference does."""

    def add(self, date: int, value: int) -> None:
        seq = self.seq
        self.seq = seq + 1
        main = self.main
        dates = main.dates
        if dates and main.base == len(dates):  # all dead: start afresh
            main = self.main = _Run()
            dates = main.dates
        if not dates or date >= dates[-1]:
            main.append(date, seq, value)
            return
        pile = self.pile
        pile.append((date, seq, value))
        if len(pile) > PILE_MAX:
            self._spill()

    def _spill(self) -> None:
        """The pile becomes a run, merged with the runs no larger than it (module doc)."""
        points = sorted(self.pile)
        self.pile = []
        runs = self.runs
        while runs and runs[-1].live() <= len(points):
            points = sorted(points + runs.pop().points())
        if sum(r.live() for r in runs) + len(points) >= self.main.live():
            self._rebuild(points)
        else:
            runs.append(_run_of(points))

    def _rebuild(self, extra: list[Point]) -> None:
        """Every live point into `main`."""
        points = self.main.points() + extra + self.pile
        for run in self.runs:
            points += run.points()
        points.sort()
        self.main = _run_of(points)
        self.runs = []
        self.pile = []

    def count(self, lo: int, hi: int, a: int, b: int) -> int:
        """Points with lo ≤ date ≤ hi and a ≤ value ≤ b."""
        if a > b:  # a run's count would subtract: each node's bisections cross
            return 0
        n = self.main.count(lo, hi, a, b)
        for run in self.runs:
            n += run.count(lo, hi, a, b)
        for date, _, value in self.pile:
            if lo <= date <= hi and a <= value <= b:
                n += 1
        return n

    def __len__(self) -> int:
        return self.main.live() + sum(r.live() for r in self.runs) + len(self.pile)

    def drop_before(self, horizon: int) -> None:
        """Drop the points dated before `horizon` (the retention)."""
        for run in (self.main, *self.runs):
            run.base = bisect_left(run.dates, horizon, run.base)
        if self.pile:
            self.pile = [p for p in self.pile if p[0] >= horizon]
        self._compact()

    def drop_first(self, k: int) -> None:
        """Drop the `k` points first in (date, seq) order (the bounds' trim, module doc)."""
        if k <= 0:
            return
        runs = [self.main, *self.runs]
        first: list[tuple[int, int, int]] = [(d, s, -1) for d, s, _ in self.pile]
        for r, run in enumerate(runs):
            stop = min(run.base + k, len(run.dates))
            first += [(run.dates[i], run.seqs[i], r) for i in range(run.base, stop)]
        first.sort()
        gone: set[int] = set()
        for _, seq, r in first[:k]:
            if r < 0:
                gone.add(seq)
            else:
                runs[r].base += 1
        if gone:
            self.pile = [p for p in self.pile if p[1] not in gone]
        self._compact()

    def _compact(self) -> None:
        """Rebuild once dead points outnumber live ones (module doc); drop empty runs."""
        runs = self.runs
        if runs and any(r.live() == 0 for r in runs):
            self.runs = runs = [r for r in runs if r.live()]
        main = self.main
        dead = len(main.dates) - main.live()
        live = main.live() + len(self.pile)
        for run in runs:
            dead += len(run.dates) - run.live()
            live += run.live()
        if dead >= COMPACT_FROM and dead > live:
            self._rebuild([])

    def points(self) -> list[tuple[int, int]]:
        """The live (date, value) pairs, sorted (for tests)."""
        out = [(d, v) for d, _, v in self.main.points() + self.pile]
        for run in self.runs:
            out += [(d, v) for d, _, v in run.points()]
        return sorted(out)

    def check(self) -> None:
        """Raise AssertionError unless the invariants of the module doc hold (for tests)."""
        seqs: list[int] = [p[1] for p in self.pile]
        for run in (self.main, *self.runs):
            n = len(run.dates)
            assert len(run.seqs) == n and len(run.values) == n and len(run.tree) == n + 1
            assert 0 <= run.base <= n
            keys = list(zip(run.dates, run.seqs, strict=True))
            assert keys == sorted(keys), "a run out of (date, seq) order"
            for i in range(1, n + 1):
                assert run.tree[i] == sorted(run.values[i - (i & -i) : i]), f"node {i}"
            seqs += run.seqs[run.base :]
        assert len(seqs) == len(set(seqs)), "a point held twice"
        assert all(s < self.seq for s in seqs), "a seq not below the next"
        assert len(self.pile) <= PILE_MAX
