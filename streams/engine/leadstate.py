"""What the engine knows of one lead, as plain data that serialises to JSON and back unchanged
(the stored, versioned form is `streams.state.codec`).

Invariants:
- `history[type_id]` lists the accepted, non-duplicate activities of that type in processing
  order, as `[ts_us, primary, attributes]`; entries older than the lead's latest activity
  date minus the retention are dropped when that type gets a new entry, so pruning happens
  at the same points in the backtest and in the workers.
- `seen` maps activity identities to `[processed_at_us, position, fired_campaign_ids]`
  (plus `{field name: value}` when some fired campaign carries lead fields: the fields as
  known then, which a redelivery re-emits) in processing order, which lets the engine tell
  a duplicate (same identity, another position) from a redelivery (same position: re-emit
  the same events); it survives Delete Lead so a redelivered activity from before the
  deletion cannot bring the lead back.
- a `seen` entry whose fourth member has the key `""` (no lead field has that name: the
  decoder refuses an empty field name) records an activity the engine raised on
  (`streams.pipeline`, `engine_error`): `[processed_at_us, position, [], {"": message}]`.
  Read by a worker that does not know the mark, it is an activity that fired nothing.
- after every activity the pipeline brings the state within `bounds.Limits` (history
  entries and characters, `seen`, `fields`): `bounds.enforce` says what is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

HistoryEntry = list[Any]
"""`[ts_us, primary, {apiName: value}]`."""
SeenEntry = list[Any]
"""`[processed_at_us, position, [campaign ids fired]]`, and `{name: value}` when the
campaigns fired carry lead fields (only then: other entries stay three members)."""


class SizeMemo:
    """`bounds`' memo of one history type's size (or of all types, `bounds._TOTAL`):
    entries, bytes, and the last entry counted (the object: None for the totals). A class
    of its own, not a list: compiled, its counts are machine integers (no int object per
    memo and per change) and each field is read without indexing."""

    __slots__ = ("count", "last", "size")

    def __init__(self, count: int, size: int, last: HistoryEntry | None) -> None:
        self.count = count
        self.size = size
        self.last = last

    def copy(self) -> SizeMemo:
        return SizeMemo(self.count, self.size, self.last)

    def __repr__(self) -> str:
        return f"SizeMemo({self.count}, {self.size}, {self.last!r})"


@dataclass(slots=True)
class LeadState:
    history: dict[int, list[HistoryEntry]] = field(default_factory=dict)
    fields: dict[str, str] = field(default_factory=dict)
    """Lead fields by `name.casefold()`, as text."""
    runs: dict[int, int] = field(default_factory=dict)
    """Campaign id -> date (µs) of the activity that made the lead a member most recently."""
    seen: dict[str, SeenEntry] = field(default_factory=dict)
    max_ts: int | None = None
    """The latest activity date (µs) recorded for the lead since it was last erased."""
    sizes: dict[int, SizeMemo] = field(default_factory=dict, compare=False, repr=False)
    """Not stored, not compared: a memo of `bounds.enforce`, by type id."""
    index: Any = field(default=None, compare=False, repr=False)
    """Not stored, not compared: the engine's `HistoryIndex` of `history` (None: the engine
    scans, or rebuilds it from `history`). Whoever edits `history` other than the engine
    sets it to None."""

    def erase(self) -> None:
        """Delete Lead: history, fields and memberships go; `seen` stays (see module doc)."""
        self.history.clear()
        self.fields.clear()
        self.runs.clear()
        self.max_ts = None
        self.index = None

    def copy(self) -> LeadState:
        """A copy that shares nothing the engine mutates: history lists, dicts and the memo
        of sizes, each of its values too, are copied (history and `seen` entries are never
        mutated in place, so they are shared); the history index is left out (the engine
        rebuilds it)."""
        return LeadState(
            {type_id: entries[:] for type_id, entries in self.history.items()},
            dict(self.fields),
            dict(self.runs),
            dict(self.seen),
            self.max_ts,
            {key: memo.copy() for key, memo in self.sizes.items()},
        )

    def is_empty(self) -> bool:
        return not (self.history or self.fields or self.runs or self.seen)
