"""The real worker on Apache Kafka and Redis against the backtest of the same stream."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest
import redis.asyncio
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

from streams.devstack.worker import WorkerProcess
from streams.engine.leadstate import LeadState
from streams.samples import sample_activities
from streams.state.redis_store import RedisStore
from tests.integration.streaming import (
    PARTITIONS,
    TopicReader,
    backtest,
    isolated_settings,
    lead_key,
    per_lead,
    produce,
)

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "rules"
EXAMPLES = ROOT.parent / "shared" / "examples"


def stream(count: int, leads: int, seed: int) -> list[bytes]:
    return [orjson.dumps(a) for a in sample_activities(count, leads, seed)]


def odd_key(line: bytes) -> bytes | None:
    """Most records keyed by lead id; every lead whose id ends in 7 under one other key
    (still one partition per lead, so its order holds)."""
    key = lead_key(line)
    return b"not-the-lead" if key is not None and key.endswith(b"7") else key


def test_the_worker_emits_what_the_backtest_emits(
    kafka_bootstrap: str, redis_url: str, tmp_path: Path
) -> None:
    lines = stream(20_000, 300, seed=11)
    expected = backtest(RULES, lines)
    assert len(expected.events) > 3000 and expected.rejected  # the stream exercises the rules
    settings = isolated_settings(kafka_bootstrap, redis_url, RULES)
    produce(kafka_bootstrap, settings["STREAMS_TOPIC_ACTIVITIES"], lines, odd_key)
    memberships = TopicReader(kafka_bootstrap, settings["STREAMS_TOPIC_MEMBERSHIPS"])
    dead = TopicReader(kafka_bootstrap, settings["STREAMS_TOPIC_DLQ"])
    with WorkerProcess(settings, tmp_path / "worker.log") as worker:
        got = memberships.until(lambda v: len(v) >= len(expected.events), 240, worker.alive)
        letters = dead.until(lambda v: len(v) >= len(expected.rejected), 30, worker.alive)
        metrics = worker.metrics()
    assert len(got) == len(expected.events), worker.log_tail()
    assert {e["eventId"] for e in got} == expected.ids
    assert per_lead(got) == per_lead(expected.events)
    # The same content too (names, trigger, dates, rulesVersion), not only the same ids.
    assert {e["eventId"]: e for e in got} == {e["eventId"]: e for e in expected.events}
    assert Counter(d["error"]["code"] for d in letters) == Counter(
        d["error"]["code"] for d in expected.rejected
    )
    assert all(d["topic"] == settings["STREAMS_TOPIC_ACTIVITIES"] for d in letters)
    assert f"streams_memberships_total {float(len(expected.events))}" in metrics


def test_a_worker_killed_mid_stream_loses_nothing_and_invents_nothing(
    kafka_bootstrap: str, redis_url: str, tmp_path: Path
) -> None:
    """SIGKILL while batches are in flight, restart, and compare everything emitted
    (deduplicated by eventId) and the final Redis state with one clean backtest."""
    lines = stream(20_000, 300, seed=12)
    expected = backtest(RULES, lines)
    settings = isolated_settings(kafka_bootstrap, redis_url, RULES)
    settings["STREAMS_BATCH_SIZE"] = "500"  # many batches, so the kill lands mid-stream
    produce(kafka_bootstrap, settings["STREAMS_TOPIC_ACTIVITIES"], lines, lead_key)
    memberships = TopicReader(kafka_bootstrap, settings["STREAMS_TOPIC_MEMBERSHIPS"])
    first = WorkerProcess(settings, tmp_path / "worker-1.log").start()
    try:
        memberships.until(lambda v: len(v) >= len(expected.events) // 4, 180, first.alive)
        assert len(memberships.values) < len(expected.events), "killed too late to test"
    finally:
        first.kill()
    emitted_before = len(memberships.values)
    with WorkerProcess(settings, tmp_path / "worker-2.log") as second:
        got = memberships.until(
            lambda v: {e["eventId"] for e in v} >= expected.ids, 240, second.alive
        )
    ids = {e["eventId"] for e in got}
    assert ids == expected.ids, second.log_tail()
    assert per_lead(got) == per_lead(expected.events)
    assert emitted_before > 0

    async def stored_states() -> dict[int, LeadState]:
        client = redis.asyncio.Redis.from_url(redis_url)
        try:
            store = RedisStore(client, settings["STREAMS_APP_ID"], ttl_ms=0)
            return await store.load(list(expected.leads))
        finally:
            await client.aclose()

    stored = asyncio.run(stored_states())
    for lead, state in expected.leads.items():
        mine = stored[lead]
        assert (mine.history, mine.fields, mine.runs, mine.max_ts) == (
            state.history,
            state.fields,
            state.runs,
            state.max_ts,
        ), lead
        assert set(mine.seen) == set(state.seen), lead


def topic_config(bootstrap: str, topic: str, configs: dict[str, str]) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs=configs)])
    finally:
        admin.close()


def positions(bootstrap: str, topic: str, count: int) -> dict[str, tuple[int, int]]:
    """marketoGUID -> (partition, offset) of the first `count` records of `topic`."""
    reader = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    reader.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
    reader.seek_to_beginning()
    out: dict[str, tuple[int, int]] = {}
    deadline = time.monotonic() + 60
    while len(out) < count and time.monotonic() < deadline:
        for records in reader.poll(timeout_ms=500).values():
            for r in records:
                out.setdefault(orjson.loads(r.value)["marketoGUID"], (r.partition, r.offset))
    reader.close()
    return out


def test_a_failed_delivery_while_the_next_batch_is_evaluated_commits_nothing_past_it(
    kafka_bootstrap: str, redis_url: str, tmp_path: Path
) -> None:
    """Mid-stream, the memberships topic starts refusing every write (max.message.bytes
    below any event's size) while batches are evaluated ahead of their deliveries. The
    worker exits on the first failed delivery; every committed offset lies below records
    whose events are all delivered; once the topic accepts writes again, a new worker
    emits exactly the backtest's events in each lead's order."""
    lines = stream(8000, 200, seed=13)
    expected = backtest(RULES, lines)
    half = len(lines) // 2
    settings = isolated_settings(kafka_bootstrap, redis_url, RULES)
    settings["STREAMS_BATCH_SIZE"] = "100"
    topic_in, topic_out = (
        settings["STREAMS_TOPIC_ACTIVITIES"],
        settings["STREAMS_TOPIC_MEMBERSHIPS"],
    )
    produce(kafka_bootstrap, topic_in, lines[:half], lead_key)
    first_half = {e["eventId"] for e in backtest(RULES, lines[:half]).events}
    memberships = TopicReader(kafka_bootstrap, topic_out)
    first = WorkerProcess(settings, tmp_path / "worker-1.log").start()
    try:
        memberships.until(lambda v: {e["eventId"] for e in v} >= first_half, 180, first.alive)
        topic_config(kafka_bootstrap, topic_out, {"max.message.bytes": "100"})
        time.sleep(2)  # the worker commits the first half meanwhile (every second)
        produce(kafka_bootstrap, topic_in, lines[half:], lead_key)
        deadline = time.monotonic() + 120
        while first.alive() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not first.alive(), "the worker went on without delivering"
    finally:
        first.kill()
    where = positions(kafka_bootstrap, topic_in, len(lines))
    assert "delivery of a batch of" in first.log_tail(200), first.log_tail()

    group = KafkaConsumer(
        bootstrap_servers=kafka_bootstrap,
        group_id=settings["STREAMS_APP_ID"],
        enable_auto_commit=False,
    )
    committed = {p: group.committed(TopicPartition(topic_in, p)) or 0 for p in range(PARTITIONS)}
    group.close()
    assert sum(committed.values()) > 0, "some batches were delivered and committed"
    memberships.until(lambda v: False, 3)  # whatever was delivered
    delivered = {e["eventId"] for e in memberships.values}
    below = [
        e["eventId"]
        for e in expected.events
        if where[e["activityId"]][1] < committed.get(where[e["activityId"]][0], 0)
    ]
    assert below and set(below) <= delivered, "an offset was committed past an undelivered event"
    assert len(delivered) < len(expected.ids)

    topic_config(kafka_bootstrap, topic_out, {"max.message.bytes": "1048588"})
    with WorkerProcess(settings, tmp_path / "worker-2.log") as second:
        got = memberships.until(
            lambda v: {e["eventId"] for e in v} >= expected.ids, 240, second.alive
        )
    assert {e["eventId"] for e in got} == expected.ids, second.log_tail()
    assert per_lead(got) == per_lead(expected.events)


@pytest.mark.parametrize("example", ["conference-follow-up", "mobile-purchases"])
def test_the_shared_examples_through_the_worker(
    example: str, kafka_bootstrap: str, redis_url: str, tmp_path: Path
) -> None:
    folder = EXAMPLES / example
    if not folder.is_dir():
        pytest.skip(f"{folder} is not here")
    lines = [line for line in (folder / "activities.jsonl").read_bytes().splitlines() if line]
    want = [orjson.loads(line) for line in (folder / "expected.jsonl").read_bytes().splitlines()]
    rejected = [
        orjson.loads(line)
        for line in (folder / "expected-rejected.jsonl").read_bytes().splitlines()
        if line
    ]
    settings = isolated_settings(kafka_bootstrap, redis_url, folder / "rules")
    produce(kafka_bootstrap, settings["STREAMS_TOPIC_ACTIVITIES"], lines, lead_key)
    memberships = TopicReader(kafka_bootstrap, settings["STREAMS_TOPIC_MEMBERSHIPS"])
    dead = TopicReader(kafka_bootstrap, settings["STREAMS_TOPIC_DLQ"])
    with WorkerProcess(settings, tmp_path / "worker.log") as worker:
        got = memberships.until(lambda v: len(v) >= len(want), 120, worker.alive)
        letters = dead.until(lambda v: len(v) >= len(rejected), 30, worker.alive)
        worker.wait_ready()
    assert [(e["campaignId"], e["leadId"], e["activityId"]) for e in got] == [
        (e["campaignId"], e["leadId"], e["activityId"]) for e in want
    ]
    assert sorted(d["error"]["code"] for d in letters) == sorted(r["code"] for r in rejected)


def test_a_worker_on_invalid_rules_refuses_to_start(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    (rules / "campaigns").mkdir(parents=True)
    (rules / "campaigns" / "bad.yaml").write_text(
        "id: 1\nname: Bad\ntriggers:\n  - trigger: Attends Nothing\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "streams", "worker", "--rules-dir", str(rules)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "campaigns/bad.yaml: triggers[0].trigger: unknown trigger 'Attends Nothing'" in (
        result.stderr
    )


def test_a_worker_gives_up_on_an_unreachable_redis_with_a_clear_message(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "streams",
            "worker",
            "--broker",
            kafka_bootstrap,
            "--redis-url",
            "redis://127.0.0.1:9/0",
            "--rules-dir",
            str(RULES),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**__import__("os").environ, "STREAMS_CONNECT_TIMEOUT": "3"},
    )
    assert result.returncode == 1
    assert "Redis at redis://127.0.0.1:9/0 did not answer within 3 s" in result.stderr
    assert result.stderr.count("not reachable") >= 1
