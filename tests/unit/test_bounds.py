"""The bounds on one lead's state (streams/engine/bounds.py) and the pipeline's use of them:
what is dropped at each bound, that the default keeps 16,000 activities in a window, that
batch sizes still never change the output, and that one far-future date can no longer
drive the pruning of a lead's history (issue 7, items 3 and 4)."""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path

import orjson
import pytest

from streams.engine.bounds import DEFAULT_LIMITS, Limits, _history_size, enforce, entry_bytes
from streams.engine.leadstate import LeadState
from streams.pipeline import BatchResult, Processor, Record
from streams.state.codec import decode_state, encode_state
from streams.state.memory import MemoryStore
from tests.unit.test_evaluation import (
    NOW_US,
    Harness,
    at,
    attend,
    campaign,
    change,
    write_rules,
)

SMALL = Limits(max_history=160, max_history_bytes=100_000, max_seen=320, max_fields=20)


def test_an_entry_measures_as_its_json() -> None:
    entry = [1_700_000_000_000_000, "KubeCon", {"track": "Keynotes", "n": 3, "ok": None}]
    assert entry_bytes(entry) == len(orjson.dumps(entry)) == 65


def _state(entries: list[tuple[int, int, str]]) -> LeadState:
    state = LeadState()
    for ts, type_id, text in entries:
        state.history.setdefault(type_id, []).append([ts, text, {}])
    return state


def test_history_over_the_entry_bound_loses_its_oldest_dates_down_to_15_16() -> None:
    limits = Limits(max_history=160)
    rng = random.Random(7)
    dates = rng.sample(range(10_000), 161)
    state = _state([(ts, 100 + ts % 3, "x") for ts in dates])
    enforce(state, limits)
    kept = sorted(e[0] for entries in state.history.values() for e in entries)
    assert kept == sorted(dates)[-150:]
    for entries in state.history.values():
        assert [e[0] for e in entries] == [
            ts for ts in dates if ts in set(kept) and ts % 3 == entries[0][0] % 3
        ]


def test_history_over_the_byte_bound_loses_its_oldest_dates() -> None:
    limits = Limits(max_history_bytes=16_000)
    state = _state([(ts, 1, "y" * 989) for ts in range(100, 117)])  # 1,000 bytes each
    assert entry_bytes(state.history[1][0]) == 1_000
    enforce(state, limits, 1)
    assert [e[0] for e in state.history[1]] == list(range(102, 117))  # 15,000: 15/16 of 16,000


def test_within_bounds_nothing_changes() -> None:
    state = _state([(ts, 1, "z") for ts in range(160)])
    state.seen = {f"g{n}": [n, "p", []] for n in range(320)}
    state.fields = {f"f{n}": "v" for n in range(20)}
    before = encode_state(state)
    enforce(state, SMALL)
    assert encode_state(state) == before


def test_seen_over_its_bound_forgets_the_oldest_processed() -> None:
    state = LeadState(seen={f"g{n}": [n, "p", []] for n in range(321)})
    enforce(state, SMALL)
    assert list(state.seen) == [f"g{n}" for n in range(21, 321)]


def test_fields_over_their_bound_keep_the_first_set() -> None:
    state = LeadState(fields={f"f{n}": "v" for n in range(25)})
    enforce(state, SMALL)
    assert list(state.fields) == [f"f{n}" for n in range(20)]


def test_the_size_memo_agrees_with_a_fresh_count_through_appends_prunes_and_erasure() -> None:
    """As the engine changes a history: one type per activity, appended then filtered by
    the retention, or all erased."""
    rng = random.Random(11)
    state = LeadState()
    for step in range(3_000):
        type_id = rng.choice((1, 2, 3))
        if rng.random() < 0.01:
            state.history.clear()
        else:
            entries = state.history.setdefault(type_id, [])
            entries.append([step, "v" * rng.randrange(50), {"a": "b" * rng.randrange(5)}])
            if rng.random() < 0.1:
                entries[:] = [e for e in entries if rng.random() < 0.7]
        enforce(state, SMALL, type_id)
        memo = _history_size(state, type_id)
        fresh = _history_size(LeadState(state.history), None)
        assert (memo.count, memo.size) == (fresh.count, fresh.size)
    assert state.sizes, "the memo was used"


# --- through the pipeline -----------------------------------------------------------------

ATTENDED_16000_TIMES = (
    "items:\n  - filter: Attended Conference\n    window: 90 days\n    minTimes: 16000\n"
)
ON_THE_LAST = "- trigger: Attends Conference\n  constraints:\n    - operator: is\n      value: Last"


def test_the_default_keeps_16000_realistic_entries_and_their_identities() -> None:
    state = LeadState()
    entries = state.history.setdefault(100001, [])
    for n in range(16_000):
        entries.append([n, f"Conference number {n}", {"track": "Keynotes and talks", "n": n}])
        state.seen[f"2f1c9a4e-{n:08d}-4e0b-9c1d-6b2a0e7f5d3c"] = [n, f"activities/3/{n}", [2001]]
    state.fields = {f"field{n}": "some value" for n in range(200)}
    before = encode_state(state)
    enforce(state, DEFAULT_LIMITS)
    assert encode_state(state) == before


def test_a_lead_with_16000_activities_in_a_window_counts_them_all(tmp_path: Path) -> None:
    """Issue 8's case through the pipeline: 16,000 activities of one lead inside the
    campaign's window all count; the last makes the lead a member."""
    root = write_rules(tmp_path, campaign(2001, ON_THE_LAST, ATTENDED_16000_TIMES))
    harness = Harness(root)
    records = [attend(f"g{n}", 1, at(seconds=n * 60), name=f"Conf {n % 97}") for n in range(15_999)]
    records.append(attend("last", 1, at(days=12), name="Last"))
    events: list[dict[str, object]] = []
    for start in range(0, len(records), 4_000):
        events += harness.feed(*records[start : start + 4_000]).events
    assert [e["activityId"] for e in events] == ["last"]
    state = harness.store.leads[1]
    assert len(state.history[100001]) == 16_000
    assert len(state.seen) == 16_000


def _run(processor: Processor, lines: list[bytes], sizes: list[int]) -> BatchResult:
    whole = BatchResult()
    offset = 0
    for size in sizes:
        batch = [
            Record(line, "t", 0, offset + i) for i, line in enumerate(lines[offset : offset + size])
        ]
        offset += size
        result = asyncio.run(processor.process(batch, NOW_US))
        whole.events += result.events
        whole.dead_letters += result.dead_letters
    return whole


def test_bounds_cut_at_the_same_points_whatever_the_batch_sizes(tmp_path: Path) -> None:
    root = write_rules(
        tmp_path,
        campaign(
            2001,
            "- trigger: Attends Conference",
            "items:\n  - filter: Attended Conference\n    window: 90 days\n    minTimes: 100\n",
        ),
    )
    from streams.engine.compiler import load_plan

    plan = load_plan(root)
    rng = random.Random(3)
    lines = []
    for n in range(1_500):
        if n % 10 == 0:
            lines.append(
                json.dumps(
                    change(f"c{n}", 1 + n % 3, at(days=rng.random() * 80), **{f"f{n}": "v"})
                ).encode()
            )
        else:
            lines.append(
                json.dumps(
                    attend(
                        f"g{n}",
                        1 + n % 3,
                        at(days=rng.random() * 80),
                        name="x" * rng.randrange(200),
                    )
                ).encode()
            )
    stores = []
    outputs = []
    for sizes in (
        [1_500],
        [1] * 50 + [7] * 50 + [1_100],
        [rng.randrange(1, 200) for _ in range(60)],
    ):
        store = MemoryStore()
        outputs.append(_run(Processor(plan, store, limits=SMALL), lines, sizes))
        stores.append({k: encode_state(v) for k, v in store.leads.items()})
    assert outputs[0].events, "the bound is reached while campaigns fire"
    assert outputs[1].events == outputs[0].events == outputs[2].events
    assert stores[1] == stores[0] == stores[2]
    assert all(len(decode_state(s).history[100001]) <= 160 for s in stores[0].values())


REPEAT = "items:\n  - filter: Attended Conference\n    window: 90 days\n    minTimes: 2\n"


@pytest.mark.parametrize("outlier", ["9999-12-31T23:59:59Z", "2027-01-02T00:00:01Z"])
def test_one_far_future_date_is_rejected_and_cannot_prune_history(
    tmp_path: Path, outlier: str
) -> None:
    """Issue 7, item 4: an activity dated 9999 used to raise the lead's latest date, and
    every later entry then pruned the older ones: the lead never became a repeat attendee."""
    root = write_rules(tmp_path, campaign(2001, "- trigger: Attends Conference", REPEAT))
    harness = Harness(root)
    future = harness.feed(attend("far", 1, outlier))
    assert [d["error"]["code"] for d in future.dead_letters] == ["invalid_value"]
    assert "ahead of the processing clock" in future.dead_letters[0]["error"]["message"]
    assert harness.store.leads == {}, "a rejected record touches no state"
    harness.feed(attend("a", 1, at(days=1)))
    joined = harness.feed(attend("b", 1, at(days=2)))
    assert [e["activityId"] for e in joined.events] == ["b"]


def test_a_date_within_the_horizon_is_accepted(tmp_path: Path) -> None:
    root = write_rules(tmp_path, campaign(2001, "- trigger: Attends Conference"))
    harness = Harness(root)
    result = harness.feed(attend("soon", 1, "2027-01-01T23:59:59Z"))  # NOW_US + 1 day - 1 s
    assert result.dead_letters == [] and len(result.events) == 1


def test_dead_letters_copy_at_most_the_bound(tmp_path: Path) -> None:
    root = write_rules(tmp_path, campaign(2001, "- trigger: Attends Conference"))
    harness = Harness(root)
    harness.processor = Processor(
        harness.plan, harness.store, limits=Limits(dead_letter_record_max_bytes=2_000)
    )
    big = b"\xff" * 500_000
    (letter,) = harness.feed(big).dead_letters
    assert letter["recordTruncated"] is True
    assert letter["recordLength"] == 500_000
    assert len(orjson.dumps(letter)) < 10_000


def test_a_state_stored_with_a_far_future_date_is_repaired_at_load(tmp_path: Path) -> None:
    """Stored before the decoder refused such dates: the entry goes, `max_ts` comes back to
    the latest date left, and the lead's history is pruned by real dates again."""
    root = write_rules(tmp_path, campaign(2001, "- trigger: Attends Conference", REPEAT))
    harness = Harness(root)
    far = 253_402_300_799_000_000  # 9999-12-31T23:59:59Z
    harness.store.leads[1] = LeadState(
        history={100001: [[far, "KubeCon", {}]]}, seen={"far": [0, "t/0/0", []]}, max_ts=far
    )
    harness.feed(attend("a", 1, at(days=1)))
    state = harness.store.leads[1]
    assert [e[0] for e in state.history[100001]] == [state.max_ts]
    joined = harness.feed(attend("b", 1, at(days=2)))
    assert [e["activityId"] for e in joined.events] == ["b"]
    assert len(harness.store.leads[1].history[100001]) == 2


def test_fields_over_their_character_bound_lose_the_most_recently_added() -> None:
    limits = Limits(max_fields_chars=10_000)
    state = LeadState(fields={"a": "x" * 4_000, "b": "y" * 4_000, "c": "z" * 4_000})
    enforce(state, limits, fields_changed=False)
    assert list(state.fields) == ["a", "b", "c"], "not looked at without a field change"
    enforce(state, limits)
    assert list(state.fields) == ["a", "b"]
