"""Issue 7, items 3 and 4, against a real worker: values over the decoder's limits and dates
beyond the future horizon are dead letters (`invalid_value`) and touch no state; a lead
flooded with values at the limit stays bounded; one far-future date no longer keeps a lead
out of "Repeat depositors"."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import orjson
import pytest
import redis.asyncio

from streams.devstack.worker import WorkerProcess
from streams.engine.compiler import load_plan
from streams.engine.leadstate import LeadState
from streams.pipeline import Processor, Record
from streams.settings import EngineSettings
from streams.state.memory import MemoryStore
from streams.state.redis_store import RedisStore
from tests.hostile.conftest import (
    RULES,
    HostileWorker,
    keyed,
    leads_in,
    records_done,
    sample_lines,
)
from tests.integration.streaming import (
    TopicReader,
    backtest,
    isolated_settings,
    lead_key,
    produce,
)

pytestmark = pytest.mark.integration

LEAD = 300_900


def deposit(guid: str, when: str, lead: int = LEAD) -> bytes:
    return orjson.dumps(
        {
            "marketoGUID": guid,
            "leadId": lead,
            "activityDate": when,
            "activityTypeId": 100002,
            "primaryAttributeValue": "First Bank",
            "attributes": [
                {"apiName": "chequeCount", "value": 1},
                {"apiName": "valueDate", "value": "2026-02-01"},
                {"apiName": "exchangeRate", "value": 1.0},
                {"apiName": "receiptUrl", "value": "https://bank.example/r/1"},
            ],
        }
    )


def new_lead(lead: int) -> bytes:
    return orjson.dumps(
        {
            "marketoGUID": f"new-{lead}",
            "leadId": lead,
            "activityDate": "2026-02-01T09:00:00Z",
            "activityTypeId": 12,
            "primaryAttributeValue": "Web",
            "fields": [{"name": "annualRevenue", "newValue": "90000"}],
        }
    )


def conference(guid: str, lead: int, primary: str, **extra: object) -> bytes:
    return orjson.dumps(
        {
            "marketoGUID": guid,
            "leadId": lead,
            "activityDate": "2026-03-01T10:00:00Z",
            "activityTypeId": 100001,
            "primaryAttributeValue": primary,
        }
        | extra
    )


def test_limits_and_the_future_horizon_hold_on_a_running_worker(
    hostile_worker: HostileWorker,
) -> None:
    worker = hostile_worker
    normal = sample_lines(900, 30, seed=23, first_lead=300_000)
    repeat = [
        new_lead(LEAD),
        deposit("far", "9999-12-31T23:59:59Z"),  # was accepted and pruned the rest
        deposit("d1", "2026-02-02T10:00:00Z"),
        deposit("d2", "2026-02-09T10:00:00Z"),
        deposit("d3", "2026-02-16T10:00:00Z"),
    ]
    flood = [conference(f"flood-{n}", LEAD + 1, "p" * 255) for n in range(40)]
    over = [
        conference("primary-256", LEAD + 2, "p" * 256),
        conference("primary-1MB", LEAD + 2, "p" * 1_000_000),
        conference("guid-" + "g" * 300, LEAD + 2, "ok"),
        conference("many", LEAD + 2, "ok", attributes=[{"apiName": "x", "value": 1}] * 60),
    ]
    lines = normal[:300] + repeat + normal[300:600] + flood + over + normal[600:]
    expected = backtest(RULES, lines)
    assert [e["activityId"] for e in expected.events if e["leadId"] == LEAD] == ["d3"]
    invalid = [d for d in expected.rejected if d["error"]["code"] == "invalid_value"]
    assert len(invalid) >= 5

    before = worker.processed()
    sent = worker.send(keyed(lines))
    got = worker.events_of(leads_in(lines), len(expected.events))
    letters = worker.letters_of(sent, len(expected.rejected))
    worker.wait_processed(before + len(lines))

    assert {e["eventId"] for e in got} == {e["eventId"] for e in expected.events}
    assert len(got) == len(expected.events)
    assert [e["activityId"] for e in got if e["leadId"] == LEAD] == ["d3"]
    assert sorted(d["offset"] for d in letters) == sorted(
        sent.positions[d["offset"]][1] for d in expected.rejected
    )
    messages = " | ".join(d["error"]["message"] for d in letters)
    assert "ahead of the processing clock" in messages
    assert "at most 255" in messages and "bytes long; at most 524288" in messages
    assert all(len(orjson.dumps(d)) < 100_000 for d in letters)

    admin = redis.Redis.from_url(worker.settings["STREAMS_REDIS_URL"])
    try:
        app_id = worker.settings["STREAMS_APP_ID"]
        assert admin.exists(f"{app_id}:lead:{{{LEAD + 2}}}") == 0, "rejections touch no state"
        flooded = admin.hget(f"{app_id}:lead:{{{LEAD + 1}}}", "state")
        assert flooded is not None and len(flooded) < 40 * 600
    finally:
        admin.close()
    worker.assert_healthy()


def test_a_flooded_lead_stays_within_the_state_bounds_and_the_backtest_agrees(
    kafka_bootstrap: str, redis_url: str, tmp_path: Path
) -> None:
    """A worker of its own with small bounds (STREAMS_LEAD_MAX_*): one lead gets far more
    activities, identities and fields than they allow. Its stored state stays within them,
    and the memberships are the backtest's under the same limits, cut for cut."""
    limits = {
        "STREAMS_LEAD_MAX_HISTORY": "100",
        "STREAMS_LEAD_MAX_SEEN": "150",
        "STREAMS_LEAD_MAX_FIELDS": "10",
    }
    settings = isolated_settings(kafka_bootstrap, redis_url, RULES) | limits
    settings["STREAMS_BATCH_SIZE"] = "37"  # cuts fall inside batches, not at their ends
    lead = 300_950
    lines = [new_lead(lead)]
    for n in range(400):
        lines.append(deposit(f"flood-{n}", f"2026-02-{1 + n % 27:02d}T{n % 24:02d}:00:00Z", lead))
        if n % 20 == 0:
            lines.append(
                orjson.dumps(
                    {
                        "leadId": lead,
                        "activityDate": "2026-02-10T10:00:00Z",
                        "activityTypeId": 13,
                        "fields": [{"name": f"field{n}", "newValue": "x"}],
                    }
                )
            )
    engine = EngineSettings(lead_max_history=100, lead_max_seen=150, lead_max_fields=10)
    store = MemoryStore()
    processor = Processor(load_plan(RULES), store, engine.dedup_horizon_us, engine.limits)
    records = [Record(line, "file", 0, i) for i, line in enumerate(lines)]
    expected = asyncio.run(processor.process(records, time.time_ns() // 1000))
    assert expected.events, "the flood makes the lead a member"

    produce(kafka_bootstrap, settings["STREAMS_TOPIC_ACTIVITIES"], lines, lead_key)
    memberships = TopicReader(kafka_bootstrap, settings["STREAMS_TOPIC_MEMBERSHIPS"])
    try:
        with WorkerProcess(settings, tmp_path / "worker.log") as worker:
            got = memberships.until(lambda v: len(v) >= len(expected.events), 120, worker.alive)
            deadline = time.monotonic() + 120
            while (
                records_done(worker) < len(lines) and time.monotonic() < deadline and worker.alive()
            ):
                time.sleep(0.5)
            assert records_done(worker) == len(lines), worker.log_tail()
    finally:
        memberships.close()
    assert [e["eventId"] for e in got] == [e["eventId"] for e in expected.events]

    async def stored_state() -> LeadState:
        # Through the store: the lead's key holds a snapshot, its journal the later deltas.
        client = redis.asyncio.Redis.from_url(redis_url)
        try:
            return (await RedisStore(client, settings["STREAMS_APP_ID"], 0).load([lead]))[lead]
        finally:
            await client.aclose()

    stored = asyncio.run(stored_state())
    want = store.leads[lead]
    assert sum(len(v) for v in stored.history.values()) <= 100
    assert len(stored.seen) <= 150 and len(stored.fields) <= 10
    assert (stored.history, stored.fields, stored.runs) == (want.history, want.fields, want.runs)
    assert list(stored.seen) == list(want.seen)
