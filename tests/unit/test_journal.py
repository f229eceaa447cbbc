"""`journal.write` against everything the engine and the pipeline do to a lead between two
saves: replaying the snapshot and the journal it wrote yields the state, whichever objects
(identical, equal, or decoded afresh) the lists hold."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.engine.leadstate import LeadState
from streams.state import journal
from streams.state.codec import decode_state, encode_state
from streams.state.journal import Stored, apply_delta, remember, write

KEYS = [f"id-{n}" for n in range(12)]


def fresh(text: str) -> str:
    """An equal string that is not the same object (as a decoded record's identity is)."""
    copy = "".join(list(text))
    assert copy == text and copy is not text
    return copy


class Layout:
    """A snapshot and a journal, as Redis holds them for one lead."""

    def __init__(self) -> None:
        self.snapshot = b""
        self.journal: list[bytes] = []
        self.stored: Stored | None = None

    def save(self, state: LeadState) -> None:
        is_delta, payload, self.stored = write(self.stored, state)
        if is_delta:
            self.journal.append(payload)
        else:
            self.snapshot, self.journal = payload, []

    def load(self) -> LeadState:
        state = decode_state(self.snapshot)
        for delta in self.journal:
            apply_delta(state, delta)
        self.stored = remember(state, len(self.snapshot), sum(map(len, self.journal)))
        return state


step = st.one_of(
    st.tuples(st.just("see"), st.sampled_from(KEYS), st.integers(0, 3)),
    st.tuples(st.just("fault"), st.sampled_from(KEYS), st.integers(0, 3)),
    st.tuples(st.just("expire"), st.integers(1, 3), st.just(0)),
    st.tuples(st.just("record"), st.integers(1, 2), st.integers(0, 9)),
    st.tuples(st.just("retain"), st.integers(1, 2), st.integers(1, 2)),
    st.tuples(st.just("late"), st.integers(1, 2), st.integers(0, 5)),
    st.tuples(st.just("copy"), st.integers(1, 2), st.just(0)),
    st.tuples(st.just("erase"), st.just(0), st.just(0)),
    st.tuples(st.just("save"), st.just(0), st.just(0)),
    st.tuples(st.just("reload"), st.just(0), st.just(0)),
)


def mutate(state: LeadState, op: str, a: Any, b: int, clock: int) -> None:
    """One change as the engine (`Engine.process`, `_expire_seen`, `bounds.enforce`,
    retention, `erase`) or the pipeline (an engine fault's mark) makes it."""
    seen = state.seen
    if op in ("see", "fault"):  # processed (again past the horizon): re-inserted last
        seen.pop(a, None)
        entry: list[Any] = [clock, f"t/0/{clock}", list(range(b))]
        if op == "fault":
            entry = [clock, f"t/0/{clock}", [], {"": f"boom {clock}"}]
        seen[fresh(a)] = entry
    elif op == "expire":
        for key in list(seen)[:a]:
            del seen[key]
    elif op == "record":
        state.history.setdefault(a, []).append([clock, f"p{b}", {"n": b}])
        state.max_ts = clock
    elif op == "retain":
        del state.history.get(a, [])[:b]
    elif op == "late":
        entries = state.history.get(a, [])
        if b < len(entries):
            del entries[b]
    elif op == "copy":  # equal entries that are other objects (a decode, a copy)
        if a in state.history:
            state.history[a] = [[e[0], fresh(e[1]), dict(e[2])] for e in state.history[a]]
    elif op == "erase":
        state.erase()
    state.fields[f"f{clock % 3}"] = str(clock)


@pytest.mark.parametrize("tail", [journal.SEEN_TAIL, 1, 3])
@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=st.lists(step, max_size=40))
def test_replaying_what_write_wrote_yields_the_state(
    monkeypatch: pytest.MonkeyPatch, tail: int, steps: list[tuple[str, Any, int]]
) -> None:
    """With `SEEN_TAIL` as it is, and so short that the walk runs out of it."""
    monkeypatch.setattr(journal, "SEEN_TAIL", tail)
    layout = Layout()
    state = LeadState()
    layout.save(state)
    for clock, (op, a, b) in enumerate(steps, start=1):
        if op == "save":
            layout.save(state)
            assert encode_state(layout.load()) == encode_state(state)
            layout.save(state)  # from what `load` remembered: an empty delta
        elif op == "reload":
            layout.save(state)
            state = layout.load()
        else:
            mutate(state, op, a, b, clock)
    layout.save(state)
    assert encode_state(layout.load()) == encode_state(state)


def test_an_identity_processed_again_as_the_last_one_keeps_its_new_entry() -> None:
    """The case `_diff` alone misses: the keys are unchanged, the last one's entry is not."""
    layout = Layout()
    state = LeadState(seen={"a": [1, "t/0/1", []], "b": [2, "t/0/2", []]})
    layout.save(state)
    del state.seen["b"]
    state.seen[fresh("b")] = [9, "t/0/9", [7]]
    layout.save(state)
    assert layout.journal, "a delta, not a new snapshot"
    assert layout.load().seen["b"] == [9, "t/0/9", [7]]


@pytest.mark.parametrize("tail", [journal.SEEN_TAIL, 1])
def test_identities_processed_again_in_their_order_keep_their_new_entries(
    monkeypatch: pytest.MonkeyPatch, tail: int
) -> None:
    """The last two processed again in the order they were: the keys are as stored, both
    entries are new (with a `SEEN_TAIL` of 1 the second is beyond the tail)."""
    monkeypatch.setattr(journal, "SEEN_TAIL", tail)
    layout = Layout()
    state = LeadState(seen={k: [n, f"t/0/{n}", []] for n, k in enumerate("abc")})
    layout.save(state)
    for n, key in ((7, "b"), (8, "c")):
        del state.seen[key]
        state.seen[fresh(key)] = [n, f"t/0/{n}", [n]]
    layout.save(state)
    if tail > 1:  # else all of `seen` is written again: as many bytes as a snapshot
        assert layout.journal, "a delta, not a new snapshot"
    assert layout.load().seen == state.seen
