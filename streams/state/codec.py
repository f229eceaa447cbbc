"""The stored form of a `LeadState`, versioned: reads every known version, writes the current.

Versions (the `v` member of the JSON object; none means 1):

    1   {"h": {type id: [[ts_us, primary, {apiName: value}], ...]}, "f": {name: text},
         "r": {campaign id: ts_us}, "s": {identity: [processed_at_us, position, [ids]]},
         "m": max_ts_us | null}                       (wave 1, unversioned)
    2   version 1 plus "v": 2
    3   version 2 with "v": 3                          (current)
        the same members, but a `seen` entry may have a fourth member, {name: text}: the
        lead fields its campaigns carried, which a redelivery re-emits; and 3 says that
        the lead's key may have a journal of deltas to replay on it
        (`streams.state.journal`), so a worker that knows only version 2 refuses the state
        rather than read it without its journal. A fourth member `{"": message}` marks an
        activity the engine raised on (`streams.engine.leadstate`): the same shape, so
        every version 3 reader takes it (as an activity that fired nothing)

To change the format: add version N+1 to `_READERS` with a function that turns the parsed
object into a `LeadState` (or into version N's object, then call N's reader), make it
`FORMAT_VERSION`, and change `encode_state`. A stored state is only rewritten by the next
save of its lead, so every version ever written stays readable.

`decode_state` checks the shape as it reads, member by member, so that a state the engine
could trip over later (junk, a truncated write, another program's key, a newer format
written by a newer worker) is refused here with `UnreadableState` naming what is wrong,
never half-used. The caller decides what to do with it (the Redis store quarantines it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import orjson

from streams.engine.leadstate import HistoryEntry, LeadState, SeenEntry

FORMAT_VERSION: Final = 3
"""The version `encode_state` writes."""


class UnreadableState(ValueError):
    """Stored bytes that are not a state of any version this code knows; the message says
    why (not JSON, a member of the wrong shape, a newer version)."""


def encode_state(state: LeadState) -> bytes:
    """The current version's JSON for `state`."""
    return orjson.dumps(
        {
            "v": FORMAT_VERSION,
            "h": {str(k): v for k, v in state.history.items()},
            "f": state.fields,
            "r": {str(k): v for k, v in state.runs.items()},
            "s": state.seen,
            "m": state.max_ts,
        }
    )


_CURRENT_PREFIX: Final = b'{"v":%d,' % FORMAT_VERSION


def is_current(raw: bytes) -> bool:
    """Whether `raw` was written by this version's `encode_state` (which writes `v` first):
    the store appends deltas only to such a snapshot, so that a worker that knows only an
    earlier version never reads a state whose journal it would ignore."""
    return raw.startswith(_CURRENT_PREFIX)


def decode_state(raw: bytes | str) -> LeadState:
    """The `LeadState` stored as `raw`, of any known version; `UnreadableState` otherwise."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise UnreadableState(f"not JSON: {exc}") from None
    if type(data) is not dict:
        raise UnreadableState(f"not a JSON object but {type(data).__name__}")
    version = data.get("v", 1)
    reader = _READERS.get(version) if type(version) is int else None
    if reader is None:
        newer = type(version) is int and version > FORMAT_VERSION
        raise UnreadableState(
            f"format version {version!r} is "
            + (f"newer than this worker's ({FORMAT_VERSION})" if newer else "not one known")
        )
    return reader(data)


def _is_int(value: Any) -> bool:
    return type(value) is int


def _int_key(key: str, where: str) -> int:
    if not key.lstrip("-").isdigit():
        raise UnreadableState(f"{where}: key {key[:40]!r} is not an integer")
    return int(key)


def _member(data: dict[str, Any], name: str, kind: type) -> Any:
    value = data.get(name)
    if type(value) is not kind:
        raise UnreadableState(
            f"member {name!r} must be a JSON {kind.__name__}, not {type(value).__name__}"
        )
    return value


def _history(raw: dict[str, Any]) -> dict[int, list[HistoryEntry]]:
    history: dict[int, list[HistoryEntry]] = {}
    for key, entries in raw.items():
        type_id = _int_key(key, "history")
        if type(entries) is not list:
            raise UnreadableState(f"history[{key}] is not a list")
        for entry in entries:
            if (
                type(entry) is not list
                or len(entry) != 3
                or type(entry[0]) is not int
                or type(entry[2]) is not dict
            ):
                raise UnreadableState(f"history[{key}] has an entry {str(entry)[:80]}")
        history[type_id] = entries
    return history


def is_seen_entry(entry: Any, carried: bool = True) -> bool:
    """Whether `entry` has the shape of a `seen` entry (`SeenEntry`); `carried` False
    refuses the fourth member, the lead fields carried, as versions 1 and 2 do. For
    whatever else stores `seen` entries (a journal of deltas), so it checks them alike."""
    return (
        type(entry) is list
        and (len(entry) == 3 or (carried and len(entry) == 4 and _is_text_map(entry[3])))
        and type(entry[0]) is int
        and type(entry[1]) is str
        and type(entry[2]) is list
        and all(map(_is_int, entry[2]))
    )


def _seen(raw: dict[str, Any], carried: bool = False) -> dict[str, SeenEntry]:
    for identity, entry in raw.items():
        if not is_seen_entry(entry, carried):
            raise UnreadableState(f"seen[{identity[:80]!r}] is {str(entry)[:80]}")
    return raw


def _is_text_map(value: Any) -> bool:
    return type(value) is dict and all(type(v) is str for v in value.values())


def _read_v1(data: dict[str, Any], carried: bool = False) -> LeadState:
    fields = _member(data, "f", dict)
    if not _is_text_map(fields):
        raise UnreadableState("member 'f' has a value that is not text")
    runs = _member(data, "r", dict)
    if not all(map(_is_int, runs.values())):
        raise UnreadableState("member 'r' has a date that is not an integer")
    max_ts = data.get("m")
    if max_ts is not None and type(max_ts) is not int:
        raise UnreadableState(f"member 'm' must be an integer or null, not {max_ts!r}"[:120])
    return LeadState(
        history=_history(_member(data, "h", dict)),
        fields=fields,
        runs={_int_key(k, "runs"): v for k, v in runs.items()},
        seen=_seen(_member(data, "s", dict), carried),
        max_ts=max_ts,
    )


_read_v2 = _read_v1
"""Version 2 only added `v`, which `decode_state` has read."""


def _read_v3(data: dict[str, Any]) -> LeadState:
    """Version 3: `seen` entries may carry fields; its journal is the store's to replay
    (`RedisStore.load`)."""
    return _read_v1(data, carried=True)


_READERS: Final[dict[int, Callable[[dict[str, Any]], LeadState]]] = {
    1: _read_v1,
    2: _read_v2,
    3: _read_v3,
}
