"""On the real broker: the worker's consumer, as its Faust consumer thread builds and
starts it, long-polls each fetch at most `FETCH_MAX_WAIT_MS` (streams/runtime/fetch_wait.py),
not Faust's 1.5 s, which stalled a partition with more than one fetch of records behind a
fetch of the idle partitions (bench/history.py --worker, one busy lead)."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

from aiokafka import AIOKafkaProducer, TopicPartition

from streams.devstack.kafka import create_topics
from streams.runtime.faust_app import create_app
from streams.runtime.fetch_wait import FETCH_MAX_WAIT_MS, FetchWait, set_fetch_wait


def test_the_started_worker_consumer_fetches_with_the_short_poll(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    async def started_wait() -> int:
        app = create_app("fetch-wait", kafka_bootstrap, datadir=tmp_path, batch_drain=True)
        consumer = app.consumer._thread._create_worker_consumer(app.transport)
        await consumer.start()
        try:
            wait: int = consumer._fetcher._fetch_max_wait_ms
            return wait
        finally:
            await consumer.stop()

    assert asyncio.run(started_wait()) == FETCH_MAX_WAIT_MS


def _second_record_latency(bootstrap: str, tmp_path: Path, wait: FetchWait) -> float:
    """Seconds from the send of a record to its fetch by the worker's consumer (as its
    Faust thread builds it, with `wait`), the record sent right after the consumer got
    the one before (so its fetch is already waiting at the broker, as at a low rate)."""

    async def timed() -> float:
        topic = f"fetch-wait-{uuid.uuid4().hex[:8]}"
        create_topics(bootstrap, {topic: 1})
        app = create_app(topic, bootstrap, datadir=tmp_path, batch_drain=True)
        set_fetch_wait(app, wait)
        consumer = app.consumer._thread._create_worker_consumer(app.transport)
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
        await producer.start()
        await consumer.start()
        try:
            await producer.send_and_wait(topic, b"first", partition=0)
            consumer.assign([TopicPartition(topic, 0)])
            await consumer.seek_to_beginning()
            got = await consumer.getmany(timeout_ms=10_000)
            assert sum(map(len, got.values())) == 1
            sent = time.monotonic()
            await producer.send_and_wait(topic, b"second", partition=0)
            got = await consumer.getmany(timeout_ms=10_000)
            assert sum(map(len, got.values())) == 1
            return time.monotonic() - sent
        finally:
            await consumer.stop()
            await producer.stop()

    return asyncio.run(timed())


def test_a_single_record_is_fetched_at_once_by_default_and_held_with_a_minimum(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """Behaviour on the broker: with the default minimum (1 byte) a waiting fetch returns
    at the record's append, whatever its long poll; with a minimum the record does not
    reach, the broker holds it for the wait (STREAMS_FETCH_MIN_BYTES)."""
    assert _second_record_latency(kafka_bootstrap, tmp_path, FetchWait(max_wait_ms=1500)) < 0.75
    held = _second_record_latency(
        kafka_bootstrap, tmp_path, FetchWait(max_wait_ms=1500, min_bytes=1024 * 1024)
    )
    assert held > 0.75
