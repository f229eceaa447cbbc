"""The indexed history filters against the scanning reference (`Engine(index_from=None)`).

Hypothesis draws streams of activities for a few leads, with dates going back and forth
(mobile devices send late), duplicates and redeliveries, Delete Lead, field changes, and a
retention short enough that pruning happens; both engines must emit the same events, batch
by batch, and leave the same states. The indexed side also runs with its states serialized
between batches (as in Redis: the index is rebuilt from the history), stored as a snapshot
and a journal of deltas (Redis's layout, `streams.state.journal`), and with a new plan
object every few batches (a reload: the index built for the old plan is stale).
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.engine.bounds import Limits, _history_size
from streams.engine.compiler import Plan, load_plan
from streams.engine.datatypes import US_PER_DAY
from streams.engine.evaluator import Engine
from streams.engine.leadstate import LeadState
from streams.pipeline import Processor, Record
from streams.state.codec import decode_state, encode_state
from streams.state.journal import Stored, apply_delta, remember, write
from streams.state.memory import MemoryStore

MINUTE_US = 60_000_000
NOW_US = 1_800_000_000_000_000
BASE_US = NOW_US - 3 * US_PER_DAY

TYPE = """\
id: 100001
apiName: buy
name: Buy
triggerName: Buys
filterName: Bought
status: approved
primaryAttribute:
  apiName: item
  name: Item
  dataType: string
attributes:
  - apiName: qty
    name: Qty
    dataType: integer
  - apiName: at
    name: At
    dataType: datetime
  - apiName: due
    name: Due
    dataType: datetime
"""

CAMPAIGNS = {
    # windows in minutes and hours, minTimes, negation, shared constraints, no window.
    "a": """\
id: 1
name: A
qualification: every time
triggers:
  - trigger: Buys
filters:
  logic: 1 and not 2
  items:
    - filter: Bought
      window: 90 minutes
      minTimes: 3
      constraints:
        - operator: is
          values: [x, y]
    - filter: Bought
      window: 20 minutes
      minTimes: 2
      constraints:
        - attribute: qty
          operator: at least
          value: 5
""",
    "b": """\
id: 2
name: B
qualification: once every 30 minutes
triggers:
  - trigger: Buys
    constraints:
      - operator: is
        value: x
filters:
  logic: any
  items:
    - filter: Bought
      minTimes: 4
    - filter: Bought
      window: 90 minutes
      minTimes: 2
      constraints:
        - operator: is
          values: [x, y]
    - field: country
      operator: is
      value: France
""",
    # `in past` on the entry's own date attribute depends on T: counted through an interval slot.
    "c": """\
id: 3
name: C
qualification: every time
triggers:
  - trigger: Data Value Changes
filters:
  items:
    - filter: Bought
      minTimes: 2
      constraints:
        - attribute: at
          operator: in past
          value: 1 hours
""",
    # Counts near the threshold, over the retention: pruning decides.
    "e": """\
id: 5
name: E
qualification: every time
triggers:
  - trigger: Buys
    constraints:
      - operator: is not
        value: x
filters:
  logic: 1 or 2
  items:
    - filter: Bought
      minTimes: 9
      constraints:
        - operator: is not
          value: z
    - filter: Bought
      window: 2 hours
      minTimes: 6
""",
    # `in past` with a window, other constraints, two durations on one attribute (the
    # shortest bounds it), negation; and on two attributes (item 3: an interval slot).
    "f": """\
id: 6
name: F
qualification: every time
triggers:
  - trigger: Buys
filters:
  logic: (1 and not 2) or 3
  items:
    - filter: Bought
      window: 90 minutes
      minTimes: 2
      constraints:
        - operator: is
          values: [x, y]
        - attribute: at
          operator: in past
          value: 3 hours
        - attribute: at
          operator: in past
          value: 2 hours
    - filter: Bought
      window: 30 minutes
      negate: true
      minTimes: 1
      constraints:
        - attribute: at
          operator: in past
          value: 45 minutes
    - filter: Bought
      minTimes: 3
      constraints:
        - attribute: at
          operator: in past
          value: 1 hours
        - attribute: due
          operator: in past
          value: 2 hours
""",
    "d": """\
id: 4
name: D
qualification: once
triggers:
  - trigger: Buys
filters:
  items:
    - filter: Bought
      window: 2 hours
      negate: true
      minTimes: 3
      constraints:
        - attribute: qty
          operator: at least
          value: 5
""",
}


def write_index_rules(root: Path) -> Path:
    """`TYPE` and `CAMPAIGNS` as a rules directory at `root` (made empty beforehand)."""
    (root / "activity-types").mkdir()
    (root / "campaigns").mkdir()
    (root / "activity-types" / "buy.yaml").write_text(TYPE)
    for name, text in CAMPAIGNS.items():
        (root / "campaigns" / f"{name}.yaml").write_text(text)
    return root


@pytest.fixture(scope="module")
def rules(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_index_rules(tmp_path_factory.mktemp("rules"))


def load(rules: Path, hours: int = 3) -> Plan:
    # A retention of 3 hours, above the longest window (2 hours): entries do get pruned, and
    # a late activity's window and the no-window filters reach below what was pruned.
    return load_plan(rules, retention_us=hours * 60 * MINUTE_US)


class JsonStore:
    """States kept as their JSON, as Redis keeps them: every load is a fresh object."""

    def __init__(self) -> None:
        self.raw: dict[int, bytes] = {}

    async def load(self, lead_ids: Collection[int]) -> dict[int, LeadState]:
        return {
            lead: decode_state(self.raw[lead]) if lead in self.raw else LeadState()
            for lead in lead_ids
        }

    async def save(self, states: Mapping[int, LeadState]) -> None:
        self.raw.update({lead: encode_state(state) for lead, state in states.items()})


class JournalStore:
    """Redis's layout in memory: a snapshot and a journal of deltas per lead, written by
    `journal.write` as `RedisStore.save` writes them, replayed by `apply_delta` on load."""

    def __init__(self) -> None:
        self.snapshots: dict[int, bytes] = {}
        self.journals: dict[int, list[bytes]] = {}
        self.stored: dict[int, Stored | None] = {}
        self.deltas = 0

    async def load(self, lead_ids: Collection[int]) -> dict[int, LeadState]:
        out = {}
        for lead in lead_ids:
            state, stored = LeadState(), None
            if lead in self.snapshots:
                state = decode_state(self.snapshots[lead])
                for delta in self.journals[lead]:
                    apply_delta(state, delta)
                stored = remember(
                    state, len(self.snapshots[lead]), sum(map(len, self.journals[lead]))
                )
            out[lead], self.stored[lead] = state, stored
        return out

    async def save(self, states: Mapping[int, LeadState]) -> None:
        for lead, state in states.items():
            is_delta, payload, _ = write(self.stored.pop(lead, None), state)
            if is_delta:
                self.journals[lead].append(payload)
                self.deltas += 1
            else:
                self.snapshots[lead], self.journals[lead] = payload, []

    def states(self) -> dict[int, bytes]:
        loaded = asyncio.run(self.load(list(self.snapshots)))
        return {lead: encode_state(state) for lead, state in loaded.items()}


def iso(date_us: int) -> str:
    return datetime.fromtimestamp(date_us / 1_000_000, UTC).isoformat().replace("+00:00", "Z")


def record(op: tuple[int, int, int, str, int, int]) -> bytes:
    """An activity; a purchase's `at` lies from 200 minutes before its date to 60 after it
    (or is empty) and `due` up to 200 minutes before: both apart from the date, so the
    `in past` filters count over two ranges, or three."""
    kind, lead, minutes, item, qty, guid = op
    date_us = BASE_US + minutes * MINUTE_US
    at_us = date_us - ((qty * 37 + guid * 11) % 260 - 60) * MINUTE_US
    due_us = date_us - (guid * 7 % 200) * MINUTE_US
    activity: dict[str, Any] = {
        "marketoGUID": f"g{guid}",
        "leadId": lead,
        "activityDate": iso(date_us),
    }
    if kind == 0:
        activity |= {
            "activityTypeId": 100001,
            "primaryAttributeValue": item,
            "attributes": [
                {"apiName": "qty", "value": qty},
                {"apiName": "at", "value": iso(at_us) if qty % 2 else None},
                {"apiName": "due", "value": iso(due_us)},
            ],
        }
    elif kind == 1:
        activity |= {
            "activityTypeId": 13,
            "fields": [{"name": "country", "newValue": "France" if qty % 2 else "Spain"}],
        }
    else:
        activity |= {"activityTypeId": 37}
    return orjson.dumps(activity)


ops = st.tuples(
    st.sampled_from([0] * 8 + [1, 2]),  # mostly purchases; field changes; Delete Lead
    st.integers(1, 3),  # lead
    st.integers(0, 600),  # minutes after BASE: dates out of order
    st.sampled_from(["x", "y", "z"]),
    st.integers(0, 9),
    st.integers(0, 40),  # identity: repeats are duplicates
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    stream=st.lists(ops, min_size=1, max_size=120),
    batch=st.integers(1, 30),
    drift=st.lists(st.integers(0, 4), min_size=1, max_size=4),
    redeliver=st.integers(0, 5),
    index_from=st.sampled_from([0, 3]),  # indexed from the start, or once a lead is busy
    max_history=st.sampled_from([20_000, 4]),  # 4: the bounds trim history (and the index)
)
def test_indexed_engine_matches_the_scanning_reference(
    rules: Path,
    stream: list[Any],
    batch: int,
    drift: list[int],
    redeliver: int,
    index_from: int,
    max_history: int,
) -> None:
    # Rising minutes with drift: most activities in date order, some late.
    minutes = 0
    shaped = []
    for i, (kind, lead, late, item, qty, guid) in enumerate(stream):
        minutes += drift[i % len(drift)] * 7
        shaped.append((kind, lead, minutes - (late if late < 300 else 0), item, qty, guid))
    records = [Record(record(op), "t", 0, i) for i, op in enumerate(shaped)]
    batches = [records[i : i + batch] for i in range(0, len(records), batch)]
    if redeliver and batches:  # a batch read again at the same positions
        batches.insert(min(redeliver, len(batches)), batches[min(redeliver, len(batches)) - 1])

    plan = load(rules)
    limits = Limits(max_history=max_history)
    reference = Processor(plan, MemoryStore(), limits=limits, native=False)
    reference.engine = Engine(plan, index_from=None)
    live = Processor(plan, MemoryStore(), limits=limits, native=False)
    live.engine = Engine(plan, index_from=index_from)
    serialized = Processor(plan, JsonStore(), limits=limits)
    serialized.engine = Engine(plan, index_from=index_from)
    journaled = Processor(plan, JournalStore(), limits=limits)
    journaled.engine = Engine(plan, index_from=index_from)

    async def run() -> None:
        for n, records in enumerate(batches):
            if n % 3 == 2:  # a reload: the live states' indexes are for the old plan
                live.engine = Engine(load(rules), index_from=index_from)
            want = await reference.process(records, NOW_US)
            for processor in (live, serialized, journaled):
                got = await processor.process(records, NOW_US)
                assert got.events == want.events
            for state in live.store.leads.values():
                if state.index is not None and state.index.plan is live.engine.plan:
                    assert_points_fresh(live.engine.plan, state, busy=False)
            for state in (*reference.store.leads.values(), *live.store.leads.values()):
                # The size memo, kept up to date by the engine's pruning (`bounds.forget`)
                # and by `enforce`, holds what a count afresh gives.
                if -1 in state.sizes:
                    fresh = _history_size(LeadState(state.history), None)
                    memo = state.sizes[-1]
                    assert (memo.count, memo.size) == (fresh.count, fresh.size)
                assert (got.accepted, got.duplicates, got.redelivered) == (
                    want.accepted,
                    want.duplicates,
                    want.redelivered,
                )

    asyncio.run(run())
    assert isinstance(reference.store, MemoryStore) and isinstance(live.store, MemoryStore)
    assert isinstance(serialized.store, JsonStore)
    want_states = {lead: encode_state(s) for lead, s in reference.store.leads.items()}
    assert {lead: encode_state(s) for lead, s in live.store.leads.items()} == want_states
    assert serialized.store.raw == want_states
    assert isinstance(journaled.store, JournalStore)
    assert journaled.store.states() == want_states
    for lead, state in live.store.leads.items():
        assert state == reference.store.leads[lead]


@pytest.mark.parametrize(("late_every", "late_by", "hours"), [(10, 37, 3), (2, 150, 12)])
def test_a_busy_lead_fires_as_the_reference_does(
    rules: Path, late_every: int, late_by: int, hours: int
) -> None:
    """2,000 purchases of one lead over 2,000 minutes, a tenth late (or half, by up to 150
    minutes, with a retention of 12 hours: the ranged slots' late points spill into runs
    that merge): the windows hold many entries, pruning runs on most of them, and every
    decision matches the reference."""
    shaped = [
        (0, 1, i - (late_by - i % 7 if i % late_every == 1 else 0), "xyz"[i % 3], i % 10, i)
        for i in range(2000)
    ]
    records = [Record(record(op), "t", 0, i) for i, op in enumerate(shaped)]
    plan = load(rules, hours)
    reference = Processor(plan, MemoryStore(), native=False)
    reference.engine = Engine(plan, index_from=None)
    live = Processor(plan, MemoryStore(), native=False)  # indexed once the lead is busy
    journaled = Processor(plan, JournalStore())

    async def run() -> tuple[list[Any], list[Any], list[Any]]:
        want, got, from_journal = [], [], []
        for i in range(0, len(records), 100):
            want += (await reference.process(records[i : i + 100], NOW_US)).events
            got += (await live.process(records[i : i + 100], NOW_US)).events
            from_journal += (await journaled.process(records[i : i + 100], NOW_US)).events
        return want, got, from_journal

    want, got, from_journal = asyncio.run(run())
    assert got == want
    assert from_journal == want
    assert isinstance(journaled.store, JournalStore)
    assert journaled.store.deltas >= 10  # most batches wrote a delta, not the whole state
    assert journaled.store.states() == {1: encode_state(reference.store.leads[1])}
    assert len({e["campaignId"] for e in want}) >= 3  # the filters did decide something
    in_past = sum(1 for e in want if e["campaignId"] == 6)
    assert 100 < in_past < 2000, in_past  # the `in past` filters decide either way
    assert isinstance(live.store, MemoryStore) and isinstance(reference.store, MemoryStore)
    assert encode_state(live.store.leads[1]) == encode_state(reference.store.leads[1])
    index = live.store.leads[1].index
    assert index is not None
    assert index.dates[100001] == sorted(e[0] for e in live.store.leads[1].history[100001])
    assert_points_fresh(plan, live.store.leads[1])


def assert_points_fresh(plan: Plan, state: LeadState, busy: bool = True) -> None:
    """The interval slots' intervals kept up (appends, late entries, pruning, trims) are
    those a fresh index holds, and satisfy their invariants; `busy`: some are held."""
    index = state.index
    assert index is not None and index.plan is plan
    fresh = plan.history_index(state)
    # C's filter, F's three (the third bounds two attributes): four (window, durations)
    assert index.stabs.keys() == fresh.stabs.keys() and len(index.stabs) == 4
    for slot, intervals in index.stabs.items():
        intervals.check()
        assert (intervals.starts, intervals.ends) == (
            fresh.stabs[slot].starts,
            fresh.stabs[slot].ends,
        )
        assert not intervals.odd
    many = len(state.history.get(100001, ())) > 100  # the busy lead's
    assert not (busy and many) or all(len(i) for i in index.stabs.values()), "none held"


def test_history_trimmed_by_the_bounds_is_counted_as_the_reference_does(rules: Path) -> None:
    """`bounds.enforce` drops the oldest entries of a lead over `max_history`: the index
    must not go on counting them."""
    shaped = [
        (0, 1, i * 5 - (37 if i % 10 == 3 else 0), "xyz"[i % 3], i % 10, 10_000 + i)
        for i in range(200)
    ]
    records = [Record(record(op), "t", 0, i) for i, op in enumerate(shaped)]
    plan = load(rules)
    limits = Limits(max_history=4)
    reference = Processor(plan, MemoryStore(), limits=limits, native=False)
    reference.engine = Engine(plan, index_from=None)
    live = Processor(plan, MemoryStore(), limits=limits, native=False)
    live.engine = Engine(plan, index_from=0)

    async def run() -> tuple[list[Any], list[Any]]:
        want = (await reference.process(records, NOW_US)).events
        return want, (await live.process(records, NOW_US)).events

    want, got = asyncio.run(run())
    assert want  # the campaigns do fire on a trimmed history
    assert got == want
    # The trim cut the index in place (`HistoryIndex.trim`): it holds what a fresh one would.
    assert isinstance(live.store, MemoryStore)
    state = live.store.leads[1]
    assert state.index is not None
    fresh = plan.history_index(state)
    assert (state.index.dates, state.index.hits) == (fresh.dates, fresh.hits)
    assert any(state.index.hits), "the slots count something"
    assert_points_fresh(plan, state)


def test_an_attribute_stored_as_another_type_is_scanned_as_the_reference_does(
    rules: Path,
) -> None:
    """History entries whose `at` is a float (stored while the attribute had another
    dataType) are not points: the ranged slot marks itself `odd` and the filter scans, so
    the decision is the reference's (which compares the floats)."""
    plan = load(rules)
    minutes = range(100)
    entries = [
        [BASE_US + m * MINUTE_US, "x", {"qty": 1, "at": float(BASE_US + m * MINUTE_US)}]
        for m in minutes
    ]

    async def run(index_from: int | None) -> tuple[list[Any], Any]:
        store = MemoryStore()
        store.leads[1] = LeadState({100001: [list(e) for e in entries]}, max_ts=entries[-1][0])
        processor = Processor(plan, store, native=False)
        processor.engine = Engine(plan, index_from=index_from)
        events = (
            await processor.process([Record(record((0, 1, 100, "x", 2, 1)), "t", 0, 0)], NOW_US)
        ).events
        return events, store.leads[1].index

    want, _ = asyncio.run(run(None))
    got, index = asyncio.run(run(0))
    assert 6 in {e["campaignId"] for e in want}  # the floats counted
    assert got == want
    assert index is not None and index.stabs and all(s.odd for s in index.stabs.values())
