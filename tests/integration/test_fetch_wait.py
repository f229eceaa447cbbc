"""On the real broker: the worker's consumer, as its Faust consumer thread builds and
starts it, long-polls each fetch at most `FETCH_MAX_WAIT_MS` (streams/runtime/fetch_wait.py),
not Faust's 1.5 s, which stalled a partition with more than one fetch of records behind a
fetch of the idle partitions (bench/history.py --worker, one busy lead)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from streams.runtime.faust_app import create_app
from streams.runtime.fetch_wait import FETCH_MAX_WAIT_MS


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
