"""The stored form of a lead's state (streams/state/codec.py): the current version round
trips, version 1 (wave 1's unversioned JSON) still reads, and anything else is refused
with a reason rather than half-read."""

from __future__ import annotations

import orjson
import pytest

from streams.engine.leadstate import LeadState
from streams.state.codec import (
    FORMAT_VERSION,
    UnreadableState,
    decode_state,
    encode_state,
    is_current,
)

STATE = LeadState(
    history={100_001: [[1_700_000_000_000_000, "Web", {"score": 1.5, "ok": True}]], 12: []},
    fields={"email": "lead@example.com"},
    runs={7: 1_700_000_000_000_000},
    seen={"guid-1": [1_700_000_000_000_001, "activities/0/1", [7]], "h-2": [5, "f/0/2", []]},
    max_ts=1_700_000_000_000_000,
)

V1 = (
    b'{"h":{"100001":[[1700000000000000,"Web",{"score":1.5,"ok":true}]],"12":[]},'
    b'"f":{"email":"lead@example.com"},"r":{"7":1700000000000000},'
    b'"s":{"guid-1":[1700000000000001,"activities/0/1",[7]],"h-2":[5,"f/0/2",[]]},'
    b'"m":1700000000000000}'
)
"""What wave 1's `LeadState.to_json` wrote for STATE, byte for byte."""


def test_current_version_round_trips_and_says_its_version() -> None:
    raw = encode_state(STATE)
    assert orjson.loads(raw)["v"] == FORMAT_VERSION == 3
    assert decode_state(raw) == STATE
    assert encode_state(decode_state(raw)) == raw
    assert decode_state(encode_state(LeadState())) == LeadState()


def test_version_1_reads_into_the_same_state_and_is_rewritten_as_current() -> None:
    state = decode_state(V1)
    assert state == STATE
    assert encode_state(state) == encode_state(STATE)
    assert decode_state(V1.decode()) == STATE  # str as well as bytes
    explicit = orjson.loads(V1) | {"v": 1}
    assert decode_state(orjson.dumps(explicit)) == STATE


CARRIED = LeadState(
    fields={"country": "spain"},
    seen={
        "a1": [5, "activities/0/1", [2001], {"country": "France"}],
        "a2": [6, "activities/0/2", [2002], {}],
        "c2": [7, "activities/0/3", []],
    },
)
"""Version 3: entries whose campaigns carried lead fields keep them; the others do not."""


def test_seen_entries_with_carried_fields_round_trip() -> None:
    raw = encode_state(CARRIED)
    assert orjson.loads(raw)["v"] == FORMAT_VERSION == 3
    assert orjson.loads(raw)["s"]["c2"] == [7, "activities/0/3", []]
    assert decode_state(raw) == CARRIED
    assert encode_state(decode_state(raw)) == raw


def test_version_2_still_reads_and_refuses_carried_fields() -> None:
    """A version 2 state (written before carried fields) reads as it did; a fourth member
    is only valid from version 3 on."""
    v2 = orjson.loads(V1) | {"v": 2}
    assert decode_state(orjson.dumps(v2)) == STATE
    with pytest.raises(UnreadableState, match="seen"):
        decode_state(orjson.dumps(orjson.loads(encode_state(CARRIED)) | {"v": 2}))


@pytest.mark.parametrize(
    "entry",
    [
        [5, "p", [7], {"country": 5}],
        [5, "p", [7], ["France"]],
        [5, "p", [7], None],
        [5, "p", [7], {}, {}],
    ],
)
def test_carried_fields_of_the_wrong_shape_are_refused(entry: list[object]) -> None:
    raw = orjson.dumps({"v": 3, "h": {}, "f": {}, "r": {}, "s": {"g": entry}, "m": None})
    with pytest.raises(UnreadableState, match="seen"):
        decode_state(raw)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"junk", "not JSON"),
        (b"", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[1, 2]", "not a JSON object but list"),
        (b'"text"', "not a JSON object but str"),
        (orjson.dumps({"v": 4, "h": {}}), "newer than this worker's (3)"),
        (orjson.dumps({"v": "2"}), "not one known"),
        (orjson.dumps({"v": 0}), "not one known"),
        (b"{}", "member 'f' must be a JSON dict, not NoneType"),
    ],
)
def test_not_a_state_is_refused_with_the_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(UnreadableState, match=reason.replace("(", r"\(").replace(")", r"\)")):
        decode_state(raw)


def _v1(**changes: object) -> bytes:
    return orjson.dumps(orjson.loads(V1) | changes)


@pytest.mark.parametrize(
    "raw",
    [
        _v1(h=[]),
        _v1(h={"x": []}),
        _v1(h={"1": {}}),
        _v1(h={"1": [[1, "a"]]}),
        _v1(h={"1": [["1", "a", {}]]}),
        _v1(h={"1": [[1, "a", []]]}),
        _v1(h={"1": [7]}),
        _v1(f={"email": 5}),
        _v1(r={"7": "yesterday"}),
        _v1(r={"seven": 1}),
        _v1(s={"g": [1, "p"]}),
        _v1(s={"g": [1, 2, []]}),
        _v1(s={"g": [1, "p", ["7"]]}),
        _v1(s={"g": [1.5, "p", []]}),
        _v1(s=[]),
        _v1(m="2026-01-01"),
        _v1(m=1.5),
    ],
)
def test_a_member_of_the_wrong_shape_is_refused(raw: bytes) -> None:
    """Anything the engine would trip over later (a TypeError mid-batch) stops here."""
    with pytest.raises(UnreadableState):
        decode_state(raw)


def test_version_2_reads_into_the_same_state() -> None:
    assert decode_state(orjson.dumps(orjson.loads(V1) | {"v": 2})) == STATE


def test_only_the_current_format_takes_deltas() -> None:
    assert is_current(encode_state(STATE))
    assert not is_current(V1)
    assert not is_current(orjson.dumps(orjson.loads(V1) | {"v": 2}))
