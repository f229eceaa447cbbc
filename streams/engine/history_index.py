"""History filters, and the per-lead index that counts them without scanning the history.

A history filter (campaigns.md) counts the lead's history entries H of one type on which its
constraints hold and with `T - window ≤ date(H) ≤ T` (no window: the retention). Scanning
the history costs time proportional to it, so a busy lead (a bot, a heavy app user) would
cost more with each activity. Instead:

- the compiler gives every distinct (type, constraints) of the active campaigns' history
  filters a *slot*: filters that share their constraints share a slot, whatever their
  windows and minTimes (an interval slot's, below, also needs their window and durations);
- `HistoryIndex` holds, per type, the sorted dates of the lead's history entries and, per
  slot, the sorted dates of the entries its constraints accept; a filter's count is then two
  bisections, `O(log n)`, and adding an entry is a match per slot and an insertion (at the
  end for an activity in date order, a short move for a late one).

Invariants (checked by `tests/unit/test_history_index.py` against the scanning evaluator):
- `dates[X]` is the multiset of the dates of `state.history[X]`, sorted; `hits[s]` the sorted
  dates of those entries of the slot's type that its constraints accept; for an interval
  slot, `stabs[s]` the intervals of those its other constraints accept whose attributes are
  integers, and `odd` set if one was neither empty nor an integer. The engine updates them
  with the history, in `_apply`, and prunes them with it (the same entries go);
- an index belongs to one plan (`plan`): one missing or built for another plan (a state
  loaded from Redis, a hot reload) is rebuilt from the history, which stays the source of
  truth and the only thing serialized.

A constraint that depends on T (`in past` on an attribute of the history entry) cannot be
folded into a slot's sorted dates: the count is over several ranges at once, the entry's
date in the window and each bounded attribute in `[T - D, T]`. When every such constraint of
a filter is an `in past` (`in_past_spans`), on one attribute or several, the filter's other
constraints with its window and durations make an *interval slot* (`HistoryMatcher.stab`):
each entry is counted at the dates T of one interval (`Stab.interval`), and the count at T
is two bisections (`intervals.py`). Entries with a bounded attribute empty are never counted
(the constraint fails on them) and are not held; one whose attribute is not an integer
(stored under an older catalog) sets `odd`, and the filter scans, as the reference does,
until the index is rebuilt. `in past` on type 13's list of names cannot be written (its
names are text, `in past` takes a date): the index leaves such a check (a list) to the scan.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from streams.engine.intervals import Intervals
from streams.engine.operators import IN_PAST_TEMPLATE, Condition

if TYPE_CHECKING:
    from streams.engine.leadstate import HistoryEntry, LeadState

Matcher = Callable[[Any, dict[str, Any], int], bool]
"""`(primary, attributes, T) -> every constraint holds`."""

_USES_T: Final = re.compile(r"\bt\b")
"""A condition's template names `t` (the date under evaluation) only when it depends on it."""


@dataclass(frozen=True, slots=True, eq=False)
class HistoryMatcher:
    """The constraints of one or more history filters on one type: one slot of the index."""

    slot: int
    type_id: int
    match: Matcher
    stab: Stab | None = None
    """An interval slot's shape (`match` is then the filter's other constraints). None: a
    slot of sorted dates."""


@dataclass(frozen=True, slots=True, eq=False)
class Stab:
    """The shape of an interval slot (`intervals.py`): the attributes `in past` bounds
    (`""`: the primary) with their shortest durations, sorted, and the window (None: the
    retention, `retention[0]`, the compiler's shared cell)."""

    spans: tuple[tuple[str, int], ...]
    window_us: int | None
    retention: list[int]

    def interval(self, ts: int, primary: Any, attributes: dict[str, Any]) -> tuple[int, int] | bool:
        """The dates T at which an entry dated `ts` is counted, `[start, end]`; False when it
        never is (an attribute empty, or the interval empty), True when an attribute is
        neither empty nor an integer (the slot is then `odd`)."""
        window = self.window_us
        start = ts
        end = ts + (window if window is not None else self.retention[0])
        empty = False
        for key, span in self.spans:
            value = primary if key == "" else attributes.get(key)
            if type(value) is not int:
                if value is not None:
                    return True
                empty = True
                continue
            if value > start:
                start = value
            if value + span < end:
                end = value + span
        return not empty and start <= end and (start, end)


def depends_on_t(conditions: Iterable[Condition]) -> bool:
    return any(_USES_T.search(c.template) for c in conditions)


Check = tuple[str, Condition, bool]
"""`compiler.Check`: (apiName or "" for the primary, condition, any-of-a-list)."""


def in_past_spans(
    checks: Sequence[Check],
) -> tuple[tuple[Check, ...], tuple[tuple[str, int], ...]] | None:
    """(the checks that do not depend on T; each attribute they bound with its shortest
    duration, sorted) when every check that does is an `in past` read as it is (no list, no
    parsing): the filter then counts through an interval slot. None otherwise (no such
    check, or another: the filter scans)."""
    static: list[Check] = []
    spans: dict[str, int] = {}
    for check in checks:
        name, cond, any_of = check
        if not depends_on_t([cond]):
            static.append(check)
            continue
        if cond.template != IN_PAST_TEMPLATE or cond.parse is not None or any_of:
            return None
        duration = cond.constants[0]
        if type(duration) is not int:
            return None
        spans[name] = min(spans.get(name, duration), duration)
    if not spans:
        return None
    return tuple(static), tuple(sorted(spans.items()))


@dataclass(eq=False)
class HistoryFilter:
    """One history filter item, callable on a `FilterContext`.

    With an index in the context and a slot, the count is read from the index; otherwise
    (the reference evaluator, or constraints that depend on T) the history is scanned."""

    type_id: int
    match: Matcher
    window_us: int | None
    min_times: int
    negate: bool
    retention: list[int]
    """The compiler's shared cell: `retention[0]` is the plan's retention once compiled."""
    matcher: HistoryMatcher | None

    def __call__(self, ctx: Any) -> bool:
        return self.test(ctx.state, ctx.ts, ctx.index)

    def test(self, state: LeadState, ts: int, index: HistoryIndex | None) -> bool:
        """The filter on a `FilterContext`'s members, the engine's leaf (the compiled filter
        logic calls it once per campaign and activity): the count from the index, or the
        scan of `_scan` inlined, stopping at `min_times` (at least 1)."""
        window = self.window_us
        low = ts - (window if window is not None else self.retention[0])
        matcher = self.matcher
        if index is not None and matcher is not None:
            if matcher.stab is not None:
                intervals = index.stabs[matcher.slot]
                if not intervals.odd:
                    count = intervals.count(ts)
                    return (count >= self.min_times) != self.negate
            else:
                hits = index.hits[matcher.slot]
                count = bisect_right(hits, ts) - bisect_left(hits, low)
                return (count >= self.min_times) != self.negate
        entries = state.history.get(self.type_id)
        if entries:
            found = 0
            stop = self.min_times
            match = self.match
            for entry in entries:
                entry_ts: int = entry[0]
                if low <= entry_ts <= ts and match(entry[1], entry[2], ts):
                    found += 1
                    if found >= stop:
                        return not self.negate
        return self.negate

    def count(self, ctx: Any, stop: int) -> tuple[int, int]:
        """(entries counted, by the scan, stopping at `stop`; the window's low bound), for
        `explain`: the counts the index gives are the same (tests/unit/test_history_index)."""
        ts: int = ctx.ts
        low = ts - (self.window_us if self.window_us is not None else self.retention[0])
        return self._scan(ctx.state, low, ts, stop), low

    def _scan(self, state: LeadState, low: int, ts: int, stop: int) -> int:
        """An `in past` constraint on an entry is measured from T, as on a trigger."""
        found = 0
        match = self.match
        for entry_ts, primary, attributes in state.history.get(self.type_id, ()):
            if low <= entry_ts <= ts and match(primary, attributes, ts):
                found += 1
                if found >= stop:
                    break
        return found


class HistoryIndex:
    """The sorted dates of one lead's history, per type and per slot, and the intervals of
    the interval slots (see module doc)."""

    __slots__ = ("dates", "hits", "matchers", "plan", "stabs")

    def __init__(
        self,
        plan: object,
        matchers: dict[int, tuple[HistoryMatcher, ...]],
        slots: int,
        history: dict[int, list[HistoryEntry]],
    ) -> None:
        self.plan = plan
        self.matchers = matchers
        self.dates: dict[int, list[int]] = {}
        self.hits: list[list[int]] = [[] for _ in range(slots)]
        self.stabs: dict[int, Intervals] = {}
        for type_id, entries in history.items():
            self.dates[type_id] = sorted(e[0] for e in entries)
            for m in matchers.get(type_id, ()):
                match = m.match
                if m.stab is None:
                    self.hits[m.slot] = sorted(e[0] for e in entries if match(e[1], e[2], 0))
        for type_matchers in matchers.values():
            for m in type_matchers:
                if m.stab is not None:
                    self.stabs[m.slot] = _intervals(m, m.stab, history.get(m.type_id, []))

    def add(self, type_id: int, ts: int, primary: Any, attributes: dict[str, Any]) -> None:
        """An entry appended to `history[type_id]`."""
        dates = self.dates.get(type_id)
        if dates is None:
            self.dates[type_id] = [ts]
        elif not dates or dates[-1] <= ts:
            dates.append(ts)
        else:
            insort(dates, ts)
        hits = self.hits
        for m in self.matchers.get(type_id, ()):
            if m.match(primary, attributes, 0):
                stab = m.stab
                if stab is not None:
                    interval = stab.interval(ts, primary, attributes)
                    if interval is True:
                        self.stabs[m.slot].odd = True
                    elif interval is not False:
                        self.stabs[m.slot].add(*interval)
                    continue
                slot = hits[m.slot]
                if not slot or slot[-1] <= ts:
                    slot.append(ts)
                else:
                    insort(slot, ts)

    def prune(self, type_id: int, horizon: int, entries: list[HistoryEntry]) -> list[HistoryEntry]:
        """Drop the entries of the type dated before `horizon`, from `entries` (the lead's
        history, kept in processing order) and from the index; returns them. In date order
        the dropped entries are the first ones, removed by one slice deletion; late arrivals
        among them cost a pass over the list."""
        dates = self.dates[type_id]
        k = bisect_left(dates, horizon)
        if not k:
            return []
        del dates[:k]
        dropped = entries[:k]
        if all(e[0] < horizon for e in dropped):
            del entries[:k]
        else:
            dropped = [e for e in entries if e[0] < horizon]
            entries[:] = [e for e in entries if e[0] >= horizon]
        for m in self.matchers.get(type_id, ()):
            if m.stab is not None:
                self._unstab(m, m.stab, dropped)
            else:
                slot = self.hits[m.slot]
                del slot[: bisect_left(slot, horizon)]
        return dropped

    def _unstab(self, matcher: HistoryMatcher, stab: Stab, gone: list[HistoryEntry]) -> None:
        """The intervals of entries that leave the history go from their interval slot."""
        intervals = self.stabs[matcher.slot]
        match = matcher.match
        for e in gone:
            if match(e[1], e[2], 0):
                interval = stab.interval(e[0], e[1], e[2])
                if interval is not True and interval is not False:
                    intervals.remove(*interval)

    def trim(self, cut: dict[int, list[HistoryEntry]]) -> bool:
        """Drop the entries the bounds cut (`bounds._trim_history`), by type. They are the
        type's oldest, each dated no later than any kept one, so they are a prefix of
        `dates` and their matches a prefix of each slot's hits. False when the index does
        not know a type (the caller then drops the index, rebuilt when needed)."""
        for type_id, entries in cut.items():
            dates = self.dates.get(type_id)
            if dates is None or len(dates) < len(entries):
                return False
            del dates[: len(entries)]
            for m in self.matchers.get(type_id, ()):
                match = m.match
                if m.stab is not None:
                    self._unstab(m, m.stab, entries)
                    continue
                matched = sum(1 for e in entries if match(e[1], e[2], 0))
                del self.hits[m.slot][:matched]
        return True


def _intervals(matcher: HistoryMatcher, stab: Stab, entries: list[HistoryEntry]) -> Intervals:
    """An interval slot's intervals of a type's entries."""
    match = matcher.match
    held: list[tuple[int, int]] = []
    odd = False
    for entry in entries:
        if match(entry[1], entry[2], 0):
            interval = stab.interval(entry[0], entry[1], entry[2])
            if interval is True:
                odd = True
            elif interval is not False:
                held.append(interval)
    built = Intervals(held)
    built.odd = odd
    return built


def matchers_by_type(matchers: Sequence[HistoryMatcher]) -> dict[int, tuple[HistoryMatcher, ...]]:
    by_type: dict[int, list[HistoryMatcher]] = {}
    for m in matchers:
        by_type.setdefault(m.type_id, []).append(m)
    return {k: tuple(v) for k, v in by_type.items()}
