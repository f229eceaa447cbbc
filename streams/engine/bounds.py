"""The bounds on what one lead's state may hold, applied after each activity, and the other
limits a processor is built with.

Why after each activity, by the pipeline: the backtest and the workers then cut a state at
the same points whatever their batch sizes, so they keep deciding alike. What happens at a
bound (each is a `Limits` field and a setting; the README's "Poison inputs and limits"):

- history over `max_history` entries or `max_history_chars` characters (all types
  together; `entry_chars` is the measure): the oldest entries by activity date (ties: type
  id, then processing order) are dropped until it is back to 15/16 of both bounds, so a
  lead at a bound pays for the sort once per 1/16 of it, not per activity. Filters then
  count only what is kept, as for entries older than the retention.
- `seen` over `max_seen` identities: the oldest processed are forgotten, down to 15/16 (as
  the deduplication horizon does): a copy of one of them, read later, counts again.
- `fields` over `max_fields` names: the names set most recently (the last in the dict's
  order) beyond the bound are dropped; fields already kept go on changing.

Whatever drops history entries here also drops the engine's history index
(`LeadState.index`), which is rebuilt from what is left.

Sizes per type are memoised in `LeadState.sizes` as (entries, characters, last entry): an
entry is only ever appended at the end of its type's list, and a list is otherwise only
filtered, so the list is unchanged if its count and last entry (the object) are, and only
appended to if it grew by one and the memo's last entry is now the one before the last.
Anything else is counted afresh. A lead pays O(its types) per activity, plus O(entries of
a type) when that type was pruned or first seen in a batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from streams.engine.activity import DEAD_LETTER_RECORD_MAX_BYTES, DEFAULT_FUTURE_HORIZON_US
from streams.engine.leadstate import HistoryEntry, LeadState

_ENTRY_CHARS: Final = 16
"""What an entry costs besides its values (date, brackets)."""
_SCALAR_CHARS: Final = 8
"""What a number, boolean or null costs."""


@dataclass(frozen=True, slots=True)
class Limits:
    future_horizon_us: int = DEFAULT_FUTURE_HORIZON_US
    """How far ahead of the processing clock an `activityDate` may be."""
    max_history: int = 20_000
    max_history_chars: int = 8_000_000
    max_seen: int = 50_000
    max_fields: int = 500
    dead_letter_record_max_bytes: int = DEAD_LETTER_RECORD_MAX_BYTES


def _chars(value: Any) -> int:
    if type(value) is str:
        return len(value)
    if type(value) is list:
        return sum(map(_chars, value)) + _SCALAR_CHARS
    return _SCALAR_CHARS


def entry_chars(entry: HistoryEntry) -> int:
    """The measure of one history entry: the characters of its text (attribute names
    included), 8 per other value, 16 for the entry."""
    total = _ENTRY_CHARS + _chars(entry[1])
    for name, value in entry[2].items():
        total += len(name) + _chars(value)
    return total


def enforce(state: LeadState, limits: Limits) -> None:
    """Bring `state` within `limits` (module doc); a no-op, O(types), when it is."""
    if len(state.seen) > limits.max_seen:
        seen = state.seen
        for identity in list(seen)[: len(seen) - _target(limits.max_seen)]:
            del seen[identity]
    if len(state.fields) > limits.max_fields:
        for name in list(state.fields)[limits.max_fields :]:
            del state.fields[name]
    entries, chars = _history_size(state)
    if entries > limits.max_history or chars > limits.max_history_chars:
        _trim_history(state, _target(limits.max_history), _target(limits.max_history_chars))


def drop_future(state: LeadState, limit_us: int) -> None:
    """Forget history dated after `limit_us` (the processing clock plus the future
    horizon) and lower `max_ts` to what is left. The decoder refuses such dates now; this
    repairs states stored before it did, where one far-future date would otherwise drive
    the pruning of the lead's history forever. O(1) unless there is something to repair."""
    if state.max_ts is None or state.max_ts <= limit_us:
        return
    latest: int | None = None
    for type_id, entries in state.history.items():
        if any(e[0] > limit_us for e in entries):
            entries[:] = [e for e in entries if e[0] <= limit_us]
            state.sizes.pop(type_id, None)
            state.index = None
        for entry in entries:
            if latest is None or entry[0] > latest:
                latest = entry[0]
    state.max_ts = latest


def _target(bound: int) -> int:
    return bound - bound // 16


def _history_size(state: LeadState) -> tuple[int, int]:
    sizes = state.sizes
    history = state.history
    if len(sizes) > len(history) or any(t not in history for t in sizes):
        for type_id in [t for t in sizes if t not in history]:
            del sizes[type_id]
    total_entries = total_chars = 0
    for type_id, entries in history.items():
        count = len(entries)
        last = entries[-1] if entries else None
        memo = sizes.get(type_id)
        if memo is None or memo[0] != count or memo[2] is not last:
            if memo is not None and count == memo[0] + 1 and (count == 1 or entries[-2] is memo[2]):
                memo = (count, memo[1] + entry_chars(entries[-1]), last)
            else:
                memo = (count, sum(map(entry_chars, entries)), last)
            sizes[type_id] = memo
        total_entries += count
        total_chars += memo[1]
    return total_entries, total_chars


def _trim_history(state: LeadState, max_entries: int, max_chars: int) -> None:
    history = state.history
    order = sorted(
        (entry[0], type_id, index, entry_chars(entry))
        for type_id, entries in history.items()
        for index, entry in enumerate(entries)
    )
    entries_left = len(order)
    chars_left = sum(item[3] for item in order)
    dropped: dict[int, set[int]] = {}
    for _, type_id, index, chars in order:
        if entries_left <= max_entries and chars_left <= max_chars:
            break
        dropped.setdefault(type_id, set()).add(index)
        entries_left -= 1
        chars_left -= chars
    for type_id, indexes in dropped.items():
        entries = history[type_id]
        entries[:] = [e for i, e in enumerate(entries) if i not in indexes]
        state.sizes.pop(type_id, None)
    state.index = None  # the engine's history index no longer matches the history


DEFAULT_LIMITS: Final = Limits()
