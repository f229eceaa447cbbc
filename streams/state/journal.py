"""A lead's stored state as a snapshot plus a journal of deltas, so that a batch writes what
it changed rather than the lead's whole history.

A busy lead's history and dedup record (`seen`) hold thousands of entries; rewriting them
on every batch that touches the lead made Redis traffic grow with the history. What a batch
does to them has one shape: entries dropped from the head (retention, the dedup horizon, the
bounds drop the oldest first, and in date order the oldest are the first) and entries
appended at the tail. A delta records exactly that, per history type and for `seen`, plus
the small hot members (`fields`, `runs`, `max_ts`) whole:

    {"d": 1, "h": {type id: [dropped, [appended entries]] | null (type gone)},
     "s": [dropped, {identity: seen entry, ...}],
     "f": {fields}, "r": {campaign id: ts}, "m": max_ts}

where "dropped" is a count from the head or, when entries went from further in (a late
activity's entry past the retention, an identity seen again and moved to the end), the list
of their positions. An identity processed again when it is already the last one keeps its
place with a new entry: it is dropped and appended again, as a moved one is. `Stored`
remembers what the store holds for a lead (copies of its lists and the last `seen` entries
as of the last load or save, and the sizes of snapshot and journal); `write` compares the
state with it (list slices compared in C, identical objects short-circuit; a walk over the
list when something went from the middle; for `seen` entries replaced in place a walk back
from the tail, `_changed_in_place`) and returns the delta, or a full snapshot
(`codec.encode_state`) when the journal would outgrow the snapshot: the journal is then
emptied, so the bytes written stay within about twice what the batches changed, and a cold
load reads at most about twice the state.

`apply_delta` is the inverse and checks each delta's shape as `codec.decode_state` checks a
snapshot (`UnreadableState` otherwise). Replaying the journal on the snapshot yields the
state that was saved: tests/unit/test_history_index.py runs the engine over this
layout against the reference, and tests/integration/test_store_contract.py runs it on
redis-server.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import islice
from typing import Any, Final

import orjson

from streams.engine.leadstate import HistoryEntry, LeadState, SeenEntry
from streams.state.codec import UnreadableState, encode_state, is_seen_entry

DELTA_VERSION: Final = 1
SEEN_TAIL: Final = 64
"""How many of the last `seen` entries `Stored` keeps, to find those replaced in place."""


@dataclass(slots=True)
class Stored:
    """What the store holds for one lead, as this process last read or wrote it."""

    history: dict[int, list[HistoryEntry]]
    """Copies of the history lists (the entries themselves are shared, never mutated)."""
    seen: list[str]
    """The identities of `seen`, in order."""
    seen_tail: list[SeenEntry]
    """The last `SEEN_TAIL` of their entries (shared, never mutated): an identity processed
    again when it is already the last one (or is followed only by others processed again)
    keeps its place among the identities, only its entry says it changed."""
    snapshot_bytes: int
    """0: nothing stored, or a snapshot of an earlier format; the next save writes one."""
    journal_bytes: int


def remember(state: LeadState, snapshot_bytes: int, journal_bytes: int) -> Stored:
    return Stored(
        {t: list(entries) for t, entries in state.history.items()},
        list(state.seen),
        _tail(state.seen),
        snapshot_bytes,
        journal_bytes,
    )


def _diff(old: list[Any], new: list[Any]) -> tuple[int | list[int], int]:
    """(what was dropped from `old`, how many of `new` are kept from it): `new` is `old`
    without the dropped items, in the same order, followed by `new[kept:]`. The drop is a
    count from the head when it is only that (found in C), else the dropped positions.

    Sound for any two lists, as a sequence of equal items: identity only chooses what is
    kept (an item equal to a dropped one but another object is dropped and appended again,
    which costs bytes, not correctness), and the fast path checks the kept part with `==`
    and its last item by identity: items only go, and new objects only come at the end,
    so an appended object within the kept part would be its last one. Without that check
    an entry the bounds' trim drops beside an equal one appended (same date and
    attributes) would count as kept, and the bytes would differ from the native core's,
    which tells entries apart by number (`stored.rs`), not by value.
    What it cannot see is a change inside an item it keeps as equal: history entries are
    never mutated, but a `seen` entry is replaced under an identity that keeps its place
    when it is processed again as the last one, so `_delta` looks for such entries too
    (`_changed_in_place`) and rewrites from the first that changed."""
    if not new:
        return len(old), 0
    first = new[0]
    k = 0
    for item in old:  # usually k is 0 or small: the loop stops at the first kept item
        if item is first:
            break
        k += 1
    kept = len(old) - k
    if not kept or (new[:kept] == old[k:] and new[kept - 1] is old[-1]):
        return k, kept
    # Something was dropped further in (a late entry past the retention): walk both lists.
    # The engine appends new objects, so an item of `old` that is kept is the same object.
    dropped: list[int] = []
    j = 0
    n = len(new)
    for i, item in enumerate(old):
        if j < n and new[j] is item:
            j += 1
        else:
            dropped.append(i)
    return dropped, j


def _without(items: list[Any], positions: list[int]) -> list[Any]:
    gone = set(positions)
    return [item for i, item in enumerate(items) if i not in gone]


def _tail(seen: dict[str, SeenEntry]) -> list[SeenEntry]:
    return list(islice(reversed(seen.values()), SEEN_TAIL))[::-1]


def _changed_in_place(
    seen: dict[str, SeenEntry], kept: int, size: int, drop: int | list[int], tail: list[Any]
) -> int | None:
    """The first of the `kept` identities of `seen` (`size` were stored, the last entries
    of which are `tail`) whose entry is not the one stored (an equal one counts as the
    same), or None. Entries are never mutated, and an identity gets a new entry only by
    being inserted again, last: so one whose entry is the very object stored follows no
    identity inserted since. The walk goes back from the last kept identity to the first
    such entry (usually at once: flat in `seen`'s length); with none within `tail`, 0 (it
    would take more identities processed again in one batch than `SEEN_TAIL`)."""
    base = size - len(tail)  # the stored position of tail[0]
    held = range(drop, size) if isinstance(drop, int) else _without(list(range(size)), drop)
    i = kept
    walked: list[tuple[int, SeenEntry]] = []
    for entry in islice(reversed(seen.values()), len(seen) - kept, None):
        if not i:
            break
        at = held[i - 1]
        if at < base:
            return 0
        if entry is tail[at - base]:
            break
        i -= 1
        walked.append((i, entry))
    return next((j for j, e in reversed(walked) if e != tail[held[j] - base]), None)


def _rewrite_from(size: int, drop: int | list[int], first: int) -> tuple[int | list[int], int]:
    """`_diff`'s (drop, kept) when the kept item `first` changed inside: kept up to it, it
    and the rest dropped and appended again, in order. A delta then never replaces an
    entry in place (the strict reader of the native core, `cold.rs`, declines an appended
    identity that is still held)."""
    if first == 0:
        return size, 0
    if isinstance(drop, int):
        return [*range(drop), *range(drop + first, size)], first
    keep = set(_without(list(range(size)), drop)[:first])
    return [i for i in range(size) if i not in keep], first


def encode_delta(stored: Stored, state: LeadState) -> bytes:
    """The delta from `stored` to `state`."""
    return _delta(stored, state)[0]


def _delta(stored: Stored, state: LeadState) -> tuple[bytes, Stored]:
    """The delta from `stored` to `state`, and what the store holds once it is appended
    (its `snapshot_bytes`, `journal_bytes` still `stored`'s: `write` sets them). A history
    list the delta leaves as it was keeps `stored`'s copy: only what changed is copied.
    The types come in the order of their ids, those gone last (as the snapshot and the
    native core write them): the history's own order is that in which the lead got them,
    which a load from the store does not keep."""
    history: dict[int, Any] = {}
    copies: dict[int, list[HistoryEntry]] = {}
    old_history = stored.history
    for type_id, entries in sorted(state.history.items()):
        old = old_history.get(type_id)
        if old is None:
            history[type_id] = [0, entries]
            copies[type_id] = list(entries)
            continue
        drop, kept = _diff(old, entries)
        if drop or kept != len(entries):
            history[type_id] = [drop, entries[kept:]]
            copies[type_id] = list(entries)
        else:
            copies[type_id] = old
    for type_id in sorted(old_history):
        if type_id not in state.history:
            history[type_id] = None
    seen = state.seen
    seen_keys = list(seen)
    drop, kept = _diff(stored.seen, seen_keys)
    first = _changed_in_place(seen, kept, len(stored.seen), drop, stored.seen_tail)
    if first is not None:
        drop, kept = _rewrite_from(len(stored.seen), drop, first)
    delta = orjson.dumps(
        {
            "d": DELTA_VERSION,
            "h": history,
            "s": [drop, {key: seen[key] for key in seen_keys[kept:]}],
            "f": state.fields,
            "r": state.runs,
            "m": state.max_ts,
        },
        option=orjson.OPT_NON_STR_KEYS,  # the int keys of `h` and `r` as JSON strings
    )
    return delta, Stored(
        copies, seen_keys, _tail(seen), stored.snapshot_bytes, stored.journal_bytes
    )


def write(stored: Stored | None, state: LeadState) -> tuple[bool, bytes, Stored]:
    """(is a delta, the bytes to write, what the store holds once they are written)."""
    if stored is not None and stored.snapshot_bytes:
        delta, after = _delta(stored, state)
        journal_bytes = stored.journal_bytes + len(delta)
        if journal_bytes <= stored.snapshot_bytes:
            after.journal_bytes = journal_bytes
            return True, delta, after
    snapshot = encode_state(state)
    return False, snapshot, remember(state, len(snapshot), 0)


def _is_drop(value: Any) -> bool:
    return (type(value) is int and value >= 0) or (
        type(value) is list and all(type(i) is int for i in value)
    )


def _drop(entries: list[Any], drop: int | list[int]) -> None:
    if isinstance(drop, int):
        del entries[:drop]
    else:
        positions = set(drop)
        entries[:] = [e for i, e in enumerate(entries) if i not in positions]


def _bad(what: str) -> UnreadableState:
    return UnreadableState(f"journal entry: {what}")


def apply_delta(state: LeadState, raw: bytes) -> None:
    """Replay one journal entry on `state` (see the module doc for its shape)."""
    try:
        delta = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise _bad(f"not JSON: {exc}") from None
    if type(delta) is not dict or delta.get("d") != DELTA_VERSION:
        raise _bad(f"not a delta of version {DELTA_VERSION}: {str(delta)[:80]}")
    history, seen_part = delta.get("h"), delta.get("s")
    fields, runs, max_ts = delta.get("f"), delta.get("r"), delta.get("m")
    if (
        type(history) is not dict
        or type(seen_part) is not list
        or len(seen_part) != 2
        or not _is_drop(seen_part[0])
        or type(seen_part[1]) is not dict
        or type(fields) is not dict
        or not all(type(v) is str for v in fields.values())
        or type(runs) is not dict
        or not all(type(v) is int and k.lstrip("-").isdigit() for k, v in runs.items())
        or (max_ts is not None and type(max_ts) is not int)
    ):
        raise _bad("a member of the wrong shape")
    for key, change in history.items():
        if not key.lstrip("-").isdigit():
            raise _bad(f"history key {key[:40]!r}")
        type_id = int(key)
        if change is None:
            state.history.pop(type_id, None)
            continue
        if (
            type(change) is not list
            or len(change) != 2
            or not _is_drop(change[0])
            or type(change[1]) is not list
            or not all(
                type(e) is list and len(e) == 3 and type(e[0]) is int and type(e[2]) is dict
                for e in change[1]
            )
        ):
            raise _bad(f"history[{key}] is {str(change)[:80]}")
        entries = state.history.setdefault(type_id, [])
        _drop(entries, change[0])
        entries.extend(change[1])
    seen = state.seen
    drop = seen_part[0]
    if isinstance(drop, int):
        gone = list(islice(seen, drop))
    else:
        positions = set(drop)
        gone = [key for i, key in enumerate(seen) if i in positions]
    for identity in gone:
        del seen[identity]
    for identity, entry in seen_part[1].items():
        if not is_seen_entry(entry):
            raise _bad(f"seen[{identity[:80]!r}] is {str(entry)[:80]}")
        seen[identity] = entry
    state.fields = fields
    state.runs = {int(k): v for k, v in runs.items()}
    state.max_ts = max_ts
    state.index = None
    state.sizes.clear()
