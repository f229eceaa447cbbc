"""An exception the engine raises on one record (a defect, not bad input) makes that record
an `engine_error` dead letter; the batch goes on (streams/pipeline.py, module doc).

The engine here is a subclass that raises on chosen records after its own work on the
state is done, the worst case for the rollback: everything it changed must be undone."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams import pipeline
from streams.backtest import backtest_to_lists
from streams.engine.activity import Activity, Decoder, Rejection
from streams.engine.compiler import Plan, load_plan
from streams.engine.evaluator import Engine, Outcome
from streams.engine.leadstate import LeadState
from streams.pipeline import ENGINE_ERROR, BatchResult, Processor, Record, StatesNotIsolated
from streams.state.codec import encode_state
from streams.state.memory import MemoryStore
from tests.unit.actions_rules import rules_dir
from tests.unit.test_history_index import JournalStore
from tests.unit.test_replay_fields import CodecStore

NOW_US = 1_900_000_000_000_000


class Faulty(Engine):
    """Raises on an activity whose identity starts with `boom` while its lead has no
    `country` field: a defect that depends on the state, as real ones may."""

    def process(self, state: LeadState, activity: Activity, now_us: int) -> Outcome:
        outcome = super().process(state, activity, now_us)
        if activity.id.startswith("boom") and "country" not in state.fields:
            raise ZeroDivisionError("division by zero")
        return outcome


def _attend(guid: str, lead: int = 1001, hour: int = 10) -> dict[str, Any]:
    return {
        "marketoGUID": guid,
        "leadId": lead,
        "activityDate": f"2026-09-26T{hour:02d}:00:00Z",
        "activityTypeId": 100001,
        "primaryAttributeValue": "Py Con",
        "attributes": [{"apiName": "numberOfAttendees", "value": 150}],
    }


def _boom_change(guid: str = "boom-1") -> dict[str, Any]:
    """A field change the faulty engine raises on: its field must not stay."""
    return {
        "marketoGUID": guid,
        "leadId": 1001,
        "activityDate": "2026-09-26T09:30:00Z",
        "activityTypeId": 13,
        "primaryAttributeValue": "City",
        "fields": [{"name": "City", "newValue": "Lyon"}],
    }


def _country(guid: str, hour: int) -> dict[str, Any]:
    return {
        "marketoGUID": guid,
        "leadId": 1001,
        "activityDate": f"2026-09-26T{hour:02d}:00:00Z",
        "activityTypeId": 13,
        "primaryAttributeValue": "Country",
        "fields": [{"name": "Country", "newValue": "France"}],
    }


def _records(*activities: dict[str, Any] | bytes, first: int = 0) -> list[Record]:
    return [
        Record(a if isinstance(a, bytes) else orjson.dumps(a), "activities", 0, first + n)
        for n, a in enumerate(activities)
    ]


COMPILED = not hasattr(Engine.process, "__code__")
"""The engine's mypyc build (where `scripts/build-engine` made one) cannot be subclassed
nor patched from Python: this module's tests then run in a child process on the pure
engine (`test_on_the_pure_engine`)."""
CHILD = "STREAMS_TEST_ENGINE_ERRORS_CHILD"


@pytest.fixture
def plan(tmp_path: Path) -> Plan:
    if COMPILED:
        pytest.skip("the compiled engine runs here: see test_on_the_pure_engine")
    return load_plan(rules_dir(tmp_path, actions=[]))


@pytest.mark.skipif(not COMPILED, reason="the pure engine runs this module's tests here")
def test_on_the_pure_engine() -> None:
    if os.environ.get(CHILD):
        pytest.fail("STREAMS_ENGINE=pure did not give the pure engine")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__],
        env={**os.environ, "STREAMS_ENGINE": "pure", CHILD: "1"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0 and " passed" in done.stdout, done.stdout[-5000:] + done.stderr


def _processor(plan: Plan, store: Any, engine: type[Engine] = Faulty) -> Processor:
    processor = Processor(plan, store)
    processor.engine = engine(plan, processor.engine.dedup_horizon_us)
    return processor


def _run(processor: Processor, records: list[Record]) -> BatchResult:
    return asyncio.run(processor.process(records, NOW_US))


def _without(state: LeadState, identity: str) -> LeadState:
    copy = state.copy()
    del copy.seen[identity]
    return copy


def test_the_record_is_a_dead_letter_and_every_other_one_is_as_without_it(plan: Plan) -> None:
    good = [_attend("a1"), _attend("b1", lead=1002), _attend("a2", hour=11)]
    faulty = _processor(plan, CodecStore())
    batch = _records(good[0], _boom_change(), *good[1:], b"not json")
    result = _run(faulty, batch)
    reference = _processor(plan, CodecStore(), Engine)
    expected = _run(reference, [batch[0], *batch[2:4]])  # the same positions

    assert result.events == expected.events and len(expected.events) == 3
    assert (result.accepted, result.duplicates, result.redelivered) == (3, 0, 0)
    letter, malformed = result.dead_letters  # in record order
    assert letter["error"] == {
        "code": ENGINE_ERROR,
        "message": "ZeroDivisionError: division by zero",
    }
    assert (letter["topic"], letter["partition"], letter["offset"]) == ("activities", 0, 1)
    assert orjson.loads(letter["record"]) == _boom_change()
    assert malformed["error"]["code"] == "malformed" and malformed["offset"] == 4

    # The lead's state is the reference's (the City change did not stay), plus the mark.
    states = asyncio.run(faulty.store.load([1001, 1002]))
    others = asyncio.run(reference.store.load([1001, 1002]))
    assert "city" not in states[1001].fields
    assert _without(states[1001], "boom-1") == others[1001]
    assert states[1002] == others[1002]
    assert states[1001].seen["boom-1"][1:] == [
        "activities/0/1",
        [],
        {"": "ZeroDivisionError: division by zero"},
    ]
    assert list(states[1001].seen) == ["a1", "boom-1", "a2"]  # processing order


@pytest.mark.parametrize("store", [CodecStore, JournalStore])
def test_a_replay_of_the_batch_gives_the_same_dead_letter_and_events(
    plan: Plan, store: type[Any]
) -> None:
    """Saved, then read again (a crash before the commit). A later record of the batch
    gives the lead the field whose absence made the engine raise: evaluated again, the
    record would pass and emit an event the first run did not; the mark in `seen` makes
    it the same dead letter instead. Stored as a snapshot, and as Redis's journal of
    deltas, which checks the shape of `seen` entries as it reads them."""
    processor = _processor(plan, store())
    batch = _records(_attend("boom-2"), _country("c1", 11), _attend("a3", hour=12))
    first = _run(processor, batch)
    assert [d["error"]["code"] for d in first.dead_letters] == [ENGINE_ERROR]
    assert [e["activityId"] for e in first.events] == ["a3"]

    again = _run(processor, batch)
    assert again.dead_letters == first.dead_letters
    assert again.events == first.events
    assert (again.accepted, again.redelivered) == (0, 2)

    alone = _run(processor, batch[:1])  # the record alone, at its position
    assert alone.dead_letters == first.dead_letters and not alone.events


def test_the_same_record_at_another_position_is_evaluated_afresh(plan: Plan) -> None:
    """Sent again (from the dead-letter topic once the defect is fixed, or a producer's
    retry): the defect still there, a dead letter again; fixed, it is accepted."""
    store = CodecStore()
    faulty = _processor(plan, store)
    _run(faulty, _records(_attend("boom-3")))
    moved = _run(faulty, _records(_attend("boom-3"), first=7))
    assert [(d["error"]["code"], d["offset"]) for d in moved.dead_letters] == [(ENGINE_ERROR, 7)]
    assert moved.duplicates == 0 and not moved.events

    fixed = _processor(plan, store, Engine)
    sent_again = _run(fixed, _records(_attend("boom-3"), first=9))
    assert not sent_again.dead_letters and sent_again.accepted == 1
    assert [e["activityId"] for e in sent_again.events] == ["boom-3"]
    # Read again at its first position now: a duplicate of the accepted one.
    assert _run(fixed, _records(_attend("boom-3"))).duplicates == 1


def test_one_log_line_per_record_with_its_position(
    plan: Plan, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="streams.pipeline"):
        _run(_processor(plan, CodecStore()), _records(_attend("a1"), _attend("boom-4"), first=5))
    (line,) = caplog.records
    assert "activities/0/6" in line.getMessage() and "ZeroDivisionError" in line.getMessage()
    assert line.exc_info is not None  # the traceback, to find the defect


class FaultyDecoder(Decoder):
    def decode(
        self, raw: bytes | str, position: str, now_us: int | None = None
    ) -> Activity | Rejection:
        if b"boom-decoder" in (raw if isinstance(raw, bytes) else raw.encode()):
            raise KeyError("boom")
        return super().decode(raw, position, now_us)


def test_a_record_the_decoder_raises_on_is_a_dead_letter_too(
    plan: Plan, caplog: pytest.LogCaptureFixture
) -> None:
    processor = _processor(plan, CodecStore(), Engine)
    processor.decoder = FaultyDecoder(plan.catalog)
    batch = _records(b"[]", _attend("a1"), _attend("boom-decoder"), _attend("a2", hour=11))
    with caplog.at_level(logging.ERROR, logger="streams.pipeline"):
        result = _run(processor, batch)
    expected = _run(_processor(plan, CodecStore(), Engine), [batch[1], batch[3]])
    assert result.events == expected.events and len(result.events) == 2
    assert [(d["error"]["code"], d["offset"]) for d in result.dead_letters] == [
        ("malformed", 0),
        (ENGINE_ERROR, 2),
    ]
    assert result.dead_letters[1]["error"]["message"] == "KeyError: 'boom'"
    (line,) = caplog.records
    assert line.getMessage().startswith("activities/0/2: the decoder raised on the record")


class FailingStore(CodecStore):
    """A store that fails its `fail_on`-th call of `load` (1-based) or every `save`."""

    def __init__(self, fail_on: int = 0, fail_save: bool = False) -> None:
        super().__init__()
        self.loads = 0
        self.fail_on = fail_on
        self.fail_save = fail_save

    async def load(self, lead_ids: Collection[int]) -> dict[int, LeadState]:
        self.loads += 1
        if self.loads == self.fail_on:
            raise ConnectionError("Redis is down")
        return await super().load(lead_ids)

    async def save(self, states: Mapping[int, LeadState]) -> None:
        if self.fail_save:
            raise ConnectionError("Redis is down")
        await super().save(states)


@pytest.mark.parametrize("store", [FailingStore(fail_on=2), FailingStore(fail_save=True)])
def test_store_errors_still_fail_the_batch(plan: Plan, store: FailingStore) -> None:
    """Loading again for the slow path, or saving after it: not the engine's, not isolated."""
    with pytest.raises(ConnectionError, match="Redis is down"):
        _run(_processor(plan, store), _records(_attend("boom-5")))


def test_live_states_cannot_be_isolated(plan: Plan) -> None:
    with pytest.raises(StatesNotIsolated) as caught:
        _run(_processor(plan, MemoryStore()), _records(_attend("a1"), _attend("boom-6")))
    assert isinstance(caught.value.__cause__, ZeroDivisionError)
    copies = _run(_processor(plan, MemoryStore(copies=True)), _records(_attend("boom-6")))
    assert [d["error"]["code"] for d in copies.dead_letters] == [ENGINE_ERROR]


def test_a_copy_shares_nothing_that_processing_changes(plan: Plan) -> None:
    """`LeadState.copy`, which the rollback and `MemoryStore(copies=True)` rely on: the
    state saved by one batch stays as it was while the next batch works on its copy
    (history, fields, runs, seen, and the bounds' memo of sizes, updated in place)."""
    store = MemoryStore(copies=True)
    processor = _processor(plan, store, Engine)
    _run(processor, _records(_attend("a1"), _country("c1", 9)))
    saved = store.leads[1001]
    as_saved, memo = encode_state(saved), repr(saved.sizes)
    assert saved.sizes, "the memo is filled"
    _run(processor, _records(_attend("a2", hour=11), _boom_change("c2"), first=2))
    assert store.leads[1001] is not saved
    assert (encode_state(saved), repr(saved.sizes)) == (as_saved, memo)
    assert encode_state(store.leads[1001]) != as_saved


@pytest.mark.parametrize("batch_size", [1, 2, 5_000])
def test_the_backtest_writes_the_dead_letter_and_the_same_events(
    plan: Plan, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batch_size: int
) -> None:
    """The backtest meets the error with live states and reads the file again with copies;
    what it wrote before is not written twice."""
    lines = [
        _attend("a1"),
        _attend("b1", lead=1002),
        _attend("a2", hour=11),
        _boom_change("boom-7"),
        _attend("a3", hour=12),
        _attend("b2", lead=1002, hour=13),
        _boom_change("boom-7"),  # the same activity again: evaluated afresh, raises again
    ]
    with_boom = tmp_path / "with.jsonl"
    with_boom.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    without = tmp_path / "without.jsonl"
    without.write_bytes(
        b"".join(orjson.dumps(line) + b"\n" for line in lines if line["marketoGUID"] != "boom-7")
    )
    expected, _, _ = backtest_to_lists(plan, without, 7 * 86_400_000_000, batch_size)

    monkeypatch.setattr(pipeline, "Engine", Faulty)
    events, letters, stats = backtest_to_lists(plan, with_boom, 7 * 86_400_000_000, batch_size)
    assert events == expected and len(events) == 5
    assert [(d["error"]["code"], d["topic"], d["offset"]) for d in letters] == [
        (ENGINE_ERROR, "file", 3),
        (ENGINE_ERROR, "file", 6),
    ]
    assert (stats.lines, stats.accepted, stats.rejected, stats.events) == (7, 5, 2, 5)
