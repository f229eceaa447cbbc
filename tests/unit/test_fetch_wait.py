"""The worker consumer's fetch long poll (streams/runtime/fetch_wait.py), and the Faust
and aiokafka internals it relies on: these fail loudly when an upgrade moves them."""

from __future__ import annotations

import asyncio
import inspect
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer
from faust.transport.drivers import aiokafka as aiokafka_driver

from streams.engine.compiler import load_plan
from streams.runtime.faust_app import create_app
from streams.runtime.fetch_wait import (
    FETCH_MAX_WAIT_MS,
    FetchWait,
    ShortFetchWaitThread,
    set_fetch_wait,
)
from streams.runtime.worker import build_app
from streams.settings import WorkerSettings


def test_fausts_worker_consumer_waits_the_fixed_time_the_thread_replaces() -> None:
    source = inspect.getsource(aiokafka_driver.AIOKafkaConsumerThread._create_worker_consumer)
    assert "fetch_max_wait_ms=1500" in source


def test_aiokafka_hands_the_consumers_wait_to_the_fetcher_it_starts() -> None:
    source = inspect.getsource(AIOKafkaConsumer.start)
    assert "fetch_max_wait_ms=self._fetch_max_wait_ms" in source
    assert "fetch_min_bytes=self._fetch_min_bytes" in source


def _created(app: object) -> tuple[int, int]:
    """(max wait ms, min bytes) of the worker consumer `app`'s Faust thread creates."""

    async def created() -> tuple[int, int]:
        thread = app.consumer._thread  # type: ignore[attr-defined]
        consumer = thread._create_worker_consumer(app.transport)  # type: ignore[attr-defined]
        try:
            return consumer._fetch_max_wait_ms, consumer._fetch_min_bytes
        finally:
            await consumer.stop()

    return asyncio.run(created())


def test_an_apps_fetch_wait_reaches_its_consumer(tmp_path: Path) -> None:
    app = create_app("t", "localhost:1", datadir=tmp_path, batch_drain=True)
    set_fetch_wait(app, FetchWait(max_wait_ms=7, min_bytes=4096))
    assert _created(app) == (7, 4096)


def test_the_worker_fetches_with_its_settings(tmp_path: Path) -> None:
    rules = Path(__file__).resolve().parents[2] / "rules"
    settings = WorkerSettings(
        broker="localhost:1", fetch_min_bytes=2048, fetch_max_wait_ms=15, rules_dir=rules
    )
    app = build_app(settings, load_plan(settings.rules_dir), tmp_path)
    assert _created(app) == (15, 2048)
    default = WorkerSettings(broker="localhost:1")
    assert (default.fetch_max_wait_ms, default.fetch_min_bytes) == (FETCH_MAX_WAIT_MS, 1)


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
