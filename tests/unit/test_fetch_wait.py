"""The worker consumer's fetch long poll (streams/runtime/fetch_wait.py), and the Faust
and aiokafka internals it relies on: these fail loudly when an upgrade moves them."""

from __future__ import annotations

import asyncio
import inspect
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer
from faust.transport.drivers import aiokafka as aiokafka_driver

from streams.runtime.faust_app import create_app
from streams.runtime.fetch_wait import FETCH_MAX_WAIT_MS, ShortFetchWaitThread


def test_fausts_worker_consumer_waits_the_fixed_time_the_thread_replaces() -> None:
    source = inspect.getsource(aiokafka_driver.AIOKafkaConsumerThread._create_worker_consumer)
    assert "fetch_max_wait_ms=1500" in source


def test_aiokafka_hands_the_consumers_wait_to_the_fetcher_it_starts() -> None:
    assert "fetch_max_wait_ms=self._fetch_max_wait_ms" in inspect.getsource(AIOKafkaConsumer.start)


@pytest.mark.parametrize(
    "options", [{"batch_drain": True}, {"revocation_commit": True}], ids=["worker", "dispatcher"]
)
def test_the_consumer_waits_at_most_the_short_poll(
    tmp_path: Path, options: dict[str, bool]
) -> None:
    async def created() -> int:
        app = create_app("t", "localhost:1", datadir=tmp_path, **options)
        thread = app.consumer._thread
        assert isinstance(thread, ShortFetchWaitThread)
        consumer = thread._create_worker_consumer(app.transport)
        try:
            wait: int = consumer._fetch_max_wait_ms
            return wait
        finally:
            await consumer.stop()

    assert asyncio.run(created()) == FETCH_MAX_WAIT_MS < 1500
