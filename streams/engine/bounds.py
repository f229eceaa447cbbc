"""The bounds on what one lead's state may hold, applied after each activity, and the other
limits a processor is built with.

Why after each activity, by the pipeline: the backtest and the workers then cut a state at
the same points whatever their batch sizes, so they keep deciding alike. What happens at a
bound (each is a `Limits` field and a setting; the README's "Poison inputs and limits"):

- history over `max_history` entries or `max_history_bytes` bytes (all types together;
  `entry_bytes`, an entry's JSON, is the measure): the oldest entries by activity date
  (ties: type id, then processing order) are dropped until it is back to 15/16 of both
  bounds, so a lead at a bound pays for the sort once per 1/16 of it, not per activity.
  Filters then count only what is kept, as for entries older than the retention.
- `seen` over `max_seen` identities: the oldest processed are forgotten, down to 15/16 (as
  the deduplication horizon does): a copy of one of them, read later, counts again. An
  entry's carried lead fields (evaluator: only for activities that fired a campaign whose
  actions name fields) hold only those names, with values taken from `fields`, so within
  `max_fields_chars`; they go with their entry and are not measured apart.
- `fields` over `max_fields` names or `max_fields_chars` characters (names and values):
  the names added most recently (the last in the dict's order) are dropped until it is
  within both; the others go on changing. Checked only after a field change (types 12
  and 13), the only activities that touch `fields`.

Whatever drops history entries here also drops them from the engine's history index
(`LeadState.index`, `HistoryIndex.trim`; or drops the index, rebuilt from what is left).

Sizes are memoised in `LeadState.sizes`: per type id a `SizeMemo` (entries, bytes, last
entry), and the totals under `_TOTAL`, updated in place (no allocation per activity). An
activity changes only its own type's list (appended at the end, then filtered by the
retention) or erases them all, so `enforce` given the type updates that type's memo and the
totals: the list is unchanged if its count and last entry (the object) are, only appended
to if it grew by one and the memo's last entry is now the one before the last, else counted
afresh. Whatever else edits history clears the memo (`drop_future`) or sets it afresh
(`_trim_history`); an empty memo, or no type given, counts every type afresh (a lead's
first activity in a batch, for the Redis store). A lead pays O(1) per activity, plus
O(entries of a type) when that type was pruned.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import orjson

from streams.engine.activity import DEAD_LETTER_RECORD_MAX_BYTES, DEFAULT_FUTURE_HORIZON_US
from streams.engine.leadstate import HistoryEntry, LeadState, SizeMemo

_TOTAL: Final = -1
"""The key of the totals (a `SizeMemo` whose `last` is None) in `LeadState.sizes` (type ids
are > 0)."""


@dataclass(frozen=True, slots=True)
class Limits:
    future_horizon_us: int = DEFAULT_FUTURE_HORIZON_US
    """How far ahead of the processing clock an `activityDate` may be."""
    max_history: int = 20_000
    max_history_bytes: int = 16_777_216
    max_seen: int = 50_000
    max_fields: int = 500
    max_fields_chars: int = 1_000_000
    dead_letter_record_max_bytes: int = DEAD_LETTER_RECORD_MAX_BYTES


_dumps: Final = orjson.dumps
"""Bound once: the compiled build then calls it without looking it up on the module."""


def entry_bytes(entry: HistoryEntry) -> int:
    """The measure of one history entry: the length of its JSON, as it is stored."""
    return len(_dumps(entry))


def enforce(
    state: LeadState, limits: Limits, type_id: int | None = None, fields_changed: bool = True
) -> None:
    """Bring `state` within `limits` (module doc) after an activity of `type_id` (None:
    look at every type); O(1) when it is within them. `fields_changed` False skips the
    fields, which only types 12 and 13 change."""
    seen = state.seen
    if len(seen) > limits.max_seen:
        for identity in list(seen)[: len(seen) - _target(limits.max_seen)]:
            del seen[identity]
    if fields_changed and state.fields:
        _bound_fields(state.fields, limits)
    total = _history_size(state, type_id)
    if total.count > limits.max_history or total.size > limits.max_history_bytes:
        _trim_history(state, _target(limits.max_history), _target(limits.max_history_bytes))


def _history_size(state: LeadState, type_id: int | None) -> SizeMemo:
    """Entries and bytes of the whole history, through the memo (module doc): the memo's
    own totals, which the caller must not change."""
    sizes = state.sizes
    history = state.history
    if not history:
        sizes.clear()
        return SizeMemo(0, 0, None)
    total = sizes.get(_TOTAL)
    if total is None or type_id is None:
        return _count_afresh(sizes, history)
    kept = history.get(type_id)
    if kept is None:
        return total
    count = len(kept)
    last = kept[-1] if count else None
    memo = sizes.get(type_id)
    if memo is None:
        memo = sizes[type_id] = SizeMemo(0, 0, None)
    elif memo.last is last and memo.count == count:
        return total  # unchanged (the common case of a type that is not recorded)
    if count == memo.count + 1 and (count == 1 or (count > 1 and kept[-2] is memo.last)):
        added = entry_bytes(last) if last is not None else 0
    else:
        added = sum(map(entry_bytes, kept)) - memo.size
    total.count += count - memo.count
    total.size += added
    memo.count = count
    memo.size += added
    memo.last = last
    return total


def forget(
    state: LeadState, type_id: int, dropped: list[HistoryEntry], appended: HistoryEntry
) -> None:
    """Entries of the type that the engine has just dropped (the retention), after it
    appended `appended`, taken off the size memo, so that `enforce` sees the type as only
    appended to and does not measure it again: a busy lead's history is pruned on most of
    its activities. The memo never counted `appended` (the engine may drop it at once, a
    late arrival), so it is not taken off. Without a memo, nothing to do."""
    sizes = state.sizes
    memo = sizes.get(type_id)
    total = sizes.get(_TOTAL)
    if memo is None or total is None:
        return
    gone = [e for e in dropped if e is not appended]
    size = sum(map(entry_bytes, gone))
    memo.count -= len(gone)
    memo.size -= size
    total.count -= len(gone)
    total.size -= size


def _count_afresh(sizes: dict[int, SizeMemo], history: dict[int, list[HistoryEntry]]) -> SizeMemo:
    sizes.clear()
    count = size = 0
    for key, entries in history.items():
        entries_bytes = sum(map(entry_bytes, entries))
        sizes[key] = SizeMemo(len(entries), entries_bytes, entries[-1] if entries else None)
        count += len(entries)
        size += entries_bytes
    total = sizes[_TOTAL] = SizeMemo(count, size, None)
    return total


def drop_future(state: LeadState, limit_us: int) -> None:
    """Forget history dated after `limit_us` (the processing clock plus the future
    horizon) and lower `max_ts` to what is left. The decoder refuses such dates now; this
    repairs states stored before it did, where one far-future date would otherwise drive
    the pruning of the lead's history forever. O(1) unless there is something to repair."""
    if state.max_ts is None or state.max_ts <= limit_us:
        return
    latest: int | None = None
    for entries in state.history.values():
        if any(e[0] > limit_us for e in entries):
            entries[:] = [e for e in entries if e[0] <= limit_us]
            state.sizes.clear()
            state.index = None
        for entry in entries:
            if latest is None or entry[0] > latest:
                latest = entry[0]
    state.max_ts = latest


def _bound_fields(fields: dict[str, str], limits: Limits) -> None:
    names = list(fields)
    chars = sum(len(name) + len(value) for name, value in fields.items())
    while names and (len(names) > limits.max_fields or chars > limits.max_fields_chars):
        name = names.pop()
        chars -= len(name) + len(fields.pop(name))


def _target(bound: int) -> int:
    return bound - bound // 16


def _trim_history(state: LeadState, max_entries: int, max_bytes: int) -> None:
    """Drop the oldest entries (module doc), then set the size memo from the sizes the sort
    measured and cut the same entries from the history index, rather than leave both to be
    rebuilt from the whole history: a lead at the bound pays one measure per trim."""
    history = state.history
    order = sorted(
        (entry[0], type_id, index, entry_bytes(entry))
        for type_id, entries in history.items()
        for index, entry in enumerate(entries)
    )
    entries_left = len(order)
    bytes_by_type = dict.fromkeys(history, 0)
    for item in order:
        bytes_by_type[item[1]] += item[3]
    bytes_left = sum(bytes_by_type.values())
    dropped: dict[int, set[int]] = {}
    for _, type_id, index, size in order:
        if entries_left <= max_entries and bytes_left <= max_bytes:
            break
        dropped.setdefault(type_id, set()).add(index)
        bytes_by_type[type_id] -= size
        entries_left -= 1
        bytes_left -= size
    cut: dict[int, list[HistoryEntry]] = {}
    for type_id, indexes in dropped.items():
        entries = history[type_id]
        cut[type_id] = [e for i, e in enumerate(entries) if i in indexes]
        entries[:] = [e for i, e in enumerate(entries) if i not in indexes]
    sizes = state.sizes
    sizes.clear()
    for type_id, entries in history.items():
        last = entries[-1] if entries else None
        sizes[type_id] = SizeMemo(len(entries), bytes_by_type[type_id], last)
    sizes[_TOTAL] = SizeMemo(entries_left, bytes_left, None)
    # Not `index`, the loop's int above: mypyc types a name once and checks it at runtime.
    history_index = state.index
    if history_index is not None and not history_index.trim(cut):
        state.index = None  # rebuilt from the history when the engine needs it


DEFAULT_LIMITS: Final = Limits()
